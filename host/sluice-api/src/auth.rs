//! Bearer tokens with scopes, as Nomad and Vault keep them: a public id and a random 256-bit
//! secret, of which only the SHA-256 digest is stored; a presented token is found by its id
//! and its secret's digest compared in constant time.
//!
//! A token reads `sl_<id>_<secret>` (16 and 64 hex digits). The store is one JSON file in
//! the data directory, mode 0600, replaced atomically (written aside, synced, renamed): the
//! tokens of one host are few and change rarely, and the file is all a restore needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// What a token may do. `admin` implies every other scope.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read anything: stages, workflows, executions, triggers, state.
    Read,
    /// Invoke stages, start and stop executions, send task callbacks, publish events.
    Invoke,
    /// Deploy and delete stages, workflows and triggers.
    Deploy,
    /// Everything, and manage tokens.
    Admin,
}

impl Scope {
    /// The scope's name, as tokens and errors spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Invoke => "invoke",
            Self::Deploy => "deploy",
            Self::Admin => "admin",
        }
    }
}

/// A stored token: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// The public part, `sl_<id>_...`.
    pub id: String,
    /// What it is for, as its creator named it.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created, ms since the epoch.
    pub created_ms: i64,
}

impl TokenInfo {
    /// Whether the token may act with `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    info: TokenInfo,
    /// SHA-256 of the secret, hex.
    secret_sha256: String,
}

/// Why the token store failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing the file failed.
    #[error("the token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a token list.
    #[error("the token file {path} does not decode: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The operating system gave no randomness.
    #[error("no randomness for a token secret: {0}")]
    Random(String),
}

/// The tokens of one host, in a file.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    tokens: Mutex<BTreeMap<String, Stored>>,
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, TokenError> {
    let mut b = vec![0_u8; bytes];
    getrandom::fill(&mut b).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(hex::encode(b))
}

/// The id and secret of a presented token, if it is shaped as one.
fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("sl_")?;
    let (id, secret) = rest.split_once('_')?;
    let hexy = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexy(id, 16) && hexy(secret, 64)).then_some((id, secret))
}

