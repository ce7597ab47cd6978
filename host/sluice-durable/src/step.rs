//! One batch of steps: load each execution, advance it as far as it goes (its Tasks run in the
//! batch's session), stage its new snapshot, history rows and index entry, and commit the whole
//! batch at once.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use sluice_model::records::RecordTable;
use sluice_model::state::{CommitError, StateSession, StoreError};
use sluice_workflow::env::{Publication, Target, TaskRequest};
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::{Env, Status};

use crate::callback::Callback;
use crate::engine::{Inner, Workflow};
use crate::keys;
use crate::record::{ExecutionType, Stored};

/// What became of one execution in a committed batch.
#[derive(Debug)]
pub(crate) enum After {
    /// It is closed: `true` when it ended in this batch (it was open before), `false` when it
    /// was already closed or is gone.
    Closed(bool),
    /// It waits for a timer due then.
    Due(i64),
    /// It has more to do at once (it hit the batch's round limit).
    Ready,
    /// Its workflow is not registered (yet): it waits for `register`.
    Parked(String),
    /// Nothing to do until something outside wakes it.
    Idle,
}

/// The error of a Task whose event an earlier execution of the same name committed.
pub const TASK_ALREADY_COMMITTED: &str = "Sluice.TaskAlreadyCommitted";

/// A Task's result as the engine stores it.
#[derive(serde::Serialize, serde::Deserialize)]
struct TaskResult(Result<Value, StatesError>);

/// [`TaskResult`] borrowed, to store without a copy (serialized the same: a newtype).
#[derive(serde::Serialize)]
struct TaskResultRef<'a>(&'a Result<Value, StatesError>);

/// The failure that ends a batch without a commit.
#[derive(Debug)]
pub(crate) enum Abort {
    /// A commit found an already recorded Task: run the batch again with look-ups.
    Duplicate(String),
    /// The store or the platform failed: try again later.
    Fault(String),
}

impl From<StoreError> for Abort {
    fn from(e: StoreError) -> Self {
        Self::Fault(e.0)
    }
}

