//! Workflow Tasks on real stages: a [`TaskRunner`] that runs each Task as one event through a
//! stage component, on warm workers over an in-memory state backend.
//!
//! The engine's driver calls [`TaskRunner::run`] from several threads at once (Parallel
//! branches, Map iterations), while a [`Worker`] belongs to one thread at a time: each stage
//! keeps a pool of idle workers, a call takes one (or makes one when all are busy) and puts
//! it back afterwards, so a warm instance serves many Tasks without being shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;
use sluice_durable::SessionTasks;
use sluice_model::memory::MemoryBackend;
use sluice_model::names::SANDBOX_TIMEOUT;
use sluice_model::state::StateSession;
use sluice_model::state::{StateBackend, SystemClock, TableDef};
use sluice_model::{Event, StageError};
use sluice_runtime::{Invocation, Runtime, Stage, StageConfig, Worker};
use sluice_workflow::env::{Target, TaskRequest, TaskRunner};
use sluice_workflow::error::{StatesError, names};

use crate::up::StageDecl;

/// The error of a Task whose stage is not deployed. AWS would fail such a Task (its Lambda
/// does not exist) rather than the execution's machinery, so it is an ordinary, catchable
/// error and not `States.Runtime`.
pub(crate) const STAGE_NOT_FOUND: &str = "Sluice.StageNotFound";

/// The error of a Task whose stage's component cannot be read or deployed.
pub(crate) const DEPLOY_FAILED: &str = "Sluice.DeployFailed";

/// The part of a declaration file (`sluice up --config`) the workflow commands read: its
/// stages and tables. Other fields (triggers, retention) are allowed and ignored, so one
/// declaration serves both.
#[derive(Debug, Deserialize)]
struct StagesOnly {
    stages: Vec<StageDecl>,
    #[serde(default)]
    tables: Vec<TableDef>,
}

/// A stage the runner may deploy: where its component is and how it is configured.
struct Entry {
    name: String,
    path: PathBuf,
    config: StageConfig,
    /// Deployed on first use, once: a conformance run names four of the thirty guests.
    stage: OnceLock<Result<Arc<Stage>, String>>,
    /// The component's bytes, read on first use, for redeploying under a shorter deadline.
    bytes: OnceLock<Result<Arc<Vec<u8>>, String>>,
}

/// Idle workers of one deployed stage (one per distinct Task deadline).
struct Pool {
    /// The version it was made for (its stage may be that version redeployed under a
    /// shorter deadline): a pool of another version than the live one is replaced.
    base: Arc<Stage>,
    stage: Arc<Stage>,
    idle: Mutex<Vec<Worker>>,
}

/// A pool's key: the stage, and its deadline in ms when a Task's timeout shortened it.
type PoolKey = (String, Option<u64>);

/// Runs Tasks on stage components.
pub(crate) struct StageTasks {
    runtime: Runtime,
    /// By name with `_` written `-`, so `validate_order` and `validate-order` are one stage.
    entries: HashMap<String, Entry>,
    backend: MemoryBackend,
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    /// When set, each Task runs its stage's live version as this says (a host whose stages
    /// change over the API), not the version it was built with.
    live: Option<Arc<crate::stages::LiveStages>>,
}

fn key(name: &str) -> String {
    name.replace('_', "-")
}

