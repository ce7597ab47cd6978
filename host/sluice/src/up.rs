//! `sluice up`: the long-lived host. Deploys the stages, opens the durable workflow engine
//! (when workflows are declared) and starts the triggers a declaration lists, over a data directory and a NATS server, until SIGTERM or Ctrl-C; then it finishes
//! the batches in flight, commits and acknowledges them, and drains the outbox. The
//! declaration comes from `--config` (and is then recorded in the data directory's
//! [`registry`]) or, without it, from the registry: a restarted host resumes
//! what it ran.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_durable::{Config as EngineConfig, Engine, ExecutionType};
use sluice_model::state::LockScope;
use sluice_model::state::{SystemClock, TableDef};
use sluice_nats::{OutboxRelay, TASK_CALLBACK_PREFIX, TaskCallbacks, TriggerConfig};
use sluice_workflow::run::WallClock;

use crate::workflow::tasks::StageTasks;
use sluice_runtime::{Runtime, Stage, StageConfig};
use sluice_store::{Store, StoreConfig};

use crate::registry::{Applied, Kind, Registry};
use crate::stages::{HostStages, LiveStages};
use crate::triggers::{HostTriggers, Triggers};
use crate::workflows::HostWorkflows;

/// The declaration file: stages, tables and triggers (the shape the HTTP API will accept).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Declaration {
    /// Stage components and their configuration.
    pub stages: Vec<StageDecl>,
    /// Tables and their secondary indexes.
    #[serde(default)]
    pub tables: Vec<TableDef>,
    /// Durable workflows (Amazon States Language), run by the durable engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<WorkflowDecl>,
    /// Streams bound to stages or workflows.
    pub triggers: Vec<TriggerDecl>,
    /// Dedupe retention in seconds (default: 7 days).
    #[serde(default = "default_retention")]
    pub dedupe_retention_secs: u64,
}

pub(crate) fn default_retention() -> u64 {
    7 * 24 * 3600
}

/// One stage.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageDecl {
    pub name: String,
    /// Path of the component, relative to `--components` (default: the declaration's folder).
    pub component: PathBuf,
    #[serde(default)]
    pub config: StageConfig,
}

/// One workflow: its name, its definition (a file, relative to the declaration's folder, or
/// the definition itself) and its type.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkflowDecl {
    pub name: String,
    /// A path (string) or the ASL definition (object); a path is read when the declaration
    /// is, and the registry keeps the definition itself.
    pub definition: serde_json::Value,
    /// STANDARD (default) or EXPRESS.
    #[serde(default, rename = "type")]
    pub kind: ExecutionType,
}

/// One trigger: the stage or the workflow it runs, and the trigger settings.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TriggerDecl {
    /// The stage each message runs through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The workflow each message starts an execution of (named after its event id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(flatten)]
    pub trigger: TriggerConfig,
}

/// Parse one trigger of a declaration (or of the API). serde does not enforce the trigger
/// settings' `deny_unknown_fields` through `#[serde(flatten)]`, so the settings are parsed
/// once more on their own: a misspelt `batch_sizes` is an error, not a silent default.
pub(crate) fn parse_trigger(v: &serde_json::Value) -> Result<TriggerDecl, serde_json::Error> {
    let decl: TriggerDecl = serde_json::from_value(v.clone())?;
    if let Some(obj) = v.as_object() {
        let mut settings = obj.clone();
        settings.remove("stage");
        settings.remove("workflow");
        serde_json::from_value::<TriggerConfig>(serde_json::Value::Object(settings))?;
    }
    Ok(decl)
}

/// What a host started by `sluice up` has beyond a demo's.
#[derive(Default)]
pub(crate) struct Extras {
    /// Where the triggers created over the API are recorded.
    pub registry: Option<Arc<Registry>>,
    /// The stages' live versions, for the workflows' Tasks to follow.
    pub live: Option<Arc<LiveStages>>,
}

/// A running host: the store, the relay, the workflow engine and one task per trigger.
pub(crate) struct Host {
    pub store: Store,
    relay: OutboxRelay,
    engine: Arc<Engine>,
    /// SendTaskSuccess / Failure / Heartbeat on `sluice.task.*`, while workflows run.
    callbacks: Option<tokio::task::JoinHandle<Result<(), String>>>,
    /// Stops the task callbacks.
    stop: tokio::sync::watch::Sender<bool>,
    pub triggers: Arc<Triggers>,
}

/// The deployed stages of a declaration, by name.
pub(crate) type Stages = HashMap<String, Arc<Stage>>;

