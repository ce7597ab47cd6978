//! The host's running triggers, changeable while it runs: the API creates and deletes them
//! ([`sluice_api::TriggerService`]), each with its own stop signal, and every stage trigger
//! runs its stage through a [`StageSlot`] shared by all triggers of that stage, so moving the
//! stage's `live` alias hands each of their partitions the new version at its next batch.
//!
//! What runs is recorded in the registry (when the host has one): a restarted host starts
//! the same triggers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use sluice_api::triggers::Reply;
use sluice_api::{ConsumerState, Problem, StatusCode, TriggerInfo, TriggerService};
use sluice_durable::Engine;
use sluice_nats::{
    OutboxRelay, StageSlot, Trigger, TriggerConfig, TriggerError, TriggerStats, WorkflowTrigger,
    ensure_consumer,
};
use sluice_runtime::Stage;
use sluice_store::Store;
use tokio::sync::watch;

use crate::registry::{Kind, Record, Registry};
use crate::stages::HostStages;
use crate::up::TriggerDecl;

type Task = tokio::task::JoinHandle<Result<TriggerStats, TriggerError>>;

/// One running trigger.
struct Running {
    definition: Value,
    /// Its settings (for a stage trigger; `None` for a workflow's).
    config: Option<TriggerConfig>,
    /// The stage it runs (`None`: it starts a workflow).
    stage: Option<String>,
    stop: watch::Sender<bool>,
    task: Task,
}

/// The triggers of a running host.
pub(crate) struct Triggers {
    js: async_nats::jetstream::Context,
    store: Store,
    relay: OutboxRelay,
    engine: Option<Arc<Engine>>,
    registry: Option<Arc<Registry>>,
    /// The slot of each stage some trigger runs, by stage name.
    slots: Mutex<HashMap<String, Arc<StageSlot>>>,
    running: Mutex<BTreeMap<String, Running>>,
}