impl StageTasks {
    /// Every `*.wasm` file in `dir`, each a stage named after its file stem, with default
    /// limits and no grants.
    pub(crate) fn from_dir(runtime: &Runtime, dir: &Path) -> anyhow::Result<Self> {
        let mut stages = Vec::new();
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "wasm")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                stages.push((stem.to_owned(), path.clone(), StageConfig::default()));
            }
        }
        Ok(Self::new(runtime, stages, Vec::new()))
    }

    /// The stages of the declaration `file`, their components relative to `components`
    /// (default: the file's folder), as `sluice up` reads them.
    pub(crate) fn from_declaration(
        runtime: &Runtime,
        file: &Path,
        components: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let decl: StagesOnly = serde_json::from_str(&text)
            .with_context(|| format!("parsing the declaration {}", file.display()))?;
        let base = components.unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")));
        let stages = decl
            .stages
            .into_iter()
            .map(|s| (s.name, base.join(&s.component), s.config))
            .collect();
        Ok(Self::new(runtime, stages, decl.tables))
    }

    /// The stages `sluice up` deployed (`components`: their bytes, by stage name, for
    /// redeploying one under a Task's shorter timeout).
    pub(crate) fn from_deployed(
        runtime: &Runtime,
        stages: &crate::up::Stages,
        components: &HashMap<String, Vec<u8>>,
        tables: Vec<TableDef>,
    ) -> Self {
        let mut tasks = Self::new(runtime, Vec::new(), tables);
        for (name, stage) in stages {
            let entry = Entry {
                name: name.clone(),
                path: PathBuf::from(name),
                config: stage.config().clone(),
                stage: OnceLock::from(Ok(stage.clone())),
                bytes: OnceLock::new(),
            };
            if let Some(b) = components.get(name) {
                let _ = entry.bytes.set(Ok(Arc::new(b.clone())));
            }
            tasks.entries.insert(key(name), entry);
        }
        tasks
    }

    fn new(
        runtime: &Runtime,
        stages: Vec<(String, PathBuf, StageConfig)>,
        tables: Vec<TableDef>,
    ) -> Self {
        let entries = stages
            .into_iter()
            .map(|(name, path, config)| {
                let entry = Entry {
                    name: name.clone(),
                    path,
                    config,
                    stage: OnceLock::new(),
                    bytes: OnceLock::new(),
                };
                (key(&name), entry)
            })
            .collect();
        Self {
            runtime: runtime.clone(),
            entries,
            backend: MemoryBackend::new(tables, Arc::new(SystemClock)),
            pools: Mutex::new(HashMap::new()),
            live: None,
        }
    }

    /// Run each Task on its stage's live version in `live`, looked up at each Task, so a
    /// redeploy takes over at the next Task and a stage uploaded later is found.
    pub(crate) fn following(mut self, live: Arc<crate::stages::LiveStages>) -> Self {
        self.live = Some(live);
        self
    }

    /// Whether `stage` names a stage this runner has.
    pub(crate) fn knows(&self, stage: &str) -> bool {
        self.entries.contains_key(&key(stage))
    }

    /// Run `input` through `stage` as the event `id`, under the Task's `timeout_seconds` and
    /// `heartbeat_seconds`, and commit its effects. A stage sends no heartbeats, so the
    /// earlier of the two is the Task's deadline, reported as `States.HeartbeatTimeout` or
    /// `States.Timeout`.
    pub(crate) fn run_event(
        &self,
        stage: &str,
        id: &str,
        input: &Value,
        timeout_seconds: Option<u64>,
        heartbeat_seconds: Option<u64>,
    ) -> Result<Value, StatesError> {
        self.with_worker(
            stage,
            id,
            input,
            (timeout_seconds, heartbeat_seconds),
            |w, e| w.invoke(e),
        )
    }

    /// Run one Task event on a pooled worker of `stage` through `call` and map its outcome
    /// to the Task's result.
    fn with_worker(
        &self,
        stage: &str,
        id: &str,
        input: &Value,
        limits: (Option<u64>, Option<u64>),
        call: impl FnOnce(&mut Worker, &Event) -> Invocation,
    ) -> Result<Value, StatesError> {
        let event = task_event(id, input);
        let mut out = self.with_workers(stage, limits, std::slice::from_ref(&event), |w, e| {
            vec![call(w, &e[0])]
        })?;
        out.pop().expect("one result per event")
    }

    /// Run Task `events` of `stage` (all under the same `limits`) on one pooled worker
    /// through `call`, and map each outcome to its Task's result. `Err`: none could run (the
    /// stage is not deployed).
    fn with_workers(
        &self,
        stage: &str,
        (timeout_seconds, heartbeat_seconds): (Option<u64>, Option<u64>),
        events: &[Event],
        call: impl FnOnce(&mut Worker, &[Event]) -> Vec<Invocation>,
    ) -> Result<Vec<Result<Value, StatesError>>, StatesError> {
        let heartbeat_first = match (heartbeat_seconds, timeout_seconds) {
            (Some(h), Some(t)) => h < t,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let (limit, expired) = if heartbeat_first {
            (heartbeat_seconds, names::HEARTBEAT_TIMEOUT)
        } else {
            (timeout_seconds, names::TIMEOUT)
        };
        let current;
        let entry = match self.live.as_ref().and_then(|l| l.get(stage)) {
            Some((live, bytes)) => {
                current = Entry {
                    name: live.name().to_owned(),
                    path: PathBuf::from(live.name()),
                    config: live.config().clone(),
                    stage: OnceLock::from(Ok(live)),
                    bytes: OnceLock::from(Ok(bytes)),
                };
                &current
            }
            None => self
                .entries
                .get(&key(stage))
                .filter(|_| self.live.is_none())
                .ok_or_else(|| {
                    StatesError::new(
                        STAGE_NOT_FOUND,
                        format!(
                            "No stage named '{stage}' is deployed (none of the components offers it)"
                        ),
                    )
                })?,
        };
        let (pool, task_deadline) = self
            .pool(entry, limit)
            .map_err(|e| StatesError::new(DEPLOY_FAILED, e))?;
        let worker = pool.idle.lock().ok().and_then(|mut w| w.pop());
        let mut worker =
            worker.unwrap_or_else(|| Worker::new(pool.stage.clone(), self.backend.session()));
        let invocations = call(&mut worker, events);
        if let Ok(mut idle) = pool.idle.lock() {
            idle.push(worker);
        }
        Ok(events
            .iter()
            .zip(invocations)
            .map(|(e, inv)| task_result(&e.id, inv, task_deadline, expired))
            .collect())
    }

    /// The pool for `entry` under a Task timeout, and whether that timeout is the binding
    /// deadline. A timeout shorter than the stage's deadline needs a stage deployed with the
    /// shorter one (the deadline is part of a stage's limits); the artifact cache makes that
    /// redeploy a reload, not a compile.
    fn pool(
        &self,
        entry: &Entry,
        timeout_seconds: Option<u64>,
    ) -> Result<(Arc<Pool>, bool), String> {
        let base = entry
            .stage
            .get_or_init(|| {
                let bytes = self.bytes(entry)?;
                self.runtime
                    .deploy(&entry.name, &bytes, entry.config.clone())
                    .inspect(|s| eprintln!("deployed {} ({:?})", entry.name, s.cache_outcome()))
                    .map_err(|e| format!("deploying stage {}: {e}", entry.name))
            })
            .clone()?;
        let stage_deadline = base.config().limits.deadline;
        let task = timeout_seconds.map(|s| Duration::from_secs(s.max(1)));
        let (deadline_ms, binding) = match task {
            Some(t) if t < stage_deadline => (Some(millis(t)), true),
            Some(t) => (None, t == stage_deadline),
            None => (None, false),
        };
        let mut pools = self.pools.lock().map_err(|e| e.to_string())?;
        let k = (key(&entry.name), deadline_ms);
        if let Some(p) = pools.get(&k)
            && Arc::ptr_eq(&p.base, &base)
        {
            return Ok((p.clone(), binding));
        }
        let stage = match deadline_ms {
            None => base.clone(),
            Some(ms) => {
                let mut config = entry.config.clone();
                config.limits.deadline = Duration::from_millis(ms);
                self.runtime
                    .deploy(&entry.name, &self.bytes(entry)?, config)
                    .map_err(|e| format!("deploying stage {}: {e}", entry.name))?
            }
        };
        let pool = Arc::new(Pool {
            base,
            stage,
            idle: Mutex::new(Vec::new()),
        });
        pools.insert(k, pool.clone());
        Ok((pool, binding))
    }

    fn bytes(&self, entry: &Entry) -> Result<Arc<Vec<u8>>, String> {
        entry
            .bytes
            .get_or_init(|| {
                std::fs::read(&entry.path)
                    .map(Arc::new)
                    .map_err(|e| format!("reading {}: {e}", entry.path.display()))
            })
            .clone()
    }
}

