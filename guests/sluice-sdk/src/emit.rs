//! Emitting events: the WIT's `emit` interface, with JSON data or bytes and optional headers.
//!
//! An emitted event is not sent at once: the host stores it in its outbox with the current
//! event's commit and publishes it afterwards, with a message id derived from the current
//! event's id, so chaining stages through subjects stays exactly-once. A failed event emits
//! nothing. Emits of one event are published in call order; the subject must be granted
//! (`grants.emit_subjects`).
//!
//! [`bytes`] and [`Outgoing::bytes`] return the WIT's [`Error`]; the JSON forms serialize in
//! the guest first and so return the SDK's named [`crate::Error`] (`Output.Unserializable`
//! for data that does not serialize, `Emit.InvalidSubject` / `Emit.TooLarge` from the host).

use serde::Serialize;

use crate::bindings::sluice::platform::emit as wit;
use crate::codec::to_json;

pub use wit::Error;

/// Emit `data` as it is to `subject`, without headers.
pub fn bytes(subject: &str, data: &[u8]) -> Result<(), Error> {
    wit::emit(subject, data, &[])
}

/// Emit `data` serialized as JSON to `subject`, without headers.
pub fn json<T: Serialize + ?Sized>(subject: &str, data: &T) -> Result<(), crate::Error> {
    let data = to_json("the emitted data", data)?;
    Ok(wit::emit(subject, &data, &[])?)
}

/// An event to `subject`, to which headers can be added before it is emitted:
/// `emit::to("orders.paid").header("order-id", id).json(&order)?`.
pub fn to(subject: impl Into<String>) -> Outgoing {
    Outgoing {
        subject: subject.into(),
        headers: Vec::new(),
    }
}

/// An event being put together; [`bytes`](Self::bytes) or [`json`](Self::json) emits it
/// (one host call).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "an Outgoing event is only emitted by its `bytes` or `json` method"]
pub struct Outgoing {
    subject: String,
    headers: Vec<(String, String)>,
}

impl Outgoing {
    /// Add a header; headers keep the order they were added in.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The headers added so far.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Emit the event with `data` as it is.
    pub fn bytes(&self, data: &[u8]) -> Result<(), Error> {
        wit::emit(&self.subject, data, &self.headers)
    }

    /// Emit the event with `data` serialized as JSON.
    pub fn json<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), crate::Error> {
        let data = to_json("the emitted data", data)?;
        Ok(wit::emit(&self.subject, &data, &self.headers)?)
    }
}

impl Error {
    /// The variant's name as the WIT spells it: `invalid-subject` or `too-large`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidSubject(_) => "invalid-subject",
            Self::TooLarge(_) => "too-large",
        }
    }

    /// The host's explanation.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidSubject(m) | Self::TooLarge(m) => m,
        }
    }

    /// The host's explanation, owned.
    pub fn into_message(self) -> String {
        match self {
            Self::InvalidSubject(m) | Self::TooLarge(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_collects_headers_in_order() {
        let out = to("orders.paid").header("b", "2").header("a", "1");
        assert_eq!(out.subject(), "orders.paid");
        assert_eq!(
            out.headers(),
            [
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned())
            ]
        );
    }

    #[test]
    fn error_parts() {
        let e = Error::InvalidSubject("m".into());
        assert_eq!((e.kind(), e.message()), ("invalid-subject", "m"));
        let e = Error::TooLarge("m".into());
        assert_eq!((e.kind(), e.into_message()), ("too-large", "m".to_owned()));
    }
}
