//! Durable workflow executions.
//!
//! [`sluice_workflow`] is a deterministic machine over a serializable [`Execution`]; this crate
//! makes its executions what Step Functions Standard promises. Every step is committed through
//! a state session's batch: the Tasks' effects (their state writes, emits and dedupe records,
//! staged in the session by [`SessionTasks`]), their results, the execution's new snapshot, its
//! new history events and its index entry, in **one** transaction. So a crash at any moment
//! leaves each execution at its last committed step with exactly the effects of the Tasks
//! before it, and a restart ([`Engine::open`]) continues every open execution from there.
//!
//! - **Group commit.** Executor threads take a batch of runnable executions at a time and
//!   commit all their steps together: one fsync for many executions.
//! - **One writer per execution.** An execution is in at most one batch at a time, so its rows
//!   need no lock and a snapshot never holds a Task result whose effects are not in the same
//!   commit.
//! - **Durable timers.** Wait states and retry delays are due times in the snapshot; a resumed
//!   execution whose timer passed while the host was down steps at once.
//! - **Idempotent start.** [`Engine::start`] with a name still running and the same input
//!   returns that execution; a different input, or a closed execution, is
//!   [`EngineError::ExecutionAlreadyExists`], as AWS defines it.
//! - **Task tokens.** A `.waitForTaskToken` Task waits, durably, for
//!   [`Engine::send_task_success`] / [`Engine::send_task_failure`] with the token it handed
//!   out (`$$.Task.Token`); [`Engine::send_task_heartbeat`] keeps it alive; each returns once
//!   its effect is committed. Its HeartbeatSeconds and TimeoutSeconds are durable timers.
//! - **Publishing Tasks.** `nats:publish`, `sns:publish` and `events:putEvents` stage their
//!   messages in the outbox in the step's commit, so each goes out exactly once.
//!
//! Executions are keyed `<workflow>/<name>` (see [`keys`]); a Task runs as the stage event
//! `<workflow>/<name>/<state path>/<attempt>`.
//!
//! [`Execution`]: sluice_workflow::machine::Execution

mod callback;
mod engine;
mod error;
mod fanout;
mod history;
pub mod keys;
mod record;
mod retention;
mod step;
mod tasks;

pub use engine::{Config, Engine, HISTORY_LIMIT, HistoryPage, Listed, Start, Started};
pub use error::EngineError;
pub use record::{Completion, Description, ExecutionType};
pub use step::{STATUS_HEADER, TASK_ALREADY_COMMITTED};
pub use tasks::SessionTasks;