impl Triggers {
    pub(crate) fn new(
        js: async_nats::jetstream::Context,
        (store, relay): (Store, OutboxRelay),
        engine: Option<Arc<Engine>>,
        registry: Option<Arc<Registry>>,
    ) -> Self {
        Self {
            js,
            store,
            relay,
            engine,
            registry,
            slots: Mutex::new(HashMap::new()),
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Start `t` on `stage` (for a stage trigger, its live version). Refuses a name in use.
    pub(crate) fn start(&self, t: TriggerDecl, stage: Option<Arc<Stage>>) -> anyhow::Result<()> {
        let name = t.trigger.name.clone();
        let definition = serde_json::to_value(&t)?;
        let mut running = self.running.lock();
        anyhow::ensure!(
            !running.contains_key(&name),
            "a trigger named {name} exists"
        );
        if let Some(other) = Self::sharing(&running, &t) {
            anyhow::bail!("{}", sharing_detail(&name, &other));
        }
        let (stop, stopped) = watch::channel(false);
        let config = t.stage.is_some().then(|| t.trigger.clone());
        let (task, stage_name) = match (t.stage, t.workflow) {
            (Some(stage_name), None) => {
                let stage = stage
                    .ok_or_else(|| anyhow::anyhow!("trigger {name}: no stage {stage_name}"))?;
                let slot = self
                    .slots
                    .lock()
                    .entry(stage_name.clone())
                    .or_insert_with(|| StageSlot::new(stage))
                    .clone();
                let trigger = Trigger::with_slot(
                    self.js.clone(),
                    t.trigger,
                    slot,
                    self.store.clone(),
                    self.relay.clone(),
                );
                (tokio::spawn(trigger.run(stopped)), Some(stage_name))
            }
            (None, Some(workflow)) => {
                let engine = self
                    .engine
                    .as_ref()
                    .filter(|e| e.workflows().iter().any(|(w, _)| *w == workflow))
                    .ok_or_else(|| {
                        anyhow::anyhow!("trigger {name} names unknown workflow {workflow}")
                    })?;
                let trigger =
                    WorkflowTrigger::new(self.js.clone(), t.trigger, &workflow, engine.clone());
                (tokio::spawn(trigger.run(stopped)), None)
            }
            _ => anyhow::bail!("trigger {name} must name exactly one of `stage` and `workflow`"),
        };
        running.insert(
            name,
            Running {
                definition,
                config,
                stage: stage_name,
                stop,
                task,
            },
        );
        Ok(())
    }

    /// The stage trigger that would run the same messages as the stage trigger `t`, if any
    /// ([`TriggerConfig::shares_messages_with`]). Workflow triggers dedupe by execution name
    /// per workflow, not by event id, so they share nothing with stage triggers.
    fn sharing(running: &BTreeMap<String, Running>, t: &TriggerDecl) -> Option<String> {
        t.stage.as_ref()?;
        running
            .iter()
            .find(|(_, r)| {
                r.config
                    .as_ref()
                    .is_some_and(|c| c.shares_messages_with(&t.trigger))
            })
            .map(|(n, _)| n.clone())
    }

    /// The triggers that run `stage`.
    pub(crate) fn using(&self, stage: &str) -> Vec<String> {
        let key = |s: &str| s.replace('_', "-");
        self.running
            .lock()
            .iter()
            .filter(|(_, r)| r.stage.as_deref().is_some_and(|s| key(s) == key(stage)))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Each trigger's consumer state, as JetStream reports it now (those it answers for).
    pub(crate) async fn consumer_states(&self) -> Vec<(String, ConsumerState)> {
        let names: Vec<(String, String)> = self
            .running
            .lock()
            .iter()
            .map(|(n, r)| {
                let stream = r.definition["stream"].as_str().unwrap_or_default();
                (n.clone(), stream.to_owned())
            })
            .collect();
        let mut out = Vec::new();
        for (name, stream) in names {
            if let Some(s) = consumer_state(&self.js, &stream, &name).await {
                out.push((name, s));
            }
        }
        out
    }

    /// Whether the engine has the workflow `name`.
    pub(crate) fn has_workflow(&self, name: &str) -> bool {
        self.engine
            .as_ref()
            .is_some_and(|e| e.workflows().iter().any(|(w, _)| w == name))
    }

    /// The triggers that start `workflow`.
    pub(crate) fn starting(&self, workflow: &str) -> Vec<String> {
        self.running
            .lock()
            .iter()
            .filter(|(_, r)| r.definition["workflow"].as_str() == Some(workflow))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// `stage`'s live version is now `version`: its triggers run it from their next batches.
    pub(crate) fn stage_moved(&self, name: &str, stage: Arc<Stage>) {
        // The workflows' Tasks may now run it: the engine locks what it is granted.
        if let Some(engine) = &self.engine {
            let grants = &stage.config().grants;
            let tables: Vec<String> = grants.tables.iter().map(|t| t.name.clone()).collect();
            engine.widen_lock_scope(&grants.kv_buckets, &tables);
        }
        if let Some(slot) = self.slots.lock().get(name) {
            slot.set(stage);
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.running.lock().len()
    }

    /// Stop `name` (its batches finish, commit and are acknowledged first); its stats.
    async fn stop(&self, name: &str) -> Option<Result<TriggerStats, String>> {
        let r = self.running.lock().remove(name)?;
        r.stop.send(true).ok();
        Some(match r.task.await {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("panicked: {e}")),
        })
    }

    /// Stop every trigger; whether each ended cleanly.
    pub(crate) async fn shutdown(&self) -> bool {
        let names: Vec<String> = self.running.lock().keys().cloned().collect();
        let mut clean = true;
        for name in names {
            match self.stop(&name).await {
                Some(Ok(stats)) => eprintln!("trigger {name}: {stats:?}"),
                Some(Err(e)) => {
                    eprintln!("trigger {name} failed: {e}");
                    clean = false;
                }
                None => {}
            }
        }
        clean
    }

    fn info(name: &str, r: &Running) -> TriggerInfo {
        let error = r
            .task
            .is_finished()
            .then(|| "stopped; see the host's log".to_owned());
        TriggerInfo {
            name: name.to_owned(),
            status: if error.is_some() { "failed" } else { "running" }.into(),
            error,
            definition: r.definition.clone(),
            consumer: None,
        }
    }
}

/// The trigger routes on the host's triggers, stages and registry.
pub(crate) struct HostTriggers {
    pub triggers: Arc<Triggers>,
    pub stages: Arc<HostStages>,
}

/// Why `name` may not run beside `other`.
fn sharing_detail(name: &str, other: &str) -> String {
    format!(
        "trigger '{name}' would run the same messages as trigger '{other}' (the same stream, overlapping \
         subject filters, and no content patterns to route them apart): event ids are the store's \
         dedupe keys, so the second to commit each message would find it done without running its \
         stage. Give each its own subjects, or content patterns, or fan out by publishing the first \
         stage's output"
    )
}

fn invalid(detail: impl Into<String>, field: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", detail).at(field)
}

impl HostTriggers {
    async fn create_inner(&self, definition: Value) -> Result<TriggerInfo, Problem> {
        let t: TriggerDecl = crate::up::parse_trigger(&definition)
            .map_err(|e| invalid(format!("the trigger definition is invalid: {e}"), ""))?;
        let name = t.trigger.name.clone();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(invalid(
                "a trigger name is 1 to 64 letters, digits, '-' and '_' (it names a durable consumer)",
                "/name",
            ));
        }
        if let Some(p) = &t.trigger.pattern {
            sluice_nats::EventPattern::parse(p)
                .map_err(|e| invalid(format!("the pattern is invalid: {e}"), "/pattern"))?;
        }
        if self.triggers.running.lock().contains_key(&name) {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "exists",
                format!("a trigger named '{name}' exists; delete it first"),
            )
            .at("/name"));
        }
        if let Some(other) = Triggers::sharing(&self.triggers.running.lock(), &t) {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "shares-messages",
                sharing_detail(&name, &other),
            )
            .at("/filter_subject"));
        }
        let stage = match (&t.stage, &t.workflow) {
            (Some(s), None) => Some(self.stages.live_stage(s).await.map_err(|f| {
                let mut p = Problem::from(f);
                p.field = Some("/stage".into());
                p
            })?),
            (None, Some(w)) => {
                if !self.triggers.has_workflow(w) {
                    return Err(
                        Problem::not_found(format!("no workflow named '{w}'")).at("/workflow")
                    );
                }
                None
            }
            _ => {
                return Err(invalid(
                    "a trigger names exactly one of `stage` and `workflow`",
                    "/stage",
                ));
            }
        };
        // The stream and consumer first: a conflict is the caller's to fix, and is better
        // said now than by a trigger that stops after its creation was answered.
        ensure_consumer(&self.triggers.js, &t.trigger)
            .await
            .map_err(|e| match e {
                TriggerError::Conflict { .. } => {
                    Problem::new(StatusCode::CONFLICT, "conflict", e.to_string())
                }
                other => Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    other.to_string(),
                ),
            })?;
        let record = Record {
            source: "api".into(),
            definition: serde_json::to_value(&t).unwrap_or(definition),
        };
        if let Some(registry) = &self.triggers.registry {
            registry.put(Kind::Trigger, &name, &record).map_err(|e| {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                )
            })?;
        }
        self.triggers
            .start(t, stage)
            .map_err(|e| Problem::new(StatusCode::CONFLICT, "exists", e.to_string()))?;
        eprintln!("trigger {name} created over the API");
        let running = self.triggers.running.lock();
        Ok(Triggers::info(&name, &running[&name]))
    }
}

