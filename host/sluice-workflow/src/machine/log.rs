//! How an execution records its history events: kept as values, written as JSON the moment
//! they happen, or only numbered.
//!
//! Events carry whole payloads — a state's input, a Task's parameters and result, a state's
//! output — so keeping them as [`Value`]s copies an order document four or five times per
//! Task state, and a durable engine then serializes every copy and drops it. A profile of
//! the order workflow found those copies and their serialization near a third of the
//! executors' time. [`HistoryMode::Encode`] serializes each payload once, from where it
//! lies (the run's input, the Task's result), into one JSON array the engine stores as is;
//! [`HistoryMode::Off`] (Express: no history kept) builds nothing.

use serde::Serialize;
use serde_json::Value;

use super::HistoryEvent;

/// How an [`Execution`](super::Execution) records its history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HistoryMode {
    /// As [`HistoryEvent`]s in [`Execution::history`](super::Execution::history), for
    /// in-memory runs and tests.
    #[default]
    Keep,
    /// As JSON, written as each event happens, for a caller that persists the history:
    /// [`Execution::take_encoded`](super::Execution::take_encoded).
    Encode,
    /// Not at all: events are numbered (their ids still count), nothing else.
    Off,
}

/// Events recorded as JSON since the last take.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Log {
    pub(super) mode: HistoryMode,
    /// `[` and the events so far, comma-separated (the closing `]` is added when taken).
    json: Vec<u8>,
    /// The id of the first event in `json`.
    first: u64,
}

/// An event's details: anything serializable, turned into a [`Value`] only when kept.
pub(super) trait Details: Serialize {
    fn into_value(self) -> Value;
}

impl Details for Value {
    fn into_value(self) -> Value {
        self
    }
}

/// A history event as [`HistoryEvent`] serializes, its details borrowed.
#[derive(Serialize)]
struct EventRef<'a, D> {
    id: u64,
    previous_event_id: u64,
    timestamp_ms: i64,
    #[serde(rename = "type")]
    kind: &'a str,
    details: &'a D,
}

/// `(id, previous event id, timestamp)` of an event to record.
pub(super) type Header = (u64, u64, i64);

/// Record one event in `history` (kept) or `log` (encoded), as `log.mode` says.
pub(super) fn record<D: Details>(
    history: &mut Vec<HistoryEvent>,
    log: &mut Log,
    (id, previous_event_id, timestamp_ms): Header,
    kind: &str,
    details: D,
) {
    match log.mode {
        HistoryMode::Keep => history.push(HistoryEvent {
            id,
            previous_event_id,
            timestamp_ms,
            kind: kind.to_owned(),
            details: details.into_value(),
        }),
        HistoryMode::Encode => {
            if log.json.is_empty() {
                log.json.push(b'[');
                log.first = id;
            } else {
                log.json.push(b',');
            }
            let e = EventRef {
                id,
                previous_event_id,
                timestamp_ms,
                kind,
                details: &details,
            };
            serde_json::to_writer(&mut log.json, &e).expect("an event serializes");
        }
        HistoryMode::Off => {}
    }
}

impl Log {
    /// The events recorded since the last take, as a JSON array of [`HistoryEvent`]s, with
    /// the id of the first; `None` when there are none.
    pub(super) fn take(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.json.is_empty() {
            return None;
        }
        let mut json = std::mem::take(&mut self.json);
        json.push(b']');
        Some((self.first, json))
    }
}

/// `{"truncated": false}`: AWS marks every payload so.
#[derive(Serialize)]
pub(super) struct NotTruncated {
    truncated: bool,
}

pub(super) const NOT_TRUNCATED: NotTruncated = NotTruncated { truncated: false };

/// Implements [`Details`] for borrowed detail structs: kept, they become a [`Value`] (the
/// one copy a kept history needs).
macro_rules! details {
    ($($t:ident),*) => {$(
        impl Details for $t<'_> {
            fn into_value(self) -> Value {
                serde_json::to_value(&self).expect("details serialize")
            }
        }
    )*};
}

/// `*StateEntered`.
#[derive(Serialize)]
pub(super) struct Entered<'a> {
    pub(super) name: &'a str,
    pub(super) input: &'a Value,
    #[serde(rename = "inputDetails")]
    pub(super) input_details: NotTruncated,
}

/// `ExecutionStarted`.
#[derive(Serialize)]
pub(super) struct Started<'a> {
    pub(super) input: &'a Value,
    #[serde(rename = "inputDetails")]
    pub(super) input_details: NotTruncated,
    #[serde(rename = "roleArn")]
    pub(super) role_arn: &'a str,
}

/// `*StateExited` (named), `ExecutionSucceeded` (not).
#[derive(Serialize)]
pub(super) struct Exited<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<&'a str>,
    pub(super) output: &'a Value,
    #[serde(rename = "outputDetails")]
    pub(super) output_details: NotTruncated,
}

/// `LambdaFunctionScheduled`.
#[derive(Serialize)]
pub(super) struct LambdaScheduled<'a> {
    pub(super) input: &'a Value,
    pub(super) resource: &'a str,
}

/// `TaskScheduled`.
#[derive(Serialize)]
pub(super) struct TaskScheduled<'a> {
    pub(super) resource: &'a str,
    #[serde(rename = "resourceType")]
    pub(super) resource_type: &'a str,
    pub(super) parameters: &'a Value,
}

/// `LambdaFunctionSucceeded`, and `TaskSucceeded` with its resource.
#[derive(Serialize)]
pub(super) struct Succeeded<'a> {
    pub(super) output: &'a Value,
    #[serde(rename = "outputDetails")]
    pub(super) output_details: NotTruncated,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) resource: Option<&'a str>,
    #[serde(rename = "resourceType", skip_serializing_if = "Option::is_none")]
    pub(super) resource_type: Option<&'a str>,
}

details!(
    Started,
    Entered,
    Exited,
    LambdaScheduled,
    TaskScheduled,
    Succeeded
);