/// Deploy every stage of `applied` (compiled, or reloaded from the artifact cache).
pub(crate) fn deploy(runtime: &Runtime, applied: &Applied) -> anyhow::Result<Stages> {
    let mut stages = HashMap::new();
    for s in &applied.decl.stages {
        let bytes = applied
            .components
            .get(&s.name)
            .with_context(|| format!("no component for stage {}", s.name))?;
        let stage = runtime
            .deploy(&s.name, bytes, s.config.clone())
            .with_context(|| format!("deploying stage {}", s.name))?;
        eprintln!("deployed {} ({:?})", s.name, stage.cache_outcome());
        stages.insert(s.name.clone(), stage);
    }
    Ok(stages)
}

/// Open the store in `data_dir` and start `decl`'s triggers on `js`, running the `stages`
/// [`deploy`] returned; triggers created later are recorded in `registry`, when given. Must
/// run inside a tokio runtime.
pub(crate) fn start(
    decl: Declaration,
    stages: &Stages,
    (components, runtime): (&HashMap<String, Vec<u8>>, &Runtime),
    data_dir: &Path,
    js: &async_nats::jetstream::Context,
    extras: Extras,
) -> anyhow::Result<Host> {
    std::fs::create_dir_all(data_dir)?;
    let store = Store::open(
        &data_dir.join("sluice.redb"),
        StoreConfig {
            tables: decl.tables.clone(),
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(decl.dedupe_retention_secs),
        },
    )?;
    store.spawn_sweeper(Duration::from_secs(60));
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Always on, so a workflow put over the API runs without a restart.
    let engine = start_engine(
        &decl,
        stages,
        (components, runtime),
        (&store, &relay),
        extras.live,
    )?;
    let callbacks = Some({
        let cb = TaskCallbacks::new(js.client(), engine.clone(), TASK_CALLBACK_PREFIX);
        tokio::spawn(cb.run(stopped))
    });
    let triggers = Arc::new(Triggers::new(
        js.clone(),
        (store.clone(), relay.clone()),
        Some(engine.clone()),
        extras.registry,
    ));
    for t in decl.triggers {
        let stage = match &t.stage {
            Some(s) => Some(
                stages
                    .get(s)
                    .with_context(|| format!("trigger {} names unknown stage {s}", t.trigger.name))?
                    .clone(),
            ),
            None => None,
        };
        triggers.start(t, stage)?;
    }
    Ok(Host {
        store,
        relay,
        engine,
        callbacks,
        stop,
        triggers,
    })
}

/// The durable workflow engine over the host's store, its Tasks on the deployed stages, every
/// declared workflow registered (so the executions a crash left open resume), and the outbox
/// drained whenever a step staged messages (a publishing Task's, an execution's end).
fn start_engine(
    decl: &Declaration,
    stages: &Stages,
    (components, runtime): (&HashMap<String, Vec<u8>>, &Runtime),
    (store, relay): (&Store, &OutboxRelay),
    live: Option<Arc<LiveStages>>,
) -> anyhow::Result<Arc<Engine>> {
    let mut tasks = StageTasks::from_deployed(runtime, stages, components, decl.tables.clone());
    if let Some(live) = live {
        tasks = tasks.following(live);
    }
    let mut scope = LockScope::default();
    for s in stages.values() {
        let grants = &s.config().grants;
        scope.buckets.extend(grants.kv_buckets.iter().cloned());
        scope
            .tables
            .extend(grants.tables.iter().map(|t| t.name.clone()));
    }
    scope.buckets.sort();
    scope.buckets.dedup();
    scope.tables.sort();
    scope.tables.dedup();
    let engine = Engine::open(
        Arc::new(store.clone()),
        Arc::new(tasks),
        Arc::new(WallClock),
        EngineConfig {
            lock_scope: Some(scope),
            // Closed executions are kept 90 days (as AWS keeps them), and never less than the
            // store keeps dedupe records: a name reused after its execution was swept must not
            // meet its predecessor's Task records.
            retention: Some(Duration::from_secs(
                (90 * 24 * 3600).max(decl.dedupe_retention_secs),
            )),
            ..EngineConfig::default()
        },
    )?;
    for w in &decl.workflows {
        let machine = sluice_workflow::definition::parse(&w.definition)
            .map_err(|e| anyhow::anyhow!("workflow {}: {e}", w.name))?;
        engine.register(&w.name, machine, w.kind)?;
    }
    let kick = Arc::new(tokio::sync::Notify::new());
    let k = kick.clone();
    engine.on_outbox(Arc::new(move || k.notify_one()));
    // Whatever a crash left in the outbox goes out at once, not at the next execution's end.
    spawn_drainer(relay.clone(), kick, "a workflow ended");
    Ok(Arc::new(engine))
}

