//! The engine: workflows, the executions' API (start, describe, list, history, stop), and the
//! executor threads that step runnable executions in batches.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use serde_json::Value;
use sluice_model::records::{RecordTable, Scan};
use sluice_model::state::{LockScope, StateBackend, StateSession};
use sluice_workflow::definition::Machine;
use sluice_workflow::env::{Clock, NoObjects, Objects};
use sluice_workflow::machine::{Env, Execution, HistoryEvent, Status};

use crate::callback::{Callback, OsRandom};
use crate::error::EngineError;
use crate::keys;
use crate::record::{Completion, Description, ExecutionType, Stored};
use crate::step::{self, Abort, After, Commands};
use crate::tasks::SessionTasks;

/// The error an execution fails with when its history passes [`Config::max_history`].
pub const HISTORY_LIMIT: &str = "Sluice.HistoryLimitExceeded";

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Executor threads, each stepping one batch at a time.
    pub executors: usize,
    /// Executions stepped (and committed) together, at most.
    pub batch: usize,
    /// Rounds of Tasks one execution may run in one batch before it yields to the others.
    pub rounds: usize,
    /// Passes over an execution's runs per round (each moves every run one state), so a loop
    /// of Pass states yields too.
    pub passes: usize,
    /// Executions open (running) at once, at most (`ExecutionLimitExceeded` past it).
    pub max_open: usize,
    /// History events of one execution, at most (AWS: 25,000); past it the execution fails
    /// with [`HISTORY_LIMIT`].
    pub max_history: u64,
    /// The state the executors' Tasks may touch (the union of their stages' grants): each
    /// executor session locks only these, so stream triggers on other state never wait for a
    /// workflow step. `None`: everything.
    pub lock_scope: Option<LockScope>,
    /// How long a closed execution is kept (AWS: 90 days); `None`: for ever. See
    /// [`Engine::sweep`], which the engine runs every minute.
    pub retention: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            executors: 2,
            batch: 64,
            rounds: 16,
            passes: 256,
            max_open: 100_000,
            max_history: 25_000,
            lock_scope: None,
            retention: Some(Duration::from_secs(90 * 24 * 3600)),
        }
    }
}

/// A registered workflow.
pub(crate) struct Workflow {
    pub(crate) machine: Machine,
    pub(crate) kind: ExecutionType,
}

/// One execution for [`Engine::start_many`] to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// Its name, unique within the workflow.
    pub name: String,
    /// Its input.
    pub input: Value,
    /// What to publish when it closes.
    pub completion: Option<Completion>,
}

/// What [`Engine::start`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The execution's id, `<workflow>/<name>`.
    pub id: String,
    /// When it started.
    pub started_ms: i64,
    /// `false`: it was already running with this input, and nothing new started.
    pub created: bool,
}

/// One page of [`Engine::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The executions, newest start first.
    pub executions: Vec<Description>,
    /// Pass back to get the next page; `None` on the last.
    pub next: Option<String>,
}

/// One page of [`Engine::history`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The events, in the order asked for.
    pub events: Vec<HistoryEvent>,
    /// Pass back to get the next page; `None` on the last.
    pub next: Option<String>,
}

#[derive(Default)]
struct Sched {
    ready: VecDeque<String>,
    queued: HashSet<String>,
    busy: HashSet<String>,
    timers: BinaryHeap<Reverse<(i64, String)>>,
    stops: step::Stops,
    /// Callbacks (task tokens) waiting for their execution's next step, in arrival order.
    callbacks: HashMap<String, Vec<Callback>>,
    /// Callers of [`Engine::stop`] waiting for their execution to close, told when the
    /// batch that closed it has committed and settled.
    stop_waiters: HashMap<String, Vec<std::sync::mpsc::Sender<()>>>,
    /// Executions whose workflow is not registered, by workflow.
    parked: HashMap<String, Vec<String>>,
    /// Open executions.
    open: usize,
}

impl Sched {
    fn ready(&mut self, id: String) {
        if self.queued.insert(id.clone()) {
            self.ready.push_back(id);
        }
    }
}