/// Step `ids` in `session` and commit. On success, the new states (to cache) and what each
/// execution waits for; on failure nothing was applied.
pub(crate) fn step_batch(
    inner: &Inner,
    session: &mut Box<dyn StateSession>,
    ids: &[String],
    commands: &Commands,
    lookups: bool,
) -> Result<Batch, Abort> {
    let mut out = Vec::with_capacity(ids.len());
    let mut outcomes = Outcomes::new();
    let mut staged = false;
    let env = Env {
        clock: inner.clock.as_ref(),
        random: &inner.random,
        objects: inner.objects.as_ref(),
    };
    // The batch's live executions, each with its workflow, whether its Tasks are looked up
    // first, and whether it must yield after this batch.
    let mut live: Vec<Live> = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(mut stored) = inner.load(session, id)? else {
            out.push((id.clone(), None, After::Closed(false)));
            continue;
        };
        if stored.execution.is_done() {
            out.push((id.clone(), Some(stored), After::Closed(false)));
            continue;
        }
        let workflow = stored.execution.workflow().to_owned();
        let Some(wf) = inner.workflow(&workflow) else {
            for i in 0..commands.callbacks.get(id).map_or(0, Vec::len) {
                let e = crate::EngineError::WorkflowDoesNotExist(workflow.clone());
                outcomes.push((id.clone(), i, Err(e)));
            }
            out.push((id.clone(), None, After::Parked(workflow)));
            continue;
        };
        let exec = &mut stored.execution;
        if let Some((error, cause)) = commands.stops.get(id) {
            exec.stop(error.as_deref(), cause.as_deref(), &env);
        }
        for (i, cb) in commands.callbacks.get(id).into_iter().flatten().enumerate() {
            outcomes.push((id.clone(), i, cb.apply(exec, inner.clock.now_ms())));
        }
        // Express executions are re-run from their input after a crash: their Tasks are
        // always looked up, so a committed one is answered from its stored result.
        let look = lookups || stored.kind == ExecutionType::Express;
        live.push(Live {
            id: id.clone(),
            stored,
            wf,
            look,
            more: false,
            active: true,
        });
    }
    // Rounds over the whole batch: every execution advances as far as it goes, then the
    // round's Tasks run, grouped by stage (one `handle-batch` call for many executions), and
    // their results are delivered before the next round.
    for round in 0..inner.config.rounds.max(1) {
        let mut pending: Vec<(usize, String, TaskRequest)> = Vec::new();
        let passes = inner.config.passes;
        let advanced = crate::fanout::map_mut(&mut live, |l| {
            l.active.then(|| {
                l.stored
                    .execution
                    .advance_limited(&l.wf.machine, &env, passes)
            })
        });
        for (i, (l, advanced)) in live.iter_mut().zip(advanced).enumerate() {
            let Some((requests, cut)) = advanced else {
                continue;
            };
            if cut {
                l.more = true;
            }
            if requests.is_empty() || cut {
                l.active = false;
            }
            if !requests.is_empty() && round + 1 == inner.config.rounds.max(1) {
                l.more = true;
            }
            let workflow = l.stored.execution.workflow().to_owned();
            pending.extend(
                requests
                    .into_iter()
                    .map(|r| (i, keys::task_event(&workflow, &r.id), r)),
            );
        }
        if pending.is_empty() {
            break;
        }
        let results = run_round(inner, session, &live, &pending, &mut staged)?;
        for ((i, _, req), result) in pending.iter().zip(results) {
            live[*i].stored.execution.deliver(&req.id, result);
        }
    }
    for Live {
        id,
        mut stored,
        more,
        ..
    } in live
    {
        let exec = &mut stored.execution;
        if !exec.is_done() && exec.last_event_id() > inner.config.max_history {
            exec.fail_execution(
                StatesError::new(
                    crate::engine::HISTORY_LIMIT,
                    format!(
                        "The execution's history reached {} events, past the limit of {}",
                        exec.last_event_id(),
                        inner.config.max_history
                    ),
                ),
                &env,
            );
        }
        let done = exec.is_done();
        let after = if done {
            After::Closed(true)
        } else if more {
            After::Ready
        } else {
            exec.next_due_ms().map_or(After::Idle, After::Due)
        };
        if done {
            stored.stopped_ms = Some(inner.clock.now_ms());
            if let Some(c) = &stored.completion {
                staged |= complete(session, &id, &stored.execution, c);
            }
        }
        out.push((id, Some(stored), after));
    }
    // Encoded on every core, written here. Express keeps only its start and its end;
    // Standard every step.
    let rows = crate::fanout::map_mut(&mut out, |(id, stored, after)| {
        let stored = stored.as_mut()?;
        let write = match after {
            // Ended in this batch: its end, whatever its type.
            After::Closed(true) => true,
            // Closed before this batch (a late stop, callback or timer): nothing changed.
            After::Closed(false) => false,
            _ => stored.kind == ExecutionType::Standard,
        };
        write.then(|| encode(id, stored))
    });
    for r in rows.into_iter().flatten() {
        for (table, key, value) in r {
            session.put_record(table, &key, value)?;
        }
    }
    match session.commit() {
        Ok(()) => Ok(Batch {
            settled: out,
            outcomes,
            staged,
        }),
        Err(CommitError::Duplicate(id)) => Err(Abort::Duplicate(id)),
        Err(CommitError::Store(e)) => Err(Abort::Fault(e.0)),
    }
}

/// An execution being stepped in a batch.
struct Live {
    id: String,
    stored: Stored,
    wf: Arc<Workflow>,
    /// Its Tasks are looked up before they run (an Express re-run, a batch stepped again).
    look: bool,
    /// It must yield at the end of the batch (it used its rounds or passes).
    more: bool,
    /// It still advances in this batch's next round.
    active: bool,
}

/// A round's Task requests: (execution in `live`, event id, request).
type Pending = [(usize, String, TaskRequest)];

