//! Task tokens (`$$.Task.Token`): what a `.waitForTaskToken` Task hands out and
//! SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat bring back.
//!
//! A token names its execution, so the host finds the execution without an index, and carries
//! 128 random bits, so it cannot be guessed from the execution's name: the execution keeps
//! the whole token and accepts a callback only when it matches. `sl1.<base64url of
//! "<workflow>/<name>">.<32 hex digits>`, at most ~250 characters (AWS allows 1,024).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::env::Random;

const PREFIX: &str = "sl1.";

/// A new token for a Task of the execution `name` of `workflow`.
pub fn new(workflow: &str, name: &str, random: &dyn Random) -> String {
    let id = URL_SAFE_NO_PAD.encode(format!("{workflow}/{name}"));
    format!(
        "{PREFIX}{id}.{:016x}{:016x}",
        random.next_u64(),
        random.next_u64()
    )
}

/// The (workflow, execution name) a token names, or `None` when it is not one of ours.
pub fn execution_of(token: &str) -> Option<(String, String)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, nonce) = rest.rsplit_once('.')?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    let (workflow, name) = id.split_once('/')?;
    (!workflow.is_empty() && !name.is_empty()).then(|| (workflow.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SplitMix;

    #[test]
    fn a_token_names_its_execution_and_differs_each_time() {
        let r = SplitMix::new(1);
        let (a, b) = (new("orders", "o-1", &r), new("orders", "o-1", &r));
        assert_ne!(a, b);
        assert_eq!(execution_of(&a), Some(("orders".into(), "o-1".into())));
        for bad in [
            "",
            "sl1.",
            "sl1.b3JkZXJz.0123",
            "xx1.b3JkZXJzL28tMQ.0123456789abcdef0123456789abcdef",
            "sl1.!!!.0123456789abcdef0123456789abcdef",
            // Decodes, but names no execution ("orders", no slash).
            "sl1.b3JkZXJz.0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(execution_of(bad), None, "{bad}");
        }
        assert!(a.len() < 1024);
    }
}
