//! Every redb table Sluice keeps, in one place, with the file format version.
//!
//! Key design follows PERFORMANCE.md: redb inserts with sequential keys are ~11x cheaper than
//! with random ones, so the tables written on every event are keyed to land near each other
//! (outbox rows by a monotonic sequence, dedupe retention by commit time).

use redb::TableDefinition;

/// Version of the on-disk layout below. Bump it (and add a migration in `Store::open`) when a
/// table's key or value encoding changes.
pub const FORMAT_VERSION: u64 = 3;

/// `"format_version"` → [`FORMAT_VERSION`] of the file.
pub(crate) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// (bucket, key) → value.
pub(crate) const KV: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("kv");
/// (table, pk, sk) → item, encoded by [`crate::codec`].
pub(crate) const ITEMS: TableDefinition<'_, (&str, &str, &str), &[u8]> =
    TableDefinition::new("items");
/// (table, index, index pk, index sk, pk, sk) → (): secondary index entries, kept in the same
/// transaction as the item they point to.
pub(crate) const INDEX: TableDefinition<'_, (&str, &str, &str, &str, &str, &str), ()> =
    TableDefinition::new("index");
/// (expires at ms, table, pk, sk) → (): items with a TTL, in expiry order, for the sweeper.
pub(crate) const TTL: TableDefinition<'_, (u64, &str, &str, &str), ()> =
    TableDefinition::new("ttl");
/// event id → dedupe record (`sluice_model::state::Recorded`, binary, see `codec.rs`).
pub(crate) const DEDUPE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dedupe");
/// (committed at ms, the batch's first event id) → the event ids of one commit's dedupe
/// records (see [`crate::codec::encode_ids`]), in time order, for retention. One entry per
/// batch rather than per event keeps the hot path at one insert per event. Since format 2.
pub(crate) const DEDUPE_BATCHES: TableDefinition<'_, (u64, &str), &[u8]> =
    TableDefinition::new("dedupe_batches");
/// Format 1's per-event retention index, (recorded at ms, event id) → (); moved into
/// [`DEDUPE_BATCHES`] and deleted when a format 1 file is opened.
pub(crate) const DEDUPE_BY_TIME_V1: TableDefinition<'_, (u64, &str), ()> =
    TableDefinition::new("dedupe_by_time");
/// event id → (retryable failures of the stage so far, when the last one committed in ms):
/// the count an event source dead-letters on, so deliveries the platform spent (a broker
/// outage, a crash) never count (see `StateSession::failures`). Rows exist only for events
/// that failed and are not yet final: a final outcome or a dead letter removes the row, and
/// the sweeper removes rows older than the dedupe retention. Added in format 2 without a
/// version bump: a new table changes no existing encoding, and `init` creates it.
pub(crate) const FAILURES: TableDefinition<'_, &str, (u32, u64)> = TableDefinition::new("failures");
/// sequence → outbox row (length-prefixed binary, see `outbox.rs`), published after the commit.
pub(crate) const OUTBOX: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("outbox");
/// partition → last committed position (e.g. a JetStream stream sequence), written in the same
/// transaction as the events up to it, as Kafka Streams stores offsets: a redelivery at or
/// below the position is known committed without a look-up by id.
pub(crate) const POSITIONS: TableDefinition<'_, &str, u64> = TableDefinition::new("positions");

/// The workflow engine's rows (`sluice_model::records`), one table each, keyed as the engine
/// chose (execution ids, `<execution>/<event number>`, `<due ms>/<execution>`, Task ids) and
/// holding its opaque bytes. Written in the batch's transaction, so a step's Task effects and
/// its transition are durable together. Since format 3.
pub(crate) const EXECUTIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("executions");
/// See [`EXECUTIONS`].
pub(crate) const HISTORY: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("history");
/// See [`EXECUTIONS`].
pub(crate) const TIMERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("timers");
/// See [`EXECUTIONS`].
pub(crate) const TASK_RESULTS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("task_results");
/// See [`EXECUTIONS`].
pub(crate) const EXECUTION_INDEX: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("execution_index");

/// Event id → a synchronous invocation's outcome (`RecordTable::InvokeResults`); the sweeper
/// removes a row with its event's dedupe record. Added in format 3 without a version bump, as
/// `failures` was: a new table changes no existing encoding, and `init` creates it.
pub(crate) const INVOKE_RESULTS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("invoke_results");

/// The redb table of one of the engine's tables.
pub(crate) fn record_table(
    t: sluice_model::records::RecordTable,
) -> TableDefinition<'static, &'static str, &'static [u8]> {
    use sluice_model::records::RecordTable as R;
    match t {
        R::Executions => EXECUTIONS,
        R::History => HISTORY,
        R::Timers => TIMERS,
        R::TaskResults => TASK_RESULTS,
        R::ExecutionIndex => EXECUTION_INDEX,
        R::InvokeResults => INVOKE_RESULTS,
    }
}
