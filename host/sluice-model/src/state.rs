//! The state a stage reaches through its `keyvalue`, `table` and `emit` imports, as traits.
//!
//! The runtime's host functions check the guest's access rights and size limits, then call a
//! [`StateSession`]. A session belongs to one worker and sees the worker's events one at a
//! time: [`StateSession::begin_event`] opens an event's write set, every call until
//! [`StateSession::finish_event`] reads and writes through it, and `finish_event` keeps the
//! write set (success) or drops it (failure). Where kept write sets go — straight into a map
//! ([`crate::memory`]) or into the batch's single redb transaction — is the backend's business.

use serde_json::Value;

use crate::records::{RecordTable, Row, Scan};

/// Errors of key-value operations that the backend itself can raise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The stored value is not what the operation needs.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// The backing store failed.
    #[error("store failure: {0}")]
    Store(String),
}

/// Errors of table operations that the backend itself can raise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The table has no secondary index by this name.
    #[error("no such index: {0}")]
    NoSuchIndex(String),
    /// A conditional write's precondition did not hold.
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// A document, patch or cursor was not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backing store failed.
    #[error("store failure: {0}")]
    Store(String),
}

/// The backing store failed to commit a batch; none of its writes took effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commit failed: {0}")]
pub struct StoreError(pub String);

/// Why a batch did not commit. Either way nothing of the batch was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// An event of the batch already had a committed dedupe record (another session, or an
    /// earlier delivery, committed it since this batch looked): the batch ran it a second time.
    /// Re-run the batch with dedupe look-ups to answer that event from its record.
    #[error("event {0:?} was already committed; the batch was not applied")]
    Duplicate(String),
    /// The backing store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of a key listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    /// Keys in ascending byte order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when the listing is complete.
    pub cursor: Option<String>,
}

/// A stored table item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The JSON document; always an object.
    pub doc: Value,
    /// Write counter, 1 after the first write.
    pub version: u64,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// Precondition of a table write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No precondition.
    Always,
    /// The item must be absent (or expired).
    MustNotExist,
    /// The item must be present.
    MustExist,
    /// The item must be present with exactly this version.
    VersionIs(u64),
}

/// Restriction on sort keys within a partition. Comparisons are byte-wise on UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyCondition {
    /// Every sort key.
    Any,
    /// `sk == v`
    Equals(String),
    /// `sk` starts with `v`.
    BeginsWith(String),
    /// `lo <= sk <= hi`
    Between(String, String),
    /// `sk < v`
    LessThan(String),
    /// `sk <= v`
    LessOrEqual(String),
    /// `sk > v`
    GreaterThan(String),
    /// `sk >= v`
    GreaterOrEqual(String),
}

impl SortKeyCondition {
    /// Whether `sk` satisfies the condition.
    pub fn matches(&self, sk: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Equals(v) => sk == v,
            Self::BeginsWith(v) => sk.starts_with(v.as_str()),
            Self::Between(lo, hi) => lo.as_str() <= sk && sk <= hi.as_str(),
            Self::LessThan(v) => sk < v.as_str(),
            Self::LessOrEqual(v) => sk <= v.as_str(),
            Self::GreaterThan(v) => sk > v.as_str(),
            Self::GreaterOrEqual(v) => sk >= v.as_str(),
        }
    }
}

/// A query over one partition of a table or of one of its secondary indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `None` for the base table, else a declared index name.
    pub index: Option<String>,
    /// Partition key value.
    pub pk: String,
    /// Sort-key restriction.
    pub sk: SortKeyCondition,
    /// Ascending when true.
    pub forward: bool,
    /// Maximum items in the page (already capped by the caller, at least 1).
    pub limit: usize,
    /// Opaque continuation from the previous page.
    pub cursor: Option<String>,
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryPage {
    /// Matching items in the requested order.
    pub items: Vec<Item>,
    /// Continuation; `None` when there are no more matches.
    pub cursor: Option<String>,
}

/// A secondary index declared on a table: items whose document has a string (or number)
/// attribute `pk_attr` (and `sk_attr`, when given) appear in the index under those values.
/// Items lacking the attributes are not indexed, as in DynamoDB's sparse indexes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
// A typo (`indxes`) must not silently drop what an operator declared.
#[serde(deny_unknown_fields)]
pub struct IndexDef {
    /// Index name used in [`Query::index`].
    pub name: String,
    /// Document attribute providing the index partition key.
    pub pk_attr: String,
    /// Document attribute providing the index sort key; `None` sorts by the base sort key.
    pub sk_attr: Option<String>,
}

/// The declaration of a table: its name and its secondary indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
// A typo (`indxes`) must not silently drop what an operator declared.
#[serde(deny_unknown_fields)]
pub struct TableDef {
    /// Table name as passed to `table.open`.
    pub name: String,
    /// Secondary indexes kept consistent with every write.
    #[serde(default)]
    pub indexes: Vec<IndexDef>,
}

