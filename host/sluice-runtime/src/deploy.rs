//! Deploying a stage version: validate against the stage world, compile (or load the cached
//! artifact), and pre-link once so that every later instantiation skips import resolution.

use std::sync::Arc;

use sluice_model::memory::MemoryBackend;
use sluice_model::state::{StateBackend, SystemClock};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, types::ComponentItem};

use crate::bindings::{batch_handler, handler};
use crate::cache::{CacheOutcome, digest};
use crate::call::Driver;
use crate::config::StageConfig;
use crate::engine::Runtime;
use crate::host::HostState;
use crate::stdio::LogTag;

/// Export name of the required entry point.
pub(crate) const HANDLER_EXPORT: &str = "sluice:platform/handler@0.1.0";
/// Export name of the optional batch entry point.
pub(crate) const BATCH_EXPORT: &str = "sluice:platform/batch-handler@0.1.0";
/// Interfaces of our own package that the host provides to guests.
const PROVIDED: &[&str] = &[
    "sluice:platform/types@0.1.0",
    "sluice:platform/keyvalue@0.1.0",
    "sluice:platform/table@0.1.0",
    "sluice:platform/emit@0.1.0",
    "sluice:platform/log@0.1.0",
    "sluice:platform/batch@0.1.0",
];

/// Why a component could not be deployed as a stage.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The bytes are not a WebAssembly component (garbage, or a core module).
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component failed validation or compilation.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component lacks the stage entry point.
    #[error(
        "component does not export `{name}` (it exports {found}): a stage must target the `stage` or `batch-stage` world of sluice:platform@0.1.0"
    )]
    MissingExport {
        /// The missing export.
        name: String,
        /// What the component exports instead.
        found: String,
    },
    /// The component exports the entry point with the wrong shape.
    #[error("export `{name}` does not match the stage world: {reason}")]
    MismatchedExport {
        /// The export's name.
        name: String,
        /// What wasmtime found wrong.
        reason: String,
    },
    /// The component imports something the host does not provide.
    #[error("component imports `{name}`, which a stage cannot use: {reason}")]
    UnsatisfiedImport {
        /// The import's name.
        name: String,
        /// Why it cannot be satisfied.
        reason: String,
    },
    /// The compiled-artifact cache failed.
    #[error("artifact cache: {0}")]
    Cache(String),
    /// The component is larger than the host accepts (`EngineConfig::max_component_bytes`).
    #[error("component is {size} bytes; this host accepts at most {limit}")]
    TooLarge {
        /// The component's size.
        size: usize,
        /// The host's limit.
        limit: usize,
    },
    /// Compiling took longer, or more memory, than the host's budget
    /// (`EngineConfig::compile_timeout`, `EngineConfig::max_compile_memory_bytes`).
    #[error("{0}")]
    CompileBudget(String),
    /// The stage's configuration cannot work (e.g. a batch cap below one event's caps).
    #[error("invalid stage configuration: {0}")]
    InvalidConfig(String),
}

/// A deployed stage version, ready to instantiate. Shared by all workers of the stage.
pub struct Stage {
    pub(crate) name: String,
    /// Shared with every instance's store data (and log tag) without copying per instance.
    pub(crate) name_tag: Arc<str>,
    pub(crate) grants: Arc<crate::config::Grants>,
    pub(crate) digest: String,
    pub(crate) config: StageConfig,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) handler: handler::GuestIndices,
    pub(crate) batch: Option<batch_handler::GuestIndices>,
    pub(crate) cache_outcome: CacheOutcome,
    pub(crate) runtime: Runtime,
    /// The stage's metric handles, looked up once (a lookup by labels costs ~100 ns, a held
    /// handle ~7 ns: PLATFORM-NOTES.md).
    pub(crate) metrics: StageMetrics,
}

/// Metrics of one stage (by its name), recorded by every worker running it.
pub(crate) struct StageMetrics {
    /// `sluice_invocations_total{stage}`: events run (each delivery or call).
    pub(crate) invocations: metrics::Counter,
    /// `sluice_invocation_seconds{stage}`: each event's share of its batch's run time.
    pub(crate) latency: metrics::Histogram,
    /// `sluice_batch_size{stage}`: events per batch.
    pub(crate) batch_size: metrics::Histogram,
}

