//! The stage service behind `/v1/stages` ([`sluice_api::StageService`]): versions and aliases
//! in the [`Registry`], each version validated and precompiled by the runtime before it is
//! recorded, and synchronous invocations on [`invoke::Lanes`].
//!
//! What runs a stage is looked up at each call: an invocation resolves its alias then, so
//! moving `live` takes effect on the next request. Triggers and workflows are fixed when the
//! host starts (they run the live versions of that moment).

mod invoke;
mod live;
mod usage;

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use sluice_api::stages::{Bytes, Reply};
use sluice_api::{Description, Invocation, Invoked, StageFailure, StageService, Summary, Version};
use sluice_runtime::{DeployError, Runtime, Stage, StageConfig};
use sluice_store::Store;

use crate::registry::{Registry, RegistryError, VersionRecord};
pub(crate) use live::LiveStages;
pub(crate) use usage::Usage;

/// How many deployed versions stay in memory at once besides the live ones (each holds its
/// compiled code); past it, the least recently deployed is dropped and reloaded from the
/// artifact cache when used again.
const DEPLOYED: usize = 32;

/// A deployed version, by (stage, version).
pub(crate) type Deployed = ((String, u64), Arc<Stage>);

/// The host's stages, served to the API.
pub(crate) struct HostStages {
    registry: Arc<Registry>,
    /// The running triggers: what uses a stage, and who runs its live version.
    triggers: Arc<crate::triggers::Triggers>,
    /// The live versions the workflow engine's Tasks run.
    live: Arc<LiveStages>,
    runtime: Runtime,
    /// Deployed versions by (stage, version), oldest first.
    deployed: Mutex<Vec<Deployed>>,
    lanes: invoke::Lanes,
}

impl HostStages {
    /// The service over `registry`; `deployed`: the versions the host deployed at start, by
    /// (stage, version), reused. Invocations commit to `store`; `kick` is told when one staged
    /// messages for the outbox.
    pub(crate) fn new(
        registry: Arc<Registry>,
        runtime: Runtime,
        store: Store,
        (triggers, live): (Arc<crate::triggers::Triggers>, Arc<LiveStages>),
        kick: Arc<tokio::sync::Notify>,
        deployed: Vec<Deployed>,
    ) -> Self {
        Self {
            registry,
            triggers,
            live,
            runtime,
            deployed: Mutex::new(deployed),
            lanes: invoke::Lanes::new(store, kick),
        }
    }

    /// The deployed live version of `name`.
    pub(crate) async fn live_stage(&self, name: &str) -> Result<Arc<Stage>, StageFailure> {
        let version = self.registry.resolve(name, None).map_err(failure)?;
        self.stage(name, version).await
    }

    /// The triggers and workflows that use `name`.
    fn users(&self, name: &str) -> Result<(Vec<String>, Vec<String>), StageFailure> {
        let workflows = self
            .registry
            .records(crate::registry::Kind::Workflow)
            .map_err(failure)?;
        let usage = Usage::of_workflows(
            workflows
                .iter()
                .map(|(n, r)| (n.as_str(), &r.definition["definition"])),
        );
        Ok((self.triggers.using(name), usage.of(name)))
    }

    /// Keep `stage` as the deployed `version` of `name`.
    fn remember(&self, name: &str, version: u64, stage: Arc<Stage>) {
        let mut d = self.deployed.lock();
        d.retain(|(k, _)| k != &(name.to_owned(), version));
        d.push(((name.to_owned(), version), stage));
        if d.len() > DEPLOYED {
            d.remove(0);
        }
    }

