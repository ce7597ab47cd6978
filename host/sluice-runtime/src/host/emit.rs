//! `sluice:platform/emit`: queue an event for publication after the current event commits.

use sluice_model::state::Emitted;

use crate::bindings::emit::{Error, Host};
use crate::host::HostState;

/// Longest subject accepted (NATS itself allows far more; no real subject needs it).
pub(crate) const MAX_SUBJECT: usize = 256;
/// Largest payload of one emitted event (NATS's default max payload is 1 MiB).
pub(crate) const MAX_DATA: usize = 1 << 20;
/// Most headers on one emitted event, and their total size.
pub(crate) const MAX_HEADERS: usize = 64;
pub(crate) const MAX_HEADER_BYTES: usize = 16 << 10;
/// Most events one event may emit: each becomes an outbox row in the commit.
pub(crate) const MAX_EMITS_PER_EVENT: usize = 256;

/// Why `subject` is not a publishable NATS subject, if it is not.
pub(crate) fn subject_problem(subject: &str) -> Option<String> {
    if subject.is_empty() {
        return Some("subject is empty".into());
    }
    if subject.len() > MAX_SUBJECT {
        return Some(format!(
            "subject is {} bytes, limit {MAX_SUBJECT}",
            subject.len()
        ));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "subject {subject:?} contains whitespace or control characters"
        ));
    }
    if subject
        .split('.')
        .any(|t| t.is_empty() || t == "*" || t == ">")
    {
        return Some(format!(
            "subject {subject:?} has an empty token or a wildcard"
        ));
    }
    None
}

impl Host for HostState {
    fn emit(
        &mut self,
        subject: String,
        data: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        if let Some(p) = subject_problem(&subject) {
            return Ok(Err(Error::InvalidSubject(p)));
        }
        if !self.grants.may_emit(&subject) {
            return Ok(Err(Error::InvalidSubject(format!(
                "this stage may not emit to {subject:?} (granted: {:?})",
                self.grants.emit_subjects
            ))));
        }
        if data.len() > MAX_DATA {
            return Ok(Err(Error::TooLarge(format!(
                "data is {} bytes, limit {MAX_DATA}",
                data.len()
            ))));
        }
        let header_bytes: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
            return Ok(Err(Error::TooLarge(format!(
                "{} headers of {header_bytes} bytes, limits {MAX_HEADERS} and {MAX_HEADER_BYTES}",
                headers.len()
            ))));
        }
        if self.emits >= MAX_EMITS_PER_EVENT {
            return Ok(Err(Error::TooLarge(format!(
                "more than {MAX_EMITS_PER_EVENT} emits for one event"
            ))));
        }
        // The outbox row holds all of it until the batch commits and the relay publishes it.
        if let Err(m) = self.charge_emit(subject.len() + data.len() + header_bytes)? {
            return Ok(Err(Error::TooLarge(m)));
        }
        self.emits += 1;
        self.session.emit(Emitted {
            subject,
            data,
            headers,
        });
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::subject_problem;

    #[test]
    fn subjects() {
        assert!(subject_problem("orders.created").is_none());
        for bad in ["", "orders..x", "orders.*", "orders.>", "a b", ".x", "x."] {
            assert!(subject_problem(bad).is_some(), "{bad:?} should be refused");
        }
    }
}