/// The outcome of an event as the state backend records it for deduplication: once an event
/// has a record, it is not run again and this is what its redelivery is answered with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RecordedOutcome {
    /// The handler succeeded; the output itself is not kept, only a fingerprint of it.
    Succeeded {
        /// A fingerprint of the output bytes (the runtime writes a 64-bit FNV-1a, in hex).
        output_digest: String,
    },
    /// The handler failed for good (a permanent error, or retries exhausted).
    Failed {
        /// Error name.
        name: String,
        /// Error cause.
        cause: String,
    },
}

/// A dedupe record: what became of an event, and when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    /// When the record was made, milliseconds since the Unix epoch (drives retention).
    pub recorded_at_ms: u64,
    /// The outcome.
    pub outcome: RecordedOutcome,
}

/// An event queued by a stage's `emit` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Target subject.
    pub subject: String,
    /// Payload.
    pub data: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

/// A clock in milliseconds since the Unix epoch, injected so TTL tests need not sleep.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

fn no_records() -> StoreError {
    StoreError("this state backend keeps no workflow records".into())
}

/// Per-worker view of the state, used by one thread at a time.
///
/// A session works in batches: events run one after another, each between `begin_event` and
/// `finish_event`, and `commit` makes every kept event of the batch durable at once (or
/// `rollback` drops them all). Reads see the current event's own writes first, then the writes
/// of events kept earlier in the batch, then what was committed before.
pub trait StateSession: Send {
    /// Open a write set for the event `event_id`. A write set still open is dropped first.
    fn begin_event(&mut self, event_id: &str);
    /// Close the current write set: keep it in the batch when `keep` is true, drop it
    /// otherwise. Returns the events the stage emitted while handling the event (empty when
    /// dropped).
    fn finish_event(&mut self, keep: bool) -> Vec<Emitted>;
    /// Record the final outcome of `event_id` in the batch; the record commits (or rolls back)
    /// with the batch's write sets, so an event's effects and its dedupe record are never
    /// durable one without the other.
    fn record_outcome(&mut self, event_id: &str, outcome: RecordedOutcome);
    /// Drop the dedupe record (and retryable-failure count) `event_id` has staged in this
    /// batch, if any; its effects stay.
    ///
    /// For events that can never come again, such as a synchronous invocation under an id
    /// the host has just drawn: their record would only cost a B-tree insert (at a random
    /// place) and, for a read-only batch, a commit of its own with its fsync. The default
    /// keeps the record, which is always correct.
    fn forget_outcome(&mut self, event_id: &str) {
        let _ = event_id;
    }
    /// The dedupe record of `event_id`: recorded earlier in this batch or committed before.
    fn recorded(&mut self, event_id: &str) -> Result<Option<Recorded>, StoreError>;
    /// How many times the stage has failed `event_id` with a retryable error of its own, as
    /// recorded in this batch or committed before; `None` when the backend keeps no count or
    /// could not read it (an event source then counts deliveries instead).
    ///
    /// Why a count of its own rather than the broker's delivery count: deliveries are also
    /// spent by the platform (a broker outage or a dropped connection redelivers what was in
    /// flight, a host crash redelivers its batches), and those must never bring an event
    /// closer to its dead letter. Only failures the stage itself returned are counted here,
    /// and only once their batch has committed.
    fn failures(&mut self, event_id: &str) -> Option<u32> {
        let _ = event_id;
        None
    }
    /// Record in the batch that `event_id` has now failed retryably `count` times (see
    /// [`StateSession::failures`]); `0` forgets the count. It commits with the batch.
    fn record_failures(&mut self, event_id: &str, count: u32) {
        let _ = (event_id, count);
    }
    /// Stage a row of the workflow engine's tables ([`crate::records`]) in the batch, `None`
    /// deleting it. It commits with the batch (and is dropped by `rollback`), whatever
    /// becomes of the current event.
    fn put_record(
        &mut self,
        table: RecordTable,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let _ = (table, key, value);
        Err(no_records())
    }
    /// A row of the engine's tables: staged in this batch, or committed.
    fn get_record(&mut self, table: RecordTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (table, key);
        Err(no_records())
    }
    /// A page of the engine's rows in `scan`'s range, this batch's staged rows included.
    fn scan_records(
        &mut self,
        table: RecordTable,
        scan: &Scan<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let _ = (table, scan);
        Err(no_records())
    }
    /// Make every kept write set of the batch durable, atomically, with the batch's dedupe
    /// records. On error nothing is applied and the batch is dropped.
    fn commit(&mut self) -> Result<(), CommitError>;
    /// Drop every kept write set of the batch.
    fn rollback(&mut self);