/// What the executor threads share.
pub(crate) struct Inner {
    pub(crate) backend: Arc<dyn StateBackend>,
    pub(crate) tasks: Arc<dyn SessionTasks>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: OsRandom,
    pub(crate) objects: Arc<dyn Objects>,
    pub(crate) config: Config,
    /// The lock scope the executors' sessions take, with a generation each executor checks
    /// before a batch: it starts as `config.lock_scope` and widens when a stage gains grants
    /// (see [`Engine::widen_lock_scope`]).
    scope: RwLock<(u64, Option<LockScope>)>,
    workflows: RwLock<HashMap<String, Arc<Workflow>>>,
    sched: Mutex<Sched>,
    wake: Condvar,
    /// The executions' states as last committed (Express: as last stepped), by id.
    cache: Mutex<HashMap<String, Stored>>,
    /// Starts are serialized: a name is checked and created under it.
    starting: Mutex<()>,
    pub(crate) stopping: AtomicBool,
    /// See [`Engine::on_outbox`].
    on_outbox: RwLock<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl Inner {
    pub(crate) fn workflow(&self, name: &str) -> Option<Arc<Workflow>> {
        self.workflows.read().get(name).cloned()
    }

    /// The execution's state, for the batch about to step it: taken out of the cache (the
    /// batch is its one writer, and `settle` puts the new state back; a batch that fails
    /// leaves it to be read from the store again), else as stored.
    pub(crate) fn load(
        &self,
        session: &mut Box<dyn StateSession>,
        id: &str,
    ) -> Result<Option<Stored>, Abort> {
        if let Some(s) = self.cache.lock().remove(id) {
            return Ok(Some(s));
        }
        match session.get_record(RecordTable::Executions, id)? {
            None => Ok(None),
            Some(b) => Stored::decode(&b).map(Some).map_err(Abort::Fault),
        }
    }

    /// The stops and callbacks queued for `ids`, taken for a batch.
    pub(crate) fn take_commands(&self, ids: &[String]) -> Commands {
        let mut sched = self.sched.lock();
        let mut c = Commands::default();
        for id in ids {
            if let Some(s) = sched.stops.remove(id) {
                c.stops.insert(id.clone(), s);
            }
            if let Some(cb) = sched.callbacks.remove(id) {
                c.callbacks.insert(id.clone(), cb);
            }
        }
        c
    }

    /// Put back the commands of a batch that did not commit, ahead of any queued since.
    fn restore(&self, c: Commands) {
        let mut sched = self.sched.lock();
        for (id, s) in c.stops {
            sched.stops.entry(id).or_insert(s);
        }
        for (id, mut cb) in c.callbacks {
            let later = sched.callbacks.remove(&id).unwrap_or_default();
            cb.extend(later);
            sched.callbacks.insert(id, cb);
        }
    }

    /// Queue `cb` for the execution `id` and make it runnable.
    pub(crate) fn queue_callback(&self, id: &str, cb: Callback) {
        let mut sched = self.sched.lock();
        sched.callbacks.entry(id.to_owned()).or_default().push(cb);
        if !sched.busy.contains(id) {
            sched.ready(id.to_owned());
        }
        drop(sched);
        self.wake.notify_all();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn env(&self) -> Env<'_> {
        Env {
            clock: self.clock.as_ref(),
            random: &self.random,
            objects: self.objects.as_ref(),
        }
    }

    /// Up to `batch` runnable executions, marked busy; waits for one. `None` once stopping.
    fn next_batch(&self) -> Option<Vec<String>> {
        let mut sched = self.sched.lock();
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            let now = self.clock.now_ms();
            while let Some(Reverse((due, _))) = sched.timers.peek() {
                if *due > now {
                    break;
                }
                let Some(Reverse((_, id))) = sched.timers.pop() else {
                    break;
                };
                if !sched.busy.contains(&id) {
                    sched.ready(id);
                }
            }
            let mut batch = Vec::new();
            let mut skipped = Vec::new();
            while batch.len() < self.config.batch {
                let Some(id) = sched.ready.pop_front() else {
                    break;
                };
                if sched.busy.contains(&id) {
                    skipped.push(id);
                    continue;
                }
                sched.queued.remove(&id);
                sched.busy.insert(id.clone());
                batch.push(id);
            }
            sched.ready.extend(skipped);
            if !batch.is_empty() {
                return Some(batch);
            }
            // Sleep until the next timer (on the injected clock, re-checked at least every
            // 50 ms so a clock moved by a test is noticed), or until woken.
            let wait = sched
                .timers
                .peek()
                .map_or(50, |Reverse((due, _))| (*due - now).clamp(1, 50));
            self.wake
                .wait_for(&mut sched, Duration::from_millis(wait as u64));
        }
    }

