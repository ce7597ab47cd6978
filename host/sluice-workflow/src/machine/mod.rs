//! The interpreter: a deterministic machine stepping over a serializable execution state.
//!
//! Nothing an execution needs lives on a thread's stack. An [`Execution`] holds a set of
//! *runs* — the top-level run, one per Parallel branch, one per Map iteration — each with the
//! state it is in, its input, its variables and a [`Phase`] saying what it waits for. The
//! machine never calls a Task itself: [`Execution::advance`] steps every run as far as it can
//! and returns the Tasks to run; the caller runs them (concurrently, durably, however it
//! likes) and hands each result back with [`Execution::deliver`]. Wait states and retry
//! delays are timers at a due time on the injected clock ([`Execution::next_due_ms`]). So a
//! persisted `Execution` resumes exactly where it was, and many executions can share workers.

/// An object of `key => value` pairs, the values moved in: `json!` copies each interpolated
/// value through its serializer, and history events carry whole payloads (a profile of the
/// order workflow found a fifth of the executors' time in those copies).
macro_rules! obj {
    ($($k:literal => $v:expr),* $(,)?) => {{
        let mut m = serde_json::Map::new();
        $( m.insert($k.to_owned(), serde_json::Value::from($v)); )*
        serde_json::Value::Object(m)
    }};
}
mod callback;
mod io;
mod log;
mod map;
mod publish;
mod reader;
mod states;
mod task;

pub use callback::TaskTokenError;
pub use log::HistoryMode;
pub use publish::{EVENTS_VALIDATION, INVALID_PARAMETER, SNS_INVALID_PARAMETER};
pub use reader::{GET_OBJECT, MAX_ITEMS, OBJECT_READ_FAILED};
pub use states::{ITEM_READER_UNSUPPORTED, MAX_PAYLOAD_BYTES};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::definition::{ContextUse, Kind, Machine, State};
use crate::env::{Clock, Objects, Random, TaskRequest};
use crate::error::{StatesError, names};

/// What the machine needs from the world while it steps.
pub struct Env<'a> {
    /// Now, for timers and history timestamps.
    pub clock: &'a dyn Clock,
    /// For intrinsics, `$random`, `$uuid` and retry jitter.
    pub random: &'a dyn Random,
    /// What a Map's ItemReader reads. Read once, when the Map starts: its items are then
    /// part of the execution's state, so a resumed execution does not read again.
    pub objects: &'a dyn Objects,
}

/// An execution's status, as Step Functions names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Still going.
    Running,
    /// Ended with an output.
    Succeeded,
    /// Ended with an error.
    Failed,
    /// Ran past the machine's TimeoutSeconds.
    TimedOut,
    /// Stopped from outside.
    Aborted,
}

/// One history event, in Step Functions' vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// From 1.
    pub id: u64,
    /// The event this one follows from (0 for none).
    pub previous_event_id: u64,
    /// When, ms since the epoch.
    pub timestamp_ms: i64,
    /// `ExecutionStarted`, `PassStateEntered`, `TaskScheduled`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The `<type>EventDetails` object.
    pub details: Value,
}