    /// Value under `key` in `bucket`.
    fn kv_get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Store `value` under `key`.
    fn kv_set(&mut self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError>;
    /// Remove `key`.
    fn kv_delete(&mut self, bucket: &str, key: &str) -> Result<(), KvError>;
    /// Keys starting with `prefix`, strictly after `cursor` when given, at most `limit`.
    fn kv_list(
        &mut self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<KeyPage, KvError>;
    /// Add `delta` to the i64 (8 bytes, little endian) under `key`; missing counts as 0.
    fn kv_increment(&mut self, bucket: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let current = match self.kv_get(bucket, key)? {
            None => 0,
            Some(bytes) => i64::from_le_bytes(bytes.as_slice().try_into().map_err(|_| {
                KvError::InvalidValue(format!(
                    "key {key:?} holds {} bytes, not an 8-byte integer",
                    bytes.len()
                ))
            })?),
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::InvalidValue(format!("increment of {key:?} overflows i64")))?;
        self.kv_set(bucket, key, next.to_le_bytes().to_vec())?;
        Ok(next)
    }
    /// Set `key` to `new` if its value equals `expected` (`None`: absent).
    fn kv_compare_and_swap(
        &mut self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
    ) -> Result<bool, KvError> {
        if self.kv_get(bucket, key)?.as_deref() != expected {
            return Ok(false);
        }
        self.kv_set(bucket, key, new)?;
        Ok(true)
    }

    /// Write `doc` at (`pk`, `sk`) of `table` if `cond` holds; returns the new version.
    fn table_put(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        doc: Value,
        cond: Condition,
        expires_at: Option<u64>,
    ) -> Result<u64, TableError>;
    /// The live (unexpired) item at (`pk`, `sk`).
    fn table_get(&mut self, table: &str, pk: &str, sk: &str) -> Result<Option<Item>, TableError>;
    /// Remove the item if `cond` holds; returns whether one was removed.
    fn table_delete(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        cond: Condition,
    ) -> Result<bool, TableError>;
    /// Merge-patch (RFC 7386) the item's document if `cond` holds, creating it if absent.
    fn table_update(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        patch: &Value,
        cond: Condition,
    ) -> Result<Item, TableError>;
    /// Run `q` against `table`.
    fn table_query(&mut self, table: &str, q: &Query) -> Result<QueryPage, TableError>;

    /// Queue an event for publication after the current event commits.
    fn emit(&mut self, event: Emitted);

    /// Confine this session's state locking to `scope`: the buckets and tables its stage is
    /// granted. Sessions whose scopes are disjoint never wait for each other; `None` (the
    /// default) means "anything", which excludes every other session while it holds state.
    /// Call it between batches; backends without locks ignore it.
    fn set_lock_scope(&mut self, scope: Option<LockScope>) {
        let _ = scope;
    }

    /// Bound every wait of the state calls that follow (for locks held by other sessions) by
    /// `deadline`, the current invocation's. A wait that reaches it fails the call and makes
    /// [`StateSession::take_fault`] return [`Fault::Deadline`]. `None` lifts the bound.
    fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        let _ = deadline;
    }

    /// The platform fault that made the last failing state call fail, if it was one (and not
    /// the guest's mistake): taken, so a second call returns `None` until the next fault.
    /// The runtime uses it to tell a stage's own error from a store outage, which must never
    /// count against the event.
    fn take_fault(&mut self) -> Option<Fault> {
        None
    }

    /// After a commit failed with [`CommitError::Store`] (or a state call with a
    /// [`Fault::Store`]): wait until the backend can commit again, at most `timeout`. Returns
    /// whether it can. The session must hold no batch (commit or rollback first).
    fn await_healthy(&mut self, timeout: std::time::Duration) -> bool {
        let _ = timeout;
        true
    }
}

/// The resources a session may lock: key-value buckets and tables, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockScope {
    /// Key-value buckets.
    pub buckets: Vec<String>,
    /// Tables.
    pub tables: Vec<String>,
}

/// A failure of the platform, not of the guest, behind a failed state call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The invocation's deadline passed while the call waited (for a lock).
    Deadline,
    /// The store failed (I/O error, closed database); the batch cannot commit.
    Store(String),
}

/// Something that hands out sessions; one per worker.
pub trait StateBackend: Send + Sync {
    /// A new session for one worker.
    fn session(&self) -> Box<dyn StateSession>;
}

/// RFC 7386 JSON Merge Patch: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target_map) = target else {
        unreachable!("target was just made an object")
    };
    for (k, v) in patch_map {
        if v.is_null() {
            target_map.remove(k);
        } else {
            merge_patch(target_map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386_examples() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1]});
        merge_patch(&mut doc, &json!({"a": {"b": "c"}}));
        assert_eq!(doc, json!({"a": {"b": "c"}}));
    }

    #[test]
    fn sort_key_conditions() {
        assert!(SortKeyCondition::Between("b".into(), "d".into()).matches("c"));
        assert!(SortKeyCondition::Between("b".into(), "d".into()).matches("d"));
        assert!(!SortKeyCondition::Between("b".into(), "d".into()).matches("da"));
        assert!(SortKeyCondition::BeginsWith("2026-".into()).matches("2026-11"));
        assert!(!SortKeyCondition::LessThan("a".into()).matches("a"));
        assert!(SortKeyCondition::LessOrEqual("a".into()).matches("a"));
    }
}
