//! Retention: a closed execution is kept (describable, its history readable, its name taken)
//! for [`Config::retention`], then swept with its history and its Tasks' stored results, and
//! its name may start a new execution, as on AWS.
//!
//! [`Config::retention`]: crate::Config::retention

use sluice_model::records::{RecordTable, Scan};
use sluice_model::state::StateSession;
use sluice_workflow::machine::Status;

use crate::engine::{Engine, Inner};
use crate::error::EngineError;
use crate::keys;
use crate::record::Stored;

/// The closed statuses, whose executions the sweeper looks at.
const CLOSED: [Status; 4] = [
    Status::Succeeded,
    Status::Failed,
    Status::TimedOut,
    Status::Aborted,
];

/// Rows deleted per commit while sweeping, so a sweep never builds one huge transaction.
const PER_COMMIT: usize = 2_000;

impl Engine {
    /// Remove the executions that closed longer than the retention ago (at most `limit` of
    /// them), with their history rows and stored Task results; how many went.
    pub fn sweep(&self, limit: usize) -> Result<usize, EngineError> {
        sweep(self.inner(), limit)
    }
}

/// How often the engine's sweeper thread sweeps, and how much at most each time.
pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
pub(crate) const PER_SWEEP: usize = 10_000;

/// See [`Engine::sweep`].
pub(crate) fn sweep(inner: &Inner, limit: usize) -> Result<usize, EngineError> {
    {
        let Some(retention) = inner.config.retention else {
            return Ok(0);
        };
        let horizon = inner
            .clock
            .now_ms()
            .saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let mut session = inner.backend.session();
        let mut swept = 0;
        let mut staged = 0;
        for status in CLOSED {
            let prefix = keys::index_prefix(status, None);
            let mut after: Option<String> = None;
            'pages: loop {
                let page = session.scan_records(
                    RecordTable::ExecutionIndex,
                    &Scan {
                        prefix: &prefix,
                        after: after.as_deref(),
                        limit: 256,
                        reverse: false,
                    },
                )?;
                for (key, _) in &page {
                    if swept >= limit {
                        break 'pages;
                    }
                    // <STATUS>/<workflow>/<start>/<name>
                    let mut parts = key.splitn(4, '/').skip(1);
                    let (Some(w), Some(_), Some(n)) = (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    let id = keys::execution(w, n);
                    let Some(bytes) = session.get_record(RecordTable::Executions, &id)? else {
                        // An index row left without its execution: drop it too.
                        session.put_record(RecordTable::ExecutionIndex, key, None)?;
                        staged += 1;
                        continue;
                    };
                    let stored = Stored::decode(&bytes).map_err(EngineError::Store)?;
                    if stored.stopped_ms.is_none_or(|t| t > horizon) {
                        continue;
                    }
                    staged += remove(&mut session, &id, key)?;
                    swept += 1;
                    if staged >= PER_COMMIT {
                        session
                            .commit()
                            .map_err(|e| EngineError::Store(e.to_string()))?;
                        staged = 0;
                    }
                }
                match page.last() {
                    Some((k, _)) if page.len() == 256 => after = Some(k.clone()),
                    _ => break,
                }
            }
        }
        session
            .commit()
            .map_err(|e| EngineError::Store(e.to_string()))?;
        Ok(swept)
    }
}

/// Stage the removal of execution `id` (index row `index_key`), its history and its Task
/// results; how many rows.
fn remove(
    session: &mut Box<dyn StateSession>,
    id: &str,
    index_key: &str,
) -> Result<usize, EngineError> {
    let mut rows = 2;
    session.put_record(RecordTable::Executions, id, None)?;
    session.put_record(RecordTable::ExecutionIndex, index_key, None)?;
    let prefix = keys::history_prefix(id);
    for table in [RecordTable::History, RecordTable::TaskResults] {
        loop {
            let page = session.scan_records(
                table,
                &Scan {
                    prefix: &prefix,
                    after: None,
                    limit: 512,
                    reverse: false,
                },
            )?;
            if page.is_empty() {
                break;
            }
            for (k, _) in &page {
                session.put_record(table, k, None)?;
            }
            rows += page.len();
        }
    }
    Ok(rows)
}
