//! An execution as the engine stores it: the machine's snapshot (its history kept apart, row
//! by row) with what the API describes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::{Execution, HistoryMode, Status};

/// Step Functions' two workflow types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionType {
    /// Every transition persisted, history kept.
    #[default]
    Standard,
    /// The start and the end persisted; after a crash it runs again from its input, Tasks
    /// that committed answered from their stored results.
    Express,
}

/// What to publish when an execution closes, through the outbox in the commit that closes
/// it, so each message goes out exactly once (its id is `<execution id>/completion/0`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// On success: the output, to this subject.
    pub output_subject: Option<String>,
    /// On failure, time-out or abort: the input, to this subject, with the error's name and
    /// cause in `Sluice-Error-Name` / `Sluice-Error-Cause` and the status in
    /// `Sluice-Execution-Status`.
    pub dead_letter_subject: Option<String>,
    /// Headers every completion message carries (e.g. the subject the start arrived on).
    pub headers: Vec<(String, String)>,
}

/// The stored row of one execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) kind: ExecutionType,
    /// What to publish when it closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) completion: Option<Completion>,
    /// When it ended, ms since the epoch.
    pub(crate) stopped_ms: Option<i64>,
    /// The machine's state, without the history events already written as rows.
    pub(crate) execution: Execution,
}

impl Stored {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an execution serializes")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut s: Self = serde_json::from_slice(bytes)
            .map_err(|e| format!("a stored execution does not decode: {e}"))?;
        s.record_history();
        Ok(s)
    }

    /// A new execution's row.
    pub(crate) fn new(
        kind: ExecutionType,
        completion: Option<Completion>,
        execution: Execution,
    ) -> Self {
        let mut s = Self {
            kind,
            completion,
            stopped_ms: None,
            execution,
        };
        s.record_history();
        s
    }

    /// Standard writes its history as rows, encoded as it happens; Express keeps none.
    fn record_history(&mut self) {
        self.execution.set_history_mode(match self.kind {
            ExecutionType::Standard => HistoryMode::Encode,
            ExecutionType::Express => HistoryMode::Off,
        });
    }

    pub(crate) fn describe(&self, id: &str) -> Description {
        let e = &self.execution;
        Description {
            id: id.to_owned(),
            workflow: e.workflow().to_owned(),
            name: e.name.clone(),
            kind: self.kind,
            status: e.status,
            input: e.input().clone(),
            output: e.output.clone(),
            error: e.error.clone(),
            started_ms: e.started_ms(),
            stopped_ms: self.stopped_ms,
        }
    }
}

/// What describing an execution tells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// `<workflow>/<name>`.
    pub id: String,
    /// The workflow it runs.
    pub workflow: String,
    /// Its name.
    pub name: String,
    /// STANDARD or EXPRESS.
    pub kind: ExecutionType,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: Status,
    /// Its input.
    pub input: Value,
    /// Its output, once succeeded.
    pub output: Option<Value>,
    /// Its error, once failed, timed out or aborted with one.
    pub error: Option<StatesError>,
    /// When it started, ms since the epoch.
    pub started_ms: i64,
    /// When it ended.
    pub stopped_ms: Option<i64>,
}