    /// Record what became of a committed batch.
    fn settle(&self, results: step::Settled, staged: bool) {
        if staged && let Some(hook) = self.on_outbox.read().clone() {
            hook();
        }
        let mut cache = self.cache.lock();
        let mut sched = self.sched.lock();
        for (id, stored, after) in results {
            sched.busy.remove(&id);
            match after {
                After::Closed(ended) => {
                    cache.remove(&id);
                    if ended {
                        sched.open = sched.open.saturating_sub(1);
                        if let Some(s) = &stored {
                            metrics::counter!(
                                "sluice_executions_closed_total",
                                "workflow" => s.execution.workflow().to_owned(),
                                "status" => keys::status_name(s.execution.status)
                            )
                            .increment(1);
                        }
                    }
                    // Closed, by a stop or on its own: a stop asked for meanwhile has
                    // nothing left to do, and whoever waits for one hears it now.
                    sched.stops.remove(&id);
                    for w in sched.stop_waiters.remove(&id).into_iter().flatten() {
                        let _ = w.send(());
                    }
                }
                After::Parked(w) => {
                    cache.remove(&id);
                    // Registered since the step looked: `register` may already have emptied
                    // the parked list, so run it now rather than park it for good.
                    if self.workflows.read().contains_key(&w) {
                        sched.ready(id);
                    } else {
                        sched.parked.entry(w).or_default().push(id);
                    }
                }
                other => {
                    if let Some(s) = stored {
                        cache.insert(id.clone(), s);
                    }
                    match other {
                        After::Due(at) => sched.timers.push(Reverse((at, id.clone()))),
                        After::Ready => sched.ready(id.clone()),
                        _ => {}
                    }
                    // A stop or callback asked for while it was busy: step it again now.
                    if sched.stops.contains_key(&id) || sched.callbacks.contains_key(&id) {
                        sched.ready(id);
                    }
                }
            }
        }
        drop(sched);
        self.wake.notify_all();
    }

    /// Give a failed batch back to the queue.
    fn requeue(&self, ids: &[String]) {
        let mut sched = self.sched.lock();
        for id in ids {
            sched.busy.remove(id);
            sched.ready(id.clone());
        }
        drop(sched);
        self.wake.notify_all();
    }

    fn executor(self: &Arc<Self>) {
        let mut session = self.backend.session();
        let mut generation = {
            let scope = self.scope.read();
            session.set_lock_scope(scope.1.clone());
            scope.0
        };
        let mut faults = 0_u32;
        while let Some(ids) = self.next_batch() {
            {
                // Widened since the last batch: this batch takes the new scope's locks.
                let scope = self.scope.read();
                if scope.0 != generation {
                    session.set_lock_scope(scope.1.clone());
                    generation = scope.0;
                }
            }
            let commands = self.take_commands(&ids);
            let mut result = step::step_batch(self, &mut session, &ids, &commands, false);
            if let Err(Abort::Duplicate(id)) = &result {
                tracing::debug!(task = %id, "a step met a Task already committed; stepping again with look-ups");
                session.rollback();
                result = step::step_batch(self, &mut session, &ids, &commands, true);
            }
            match result {
                Ok(batch) => {
                    faults = 0;
                    self.settle(batch.settled, batch.staged);
                    // Committed: now the callers hear what their callbacks did.
                    commands.reply(batch.outcomes);
                }
                Err(e) => {
                    session.rollback();
                    self.restore(commands);
                    faults = faults.saturating_add(1);
                    let why = match e {
                        Abort::Duplicate(id) => format!("the Task {id} was committed twice"),
                        Abort::Fault(f) => f,
                    };
                    tracing::warn!(
                        "a batch of {} executions did not commit ({why}); retrying",
                        ids.len()
                    );
                    // Nothing of the batch applied: its executions step again from their
                    // committed states, after a pause that grows while the fault lasts.
                    self.cache.lock().retain(|k, _| !ids.contains(k));
                    let pause = 10_u64.saturating_mul(1 << faults.min(9)).min(5_000);
                    std::thread::sleep(Duration::from_millis(pause));
                    session.await_healthy(Duration::from_secs(5));
                    self.requeue(&ids);
                }
            }
        }
    }
}