/// The results of a round's Tasks, in order: answered from their stored results where the
/// execution looks them up, published, or run, grouped by stage so many executions' events
/// go through one call (the stage's `handle-batch`). Each new result is stored with the batch.
fn run_round(
    inner: &Inner,
    session: &mut Box<dyn StateSession>,
    live: &[Live],
    pending: &Pending,
    staged: &mut bool,
) -> Result<Vec<Result<Value, StatesError>>, Abort> {
    let mut results: Vec<Option<Result<Value, StatesError>>> = vec![None; pending.len()];
    // By stage, in the order the stages first appear.
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (k, (i, event, req)) in pending.iter().enumerate() {
        if live[*i].look
            && let Some(r) = look_up(session, event)?
        {
            results[k] = Some(r);
            continue;
        }
        match &req.target {
            Target::Publish(messages) => {
                *staged = true;
                let r = Ok(publish(session, event, messages));
                keep(session, event, &r)?;
                results[k] = Some(r);
            }
            Target::Stage(stage) => match groups.iter_mut().find(|(s, _)| s == stage) {
                Some((_, ks)) => ks.push(k),
                None => groups.push((stage, vec![k])),
            },
        }
    }
    for (_, ks) in groups {
        let tasks: Vec<(&str, &TaskRequest)> = ks
            .iter()
            .map(|&k| (pending[k].1.as_str(), &pending[k].2))
            .collect();
        let rs = inner
            .tasks
            .run_many(session, &tasks)
            .map_err(Abort::Fault)?;
        if rs.len() != ks.len() {
            return Err(Abort::Fault(format!(
                "the Task runner answered {} of {} Tasks",
                rs.len(),
                ks.len()
            )));
        }
        for (k, r) in ks.into_iter().zip(rs) {
            keep(session, &pending[k].1, &r)?;
            results[k] = Some(r);
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every Task of the round has a result"))
        .collect())
}

/// The stored result of the Task `event`, if it committed.
fn look_up(
    session: &mut Box<dyn StateSession>,
    event: &str,
) -> Result<Option<Result<Value, StatesError>>, Abort> {
    let bytes = match session.get_record(RecordTable::TaskResults, event)? {
        Some(r) => r,
        // Committed, yet its result is gone: an earlier execution of this name ran it and
        // was swept while the store still keeps its dedupe record. Running it would only
        // meet that record again.
        None if session.recorded(event)?.is_some() => {
            return Ok(Some(Err(StatesError::new(
                TASK_ALREADY_COMMITTED,
                format!(
                    "The Task event '{event}' was committed by an earlier execution of this name, whose results were swept: start it under a new name, or keep executions at least as long as the store keeps dedupe records"
                ),
            ))));
        }
        None => return Ok(None),
    };
    serde_json::from_slice::<TaskResult>(&bytes)
        .map(|r| Some(r.0))
        .map_err(|e| Abort::Fault(format!("a stored Task result does not decode: {e}")))
}

/// Store the Task `event`'s result with the batch.
fn keep(
    session: &mut Box<dyn StateSession>,
    event: &str,
    result: &Result<Value, StatesError>,
) -> Result<(), Abort> {
    let bytes = serde_json::to_vec(&TaskResultRef(result)).expect("a result serializes");
    Ok(session.put_record(RecordTable::TaskResults, event, Some(bytes))?)
}

/// Stage a publishing Task's `messages` in the outbox as the event `event` (its dedupe
/// record commits with them, so a re-run meets it); their ids, as the outbox numbers them.
fn publish(session: &mut Box<dyn StateSession>, event: &str, messages: &[Publication]) -> Value {
    session.begin_event(event);
    for m in messages {
        session.emit(sluice_model::state::Emitted {
            subject: m.subject.clone(),
            data: m.data.clone().into_bytes(),
            headers: m.headers.clone(),
        });
    }
    session.finish_event(true);
    // Recorded as a stage event would be, so its exactly-once id is as committed as theirs.
    session.record_outcome(
        event,
        sluice_model::state::RecordedOutcome::Succeeded {
            output_digest: String::new(),
        },
    );
    (0..messages.len())
        .map(|n| Value::String(format!("{event}/{n}")))
        .collect()
}

/// Header of a dead-lettered execution: its status (FAILED, TIMED_OUT, ABORTED).
pub const STATUS_HEADER: &str = "Sluice-Execution-Status";

/// Stage the message of a closed execution's `completion` in the session's batch; whether
/// there was one.
fn complete(
    session: &mut Box<dyn StateSession>,
    id: &str,
    e: &sluice_workflow::machine::Execution,
    c: &crate::record::Completion,
) -> bool {
    let (subject, data, mut headers) = match e.status {
        Status::Succeeded => match &c.output_subject {
            Some(s) => (
                s.clone(),
                e.output.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.headers.clone(),
            ),
            None => return false,
        },
        status => match &c.dead_letter_subject {
            Some(s) => {
                let mut h = c.headers.clone();
                let err = e.error.clone().unwrap_or_else(|| StatesError::new("", ""));
                h.push((sluice_model::names::DLQ_ERROR_NAME.into(), err.error));
                h.push((sluice_model::names::DLQ_ERROR_CAUSE.into(), err.cause));
                h.push((STATUS_HEADER.into(), keys::status_name(status).into()));
                (s.clone(), e.input().to_string(), h)
            }
            None => return false,
        },
    };
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case("Nats-Msg-Id"));
    let event = format!("{id}/completion");
    session.begin_event(&event);
    session.emit(sluice_model::state::Emitted {
        subject,
        data: data.into_bytes(),
        headers,
    });
    session.finish_event(true);
    true
}