/// Where a run's machine is: the root, or a branch/processor of a state of an outer one.
type Address = Vec<(String, usize)>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Run {
    addr: Address,
    /// (parent run, slot) for branches and iterations.
    parent: Option<(u64, usize)>,
    /// Prefix of this run's Task ids below the execution's name (`Par/0/`, `Map/3/`).
    label: String,
    state: String,
    input: Value,
    vars: Map<String, Value>,
    phase: Phase,
    /// The current state's `*StateEntered` event id.
    entered_event: u64,
    entered_ms: i64,
    last_event: u64,
    /// Attempts made per retrier of the current state.
    retries: Vec<u64>,
    /// Task attempts of the current state (for Task ids).
    attempt: u64,
    /// Retries of the current state so far: `$$.State.RetryCount`.
    #[serde(default)]
    retry_count: u64,
    /// A distributed Map's iteration: a child execution in AWS, whose events are not in the
    /// parent's history; `local_events` numbers them as that child's history would.
    #[serde(default)]
    quiet: bool,
    #[serde(default)]
    local_events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Phase {
    /// About to run the current state (`retry`: again, after a retry delay).
    Enter { retry: bool },
    /// A Task was requested; waiting for its result.
    Task {
        id: String,
        resource_kind: TaskKind,
        #[serde(default, skip_serializing_if = "Pending::is_empty")]
        pending: Pending,
    },
    /// The Task's result arrived.
    TaskDone {
        resource_kind: TaskKind,
        result: Result<Value, StatesError>,
        #[serde(default, skip_serializing_if = "Pending::is_empty")]
        pending: Pending,
    },
    /// A `.waitForTaskToken` Task's integration ran: waiting for SendTaskSuccess or
    /// SendTaskFailure with the token, or for a time-out.
    Callback {
        resource_kind: TaskKind,
        wait: Wait,
        /// When the next heartbeat is due (HeartbeatSeconds after the last one).
        heartbeat_due: Option<i64>,
    },
    /// A Wait state's timer; the output is ready.
    Waiting {
        due: i64,
        output: Value,
        vars: Map<String, Value>,
    },
    /// A retry delay; then the state runs again.
    Backoff { due: i64 },
    /// Parallel branches or Map iterations.
    Children(Box<Children>),
    /// Finished; picked up by the parent (or ends the execution).
    Done(Result<Value, StatesError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum TaskKind {
    /// A stage (or a Lambda ARN): `LambdaFunction*` history events, Lambda-shaped causes.
    Lambda,
    /// A stage named directly: `Task*` events, the stage's cause as is.
    Stage,
    /// `lambda:invoke`: `Task*` events, the result wrapped.
    Invoke,
    /// `nats:publish`: the result is the message's id.
    Nats,
    /// `sns:publish`: the result is SNS's (`MessageId`, SDK metadata).
    Sns,
    /// `events:putEvents`: the result is EventBridge's (`Entries`, `FailedEntryCount`).
    Events,
}

/// What a requested Task carries until its result is in: the callback it will wait for, the
/// ids of the events it publishes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Pending {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    callback: Option<Wait>,
    /// `events:putEvents`: the entries' event ids, as their bodies carry them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    event_ids: Vec<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.callback.is_none() && self.event_ids.is_empty()
    }
}

/// A `.waitForTaskToken` Task's wait: its token and deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wait {
    token: String,
    /// TimeoutSeconds after the Task started.
    timeout_due: Option<i64>,
    /// HeartbeatSeconds, in ms.
    heartbeat_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Children {
    map: bool,
    effective: Value,
    /// Inputs of the children not started yet, by slot.
    inputs: Vec<Option<Value>>,
    results: Vec<Option<Result<Value, StatesError>>>,
    running: usize,
    next: usize,
    concurrency: usize,
    tolerated_count: Option<u64>,
    tolerated_percentage: Option<f64>,
    failures: u64,
    /// A distributed Map: `MapRun*` events, iterations out of the history.
    #[serde(default)]
    distributed: bool,
    /// Children finished (`results` filled).
    #[serde(default)]
    finished: usize,
}

/// A serializable execution of a [`Machine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// The execution's name (unique per workflow).
    pub name: String,
    /// Its status.
    pub status: Status,
    /// The output, once succeeded (which may be `null`: kept apart from "none" when the
    /// execution is persisted and read back).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub output: Option<Value>,
    /// The error, once failed (an empty name: a Fail state that gave none).
    pub error: Option<StatesError>,
    /// The history events not yet taken by [`Execution::take_history`] (all of them, for an
    /// execution nobody takes from).
    pub history: Vec<HistoryEvent>,
    /// Events numbered so far, the id of the newest (the name is from when it counted the
    /// events taken out of `history`; at every snapshot the two are the same).
    #[serde(default)]
    history_taken: u64,
    /// How events are recorded (not stored: whoever loads an execution says).
    #[serde(skip)]
    log: log::Log,
    input: Value,
    workflow: String,
    started_ms: i64,
    timeout_due: Option<i64>,
    runs: BTreeMap<u64, Run>,
    next_run: u64,
    transitions: u64,
}

