//! Task tokens on the durable engine: SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat
//! as calls that return once their effect is committed.
//!
//! A callback is a command for the execution's one writer, like a stop: it is queued for the
//! execution, the next batch that steps the execution applies it before advancing, and the
//! caller hears the outcome only after that batch committed. A batch that fails puts its
//! commands back, so none is lost or applied twice.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sluice_workflow::env::Random;
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::{Execution, Status, TaskTokenError};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::keys;

/// What a callback does.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// SendTaskSuccess (`Ok`) or SendTaskFailure (`Err`).
    Result(Result<Value, StatesError>),
    /// SendTaskHeartbeat.
    Heartbeat,
}

/// A callback waiting for its execution's next step.
#[derive(Debug)]
pub(crate) struct Callback {
    pub(crate) token: String,
    pub(crate) action: Action,
    /// Told the outcome once the step that applied it committed.
    pub(crate) reply: mpsc::Sender<Result<(), EngineError>>,
}

impl Callback {
    /// Apply it to `exec` at `now_ms`.
    pub(crate) fn apply(&self, exec: &mut Execution, now_ms: i64) -> Result<(), EngineError> {
        let r = match &self.action {
            Action::Result(r) => exec.send_task_result(&self.token, r.clone()),
            Action::Heartbeat => exec.send_task_heartbeat(&self.token, now_ms),
        };
        r.map_err(|e| match e {
            TaskTokenError::TaskTimedOut => EngineError::TaskTimedOut,
            TaskTokenError::InvalidOutput(m) => EngineError::InvalidOutput(m),
        })
    }
}

/// AWS's limits on SendTaskFailure's fields.
const MAX_ERROR_CHARS: usize = 256;
const MAX_CAUSE_CHARS: usize = 32_768;

impl Engine {
    /// SendTaskSuccess: the Task waiting for `token` succeeds with `output`. Returns once
    /// that is committed.
    pub fn send_task_success(&self, token: &str, output: Value) -> Result<(), EngineError> {
        self.callback(token, Action::Result(Ok(output)))
    }

    /// SendTaskFailure: the Task waiting for `token` fails with `error` and `cause` (then
    /// Retry and Catch apply as to any Task failure). Returns once that is committed.
    pub fn send_task_failure(
        &self,
        token: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), EngineError> {
        let (error, cause) = (error.unwrap_or_default(), cause.unwrap_or_default());
        if error.chars().count() > MAX_ERROR_CHARS || cause.chars().count() > MAX_CAUSE_CHARS {
            return Err(EngineError::Invalid(format!(
                "a task failure's error may have at most {MAX_ERROR_CHARS} characters and its cause {MAX_CAUSE_CHARS}"
            )));
        }
        self.callback(token, Action::Result(Err(StatesError::new(error, cause))))
    }

    /// SendTaskHeartbeat: the Task waiting for `token` has its HeartbeatSeconds again from
    /// now. Returns once that is committed.
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        self.callback(token, Action::Heartbeat)
    }

    fn callback(&self, token: &str, action: Action) -> Result<(), EngineError> {
        let (workflow, name) = sluice_workflow::token::execution_of(token)
            .ok_or_else(|| EngineError::InvalidToken("not a task token of this engine".into()))?;
        let id = keys::execution(&workflow, &name);
        match self.describe(&id) {
            Ok(d) if d.status != Status::Running => return Err(EngineError::TaskTimedOut),
            Ok(_) => {}
            Err(EngineError::ExecutionDoesNotExist(_)) => {
                return Err(EngineError::TaskDoesNotExist(id));
            }
            Err(e) => return Err(e),
        }
        let (reply, outcome) = mpsc::channel();
        self.inner().queue_callback(
            &id,
            Callback {
                token: token.to_owned(),
                action,
                reply,
            },
        );
        loop {
            match outcome.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => return r,
                Err(mpsc::RecvTimeoutError::Timeout) if !self.inner().is_stopping() => {}
                // Stopping before the outcome came: the callback may have been applied or not
                // (a queued one is gone with the engine). Sent again to the next engine, it is
                // applied, or refused as `TaskTimedOut` if it was.
                Err(_) => return Err(EngineError::Stopping),
            }
        }
    }
}

/// The operating system's randomness: task tokens must not be guessable from one another,
/// which a seeded generator's would be.
#[derive(Debug, Default)]
pub(crate) struct OsRandom;

impl Random for OsRandom {
    fn next_u64(&self) -> u64 {
        // getrandom fails only where the OS has no entropy source at all.
        getrandom::u64().expect("the operating system provides randomness")
    }
}