    /// The deployed `version` of `name`: in memory, or loaded and deployed now (the artifact
    /// cache makes that a reload, not a compile).
    async fn stage(&self, name: &str, version: u64) -> Result<Arc<Stage>, StageFailure> {
        if let Some((_, s)) = self
            .deployed
            .lock()
            .iter()
            .find(|(k, _)| k.0 == name && k.1 == version)
        {
            return Ok(s.clone());
        }
        let loaded = self.registry.load(name, version).map_err(failure)?;
        let runtime = self.runtime.clone();
        let n = name.to_owned();
        let stage = tokio::task::spawn_blocking(move || {
            runtime.deploy(&n, &loaded.component, loaded.record.config)
        })
        .await
        .map_err(|e| StageFailure::Unavailable(e.to_string()))?
        .map_err(|e| StageFailure::Unavailable(format!("redeploying version {version}: {e}")))?;
        self.remember(name, version, stage.clone());
        Ok(stage)
    }
}

/// A registry failure as the API's.
fn failure(e: RegistryError) -> StageFailure {
    match e {
        RegistryError::NoStage(_) => StageFailure::NotFound {
            detail: e.to_string(),
            field: "name",
        },
        RegistryError::NoVersion(..) => StageFailure::NotFound {
            detail: e.to_string(),
            field: "version",
        },
        RegistryError::NoAlias(..) => StageFailure::NotFound {
            detail: e.to_string(),
            field: "alias",
        },
        RegistryError::Storage(why) => StageFailure::Unavailable(why),
    }
}

fn version_info(stage: &str, version: u64, r: VersionRecord) -> Version {
    Version {
        stage: stage.to_owned(),
        version,
        sha256: r.sha256,
        size: r.size,
        world: r.world,
        config: serde_json::to_value(&r.config).unwrap_or(Value::Null),
        created_ms: r.created_ms,
    }
}

/// A configuration from the API: the runtime's shape, and no host directories (those are
/// granted only in a declaration file, by whoever runs the host).
fn parse_config(v: Value) -> Result<StageConfig, StageFailure> {
    let config: StageConfig = serde_json::from_value(v).map_err(|e| StageFailure::Invalid {
        detail: format!("the configuration is invalid: {e}"),
        field: "config".into(),
    })?;
    if !config.grants.dirs.is_empty() {
        return Err(StageFailure::Invalid {
            detail: "host directories cannot be granted over the API; grant them in the declaration file (sluice up --config)".into(),
            field: "config/grants/dirs".into(),
        });
    }
    Ok(config)
}

fn deploy_failure(e: &DeployError) -> StageFailure {
    match e {
        DeployError::TooLarge { .. } => StageFailure::TooLarge(e.to_string()),
        DeployError::Cache(_) => StageFailure::Unavailable(e.to_string()),
        DeployError::InvalidConfig(_) => StageFailure::Invalid {
            detail: e.to_string(),
            field: "config".into(),
        },
        _ => StageFailure::Invalid {
            detail: e.to_string(),
            field: "component".into(),
        },
    }
}

