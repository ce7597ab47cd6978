//! What a trigger is: the settings that bind a stream to a stage, as declared (and, later,
//! as the HTTP API takes them), with their defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_model::Event;

/// What binds a stream and subject filter to a stage. The same shape the HTTP API will take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Durable consumer name; unique per stream.
    pub name: String,
    /// The stream to consume; created with `stream_subjects` when missing.
    pub stream: String,
    /// Subjects of the stream, used when the trigger creates it.
    #[serde(default)]
    pub stream_subjects: Vec<String>,
    /// Which of the stream's subjects this trigger consumes.
    pub filter_subject: String,
    /// Most messages per batch (one commit and one round of acks per batch).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest wait for a batch to fill, in milliseconds.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Deliveries before a retryable failure is dead-lettered.
    #[serde(default = "default_max_deliver")]
    pub max_deliver: i64,
    /// First retry delay in milliseconds; doubles per delivery, capped at 30 s.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Where failed events go; default `sluice.dlq.<name>` (in the `SLUICE_DLQ` stream).
    #[serde(default)]
    pub dead_letter_subject: Option<String>,
    /// Publish each successful output to this subject (exactly once, through the outbox).
    #[serde(default)]
    pub output_subject: Option<String>,
    /// How long JetStream waits for an ack before redelivering, in milliseconds. After a host
    /// crash, the batch in flight comes back after this long.
    #[serde(default = "default_ack_wait_ms")]
    pub ack_wait_ms: u64,
    /// Content routing: only events matching this EventBridge-style pattern run the stage;
    /// the others are acknowledged without running and counted (see [`crate::EventPattern`]).
    #[serde(default)]
    pub pattern: Option<serde_json::Value>,
    /// Workers running this trigger's batches in parallel. Events with the same partition key
    /// always go to the same worker, in arrival order.
    #[serde(default = "default_partitions")]
    pub partitions: usize,
    /// What orders events: only events with the same key are kept in order.
    #[serde(default)]
    pub partition_key: PartitionKey,
}

fn default_partitions() -> usize {
    1
}

/// Where an event's partition key comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKey {
    /// The event id: no ordering between events beyond a batch's.
    #[default]
    EventId,
    /// The n-th (0-based) token of the subject, e.g. 2 for the user in `orders.new.<user>`.
    SubjectToken(usize),
    /// The value of a header (absent: the empty key).
    Header(String),
}

impl PartitionKey {
    pub(crate) fn of<'e>(&self, e: &'e Event) -> &'e str {
        match self {
            Self::EventId => &e.id,
            Self::SubjectToken(n) => e.subject.split('.').nth(*n).unwrap_or(""),
            Self::Header(name) => e
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map_or("", |(_, v)| v.as_str()),
        }
    }
}

fn default_ack_wait_ms() -> u64 {
    30_000
}

fn default_batch_size() -> usize {
    100
}
fn default_max_wait_ms() -> u64 {
    50
}
fn default_max_deliver() -> i64 {
    5
}
fn default_backoff_ms() -> u64 {
    100
}

impl TriggerConfig {
    /// A trigger with every optional setting at its default.
    pub fn new(name: &str, stream: &str, stream_subjects: &[&str], filter_subject: &str) -> Self {
        Self {
            name: name.to_owned(),
            stream: stream.to_owned(),
            stream_subjects: stream_subjects.iter().map(|s| (*s).to_owned()).collect(),
            filter_subject: filter_subject.to_owned(),
            batch_size: default_batch_size(),
            max_wait_ms: default_max_wait_ms(),
            max_deliver: default_max_deliver(),
            backoff_ms: default_backoff_ms(),
            dead_letter_subject: None,
            output_subject: None,
            ack_wait_ms: default_ack_wait_ms(),
            pattern: None,
            partitions: default_partitions(),
            partition_key: PartitionKey::EventId,
        }
    }

    /// Whether this trigger and `other` may both run the same messages: the same stream,
    /// filters some subject matches both, and at least one takes every message (no
    /// `pattern`; two patterns are taken to route apart, as content routing means them to).
    ///
    /// Such a pair must not run side by side: event ids are the dedupe keys of the whole
    /// store, so the second to commit a message would meet the first's record and answer it
    /// from there without running its own stage.
    pub fn shares_messages_with(&self, other: &Self) -> bool {
        self.stream == other.stream
            && subjects_overlap(&self.filter_subject, &other.filter_subject)
            && (self.pattern.is_none() || other.pattern.is_none())
    }

    pub(crate) fn dead_letter_subject(&self) -> String {
        self.dead_letter_subject
            .clone()
            .unwrap_or_else(|| format!("sluice.dlq.{}", self.name))
    }

    /// Retry delay before delivery `delivered + 1`.
    pub(crate) fn backoff(&self, delivered: i64) -> Duration {
        let exp = u32::try_from(delivered.clamp(1, 16) - 1).unwrap_or(0);
        Duration::from_millis(self.backoff_ms.saturating_mul(1 << exp)).min(Duration::from_secs(30))
    }
}

/// Whether some subject matches both NATS subject filters (`*` one token, `>` the rest).
/// An empty filter is the whole stream.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == "*" || y == "*" || x == y => {}
            _ => return false,
        }
    }
}

/// The partition (of `partitions`) that `key` belongs to: FNV-1a, stable across restarts.
pub(crate) fn partition_of(key: &str, partitions: usize) -> usize {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    usize::try_from(h % partitions as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{TriggerConfig, subjects_overlap};

    #[test]
    fn subject_filters_overlap_as_nats_matches_them() {
        for (a, b) in [
            ("orders.new", "orders.new"),
            ("orders.*", "orders.new"),
            ("orders.>", "orders.new.eu"),
            ("*.new", "orders.*"),
            (">", "a.b.c"),
            ("", "orders.new"),
        ] {
            assert!(subjects_overlap(a, b), "{a} / {b}");
            assert!(subjects_overlap(b, a), "{b} / {a}");
        }
        for (a, b) in [
            ("orders.new", "orders.paid"),
            ("orders.*", "orders.new.eu"),
            ("orders.>", "orders"),
            ("orders.new", "orders.new.eu"),
            ("*.new", "orders.paid"),
        ] {
            assert!(!subjects_overlap(a, b), "{a} / {b}");
            assert!(!subjects_overlap(b, a), "{b} / {a}");
        }
    }

    #[test]
    fn triggers_share_messages_unless_streams_filters_or_both_patterns_keep_them_apart() {
        let t = |name, stream, filter| TriggerConfig::new(name, stream, &[], filter);
        let a = t("a", "IN", "in.>");
        assert!(a.shares_messages_with(&t("b", "IN", "in.x")));
        assert!(!a.shares_messages_with(&t("b", "OTHER", "in.x")));
        assert!(!a.shares_messages_with(&t("b", "IN", "out.x")));
        let routed = |name, kind: &str| {
            let mut c = t(name, "IN", "in.>");
            c.pattern = Some(serde_json::json!({"type": [kind]}));
            c
        };
        assert!(!routed("b", "x").shares_messages_with(&routed("c", "y")));
        assert!(routed("b", "x").shares_messages_with(&a));
    }
}