/// The event a Task runs as.
fn task_event(id: &str, input: &Value) -> Event {
    let mut event = Event::json(id, input);
    event.kind = "sluice.workflow.task".into();
    event.source = "sluice-workflow".into();
    event
}

/// A Task's result from its event's invocation; `task_deadline`: the Task's own timeout (its
/// `expired` error) was the binding deadline.
fn task_result(
    id: &str,
    inv: Invocation,
    task_deadline: bool,
    expired: &str,
) -> Result<Value, StatesError> {
    if inv.replayed.is_some() && inv.outcome.is_ok() {
        // Only the output's digest is kept in a dedupe record: a replayed success has no
        // output to give the workflow. The durable engine answers committed Tasks from their
        // stored results before it gets here, so this is a bug worth naming.
        return Err(StatesError::new(
            names::RUNTIME,
            format!("The event '{id}' was already processed; its output is not kept"),
        ));
    }
    match inv.outcome {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))),
        Err(StageError { name, .. }) if name == SANDBOX_TIMEOUT && task_deadline => {
            // The Task's TimeoutSeconds (or HeartbeatSeconds) ended it, not the stage's own
            // deadline: AWS reports that as States.Timeout (States.HeartbeatTimeout) with no
            // cause.
            Err(StatesError::new(expired, ""))
        }
        Err(StageError { name, cause, .. }) => Err(StatesError::new(name, cause)),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Durable Tasks: the Task's effects stay in the engine's batch session, committed with the