impl Execution {
    /// Start an execution of `def` (the workflow `workflow`) named `name` on `input`.
    pub fn start(def: &Machine, workflow: &str, name: &str, input: Value, env: &Env<'_>) -> Self {
        let now = env.clock.now_ms();
        let mut e = Self {
            name: name.to_owned(),
            status: Status::Running,
            output: None,
            error: None,
            history: Vec::new(),
            history_taken: 0,
            log: log::Log::default(),
            input: input.clone(),
            workflow: workflow.to_owned(),
            started_ms: now,
            timeout_due: def.timeout_seconds.map(|s| {
                now.saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
            }),
            runs: BTreeMap::new(),
            next_run: 0,
            transitions: 0,
        };
        e.push(
            None,
            "ExecutionStarted",
            log::Started {
                input: &input,
                input_details: log::NOT_TRUNCATED,
                role_arn: "arn:aws:iam::000000000000:role/sluice",
            },
            now,
        );
        e.spawn(
            Address::new(),
            None,
            String::new(),
            def.start_at.clone(),
            input,
            Map::new(),
            false,
        );
        e
    }

    /// The id of the newest history event (0 before any).
    pub fn last_event_id(&self) -> u64 {
        self.history_taken
    }

    /// Record history events from now on as `mode` says; events kept so far are encoded
    /// (for [`HistoryMode::Encode`]) or dropped (for [`HistoryMode::Off`]).
    pub fn set_history_mode(&mut self, mode: HistoryMode) {
        self.log.mode = mode;
        if mode != HistoryMode::Keep {
            for e in std::mem::take(&mut self.history) {
                let header = (e.id, e.previous_event_id, e.timestamp_ms);
                log::record(&mut self.history, &mut self.log, header, &e.kind, e.details);
            }
        }
    }

    /// The events recorded as JSON ([`HistoryMode::Encode`]) since the last call: a JSON
    /// array of [`HistoryEvent`]s and the id of the first; `None` when there are none.
    pub fn take_encoded(&mut self) -> Option<(u64, Vec<u8>)> {
        self.log.take()
    }

    /// Take the history events recorded since the last call, for a caller that persists them
    /// apart from the execution (so a snapshot of the execution stays small); later events
    /// keep numbering after them.
    pub fn take_history(&mut self) -> Vec<HistoryEvent> {
        std::mem::take(&mut self.history)
    }

    /// The execution's input.
    pub fn input(&self) -> &Value {
        &self.input
    }

    /// The workflow it runs.
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// When it started, ms since the epoch.
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// Whether the execution has ended.
    pub fn is_done(&self) -> bool {
        self.status != Status::Running
    }

    /// State transitions so far (for benchmarks and limits).
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The earliest timer (Wait, retry delay, execution timeout), if any run waits for one.
    pub fn next_due_ms(&self) -> Option<i64> {
        let timers = self.runs.values().filter_map(|r| match &r.phase {
            Phase::Waiting { due, .. } | Phase::Backoff { due } => Some(*due),
            Phase::Callback {
                wait,
                heartbeat_due,
                ..
            } => wait.timeout_due.into_iter().chain(*heartbeat_due).min(),
            _ => None,
        });
        timers.chain(self.timeout_due).min()
    }

