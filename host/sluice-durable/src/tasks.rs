//! How the engine runs a Task: inside the state session of the step's batch, so the Task's
//! effects commit with the transition that consumes its result.

use serde_json::Value;
use sluice_model::state::StateSession;
use sluice_workflow::env::TaskRequest;
use sluice_workflow::error::StatesError;

/// Runs Tasks with their effects staged, uncommitted, in a session.
pub trait SessionTasks: Send + Sync {
    /// Run `req` as the stage event `event_id`, its state writes, emits and dedupe record
    /// left in `session` (whose batch the engine commits with the step). A stage's named
    /// error comes back as the error of that name (`Ok(Err(..))`). `Err(cause)` is a fault of
    /// the platform (the store failed under the Task): the engine drops the whole batch and
    /// steps it again later, so such a fault never reaches the workflow as the Task's error.
    /// The engine only calls this for Tasks it has no stored result for.
    fn run(
        &self,
        session: &mut Box<dyn StateSession>,
        event_id: &str,
        req: &TaskRequest,
    ) -> Result<Result<Value, StatesError>, String>;

    /// Run many Tasks, in order, as [`SessionTasks::run`] would one by one: `(event id,
    /// request)` pairs, often of one stage (the engine groups a round's Tasks by stage), so a
    /// runner can hand them to the stage in one batch. One result per Task, in order; `Err`
    /// as for `run`, for all of them.
    fn run_many(
        &self,
        session: &mut Box<dyn StateSession>,
        tasks: &[(&str, &TaskRequest)],
    ) -> Result<Vec<Result<Value, StatesError>>, String> {
        tasks
            .iter()
            .map(|(event, req)| self.run(session, event, req))
            .collect()
    }
}
