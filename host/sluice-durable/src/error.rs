//! What the engine's API refuses, by AWS's error names where Step Functions has one.

use sluice_model::state::StoreError;

/// Why an engine call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No workflow of that name is registered.
    #[error("StateMachineDoesNotExist: no workflow named '{0}'")]
    WorkflowDoesNotExist(String),
    /// No execution of that id.
    #[error("ExecutionDoesNotExist: no execution '{0}'")]
    ExecutionDoesNotExist(String),
    /// The name is taken: by a closed execution, or a running one with another input.
    #[error("ExecutionAlreadyExists: execution '{0}' already exists")]
    ExecutionAlreadyExists(String),
    /// As many executions are open as the engine allows.
    #[error("ExecutionLimitExceeded: {0} executions are open, the limit")]
    ExecutionLimitExceeded(usize),
    /// A name or input the API refuses.
    #[error("InvalidArgument: {0}")]
    Invalid(String),
    /// The store failed; nothing was changed.
    #[error("the store failed: {0}")]
    Store(String),
    /// The string is not a task token this engine handed out.
    #[error("InvalidToken: {0}")]
    InvalidToken(String),
    /// The task token names an execution that does not exist.
    #[error("TaskDoesNotExist: the task token names no execution ('{0}')")]
    TaskDoesNotExist(String),
    /// No Task waits for the token any more (it ended or timed out, or its execution closed).
    #[error(
        "TaskTimedOut: no Task waits for this token (it ended, timed out, or its execution closed)"
    )]
    TaskTimedOut,
    /// SendTaskSuccess's output is not acceptable (too large).
    #[error("InvalidOutput: {0}")]
    InvalidOutput(String),
    /// The engine is shutting down.
    #[error("the engine is stopping")]
    Stopping,
}

impl EngineError {
    /// The error's name, as AWS's API names it where it has one (`TaskTimedOut`,
    /// `ExecutionAlreadyExists`, ...), for the replies of the NATS and HTTP interfaces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::WorkflowDoesNotExist(_) => "StateMachineDoesNotExist",
            Self::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            Self::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            Self::ExecutionLimitExceeded(_) => "ExecutionLimitExceeded",
            Self::Invalid(_) => "InvalidArgument",
            Self::InvalidToken(_) => "InvalidToken",
            Self::TaskDoesNotExist(_) => "TaskDoesNotExist",
            Self::TaskTimedOut => "TaskTimedOut",
            Self::InvalidOutput(_) => "InvalidOutput",
            Self::Store(_) => "ServiceUnavailable",
            Self::Stopping => "ServiceUnavailable",
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.0)
    }
}