    /// Hand back the result of the Task `id`. Unknown ids (a run that was cancelled
    /// meanwhile, a duplicate) are ignored.
    pub fn deliver(&mut self, id: &str, result: Result<Value, StatesError>) {
        for run in self.runs.values_mut() {
            if let Phase::Task {
                id: want,
                resource_kind,
                pending,
            } = &mut run.phase
                && want == id
            {
                run.phase = Phase::TaskDone {
                    resource_kind: *resource_kind,
                    result,
                    pending: std::mem::take(pending),
                };
                return;
            }
        }
    }

    /// Fail the execution from outside with `error` (a limit the host enforces, such as the
    /// history's length): `FAILED`, as if its machine had failed.
    pub fn fail_execution(&mut self, error: StatesError, env: &Env<'_>) {
        if !self.is_done() {
            self.end(Err(error), env.clock.now_ms());
        }
    }

    /// Stop the execution from outside (`ABORTED`).
    pub fn stop(&mut self, error: Option<&str>, cause: Option<&str>, env: &Env<'_>) {
        if self.is_done() {
            return;
        }
        self.runs.clear();
        self.status = Status::Aborted;
        // As DescribeExecution shows a stopped execution: with the error and cause given.
        if error.is_some() || cause.is_some() {
            self.error = Some(StatesError::new(
                error.unwrap_or_default(),
                cause.unwrap_or_default(),
            ));
        }
        let mut d = Map::new();
        if let Some(e) = error {
            d.insert("error".into(), e.into());
        }
        if let Some(c) = cause {
            d.insert("cause".into(), c.into());
        }
        self.push(
            None,
            "ExecutionAborted",
            Value::Object(d),
            env.clock.now_ms(),
        );
    }

    /// Step every run as far as it goes; the Tasks to run now.
    pub fn advance(&mut self, def: &Machine, env: &Env<'_>) -> Vec<TaskRequest> {
        self.advance_limited(def, env, usize::MAX).0
    }

    /// [`Execution::advance`], for at most `passes` passes over the runs (a pass moves each
    /// run one state): a host bounds a step this way, since a loop of Pass states would
    /// otherwise never return. `true` with the requests when the budget ran out first (call
    /// again to go on).
    pub fn advance_limited(
        &mut self,
        def: &Machine,
        env: &Env<'_>,
        passes: usize,
    ) -> (Vec<TaskRequest>, bool) {
        let mut requests = Vec::new();
        let mut left = passes;
        loop {
            if left == 0 {
                return (requests, true);
            }
            left -= 1;
            if self.is_done() {
                break;
            }
            let now = env.clock.now_ms();
            if self.timeout_due.is_some_and(|d| now >= d) {
                self.runs.clear();
                self.status = Status::TimedOut;
                self.error = Some(StatesError::new(names::TIMEOUT, ""));
                self.push(
                    None,
                    "ExecutionTimedOut",
                    json!({"error": names::TIMEOUT}),
                    now,
                );
                break;
            }
            let ids: Vec<u64> = self.runs.keys().copied().collect();
            let mut progressed = false;
            for id in ids {
                if self.is_done() {
                    break;
                }
                if self.runs.contains_key(&id) {
                    progressed |= self.step(id, def, env, &mut requests);
                }
            }
            if !progressed {
                break;
            }
        }
        (requests, false)
    }

    #[allow(clippy::too_many_arguments, reason = "the fields of a new run")]
    fn spawn(
        &mut self,
        addr: Address,
        parent: Option<(u64, usize)>,
        label: String,
        start: String,
        input: Value,
        vars: Map<String, Value>,
        quiet: bool,
    ) -> u64 {
        let id = self.next_run;
        self.next_run += 1;
        let last_event = self.last_event_id();
        self.runs.insert(
            id,
            Run {
                addr,
                parent,
                label,
                state: start,
                input,
                vars,
                phase: Phase::Enter { retry: false },
                entered_event: 0,
                entered_ms: 0,
                last_event,
                retries: Vec::new(),
                attempt: 0,
                retry_count: 0,
                quiet,
                // The child execution's own ExecutionStarted is event 1.
                local_events: 1,
            },
        );
        id
    }

