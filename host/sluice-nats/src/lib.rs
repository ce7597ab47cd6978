//! Events from NATS JetStream, with exactly-once effect.
//!
//! - [`Trigger`] binds a stream and subject filter to a stage through a durable pull consumer:
//!   it fetches batches, runs them through a [`sluice_runtime::Worker`] (one per partition, on
//!   a thread of its own: wasm and redb are blocking), which commits the batch in one redb transaction, and only
//!   then acknowledges the messages. Retryable failures are NAKed with backoff; permanent ones
//!   and exhausted retries go to a dead-letter subject and are terminated.
//! - [`WorkflowTrigger`] binds a stream to a durable workflow instead: each message starts
//!   one execution named after its event id, acknowledged once the start is committed.
//! - [`TaskCallbacks`] serves SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat for
//!   `.waitForTaskToken` Tasks as request/reply on `sluice.task.*`.
//! - [`OutboxRelay`] publishes what stages emitted (stored in the outbox by the commit) with
//!   deterministic `Nats-Msg-Id`s, waits for JetStream's acks, then deletes the rows.
//!
//! Crash anywhere: before the commit, messages are redelivered and re-run; after the commit
//! and before the ack, the redelivery meets the event's dedupe record; after the ack and
//! before the relay, the relay drains the outbox on start, and JetStream's duplicate window
//! drops any repeat.

mod callbacks;
mod local_server;
mod message;
mod pattern;
mod relay;
mod start;
mod trigger;

pub use callbacks::{DEFAULT_PREFIX as TASK_CALLBACK_PREFIX, TaskCallbacks};
pub use local_server::{LocalNatsServer, process_runs};
pub use message::to_event;
pub use pattern::{EventPattern, PatternError};
pub use relay::OutboxRelay;
pub use start::{INVALID_INPUT, WorkflowTrigger, execution_name};
pub use trigger::{
    PartitionKey, StageSlot, Trigger, TriggerConfig, TriggerError, TriggerStats, ensure_consumer,
};

pub use sluice_model::names::{
    DLQ_ATTEMPTS, DLQ_ERROR_CAUSE, DLQ_ERROR_NAME, DLQ_ORIGINAL_SUBJECT,
};
