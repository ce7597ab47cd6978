//! The event a stage receives and the outcome it produces, as host-side Rust types.
//!
//! These mirror `sluice:platform/types` in `wit/types.wit`; the runtime converts between them
//! and the generated bindings at the component boundary.

use serde::{Deserialize, Serialize};

/// One event delivered to a stage (see `wit/types.wit` for the meaning of each field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Event {
    /// Unique id; the exactly-once dedupe key.
    pub id: String,
    /// CloudEvents `type`, e.g. `order.created`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// CloudEvents `source`.
    #[serde(default)]
    pub source: String,
    /// NATS subject or invoking workflow state.
    #[serde(default)]
    pub subject: String,
    /// RFC 3339 production time.
    #[serde(default)]
    pub time: String,
    /// Payload, JSON by convention.
    #[serde(default, with = "json_or_bytes")]
    pub data: Vec<u8>,
    /// Delivery attempt, starting at 1.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// Message headers, sorted by name; a name's values keep their arrival order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

fn first_attempt() -> u32 {
    1
}

impl Event {
    /// An event with the given id and JSON payload and every other field defaulted; handy for
    /// tests, the CLI and the demo.
    pub fn json(id: impl Into<String>, data: &serde_json::Value) -> Self {
        Self {
            id: id.into(),
            data: serde_json::to_vec(data).expect("a serde_json::Value always serializes"),
            attempt: 1,
            ..Self::default()
        }
    }
}

/// In the JSON form of an [`Event`] (CLI files, the HTTP API), `data` is written as the JSON
/// value it carries rather than as an array of bytes, because that is what people write by hand.
mod json_or_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(v) => serde::Serialize::serialize(&v, s),
            Err(_) => s.serialize_str(&String::from_utf8_lossy(data)),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        serde_json::to_vec(&v).map_err(serde::de::Error::custom)
    }
}

/// A named failure, either reported by the stage or raised by the host's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageError {
    /// Dotted error name that ASL `Retry`/`Catch` rules match on.
    pub name: String,
    /// Human-readable explanation.
    pub cause: String,
    /// Whether running the event again may succeed.
    pub retryable: bool,
}

impl StageError {
    /// A stage error with the given name and cause.
    pub fn new(name: impl Into<String>, cause: impl Into<String>, retryable: bool) -> Self {
        Self {
            name: name.into(),
            cause: cause.into(),
            retryable,
        }
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.cause)
    }
}

impl std::error::Error for StageError {}

/// What handling one event produced.
pub type StageOutcome = Result<Vec<u8>, StageError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_round_trips_with_data_as_json() {
        let text =
            r#"{"id":"e1","type":"order.created","data":{"orderId":"o-1"},"headers":[["k","v"]]}"#;
        let e: Event = serde_json::from_str(text).unwrap();
        assert_eq!(e.kind, "order.created");
        assert_eq!(e.attempt, 1);
        assert_eq!(e.data, br#"{"orderId":"o-1"}"#);
        assert_eq!(e.headers, vec![("k".to_owned(), "v".to_owned())]);
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["data"]["orderId"], "o-1");
    }
}
