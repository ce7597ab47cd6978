//! The process's one `wasmtime::Engine`, configured for many short, isolated invocations.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ArtifactCache;
use crate::stdio::{GuestLogSink, TracingSink};

/// How often the epoch ticker advances the engine's epoch; the resolution of deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Engine-wide settings, fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Directory for compiled artifacts, keyed by content hash.
    pub cache_dir: PathBuf,
    /// Instance slots in the pooling allocator: the most stage instances alive at once.
    pub max_instances: u32,
    /// Largest linear memory any stage may be configured with.
    pub max_memory_bytes: usize,
    /// Bytes of each linear memory kept resident when a pool slot is reused: reset in place
    /// (only the dirtied pages, where the kernel can tell) rather than returned to the kernel
    /// with `madvise`, which costs page faults on the next use and contends across threads.
    pub keep_resident_bytes: usize,
}

impl EngineConfig {
    /// Defaults suited to this project's 2-core machines, caching under `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_instances: 256,
            max_memory_bytes: 1 << 30,
            keep_resident_bytes: 4 << 20,
        }
    }
}

/// The sandbox: the engine, its epoch ticker, the artifact cache and where guest logs go.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) cache: Arc<ArtifactCache>,
    pub(crate) log: Arc<dyn GuestLogSink>,
    pub(crate) linker: Arc<wasmtime::component::Linker<crate::host::HostState>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Build the engine and start its epoch ticker. Guest logs go to `tracing`.
    pub fn new(config: &EngineConfig) -> anyhow::Result<Self> {
        Self::with_log_sink(config, Arc::new(TracingSink))
    }

    /// Like [`Runtime::new`], with guest stdout/stderr and `log` calls sent to `log`.
    pub fn with_log_sink(
        config: &EngineConfig,
        log: Arc<dyn GuestLogSink>,
    ) -> anyhow::Result<Self> {
        let engine = Engine::new(&wasmtime_config(config))?;
        spawn_epoch_ticker(&engine);
        let linker = crate::host::linker(&engine)?;
        Ok(Self {
            engine,
            cache: Arc::new(ArtifactCache::open(&config.cache_dir)?),
            log,
            linker: Arc::new(linker),
        })
    }

    /// The underlying engine (for tools and benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn wasmtime_config(config: &EngineConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let n = config.max_instances;
    pool.total_component_instances(n)
        // A std Rust component built for wasm32-wasip2 has its main module plus small shim
        // modules, each a core instance with its own table: leave room for them.
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .max_memory_size(config.max_memory_bytes)
        .linear_memory_keep_resident(config.keep_resident_bytes)
        .table_keep_resident(64 << 10)
        // Linux 6.7+: reset only the pages an instance dirtied (found with the PAGEMAP_SCAN
        // ioctl) with memset, instead of resetting the whole kept-resident prefix or calling
        // madvise. This is what makes a fresh instance per event cheap; elsewhere it is a no-op.
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut c = Config::new();
    c.wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // Deadlines: a ticker thread bumps the epoch; each call sets its deadline in ticks.
        // Cheaper than fuel (no per-instruction accounting) and bounded in wall-clock time.
        .epoch_interruption(true)
        // Copy-on-write initial memory images make instantiation cost independent of the
        // size of the guest's data segments.
        .memory_init_cow(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    // `SLUICE_PROFILER=perfmap` writes /tmp/perf-PID.map so that `perf` names guest functions.
    if std::env::var("SLUICE_PROFILER").is_ok_and(|v| v == "perfmap") {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    c
}

/// Advance `engine`'s epoch every [`EPOCH_TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