    /// Append a history event following `run`'s last one; its id.
    fn push(&mut self, run: Option<u64>, kind: &str, details: impl log::Details, now: i64) -> u64 {
        match self.next_event(run, now) {
            Ok(header) => {
                log::record(&mut self.history, &mut self.log, header, kind, details);
                header.0
            }
            Err(local) => local,
        }
    }

    /// Number the next event following `run`'s last one: its header, or (a quiet run's, not
    /// recorded) its local id.
    fn next_event(&mut self, run: Option<u64>, now: i64) -> Result<log::Header, u64> {
        if let Some(r) = run.and_then(|r| self.runs.get_mut(&r))
            && r.quiet
        {
            r.local_events += 1;
            return Err(r.local_events);
        }
        let id = self.history_taken + 1;
        self.history_taken = id;
        let previous = match run.and_then(|r| self.runs.get_mut(&r)) {
            Some(r) => std::mem::replace(&mut r.last_event, id),
            None => id - 1,
        };
        Ok((id, previous, now))
    }

    /// The machine a run steps in.
    fn machine_of<'d>(def: &'d Machine, addr: &Address) -> &'d Machine {
        let mut m = def;
        for (state, i) in addr {
            m = match m.state(state).map(|s| &s.kind) {
                Some(Kind::Parallel { branches }) => &branches[*i],
                Some(Kind::Map(map)) => &map.processor,
                _ => unreachable!("a run's address names a Parallel or Map state"),
            };
        }
        m
    }

    fn state_of<'d>(def: &'d Machine, run: &Run) -> &'d State {
        Self::machine_of(def, &run.addr)
            .state(&run.state)
            .expect("a run's state exists: the definition was validated")
    }

    /// The context object `$$` for `run`'s current state.
    fn context(&self, run: &Run, state: &State, map_item: Option<(usize, &Value)>) -> Value {
        let input = match state.context_use {
            ContextUse::None => return Value::Null,
            ContextUse::WithoutInput => Value::Null,
            ContextUse::Full => self.input.clone(),
        };
        let mut c = json!({
            "Execution": {
                "Id": format!("arn:aws:states:local:000000000000:execution:{}:{}", self.workflow, self.name),
                "Input": input,
                "Name": self.name,
                "RoleArn": "arn:aws:iam::000000000000:role/sluice",
                "StartTime": crate::time::format_ms(self.started_ms),
                "RedriveCount": 0,
            },
            "State": {
                "EnteredTime": crate::time::format_ms(run.entered_ms),
                "Name": run.state,
            },
            "StateMachine": {
                "Id": format!("arn:aws:states:local:000000000000:stateMachine:{}", self.workflow),
                "Name": self.workflow,
            },
        });
        // Only a Task has retries to count (AWS shows no RetryCount elsewhere).
        if matches!(state.kind, Kind::Task { .. }) {
            c["State"]["RetryCount"] = run.retry_count.into();
        }
        if let Some((index, value)) = map_item {
            c["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        c
    }

    /// "An error occurred while executing the state 'X' (entered at the event id #N). "
    fn prefixed(run: &Run, e: StatesError) -> StatesError {
        StatesError::new(
            e.error,
            format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
                run.state, run.entered_event, e.cause
            ),
        )
    }

    fn step(
        &mut self,
        id: u64,
        def: &Machine,
        env: &Env<'_>,
        requests: &mut Vec<TaskRequest>,
    ) -> bool {
        let now = env.clock.now_ms();
        let phase = match &self.runs[&id].phase {
            // Nothing to do yet.
            Phase::Task { .. } => return false,
            Phase::Waiting { due, .. } | Phase::Backoff { due } if now < *due => return false,
            // Small, and left as it is unless a deadline passed.
            p @ Phase::Callback { .. } => p.clone(),
            // Every other phase is consumed by its step, which sets the next one: taken, not
            // cloned (a Task's result, a Map's thousands of iterations' inputs).
            _ => std::mem::replace(
                &mut self.runs.get_mut(&id).expect("run exists").phase,
                Phase::Enter { retry: false },
            ),
        };
        match phase {
            Phase::Enter { retry } => {
                self.enter(id, retry, def, env, requests);
                true
            }
            Phase::TaskDone {
                resource_kind,
                result,
                pending,
            } => {
                self.after_task(id, resource_kind, result, pending, def, env);
                true
            }
            Phase::Callback {
                resource_kind,
                wait,
                heartbeat_due,
            } => self.callback_timeout(id, resource_kind, &wait, heartbeat_due, def, env),
            Phase::Waiting { due, output, vars } if now >= due => {
                let state = Self::state_of(def, &self.runs[&id]).clone();
                self.leave(id, &state, output, vars, env);
                true
            }
            Phase::Backoff { due } if now >= due => {
                self.runs.get_mut(&id).expect("run exists").phase = Phase::Enter { retry: true };
                true
            }
            Phase::Children(c) => self.children(id, *c, def, env),
            Phase::Done(result) => {
                let run = self.runs.remove(&id).expect("run exists");
                match run.parent {
                    Some((parent, slot)) => {
                        let mut iteration = None;
                        if let Some(p) = self.runs.get_mut(&parent)
                            && let Phase::Children(c) = &mut p.phase
                        {
                            if c.map && !c.distributed {
                                iteration = Some((result.is_ok(), p.state.clone()));
                            }
                            if result.is_err() {
                                c.failures += 1;
                            }
                            c.results[slot] = Some(result);
                            c.finished += 1;
                            c.running = c.running.saturating_sub(1);
                        }
                        if let Some((ok, name)) = iteration {
                            let kind = if ok {
                                "MapIterationSucceeded"
                            } else {
                                "MapIterationFailed"
                            };
                            self.push(
                                Some(parent),
                                kind,
                                json!({"index": slot, "name": name}),
                                now,
                            );
                        }
                    }
                    None => self.end(result, now),
                }
                true
            }
            _ => false,
        }
    }

    fn end(&mut self, result: Result<Value, StatesError>, now: i64) {
        self.runs.clear();
        match result {
            Ok(v) => {
                self.status = Status::Succeeded;
                self.push(
                    None,
                    "ExecutionSucceeded",
                    log::Exited {
                        name: None,
                        output: &v,
                        output_details: log::NOT_TRUNCATED,
                    },
                    now,
                );
                self.output = Some(v);
            }
            Err(e) => {
                self.status = Status::Failed;
                let mut d = Map::new();
                if !e.error.is_empty() {
                    d.insert("error".into(), e.error.clone().into());
                }
                if !e.cause.is_empty() {
                    d.insert("cause".into(), e.cause.clone().into());
                }
                self.push(None, "ExecutionFailed", Value::Object(d), now);
                self.error = Some(e);
            }
        }
    }

    /// Cancel `run`'s descendants (a failed branch's siblings).
    fn cancel_children(&mut self, parent: u64) {
        let kids: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, r)| r.parent.is_some_and(|(p, _)| p == parent))
            .map(|(k, _)| *k)
            .collect();
        for k in kids {
            self.cancel_children(k);
            self.runs.remove(&k);
        }
    }
}

/// A present field, `null` included, is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The type name used in history events (`Pass` → `PassStateEntered`).
fn type_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Pass { .. } => "Pass",
        Kind::Task { .. } => "Task",
        Kind::Choice { .. } => "Choice",
        Kind::Wait(_) => "Wait",
        Kind::Succeed => "Succeed",
        Kind::Fail { .. } => "Fail",
        Kind::Parallel { .. } => "Parallel",
        Kind::Map(_) => "Map",
    }
}