/// step that consumes its result. A fault of the platform under the Task (the store failed)
/// is the engine's to retry, never the Task's error.
impl SessionTasks for StageTasks {
    fn run(
        &self,
        session: &mut Box<dyn StateSession>,
        event_id: &str,
        req: &TaskRequest,
    ) -> Result<Result<Value, StatesError>, String> {
        // The engine publishes a publishing Task's messages itself.
        let Some(stage) = req.stage() else {
            return Err(format!("the Task {event_id} runs no stage"));
        };
        let result = self.with_worker(
            stage,
            event_id,
            &req.input,
            (req.timeout_seconds, req.heartbeat_seconds),
            |w, e| w.run_in(session, std::slice::from_ref(e)).remove(0),
        );
        match result {
            Err(e) if sluice_model::names::is_platform_fault(&e.error) => Err(e.cause),
            r => Ok(r),
        }
    }

    /// Consecutive Tasks of one stage under the same limits run as one batch on one worker
    /// (the stage's `handle-batch`, when it has one).
    fn run_many(
        &self,
        session: &mut Box<dyn StateSession>,
        tasks: &[(&str, &TaskRequest)],
    ) -> Result<Vec<Result<Value, StatesError>>, String> {
        let mut out = Vec::with_capacity(tasks.len());
        for group in tasks.chunk_by(|a, b| {
            a.1.stage() == b.1.stage()
                && (a.1.timeout_seconds, a.1.heartbeat_seconds)
                    == (b.1.timeout_seconds, b.1.heartbeat_seconds)
        }) {
            let req = group[0].1;
            let Some(stage) = req.stage() else {
                return Err(format!("the Task {} runs no stage", group[0].0));
            };
            let events: Vec<Event> = group
                .iter()
                .map(|(id, r)| task_event(id, &r.input))
                .collect();
            let results = match self.with_workers(
                stage,
                (req.timeout_seconds, req.heartbeat_seconds),
                &events,
                |w, e| w.run_in(session, e),
            ) {
                Ok(r) => r,
                // Not deployed: each Task fails with that error.
                Err(e) => vec![Err(e); group.len()],
            };
            for r in results {
                match r {
                    Err(e) if sluice_model::names::is_platform_fault(&e.error) => {
                        return Err(e.cause);
                    }
                    r => out.push(r),
                }
            }
        }
        Ok(out)
    }
}

/// In memory (`sluice workflow run`), a publishing Task has nowhere to publish: its messages
/// are printed to stderr, and their ids are made as the durable engine makes them.
impl TaskRunner for StageTasks {
    fn run(&self, req: &TaskRequest) -> Result<Value, StatesError> {
        match &req.target {
            Target::Stage(stage) => self.run_event(
                stage,
                &req.id,
                &req.input,
                req.timeout_seconds,
                req.heartbeat_seconds,
            ),
            Target::Publish(messages) => Ok(messages
                .iter()
                .enumerate()
                .map(|(n, m)| {
                    eprintln!("published to {}: {}", m.subject, m.data);
                    Value::String(format!("{}/{n}", req.id))
                })
                .collect()),
        }
    }
}