impl Host {
    /// Finish the batches in flight, then drain the outbox. Returns whether every trigger
    /// ended cleanly.
    pub(crate) async fn shutdown(self) -> anyhow::Result<bool> {
        let clean = self.triggers.shutdown().await;
        self.stop.send(true).ok();
        if let Some(cb) = self.callbacks {
            match cb.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("task callbacks failed: {e}"),
                Err(e) => eprintln!("task callbacks panicked: {e}"),
            }
        }
        let engine = self.engine;
        // The executors finish their batches (open executions stay in the store).
        tokio::task::spawn_blocking(move || engine.shutdown()).await?;
        let drained = self.relay.drain().await.map_err(anyhow::Error::msg)?;
        eprintln!("outbox drained ({drained} published at shutdown)");
        Ok(clean)
    }

    pub(crate) fn trigger_count(&self) -> usize {
        self.triggers.count()
    }

    /// The durable workflow engine.
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

/// Read the declaration `file` (components relative to `components`, default the file's
/// folder).
pub(crate) fn read_declaration(file: &Path, components: Option<&Path>) -> anyhow::Result<Applied> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut decl: Declaration = serde_json::from_str(&text)
        .with_context(|| format!("parsing the declaration {}", file.display()))?;
    let raw: serde_json::Value = serde_json::from_str(&text)?;
    for (i, t) in raw["triggers"].as_array().into_iter().flatten().enumerate() {
        parse_trigger(t)
            .with_context(|| format!("parsing the declaration {}: trigger {i}", file.display()))?;
    }
    let folder = file.parent().unwrap_or(Path::new("."));
    for w in &mut decl.workflows {
        if let serde_json::Value::String(path) = &w.definition {
            let path = folder.join(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("workflow {}: reading {}", w.name, path.display()))?;
            w.definition = serde_json::from_str(&text)
                .with_context(|| format!("workflow {}: parsing {}", w.name, path.display()))?;
        }
    }
    let base = components.unwrap_or(folder);
    Applied::from_files(decl, base)
}

pub(crate) fn run(
    runtime: &Runtime,
    file: Option<&Path>,
    components: Option<&Path>,
    data_dir: &Path,
    (nats_url, listen): (Option<&str>, std::net::SocketAddr),
) -> anyhow::Result<ExitCode> {
    // Before anything is deployed: a stage takes its metric handles when it is.
    crate::metrics::install()?;
    let registry = Arc::new(Registry::open(data_dir)?);
    let decl = match file {
        Some(file) => {
            let applied = read_declaration(file, components)?;
            // Deployed before anything is recorded: a declaration that cannot deploy must
            // not replace the one that ran.
            let checked = deploy(runtime, &applied)?;
            let worlds = checked
                .iter()
                .map(|(n, s)| (n.clone(), world(s).to_owned()))
                .collect();
            registry.apply(&applied, &worlds)?;
            eprintln!(
                "declaration {} recorded in {}",
                file.display(),
                registry.path().display()
            );
            applied.decl
        }
        None => match registry.declaration()? {
            Some(decl) => decl,
            None => {
                eprintln!(
                    "no declaration yet ({} holds none): the host starts empty; apply one with --config FILE or deploy stages over the API",
                    registry.path().display()
                );
                Applied::empty().decl
            }
        },
    };
    // What runs is every stage's live version (the declaration's, or a later upload's).
    let live = deploy_live(runtime, &registry)?;
    // Without --nats, a nats-server of the host's own, stopped (gracefully) when it stops.
    let managed = match nats_url {
        Some(_) => None,
        None => {
            let store = data_dir.join("nats");
            let server = sluice_nats::LocalNatsServer::start_managed(&store)
                .context("starting the managed nats-server (or pass --nats URL)")?;
            eprintln!(
                "nats-server (managed) on {}, storing in {}",
                server.url(),
                store.display()
            );
            Some(server)
        }
    };
    let nats_url = managed
        .as_ref()
        .map_or_else(|| nats_url.unwrap_or_default().to_owned(), |s| s.url());
    let exit = serve(runtime, decl, live, registry, data_dir, (&nats_url, listen));
    if let Some(server) = managed {
        server.shutdown(Duration::from_secs(10));
    }
    exit
}

/// The registry's triggers or workflows, as a declaration's entries.
fn recorded<T: serde::de::DeserializeOwned>(
    registry: &Registry,
    kind: Kind,
) -> anyhow::Result<Vec<T>> {
    registry
        .records(kind)?
        .into_iter()
        .map(|(name, r)| {
            serde_json::from_value(r.definition)
                .with_context(|| format!("the registry's {kind:?} {name} does not parse"))
        })
        .collect()
}

