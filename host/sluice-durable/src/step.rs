//! One batch of steps: load each execution, advance it as far as it goes (its Tasks run in the
//! batch's session), stage its new snapshot, history rows and index entry, and commit the whole
//! batch at once.

use std::collections::HashMap;

use serde_json::Value;
use sluice_model::records::RecordTable;
use sluice_model::state::{CommitError, StateSession, StoreError};
use sluice_workflow::env::{Publication, Target};
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::{Env, Status};

use crate::callback::Callback;
use crate::engine::Inner;
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
        let env = Env {
            clock: inner.clock.as_ref(),
            random: &inner.random,
            objects: inner.objects.as_ref(),
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
        let mut rounds = 0;
        let mut more = false;
        loop {
            let (requests, cut) = exec.advance_limited(&wf.machine, &env, inner.config.passes);
            if cut {
                more = true;
            }
            if requests.is_empty() {
                break;
            }
            for req in requests {
                let event = keys::task_event(&workflow, &req.id);
                let stored_result = if look {
                    match session.get_record(RecordTable::TaskResults, &event)? {
                        Some(r) => Some(r),
                        // Committed, yet its result is gone: an earlier execution of this
                        // name ran it and was swept while the store still keeps its dedupe
                        // record. Running it would only meet that record again.
                        None if session.recorded(&event)?.is_some() => Some(
                            serde_json::to_vec(&TaskResult(Err(StatesError::new(
                                TASK_ALREADY_COMMITTED,
                                format!("The Task event '{event}' was committed by an earlier execution of this name, whose results were swept: start it under a new name, or keep executions at least as long as the store keeps dedupe records"),
                            ))))
                            .expect("a result serializes"),
                        ),
                        None => None,
                    }
                } else {
                    None
                };
                let result = match stored_result {
                    Some(bytes) => serde_json::from_slice::<TaskResult>(&bytes)
                        .map(|r| r.0)
                        .map_err(|e| {
                            Abort::Fault(format!("a stored Task result does not decode: {e}"))
                        })?,
                    None => {
                        let result = match &req.target {
                            Target::Stage(_) => inner
                                .tasks
                                .run(session, &event, &req)
                                .map_err(Abort::Fault)?,
                            Target::Publish(messages) => {
                                staged = true;
                                Ok(publish(session, &event, messages))
                            }
                        };
                        let bytes = serde_json::to_vec(&TaskResult(result.clone()))
                            .expect("a result serializes");
                        session.put_record(RecordTable::TaskResults, &event, Some(bytes))?;
                        result
                    }
                };
                exec.deliver(&req.id, result);
            }
            rounds += 1;
            if more || rounds >= inner.config.rounds {
                more = true;
                break;
            }
        }
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
                staged |= complete(session, id, &stored.execution, c);
            }
        }
        // Express keeps only its start and its end; Standard every step.
        if stored.kind == ExecutionType::Standard || done {
            persist(session, id, &mut stored)?;
        }
        out.push((id.clone(), Some(stored), after));
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

/// Stage `stored`'s snapshot, its new history rows and (once closed) its index move.
pub(crate) fn persist(
    session: &mut Box<dyn StateSession>,
    id: &str,
    stored: &mut Stored,
) -> Result<(), StoreError> {
    let e = &mut stored.execution;
    let events = e.take_history();
    if stored.kind == ExecutionType::Standard {
        for ev in &events {
            let bytes = serde_json::to_vec(ev).expect("an event serializes");
            session.put_record(RecordTable::History, &keys::history(id, ev.id), Some(bytes))?;
        }
    }
    if e.status != Status::Running {
        let (workflow, started, name) = (e.workflow().to_owned(), e.started_ms(), e.name.clone());
        session.put_record(
            RecordTable::ExecutionIndex,
            &keys::index(Status::Running, &workflow, started, &name),
            None,
        )?;
        session.put_record(
            RecordTable::ExecutionIndex,
            &keys::index(e.status, &workflow, started, &name),
            Some(Vec::new()),
        )?;
    }
    session.put_record(RecordTable::Executions, id, Some(stored.encode()))
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
