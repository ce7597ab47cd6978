//! `sluice token create|list|revoke`: the host's bearer tokens, through `/v1/tokens` (the
//! caller's token needs the `admin` scope).

use clap::Subcommand;
use reqwest::Method;
use serde::Deserialize;
use sluice_api::{Scope, TokenInfo};

use super::human::{table, utc};
use super::{Client, Failure, Remote};

/// The token commands.
#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token; it is printed on stdout this once (the host keeps only its hash).
    Create {
        /// What it is for (1 to 128 characters).
        name: String,
        /// What it may do: read, invoke, deploy or admin (repeat for several).
        #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = scope)]
        scopes: Vec<Scope>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the tokens (never their secrets).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's id (`sluice token list` shows it).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// A scope by the name the API gives it.
fn scope(s: &str) -> Result<Scope, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("'{s}' is not a scope: read, invoke, deploy or admin"))
}

/// A created token.
#[derive(Deserialize)]
struct Created {
    #[serde(flatten)]
    info: TokenInfo,
    token: String,
}

#[derive(Deserialize)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

fn scopes(list: &[Scope]) -> String {
    list.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
}

impl TokenCommand {
    /// Run the command against the host; its exit code.
    pub(crate) fn run(self) -> std::process::ExitCode {
        let remote = match &self {
            Self::Create { remote, .. } | Self::List { remote } | Self::Revoke { remote, .. } => {
                remote.clone()
            }
        };
        super::run(&remote, async |c| self.call(c).await)
    }

    async fn call(self, c: &Client) -> Result<(), Failure> {
        match self {
            Self::Create {
                name, scopes: s, ..
            } => {
                let req = c
                    .request(Method::POST, &["v1", "tokens"])
                    .json(&serde_json::json!({ "name": name, "scopes": s }));
                let v = c.json_of(req, None).await?;
                if c.json() {
                    super::print_json(&v);
                    return Ok(());
                }
                let t: Created = super::parse(&v)?;
                // The token alone on stdout, so `TOKEN=$(sluice token create ...)` works.
                eprintln!(
                    "created token '{}' (id {}, scopes {}); it is shown this once:",
                    t.info.name,
                    t.info.id,
                    scopes(&t.info.scopes)
                );
                println!("{}", t.token);
            }
            Self::List { .. } => {
                let v = c
                    .json_of(c.request(Method::GET, &["v1", "tokens"]), None)
                    .await?;
                if c.json() {
                    super::print_json(&v);
                    return Ok(());
                }
                let l: TokenList = super::parse(&v)?;
                let rows: Vec<Vec<String>> = l
                    .tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            utc(t.created_ms),
                            scopes(&t.scopes),
                            t.name.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(&["ID", "CREATED (UTC)", "SCOPES", "NAME"], &rows)
                );
            }
            Self::Revoke { id, .. } => {
                c.send(c.request(Method::DELETE, &["v1", "tokens", &id]), None)
                    .await?;
                if !c.json() {
                    println!("token {id}: revoked");
                }
            }
        }
        Ok(())
    }
}