impl TriggerService for HostTriggers {
    fn create(&self, definition: Value) -> Reply<'_, TriggerInfo> {
        Box::pin(self.create_inner(definition))
    }

    fn list(&self) -> Reply<'_, Vec<TriggerInfo>> {
        Box::pin(async move {
            let running = self.triggers.running.lock();
            Ok(running.iter().map(|(n, r)| Triggers::info(n, r)).collect())
        })
    }

    fn describe(&self, name: String) -> Reply<'_, TriggerInfo> {
        Box::pin(async move {
            let (mut info, stream) = {
                let running = self.triggers.running.lock();
                let r = running.get(&name).ok_or_else(|| {
                    Problem::not_found(format!("no trigger named '{name}'")).at("name")
                })?;
                let stream = r.definition["stream"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (Triggers::info(&name, r), stream)
            };
            info.consumer = consumer_state(&self.triggers.js, &stream, &name).await;
            Ok(info)
        })
    }

    fn delete(&self, name: String) -> Reply<'_, ()> {
        Box::pin(async move {
            let stream = {
                let running = self.triggers.running.lock();
                let r = running.get(&name).ok_or_else(|| {
                    Problem::not_found(format!("no trigger named '{name}'")).at("name")
                })?;
                r.definition["stream"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            match self.triggers.stop(&name).await {
                Some(Ok(stats)) => eprintln!("trigger {name} deleted: {stats:?}"),
                Some(Err(e)) => eprintln!("trigger {name} deleted; it had failed: {e}"),
                None => {}
            }
            if let Some(registry) = &self.triggers.registry {
                registry.remove(Kind::Trigger, &name).map_err(|e| {
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        e.to_string(),
                    )
                })?;
            }
            // Its position goes with it: a new trigger of this name starts afresh.
            if let Ok(s) = self.triggers.js.get_stream(&stream).await
                && let Err(e) = s.delete_consumer(&name).await
            {
                tracing::warn!("deleting the consumer of trigger {name}: {e}");
            }
            Ok(())
        })
    }
}

/// The durable consumer `name` of `stream`, as the broker reports it.
async fn consumer_state(
    js: &async_nats::jetstream::Context,
    stream: &str,
    name: &str,
) -> Option<ConsumerState> {
    let stream = js.get_stream(stream).await.ok()?;
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
        .await
        .ok()?;
    let info = consumer.info().await.ok()?;
    Some(ConsumerState {
        pending: info.num_pending,
        ack_pending: info.num_ack_pending as u64,
        redelivered: info.num_redelivered as u64,
        delivered_seq: info.delivered.stream_sequence,
        ack_floor_seq: info.ack_floor.stream_sequence,
    })
}