impl StageMetrics {
    fn new(stage: &str) -> Self {
        let stage = stage.to_owned();
        Self {
            invocations: metrics::counter!("sluice_invocations_total", "stage" => stage.clone()),
            latency: metrics::histogram!("sluice_invocation_seconds", "stage" => stage.clone()),
            batch_size: metrics::histogram!("sluice_batch_size", "stage" => stage),
        }
    }
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("batch", &self.batch.is_some())
            .field("cache_outcome", &self.cache_outcome)
            .finish_non_exhaustive()
    }
}

impl Stage {
    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// SHA-256 of the component: the stage version's content address.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Whether the component exports `handle-batch`.
    pub fn has_batch_export(&self) -> bool {
        self.batch.is_some()
    }
    /// Whether deploying compiled the component or reloaded the cached artifact.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache_outcome
    }
    /// The stage's configuration.
    pub fn config(&self) -> &StageConfig {
        &self.config
    }
}

impl Runtime {
    /// Validate `bytes` as a stage component, compile it (or load its cached artifact) and
    /// pre-link it under `name` with `config`.
    pub fn deploy(
        &self,
        name: &str,
        bytes: &[u8],
        config: StageConfig,
    ) -> Result<Arc<Stage>, DeployError> {
        if bytes.len() > self.max_component_bytes {
            return Err(DeployError::TooLarge {
                size: bytes.len(),
                limit: self.max_component_bytes,
            });
        }
        if let Some(problem) = config.limits.problem() {
            return Err(DeployError::InvalidConfig(problem));
        }
        check_component_header(bytes)?;
        let digest = digest(bytes);
        let (component, cache_outcome) = self
            .cache
            .load_or_compile(&self.engine, &self.config, &digest, bytes)
            .map_err(|e| {
                if let Some(
                    c @ (crate::compile::CompileError::Time(_)
                    | crate::compile::CompileError::Memory { .. }),
                ) = e.downcast_ref::<crate::compile::CompileError>()
                {
                    DeployError::CompileBudget(c.to_string())
                } else if e.downcast_ref::<std::io::Error>().is_some() {
                    DeployError::Cache(format!("{e:#}"))
                } else {
                    DeployError::Invalid(format!("{e:#}"))
                }
            })?;
        self.check_imports(&component)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            let msg = format!("{e:#}");
            DeployError::UnsatisfiedImport {
                name: backticked(&msg).unwrap_or("?").to_owned(),
                reason: msg,
            }
        })?;
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        if !exports.iter().any(|n| n == HANDLER_EXPORT) {
            return Err(DeployError::MissingExport {
                name: HANDLER_EXPORT.to_owned(),
                found: if exports.is_empty() {
                    "nothing".to_owned()
                } else {
                    exports.join(", ")
                },
            });
        }
        let handler =
            handler::GuestIndices::new(&pre).map_err(|e| DeployError::MismatchedExport {
                name: HANDLER_EXPORT.to_owned(),
                reason: format!("{e:#}"),
            })?;
        let batch = if exports.iter().any(|n| n == BATCH_EXPORT) {
            Some(batch_handler::GuestIndices::new(&pre).map_err(|e| {
                DeployError::MismatchedExport {
                    name: BATCH_EXPORT.to_owned(),
                    reason: format!("{e:#}"),
                }
            })?)
        } else {
            None
        };
        self.trial_instantiate(&pre, &handler, batch.as_ref(), &config)?;
        tracing::info!(stage = name, %digest, batch = batch.is_some(), ?cache_outcome, "deployed stage");
        Ok(Arc::new(Stage {
            name: name.to_owned(),
            name_tag: Arc::from(name),
            grants: Arc::new(config.grants.clone()),
            digest,
            config,
            pre,
            handler,
            batch,
            cache_outcome,
            runtime: self.clone(),
            metrics: StageMetrics::new(name),
        }))
    }

    /// Instantiate once in a throwaway store: `GuestIndices::new` only finds the exports, while
    /// loading them checks their function types, so a handler of the wrong shape is refused at
    /// deploy time rather than on its first event.
    fn trial_instantiate(
        &self,
        pre: &InstancePre<HostState>,
        handler: &handler::GuestIndices,
        batch: Option<&batch_handler::GuestIndices>,
        config: &StageConfig,
    ) -> Result<(), DeployError> {
        let session = MemoryBackend::new(Vec::new(), Arc::new(SystemClock)).session();
        let tag = LogTag {
            stage: Arc::from("deploy-check"),
            event_id: crate::host::new_event_tag(),
            sink: self.log.clone(),
        };
        let data = HostState::new(
            session,
            Arc::new(config.grants.clone()),
            &config.limits,
            tag,
        );
        // On a thread of its own: deploys are often made from async code, whose thread must
        // not block on the instantiation's fiber.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut store = Store::new(&self.engine, data);
                    store.limiter(|s| &mut s.limiter);
                    store.set_epoch_deadline(crate::worker::ticks(config.limits.deadline));
                    let instance = Driver::default()
                        .run(
                            &self.ticker,
                            config.limits.deadline,
                            std::time::Instant::now() + config.limits.deadline,
                            pre.instantiate_async(&mut store),
                        )
                        .map_err(|e| {
                            DeployError::Invalid(format!("instantiation failed: {e:#}"))
                        })?;
                    handler.load(&mut store, &instance).map_err(|e| {
                        DeployError::MismatchedExport {
                            name: HANDLER_EXPORT.to_owned(),
                            reason: format!("{e:#}"),
                        }
                    })?;
                    if let Some(batch) = batch {
                        batch.load(&mut store, &instance).map_err(|e| {
                            DeployError::MismatchedExport {
                                name: BATCH_EXPORT.to_owned(),
                                reason: format!("{e:#}"),
                            }
                        })?;
                    }
                    Ok(())
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(DeployError::Invalid(
                        "the trial instantiation panicked".into(),
                    ))
                })
        })
    }

    /// Name the first import outside what a stage may use, with a reason a stage author can act
    /// on (a newer package version, an interface from another world).
    fn check_imports(&self, component: &Component) -> Result<(), DeployError> {
        for (name, item) in component.component_type().imports(&self.engine) {
            let ours = name.starts_with("sluice:");
            if ours && !PROVIDED.contains(&name) {
                return Err(DeployError::UnsatisfiedImport {
                    name: name.to_owned(),
                    reason: format!(
                        "this host provides {} (built against another version of the WIT?)",
                        PROVIDED.join(", ")
                    ),
                });
            }
            if !ours && !name.starts_with("wasi:") {
                return Err(DeployError::UnsatisfiedImport {
                    name: name.to_owned(),
                    reason: format!(
                        "only WASI 0.2 and sluice:platform interfaces are provided (found {})",
                        item_kind(&item.ty)
                    ),
                });
            }
        }
        Ok(())
    }
}

fn item_kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "a function",
        ComponentItem::CoreFunc(_) => "a core function",
        ComponentItem::Module(_) => "a module",
        ComponentItem::Component(_) => "a component",
        ComponentItem::ComponentInstance(_) => "an instance",
        ComponentItem::Type(_) => "a type",
        ComponentItem::Resource(_) => "a resource",
    }
}

/// The first `quoted` name in a wasmtime error message.
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Reject non-components before handing bytes to Cranelift, with a message saying which.
fn check_component_header(bytes: &[u8]) -> Result<(), DeployError> {
    // Preamble: "\0asm", then a 2-byte version and a 2-byte layer: layer 0 is a core module,
    // layer 1 a component.
    match bytes {
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Ok(()),
        [0, b'a', b's', b'm', _, _, 0, 0, ..] => Err(DeployError::NotAComponent(
            "this is a core WebAssembly module; build the stage for `wasm32-wasip2` (or wrap it with `wasm-tools component new`)".into(),
        )),
        _ if bytes.starts_with(b"(component") || bytes.starts_with(b"(module") => Ok(()),
        _ => Err(DeployError::NotAComponent(format!(
            "{} bytes without the `\\0asm` preamble",
            bytes.len()
        ))),
    }
}
