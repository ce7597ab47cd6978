//! The callback pattern: a `.waitForTaskToken` Task, once its integration ran, waits for
//! SendTaskSuccess / SendTaskFailure with its token, SendTaskHeartbeat keeping it alive, and
//! fails with `States.HeartbeatTimeout` or `States.Timeout` when they stop coming.

use serde_json::{Value, json};

use super::states::{MAX_PAYLOAD_BYTES, now_of};
use super::task::resource_names;
use super::{Env, Execution, Pending, Phase, TaskKind, Wait};
use crate::definition::{Kind, Machine};
use crate::error::{StatesError, names};

/// Why a callback was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskTokenError {
    /// No Task of the execution waits for this token (any more): it succeeded, failed or
    /// timed out, the execution moved on or closed. AWS's `TaskTimedOut`.
    #[error(
        "TaskTimedOut: no Task waits for this token (it ended, timed out or was never started)"
    )]
    TaskTimedOut,
    /// SendTaskSuccess's output is too large. AWS's `InvalidOutput`.
    #[error("InvalidOutput: {0}")]
    InvalidOutput(String),
}

impl Execution {
    /// Whether a Task of this execution waits for `token`.
    pub fn waits_for(&self, token: &str) -> bool {
        self.runs
            .values()
            .any(|r| matches!(&r.phase, Phase::Callback { wait, .. } if wait.token == token))
    }

    /// SendTaskSuccess (`Ok(output)`) or SendTaskFailure (`Err(error)`): the Task waiting for
    /// `token` ends with it at the next [`Execution::advance`].
    pub fn send_task_result(
        &mut self,
        token: &str,
        result: Result<Value, StatesError>,
    ) -> Result<(), TaskTokenError> {
        if let Ok(v) = &result {
            let size = serde_json::to_vec(v).map_or(0, |b| b.len());
            if size > MAX_PAYLOAD_BYTES {
                return Err(TaskTokenError::InvalidOutput(format!(
                    "the output is {size} bytes, past the limit of {MAX_PAYLOAD_BYTES}"
                )));
            }
        }
        let run = self
            .runs
            .values_mut()
            .find(|r| matches!(&r.phase, Phase::Callback { wait, .. } if wait.token == token))
            .ok_or(TaskTokenError::TaskTimedOut)?;
        let Phase::Callback { resource_kind, .. } = run.phase else {
            unreachable!("found by its phase");
        };
        // The callback's output is the Task's result as sent: no integration wraps it.
        let resource_kind = match resource_kind {
            TaskKind::Lambda => TaskKind::Lambda,
            _ => TaskKind::Stage,
        };
        run.phase = Phase::TaskDone {
            resource_kind,
            result,
            pending: Pending::default(),
        };
        Ok(())
    }

    /// SendTaskHeartbeat: the Task waiting for `token` has HeartbeatSeconds again from now.
    pub fn send_task_heartbeat(&mut self, token: &str, now_ms: i64) -> Result<(), TaskTokenError> {
        let run = self
            .runs
            .values_mut()
            .find(|r| matches!(&r.phase, Phase::Callback { wait, .. } if wait.token == token))
            .ok_or(TaskTokenError::TaskTimedOut)?;
        if let Phase::Callback {
            wait,
            heartbeat_due,
            ..
        } = &mut run.phase
        {
            *heartbeat_due = wait.heartbeat_ms.map(|ms| now_ms.saturating_add(ms));
        }
        Ok(())
    }

    /// A waiting Task whose heartbeat or timeout came due fails (`TaskTimedOut`, then Retry
    /// and Catch as for any Task failure). `false`: not yet.
    pub(super) fn callback_timeout(
        &mut self,
        id: u64,
        kind: TaskKind,
        wait: &Wait,
        heartbeat_due: Option<i64>,
        def: &Machine,
        env: &Env<'_>,
    ) -> bool {
        let now = now_of(env);
        let heartbeat = heartbeat_due.filter(|d| now >= *d);
        let timeout = wait.timeout_due.filter(|d| now >= *d);
        let e = match (heartbeat, timeout) {
            (None, None) => return false,
            // Whichever came due first decides.
            (Some(h), Some(t)) if t <= h => StatesError::new(
                names::TIMEOUT,
                "The Task ran past its TimeoutSeconds waiting for its task token",
            ),
            (Some(_), _) => StatesError::new(
                names::HEARTBEAT_TIMEOUT,
                "No SendTaskHeartbeat, SendTaskSuccess or SendTaskFailure came with the task token within HeartbeatSeconds",
            ),
            (None, Some(_)) => StatesError::new(
                names::TIMEOUT,
                "The Task ran past its TimeoutSeconds waiting for its task token",
            ),
        };
        let state = Self::state_of(def, &self.runs[&id]);
        let resource = match &state.kind {
            Kind::Task { resource, .. } => resource.as_str(),
            _ => "",
        };
        let (resource_type, action) = resource_names(kind, resource);
        self.push(
            Some(id),
            "TaskTimedOut",
            json!({"error": e.error, "cause": e.cause, "resource": action, "resourceType": resource_type}),
            now,
        );
        self.fail(id, e, true, def, env);
        true
    }
}