/// Rows to stage: (table, key, value or `None` to delete).
type Rows = Vec<(RecordTable, String, Option<Vec<u8>>)>;

/// `stored`'s snapshot, its new history rows and (once closed) its index move, as rows for
/// the batch: pure work, so the batch runs it on every core.
fn encode(id: &str, stored: &mut Stored) -> Rows {
    let mut rows = Rows::new();
    let e = &mut stored.execution;
    if let Some((first, json)) = e.take_encoded() {
        let (key, row) = crate::history::row(id, first, &json);
        rows.push((RecordTable::History, key, Some(row)));
    }
    if e.status != Status::Running {
        let (workflow, started, name) = (e.workflow(), e.started_ms(), &e.name);
        rows.push((
            RecordTable::ExecutionIndex,
            keys::index(Status::Running, workflow, started, name),
            None,
        ));
        rows.push((
            RecordTable::ExecutionIndex,
            keys::index(e.status, workflow, started, name),
            Some(Vec::new()),
        ));
    }
    rows.push((
        RecordTable::Executions,
        id.to_owned(),
        Some(stored.encode()),
    ));
    rows
}

/// Stage `stored`'s snapshot, its new history rows and (once closed) its index move.
pub(crate) fn persist(
    session: &mut Box<dyn StateSession>,
    id: &str,
    stored: &mut Stored,
) -> Result<(), StoreError> {
    for (table, key, value) in encode(id, stored) {
        session.put_record(table, &key, value)?;
    }
    Ok(())
}

/// Stops asked for, by execution: (error, cause).
pub(crate) type Stops = HashMap<String, (Option<String>, Option<String>)>;

/// What became of each execution of a committed batch: its new state (to cache) and what it
/// waits for.
pub(crate) type Settled = Vec<(String, Option<Stored>, After)>;

/// A committed batch.
pub(crate) struct Batch {
    pub(crate) settled: Settled,
    pub(crate) outcomes: Outcomes,
    /// Whether it staged messages in the outbox (publications, completions).
    pub(crate) staged: bool,
}

/// What each callback of a batch did: (execution, index among its callbacks, outcome).
pub(crate) type Outcomes = Vec<(String, usize, Result<(), crate::EngineError>)>;

/// The stops and callbacks a batch applies, taken from the queue when it starts and put
/// back if it does not commit.
#[derive(Debug, Default)]
pub(crate) struct Commands {
    pub(crate) stops: Stops,
    pub(crate) callbacks: HashMap<String, Vec<Callback>>,
}

impl Commands {
    /// Tell each callback's caller its outcome (after the commit); a callback the batch did
    /// not reach (its execution closed or gone) found no Task waiting.
    pub(crate) fn reply(&self, outcomes: Outcomes) {
        let mut told = std::collections::HashSet::new();
        for (id, i, r) in outcomes {
            if let Some(cb) = self.callbacks.get(&id).and_then(|v| v.get(i)) {
                // The caller may have given up waiting (the engine stopping).
                let _ = cb.reply.send(r);
                told.insert((id, i));
            }
        }
        for (id, cbs) in &self.callbacks {
            for (i, cb) in cbs.iter().enumerate() {
                if !told.contains(&(id.clone(), i)) {
                    let _ = cb.reply.send(Err(crate::EngineError::TaskTimedOut));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_result_is_stored_as_the_owned_one_reads() {
        for r in [
            Ok(serde_json::json!({"a": [1, 2.5, "x"]})),
            Err(StatesError::new("Order.Invalid", "no items")),
        ] {
            let bytes = serde_json::to_vec(&TaskResultRef(&r)).unwrap();
            assert_eq!(bytes, serde_json::to_vec(&TaskResult(r.clone())).unwrap());
            assert_eq!(serde_json::from_slice::<TaskResult>(&bytes).unwrap().0, r);
        }
    }
}
