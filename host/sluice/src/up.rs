//! `sluice up`: the long-lived host. Deploys the stages and starts the triggers a declaration
//! lists, over a data directory and a NATS server, until SIGTERM or Ctrl-C; then it finishes
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
use sluice_model::state::{SystemClock, TableDef};
use sluice_nats::{OutboxRelay, Trigger, TriggerConfig};
use sluice_runtime::{Runtime, Stage, StageConfig};
use sluice_store::{Store, StoreConfig};

use crate::registry::{self, Applied};

/// The declaration file: stages, tables and triggers (the shape the HTTP API will accept).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Declaration {
    /// Stage components and their configuration.
    pub stages: Vec<StageDecl>,
    /// Tables and their secondary indexes.
    #[serde(default)]
    pub tables: Vec<TableDef>,
    /// Streams bound to stages.
    pub triggers: Vec<TriggerDecl>,
    /// Dedupe retention in seconds (default: 7 days).
    #[serde(default = "default_retention")]
    pub dedupe_retention_secs: u64,
}

fn default_retention() -> u64 {
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

/// One trigger: the stage it runs and the trigger settings.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TriggerDecl {
    pub stage: String,
    #[serde(flatten)]
    pub trigger: TriggerConfig,
}

/// A running host: the store, the relay and one task per trigger.
pub(crate) struct Host {
    pub store: Store,
    relay: OutboxRelay,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(
        String,
        tokio::task::JoinHandle<Result<sluice_nats::TriggerStats, sluice_nats::TriggerError>>,
    )>,
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
/// [`deploy`] returned. Must run inside a tokio runtime.
pub(crate) fn start(
    decl: Declaration,
    stages: &Stages,
    data_dir: &Path,
    js: &async_nats::jetstream::Context,
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
    let mut tasks = Vec::new();
    for t in decl.triggers {
        let stage = stages
            .get(&t.stage)
            .with_context(|| format!("trigger {} names unknown stage {}", t.trigger.name, t.stage))?
            .clone();
        let name = t.trigger.name.clone();
        let trigger = Trigger::new(js.clone(), t.trigger, stage, store.clone(), relay.clone());
        tasks.push((name, tokio::spawn(trigger.run(stopped.clone()))));
    }
    Ok(Host {
        store,
        relay,
        stop,
        tasks,
    })
}

impl Host {
    /// Finish the batches in flight, then drain the outbox. Returns whether every trigger
    /// ended cleanly.
    pub(crate) async fn shutdown(self) -> anyhow::Result<bool> {
        self.stop.send(true).ok();
        let mut clean = true;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(stats)) => eprintln!("trigger {name}: {stats:?}"),
                Ok(Err(e)) => {
                    eprintln!("trigger {name} failed: {e}");
                    clean = false;
                }
                Err(e) => {
                    eprintln!("trigger {name} panicked: {e}");
                    clean = false;
                }
            }
        }
        let drained = self.relay.drain().await.map_err(anyhow::Error::msg)?;
        eprintln!("outbox drained ({drained} published at shutdown)");
        Ok(clean)
    }

    pub(crate) fn triggers(&self) -> usize {
        self.tasks.len()
    }
}

/// Read the declaration `file` (components relative to `components`, default the file's
/// folder).
pub(crate) fn read_declaration(file: &Path, components: Option<&Path>) -> anyhow::Result<Applied> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let decl: Declaration = serde_json::from_str(&text)
        .with_context(|| format!("parsing the declaration {}", file.display()))?;
    let base = components.unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")));
    Applied::from_files(decl, base)
}

pub(crate) fn run(
    runtime: &Runtime,
    file: Option<&Path>,
    components: Option<&Path>,
    data_dir: &Path,
    nats_url: &str,
) -> anyhow::Result<ExitCode> {
    let applied = match file {
        Some(file) => read_declaration(file, components)?,
        None => registry::load(data_dir)?.with_context(|| {
            format!(
                "nothing to run: {} holds no declaration yet; pass --config FILE once",
                registry::path(data_dir).display()
            )
        })?,
    };
    // Deployed before anything is recorded: a declaration that cannot deploy must not replace
    // the one that ran.
    let stages = deploy(runtime, &applied)?;
    if let Some(file) = file {
        registry::save(data_dir, &applied)?;
        eprintln!(
            "declaration {} recorded in {}",
            file.display(),
            registry::path(data_dir).display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = async_nats::connect(nats_url)
            .await
            .with_context(|| format!("connecting to {nats_url}"))?;
        let js = async_nats::jetstream::new(client);
        let host = start(applied.decl, &stages, data_dir, &js)?;
        eprintln!("sluice is up: {} triggers on {nats_url}", host.triggers());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("shutting down: finishing the batches in flight");
        let clean = host.shutdown().await?;
        eprintln!("bye");
        Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
