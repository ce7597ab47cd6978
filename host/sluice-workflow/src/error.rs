//! The error an execution (or one state of it) fails with: an ASL error name and a cause, as
//! Step Functions reports them, and the reserved `States.*` names.

/// A named runtime failure: what `Retry`/`Catch` match on and what a failed execution reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatesError {
    /// The error name, e.g. `States.Runtime` or a stage's own `Order.Invalid`.
    pub error: String,
    /// The cause text, byte for byte as AWS writes it where the corpus records it.
    pub cause: String,
}

impl StatesError {
    /// An error named `error` with `cause`.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

impl std::fmt::Display for StatesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StatesError {}

/// The reserved error names of the States Language.
pub mod names {
    /// Matches any error name (except `States.Runtime` in a Retry, as AWS has it).
    pub const ALL: &str = "States.ALL";
    /// Matches every error a Task raises except `States.Timeout`.
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// A Task ran past its TimeoutSeconds, or an execution past its own.
    pub const TIMEOUT: &str = "States.Timeout";
    /// A Task went longer than HeartbeatSeconds without a heartbeat.
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    /// A runtime failure of path processing or the like; never retried.
    pub const RUNTIME: &str = "States.Runtime";
    /// A JSONata expression failed or gave no value where one is needed.
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    /// A Parallel branch failed.
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    /// No Choice rule matched and there is no Default.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// An intrinsic function failed.
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    /// A ResultPath could not be applied to the input.
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    /// A path in Parameters (or ItemSelector, ResultSelector) selected nothing.
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    /// A Map's ItemReader failed.
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    /// A Map's failures passed its tolerated count or percentage.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A state's input, output or result passed the payload limit (256 KiB).
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// A Task was refused for lack of permission.
    pub const PERMISSIONS: &str = "States.Permissions";
}