/// Durable executions of registered workflows; see the crate docs.
pub struct Engine {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `backend`, its Tasks run by `tasks`: every execution left open in the
    /// store resumes from its last committed step once its workflow is registered.
    pub fn open(
        backend: Arc<dyn StateBackend>,
        tasks: Arc<dyn SessionTasks>,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<Self, EngineError> {
        let scope = RwLock::new((0, config.lock_scope.clone()));
        let inner = Arc::new(Inner {
            backend,
            tasks,
            clock,
            random: OsRandom,
            objects: Arc::new(NoObjects),
            config,
            scope,
            workflows: RwLock::default(),
            sched: Mutex::default(),
            wake: Condvar::new(),
            cache: Mutex::default(),
            starting: Mutex::new(()),
            stopping: AtomicBool::new(false),
            on_outbox: RwLock::new(None),
        });
        // Every open execution is runnable: a due timer fires at once, a Task in flight when
        // the host died runs again (it never committed).
        let mut session = inner.backend.session();
        let prefix = keys::index_prefix(Status::Running, None);
        let mut after: Option<String> = None;
        loop {
            let page = session.scan_records(
                RecordTable::ExecutionIndex,
                &Scan {
                    prefix: &prefix,
                    after: after.as_deref(),
                    limit: 1024,
                    reverse: false,
                },
            )?;
            let mut sched = inner.sched.lock();
            for (k, _) in &page {
                // RUNNING/<workflow>/<start>/<name>
                let mut parts = k.splitn(4, '/').skip(1);
                if let (Some(w), Some(_), Some(n)) = (parts.next(), parts.next(), parts.next()) {
                    sched.open += 1;
                    sched.ready(keys::execution(w, n));
                }
            }
            drop(sched);
            match page.last() {
                Some((k, _)) if page.len() == 1024 => after = Some(k.clone()),
                _ => break,
            }
        }
        let engine = Self {
            inner,
            threads: Mutex::new(Vec::new()),
        };
        let n = engine.inner.config.executors.max(1);
        for i in 0..n {
            let inner = engine.inner.clone();
            let t = std::thread::Builder::new()
                .name(format!("sluice-executor-{i}"))
                .spawn(move || inner.executor())
                .map_err(|e| EngineError::Store(format!("starting an executor thread: {e}")))?;
            engine.threads.lock().push(t);
        }
        let inner = engine.inner.clone();
        let sweeper = std::thread::Builder::new()
            .name("sluice-execution-sweeper".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                while !inner.stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                    if last.elapsed() >= crate::retention::EVERY {
                        last = std::time::Instant::now();
                        if let Err(e) = crate::retention::sweep(&inner, crate::retention::PER_SWEEP)
                        {
                            tracing::warn!("sweeping closed executions: {e}; next time");
                        }
                    }
                }
            })
            .map_err(|e| EngineError::Store(format!("starting the sweeper thread: {e}")))?;
        engine.threads.lock().push(sweeper);
        Ok(engine)
    }

    /// Serve ItemReaders from `objects` (none by default).
    pub fn set_objects(&mut self, objects: Arc<dyn Objects>) -> Result<(), EngineError> {
        Arc::get_mut(&mut self.inner)
            .map(|i| i.objects = objects)
            .ok_or_else(|| EngineError::Invalid("objects must be set before any use".into()))
    }

    /// Register (or replace) the workflow `name`; executions parked for it resume.
    pub fn register(
        &self,
        name: &str,
        machine: Machine,
        kind: ExecutionType,
    ) -> Result<(), EngineError> {
        if !keys::valid_name(name) {
            return Err(EngineError::Invalid(format!(
                "'{name}' is not a valid workflow name"
            )));
        }
        // An Express execution keeps no state between its start and its end, so nothing
        // could hold its place while it waits for a token (AWS refuses this too).
        if kind == ExecutionType::Express && machine.uses_task_tokens() {
            return Err(EngineError::Invalid(format!(
                "the EXPRESS workflow '{name}' has a .waitForTaskToken Task: only STANDARD workflows wait for task tokens"
            )));
        }
        self.inner
            .workflows
            .write()
            .insert(name.to_owned(), Arc::new(Workflow { machine, kind }));
        let mut sched = self.inner.sched.lock();
        for id in sched.parked.remove(name).unwrap_or_default() {
            sched.ready(id);
        }
        drop(sched);
        self.inner.wake.notify_all();
        Ok(())
    }

    /// Let the Tasks' sessions lock `buckets` and `tables` too, from each executor's next
    /// batch: a stage deployed (or given grants) while the engine runs can use its state in a
    /// Task. An unscoped engine (it locks the whole store) stays unscoped.
    pub fn widen_lock_scope(&self, buckets: &[String], tables: &[String]) {
        let mut scope = self.inner.scope.write();
        let Some(s) = scope.1.as_mut() else { return };
        let before = (s.buckets.len(), s.tables.len());
        for b in buckets {
            if !s.buckets.contains(b) {
                s.buckets.push(b.clone());
            }
        }
        for t in tables {
            if !s.tables.contains(t) {
                s.tables.push(t.clone());
            }
        }
        if (s.buckets.len(), s.tables.len()) != before {
            s.buckets.sort();
            s.tables.sort();
            scope.0 += 1;
        }
    }

    /// Forget the workflow `name` (its closed executions stay readable); false if it was not
    /// registered. The caller makes sure none of its executions runs: one would park until
    /// the workflow is registered again.
    pub fn unregister(&self, name: &str) -> bool {
        self.inner.workflows.write().remove(name).is_some()
    }

    /// The registered workflows and their types, by name.
    pub fn workflows(&self) -> Vec<(String, ExecutionType)> {
        let mut out: Vec<(String, ExecutionType)> = self
            .inner
            .workflows
            .read()
            .iter()
            .map(|(n, w)| (n.clone(), w.kind))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Start the execution `name` of `workflow` on `input`, durably: when this returns
    /// `Ok`, the start is committed. Idempotent as AWS defines it (see the crate docs).
    pub fn start(&self, workflow: &str, name: &str, input: Value) -> Result<Started, EngineError> {
        let start = Start {
            name: name.to_owned(),
            input,
            completion: None,
        };
        self.start_many(workflow, vec![start])?
            .pop()
            .expect("one result per start")
    }

    /// Start many executions of `workflow` in one commit (one fsync), each as
    /// [`Engine::start`] would; a result per start, in order. `Err` only when nothing could be
    /// committed (the store failed, the engine is stopping, the workflow is unknown).
    pub fn start_many(
        &self,
        workflow: &str,
        starts: Vec<Start>,
    ) -> Result<Vec<Result<Started, EngineError>>, EngineError> {
        if self.inner.stopping.load(Ordering::SeqCst) {
            return Err(EngineError::Stopping);
        }
        let wf = self
            .inner
            .workflow(workflow)
            .ok_or_else(|| EngineError::WorkflowDoesNotExist(workflow.to_owned()))?;
        let _one_at_a_time = self.inner.starting.lock();
        let mut session = self.inner.backend.session();
        let env = self.inner.env();
        let mut open = self.inner.sched.lock().open;
        let mut results = Vec::with_capacity(starts.len());
        let mut created = Vec::new();
        for start in starts {
            let r = (|| {
                if !keys::valid_name(&start.name) {
                    return Err(EngineError::Invalid(format!(
                        "'{}' is not a valid execution name",
                        start.name
                    )));
                }
                let id = keys::execution(workflow, &start.name);
                if let Some(bytes) = session.get_record(RecordTable::Executions, &id)? {
                    let existing = Stored::decode(&bytes).map_err(EngineError::Store)?;
                    let e = &existing.execution;
                    if e.status == Status::Running && *e.input() == start.input {
                        return Ok(Started {
                            id,
                            started_ms: e.started_ms(),
                            created: false,
                        });
                    }
                    return Err(EngineError::ExecutionAlreadyExists(id));
                }
                if open >= self.inner.config.max_open {
                    return Err(EngineError::ExecutionLimitExceeded(open));
                }
                let execution =
                    Execution::start(&wf.machine, workflow, &start.name, start.input, &env);
                let started_ms = execution.started_ms();
                let mut stored = Stored::new(wf.kind, start.completion, execution);
                session.put_record(
                    RecordTable::ExecutionIndex,
                    &keys::index(Status::Running, workflow, started_ms, &start.name),
                    Some(Vec::new()),
                )?;
                step::persist(&mut session, &id, &mut stored)?;
                open += 1;
                created.push(id.clone());
                Ok(Started {
                    id,
                    started_ms,
                    created: true,
                })
            })();
            results.push(r);
        }
        if let Err(e) = session.commit() {
            return Err(EngineError::Store(e.to_string()));
        }
        // Not cached: between the commit and here, a stop may already have stepped and
        // settled an execution, and caching the state started would bring back an older one.
        metrics::counter!("sluice_executions_started_total", "workflow" => workflow.to_owned())
            .increment(created.len() as u64);
        let mut sched = self.inner.sched.lock();
        sched.open += created.len();
        for id in created {
            sched.ready(id);
        }
        drop(sched);
        self.inner.wake.notify_all();
        Ok(results)
    }

    /// Call `hook` after every batch commit that staged messages in the outbox (a publishing
    /// Task's, a closed execution's completion), to publish them.
    pub fn on_outbox(&self, hook: Arc<dyn Fn() + Send + Sync>) {
        *self.inner.on_outbox.write() = Some(hook);
    }

    /// The execution `id` (`<workflow>/<name>`) as last committed.
    pub fn describe(&self, id: &str) -> Result<Description, EngineError> {
        let mut session = self.inner.backend.session();
        let bytes = session
            .get_record(RecordTable::Executions, id)?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(id.to_owned()))?;
        let stored = Stored::decode(&bytes).map_err(EngineError::Store)?;
        Ok(stored.describe(id))
    }

    /// `workflow`'s executions with `status`, newest start first, `limit` a page, from the
    /// page token `next` of the previous page.
    pub fn list(
        &self,
        workflow: &str,
        status: Status,
        limit: usize,
        next: Option<&str>,
    ) -> Result<Listed, EngineError> {
        let mut session = self.inner.backend.session();
        let prefix = keys::index_prefix(status, Some(workflow));
        let rows = session.scan_records(
            RecordTable::ExecutionIndex,
            &Scan {
                prefix: &prefix,
                after: next,
                limit: limit.max(1),
                reverse: true,
            },
        )?;
        let mut executions = Vec::with_capacity(rows.len());
        for (k, _) in &rows {
            if let Some(name) = k.rsplit('/').next() {
                let id = keys::execution(workflow, name);
                if let Some(b) = session.get_record(RecordTable::Executions, &id)? {
                    let s = Stored::decode(&b).map_err(EngineError::Store)?;
                    executions.push(s.describe(&id));
                }
            }
        }
        let next = (rows.len() == limit.max(1))
            .then(|| rows.last().map(|(k, _)| k.clone()))
            .flatten();
        Ok(Listed { executions, next })
    }

    /// The history of `id` in event order (or `reverse`), `limit` a page, from the page
    /// token `next` of the previous page. Express executions keep none.
    pub fn history(
        &self,
        id: &str,
        reverse: bool,
        limit: usize,
        next: Option<&str>,
    ) -> Result<HistoryPage, EngineError> {
        let mut session = self.inner.backend.session();
        if session.get_record(RecordTable::Executions, id)?.is_none() {
            return Err(EngineError::ExecutionDoesNotExist(id.to_owned()));
        }
        let after = match next {
            None => None,
            Some(t) => Some(t.parse::<u64>().map_err(|_| {
                EngineError::Invalid(format!("'{t}' is not a page token of this history"))
            })?),
        };
        let (events, more) = crate::history::page(&mut session, id, reverse, limit, after)?;
        let next = more
            .then(|| events.last().map(|e| e.id.to_string()))
            .flatten();
        Ok(HistoryPage { events, next })
    }

    /// Stop the execution `id` (`ABORTED`, with `error` and `cause`); returns once it is
    /// committed. Stopping a closed execution changes nothing.
    pub fn stop(
        &self,
        id: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<Description, EngineError> {
        let d = self.describe(id)?;
        if d.status != Status::Running {
            return Ok(d);
        }
        let (told, closed) = std::sync::mpsc::channel();
        {
            let mut sched = self.inner.sched.lock();
            sched.stops.insert(
                id.to_owned(),
                (error.map(str::to_owned), cause.map(str::to_owned)),
            );
            sched
                .stop_waiters
                .entry(id.to_owned())
                .or_default()
                .push(told);
            if !sched.busy.contains(id) {
                sched.ready(id.to_owned());
            }
        }
        self.inner.wake.notify_all();
        // The executor applies it at its next step of the execution, and `settle` says when
        // that step is committed and settled: the executor no longer holds the execution,
        // so its slot among the open executions is free when this returns.
        loop {
            match closed.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => return self.describe(id),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if self.inner.stopping.load(Ordering::SeqCst) {
                        return Err(EngineError::Stopping);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(EngineError::Stopping);
                }
            }
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Executions open now.
    pub fn open_executions(&self) -> usize {
        self.inner.sched.lock().open
    }

    /// Wake the executors (after a test moved its clock).
    pub fn wake(&self) {
        self.inner.wake.notify_all();
    }

    /// Stop the executor threads after their current batches; open executions stay in the
    /// store and resume at the next [`Engine::open`].
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}