impl TokenStore {
    /// The store in `path`, read if the file exists (else empty until the first token).
    pub fn open(path: &Path) -> Result<Self, TokenError> {
        let io = |source| TokenError::Io {
            path: path.to_owned(),
            source,
        };
        let tokens = match std::fs::read(path) {
            Ok(bytes) => {
                let list: Vec<Stored> =
                    serde_json::from_slice(&bytes).map_err(|e| TokenError::Corrupt {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
                list.into_iter().map(|s| (s.info.id.clone(), s)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(Self {
            path: path.to_owned(),
            tokens: Mutex::new(tokens),
        })
    }

    /// Create a token named `name` with `scopes`: its description and the token itself,
    /// which is shown this once and never stored.
    pub fn create(
        &self,
        name: &str,
        scopes: &[Scope],
        now_ms: i64,
    ) -> Result<(TokenInfo, String), TokenError> {
        let (id, secret) = (random_hex(8)?, random_hex(32)?);
        let mut scopes = scopes.to_vec();
        scopes.sort_unstable();
        scopes.dedup();
        let info = TokenInfo {
            id: id.clone(),
            name: name.to_owned(),
            scopes,
            created_ms: now_ms,
        };
        let stored = Stored {
            info: info.clone(),
            secret_sha256: digest(&secret),
        };
        let mut tokens = self.tokens.lock();
        tokens.insert(id.clone(), stored);
        if let Err(e) = self.write(&tokens) {
            tokens.remove(&id);
            return Err(e);
        }
        Ok((info, format!("sl_{id}_{secret}")))
    }

    /// Every token, by id.
    pub fn list(&self) -> Vec<TokenInfo> {
        self.tokens
            .lock()
            .values()
            .map(|s| s.info.clone())
            .collect()
    }

    /// Revoke the token `id`; whether there was one.
    pub fn revoke(&self, id: &str) -> Result<bool, TokenError> {
        let mut tokens = self.tokens.lock();
        let Some(gone) = tokens.remove(id) else {
            return Ok(false);
        };
        if let Err(e) = self.write(&tokens) {
            tokens.insert(id.to_owned(), gone);
            return Err(e);
        }
        Ok(true)
    }

    /// The live token `token` is, if it is one.
    pub fn verify(&self, token: &str) -> Option<TokenInfo> {
        let (id, secret) = parse(token)?;
        let tokens = self.tokens.lock();
        let stored = tokens.get(id)?;
        let presented = digest(secret);
        bool::from(presented.as_bytes().ct_eq(stored.secret_sha256.as_bytes()))
            .then(|| stored.info.clone())
    }

    /// Write `tokens` aside, sync, and rename over the file: a crash leaves the old list or
    /// the new one, never half of one.
    fn write(&self, tokens: &BTreeMap<String, Stored>) -> Result<(), TokenError> {
        use std::io::Write;
        let io = |source| TokenError::Io {
            path: self.path.clone(),
            source,
        };
        let list: Vec<&Stored> = tokens.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).expect("tokens serialize");
        let aside = self.path.with_extension("json.new");
        let mut f = private_file(&aside).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&aside, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Create (or truncate) `path` readable and writable by its owner only.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path)?;
    // `mode` applies only to a file it creates: one already there keeps its permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// The admin token of the data directory `dir`: read from `<dir>/admin.token` when it names a
/// live token of `store`, else created (scope `admin`) and written there, mode 0600.
pub fn admin_token(dir: &Path, store: &TokenStore, now_ms: i64) -> Result<String, TokenError> {
    use std::io::Write;
    let path = dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path)
        && store
            .verify(t.trim())
            .is_some_and(|i| i.allows(Scope::Admin))
    {
        return Ok(t.trim().to_owned());
    }
    let (_, token) = store.create("admin", &[Scope::Admin], now_ms)?;
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    let mut f = private_file(&path).map_err(io)?;
    f.write_all(token.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_until_revoked_and_only_its_digest_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let store = TokenStore::open(&path).unwrap();
        let (info, token) = store.create("ci", &[Scope::Read, Scope::Read], 1).unwrap();
        assert_eq!(info.scopes, [Scope::Read]);
        assert_eq!(store.verify(&token), Some(info.clone()));
        let file = std::fs::read_to_string(&path).unwrap();
        let secret = token.rsplit('_').next().unwrap();
        assert!(!file.contains(secret), "the secret is not stored");
        assert!(file.contains(&digest(secret)));
        // Reopened, it still verifies; a changed secret does not.
        let again = TokenStore::open(&path).unwrap();
        assert_eq!(again.verify(&token), Some(info.clone()));
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert_eq!(again.verify(&forged), None);
        for bad in ["", "sl_", "sl_x_y", "Bearer", &token[..token.len() - 1]] {
            assert_eq!(again.verify(bad), None, "{bad:?}");
        }
        assert!(again.revoke(&info.id).unwrap());
        assert!(!again.revoke(&info.id).unwrap());
        assert_eq!(again.verify(&token), None);
        assert_eq!(TokenStore::open(&path).unwrap().verify(&token), None);
    }

    #[test]
    fn admin_implies_every_scope_and_read_only_itself() {
        let t = |scopes: Vec<Scope>| TokenInfo {
            id: String::new(),
            name: String::new(),
            scopes,
            created_ms: 0,
        };
        for s in [Scope::Read, Scope::Invoke, Scope::Deploy, Scope::Admin] {
            assert!(t(vec![Scope::Admin]).allows(s));
        }
        assert!(t(vec![Scope::Read]).allows(Scope::Read));
        assert!(!t(vec![Scope::Read]).allows(Scope::Invoke));
        assert!(!t(vec![Scope::Deploy]).allows(Scope::Admin));
    }

    #[cfg(unix)]
    #[test]
    fn the_admin_token_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(&dir.path().join("tokens.json")).unwrap();
        // A readable leftover that is no token: replaced, and made private.
        std::fs::write(dir.path().join("admin.token"), "stale").unwrap();
        std::fs::set_permissions(
            dir.path().join("admin.token"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let first = admin_token(dir.path(), &store, 1).unwrap();
        let mode = std::fs::metadata(dir.path().join("admin.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(admin_token(dir.path(), &store, 2).unwrap(), first);
        // A revoked admin token is replaced by a new one.
        let id = store.verify(&first).unwrap().id;
        store.revoke(&id).unwrap();
        let second = admin_token(dir.path(), &store, 3).unwrap();
        assert_ne!(second, first);
        assert!(store.verify(&second).unwrap().allows(Scope::Admin));
    }
}