impl StageService for HostStages {
    fn deploy(
        &self,
        name: String,
        component: Option<Bytes>,
        config: Option<Value>,
    ) -> Reply<'_, Version> {
        Box::pin(async move {
            let live = match self.registry.resolve(&name, None) {
                Ok(v) => Some(self.registry.load(&name, v).map_err(failure)?),
                Err(RegistryError::NoStage(_) | RegistryError::NoAlias(..)) => None,
                Err(e) => return Err(failure(e)),
            };
            let config = match config {
                Some(v) => parse_config(v)?,
                None => live
                    .as_ref()
                    .map(|l| l.record.config.clone())
                    .unwrap_or_default(),
            };
            let bytes = match (component, live) {
                (Some(b), _) => b.to_vec(),
                (None, Some(l)) => l.component,
                (None, None) => {
                    return Err(StageFailure::NotFound {
                        detail: format!("no stage named '{name}': upload a component first"),
                        field: "name",
                    });
                }
            };
            let runtime = self.runtime.clone();
            let registry = self.registry.clone();
            let n = name.clone();
            let (version, record, stage, bytes) = tokio::task::spawn_blocking(move || {
                let stage = runtime
                    .deploy(&n, &bytes, config.clone())
                    .map_err(|e| deploy_failure(&e))?;
                let world = if stage.has_batch_export() {
                    "batch-stage"
                } else {
                    "stage"
                };
                let (version, record) = registry.add(&n, &bytes, config, world).map_err(failure)?;
                Ok::<_, StageFailure>((version, record, stage, bytes))
            })
            .await
            .map_err(|e| StageFailure::Unavailable(e.to_string()))??;
            eprintln!(
                "stage {name}: version {version} deployed ({:?}), live",
                stage.cache_outcome()
            );
            self.remember(&name, version, stage.clone());
            // Live now: the triggers running this stage take it from their next batch, the
            // workflows' Tasks from their next Task.
            self.live.set(&name, stage.clone(), Arc::new(bytes));
            self.triggers.stage_moved(&name, stage);
            Ok(version_info(&name, version, record))
        })
    }

    fn list(&self) -> Result<Vec<Summary>, StageFailure> {
        Ok(self
            .registry
            .stages()
            .map_err(failure)?
            .into_iter()
            .map(|(name, (latest, aliases))| Summary {
                name,
                latest,
                aliases,
            })
            .collect())
    }

    fn describe(&self, name: &str) -> Result<Description, StageFailure> {
        let versions = self.registry.versions(name).map_err(failure)?;
        let aliases = self
            .registry
            .stages()
            .map_err(failure)?
            .remove(name)
            .map(|(_, a)| a)
            .unwrap_or_default();
        let (triggers, workflows) = self.users(name)?;
        Ok(Description {
            name: name.to_owned(),
            versions: versions
                .into_iter()
                .map(|(v, r)| version_info(name, v, r))
                .collect(),
            aliases,
            triggers,
            workflows,
        })
    }

    fn set_alias(&self, name: String, alias: String, version: u64) -> Reply<'_, ()> {
        Box::pin(async move {
            // Deployed first: a live alias must point at a version that can run.
            let stage = if alias == crate::registry::LIVE {
                let loaded = self.registry.load(&name, version).map_err(failure)?;
                Some((self.stage(&name, version).await?, loaded.component))
            } else {
                None
            };
            self.registry
                .set_alias(&name, &alias, version)
                .map_err(failure)?;
            if let Some((stage, bytes)) = stage {
                self.live.set(&name, stage.clone(), Arc::new(bytes));
                self.triggers.stage_moved(&name, stage);
            }
            Ok(())
        })
    }

    fn remove_alias(&self, name: &str, alias: &str) -> Result<(), StageFailure> {
        self.registry.remove_alias(name, alias).map_err(failure)
    }

    fn delete(&self, name: &str) -> Result<(), StageFailure> {
        let (triggers, workflows) = self.users(name)?;
        if !triggers.is_empty() || !workflows.is_empty() {
            return Err(StageFailure::Conflict {
                kind: "in-use",
                detail: format!(
                    "stage '{name}' is in use (triggers: [{}], workflows: [{}]); remove those first",
                    triggers.join(", "),
                    workflows.join(", ")
                ),
            });
        }
        self.registry.delete(name).map_err(failure)?;
        self.deployed.lock().retain(|(k, _)| k.0 != name);
        self.lanes.forget(name);
        self.live.remove(name);
        Ok(())
    }

    fn invoke(&self, invocation: Invocation) -> Reply<'_, Invoked> {
        Box::pin(async move {
            let version = self
                .registry
                .resolve(&invocation.stage, invocation.qualifier.as_deref())
                .map_err(|e| match failure(e) {
                    StageFailure::NotFound { detail, .. } => StageFailure::NotFound {
                        detail,
                        field: "target",
                    },
                    other => other,
                })?;
            let stage = self.stage(&invocation.stage, version).await?;
            self.lanes.invoke(stage, version, invocation).await
        })
    }
}
