//! Per-stage configuration: resource limits, instance reuse and the capabilities granted.
//!
//! Everything a stage may touch is deny-by-default: no files, sockets, environment, buckets,
//! tables or subjects unless listed here.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_model::state::TableDef;

/// How much of the machine one invocation may use, and how instances are reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Maximum linear memory of the instance, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline of one event (a batch call gets this times its length).
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Largest output one event may return, in bytes.
    pub max_output_bytes: usize,
    /// A warm instance is recycled after serving this many events.
    pub recycle_after_events: u64,
    /// A warm instance is recycled once its linear memory has grown past this many bytes.
    pub recycle_memory_mark: usize,
    /// Use a fresh instance for every event (strict isolation, ~20x the per-event cost).
    pub fresh_instance_per_event: bool,
    /// Most bytes of state writes (keys, values, documents, patches) one event may make. The
    /// host holds the write set until the batch commits, so without a cap a guest writing in
    /// a loop grows host memory (not its own) until its deadline. A write past it fails with
    /// the WIT error `too-large`. Default 4 MiB, DynamoDB's transaction limit.
    pub max_write_bytes_per_event: usize,
    /// Most bytes of emitted events (subjects, payloads, headers) one event may queue; past
    /// it `emit` fails with `too-large`. Default 4 MiB.
    pub max_emit_bytes_per_event: usize,
    /// Most bytes of `log` messages one event may write to the host log; the excess is
    /// dropped and counted, like stdout and stderr. Default 64 KiB.
    pub max_log_bytes_per_event: usize,
    /// Most bytes the host holds for one batch until it commits: the write sets, emits and
    /// outputs of its kept events. An event that would pass it fails with the retryable
    /// `Sandbox.BatchLimit` (the first event of a batch is never refused for it, so a retry
    /// always fits). Default 64 MiB; must be at least the two per-event caps plus
    /// `max_output_bytes`.
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(5),
            max_output_bytes: 1 << 20,
            recycle_after_events: 10_000,
            recycle_memory_mark: 32 << 20,
            fresh_instance_per_event: false,
            max_write_bytes_per_event: 4 << 20,
            max_emit_bytes_per_event: 4 << 20,
            max_log_bytes_per_event: 64 << 10,
            max_batch_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// Why these limits cannot work together, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let one_event = self
            .max_write_bytes_per_event
            .saturating_add(self.max_emit_bytes_per_event)
            .saturating_add(self.max_output_bytes);
        if self.max_batch_bytes < one_event {
            return Some(format!(
                "max_batch_bytes ({}) is below what one event may hold (writes {} + emits {} + output {} = {one_event}): such an event could never commit",
                self.max_batch_bytes,
                self.max_write_bytes_per_event,
                self.max_emit_bytes_per_event,
                self.max_output_bytes
            ));
        }
        if self.deadline.is_zero() {
            return Some("deadline is 0 ms".into());
        }
        None
    }
}

/// What a stage may reach beyond its own memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Key-value buckets the stage may open.
    pub kv_buckets: Vec<String>,
    /// Tables the stage may open, with their secondary indexes.
    pub tables: Vec<TableDef>,
    /// Subject prefixes the stage may emit to (`orders.` allows `orders.created`); `>` allows all.
    pub emit_subjects: Vec<String>,
    /// Environment variables visible through WASI.
    pub env: Vec<(String, String)>,
    /// Host directories preopened through WASI as (host path, guest path), read-only.
    pub dirs: Vec<(PathBuf, String)>,
    /// Whether WASI sockets may open outbound TCP/UDP connections and resolve names.
    pub network: bool,
}

/// A stage's whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageConfig {
    /// Resource limits and instance reuse.
    pub limits: Limits,
    /// Capabilities.
    pub grants: Grants,
}

impl Grants {
    /// Whether `subject` falls under one of the granted prefixes.
    pub fn may_emit(&self, subject: &str) -> bool {
        self.emit_subjects.iter().any(|p| {
            p == ">" || subject == p || (p.ends_with('.') && subject.starts_with(p.as_str()))
        })
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_prefixes() {
        let g = Grants {
            emit_subjects: vec!["orders.".into(), "audit".into()],
            ..Grants::default()
        };
        assert!(g.may_emit("orders.created"));
        assert!(g.may_emit("audit"));
        assert!(!g.may_emit("audit.x"));
        assert!(!g.may_emit("payments.created"));
    }

    #[test]
    fn config_json_uses_millis_and_rejects_unknown_fields() {
        let c: StageConfig =
            serde_json::from_str(r#"{"limits":{"deadline":250},"grants":{"kv_buckets":["a"]}}"#)
                .unwrap();
        assert_eq!(c.limits.deadline, Duration::from_millis(250));
        assert_eq!(c.limits.memory_bytes, Limits::default().memory_bytes);
        assert!(serde_json::from_str::<StageConfig>(r#"{"limit":{}}"#).is_err());
    }
}