/// `stage`, or `batch-stage` when the component also exports `handle-batch`.
pub(crate) fn world(stage: &Stage) -> &'static str {
    if stage.has_batch_export() {
        "batch-stage"
    } else {
        "stage"
    }
}

/// The live versions of the registry's stages, deployed.
pub(crate) struct Live {
    pub stages: Stages,
    /// Each stage's component, by name.
    pub components: HashMap<String, Vec<u8>>,
    /// The deployed versions, by (stage, version).
    pub versions: Vec<((String, u64), Arc<Stage>)>,
}

fn deploy_live(runtime: &Runtime, registry: &Registry) -> anyhow::Result<Live> {
    let mut live = Live {
        stages: HashMap::new(),
        components: HashMap::new(),
        versions: Vec::new(),
    };
    for (name, loaded) in registry.live()? {
        let stage = runtime
            .deploy(&name, &loaded.component, loaded.record.config)
            .with_context(|| format!("deploying stage {name} version {}", loaded.version))?;
        eprintln!(
            "deployed {name} version {} ({:?})",
            loaded.version,
            stage.cache_outcome()
        );
        live.versions
            .push(((name.clone(), loaded.version), stage.clone()));
        live.stages.insert(name.clone(), stage);
        live.components.insert(name, loaded.component);
    }
    Ok(live)
}

/// Drain `relay` whenever `kick` is notified (and once at once, for what a crash left).
pub(crate) fn spawn_drainer(
    relay: OutboxRelay,
    kick: Arc<tokio::sync::Notify>,
    what: &'static str,
) {
    kick.notify_one();
    tokio::spawn(async move {
        loop {
            kick.notified().await;
            if let Err(e) = relay.drain().await {
                tracing::warn!("draining the outbox after {what}: {e}; later");
            }
        }
    });
}

/// Connect to NATS at `nats_url`, start the host and its API, and serve until SIGTERM or
/// Ctrl-C.
fn serve(
    runtime: &Runtime,
    decl: Declaration,
    live: Live,
    registry: Arc<Registry>,
    data_dir: &Path,
    (nats_url, listen): (&str, std::net::SocketAddr),
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = async_nats::connect(nats_url)
            .await
            .with_context(|| format!("connecting to {nats_url}"))?;
        let js = async_nats::jetstream::new(client.clone());
        let mut decl = decl;
        // What runs is what the registry records: the declaration's triggers and workflows
        // and the API's.
        decl.triggers = recorded(&registry, Kind::Trigger)?;
        decl.workflows = recorded(&registry, Kind::Workflow)?;
        let live_stages = Arc::new(LiveStages::default());
        for (name, stage) in &live.stages {
            let bytes = Arc::new(live.components.get(name).cloned().unwrap_or_default());
            live_stages.set(name, stage.clone(), bytes);
        }
        let host = start(
            decl,
            &live.stages,
            (&live.components, runtime),
            data_dir,
            &js,
            Extras {
                registry: Some(registry.clone()),
                live: Some(live_stages.clone()),
            },
        )?;
        let kick = Arc::new(tokio::sync::Notify::new());
        spawn_drainer(host.relay.clone(), kick.clone(), "an invocation");
        let stages = Arc::new(HostStages::new(
            registry.clone(),
            runtime.clone(),
            host.store.clone(),
            (host.triggers.clone(), live_stages),
            kick,
            live.versions,
        ));
        let api = match crate::api::start(
            listen,
            data_dir,
            host.store.clone(),
            (client, js.clone()),
            stages.clone(),
            (
                Arc::new(HostTriggers {
                    triggers: host.triggers.clone(),
                    stages,
                }),
                Arc::new(HostWorkflows {
                    engine: host.engine().clone(),
                    registry: registry.clone(),
                    triggers: host.triggers.clone(),
                }),
            ),
            Arc::new(crate::metrics::HostMetrics {
                triggers: host.triggers.clone(),
                store: host.store.clone(),
                engine: host.engine().clone(),
            }),
        )
        .await
        {
            Ok(api) => api,
            Err(e) => {
                // The triggers already run: stop them as on SIGTERM before giving up.
                host.shutdown().await?;
                return Err(e);
            }
        };
        eprintln!(
            "api on http://{}/v1 (admin token in {})",
            api.addr,
            data_dir.join("admin.token").display()
        );
        eprintln!(
            "sluice is up: {} triggers on {nats_url}",
            host.trigger_count()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("shutting down: finishing the batches in flight");
        api.stop().await;
        let clean = host.shutdown().await?;
        eprintln!("bye");
        Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
