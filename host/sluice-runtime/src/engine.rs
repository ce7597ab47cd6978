//! The process's one `wasmtime::Engine`, configured for many short, isolated invocations.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ArtifactCache;
use crate::stdio::{GuestLogSink, TracingSink};

/// How often the epoch ticker advances the engine's epoch; the resolution of deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Engine-wide settings, fixed for the life of the process.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// Largest component a deploy accepts, in bytes (`DeployError::TooLarge` past it).
    pub max_component_bytes: usize,
    /// Longest a deploy waits for Cranelift to compile a component
    /// (`DeployError::CompileBudget` past it).
    pub compile_timeout: Duration,
    /// Compile in a child process started with this command (see [`crate::compile`]), which
    /// enforces `max_compile_memory_bytes` and kills a compilation past `compile_timeout`.
    /// `None` compiles on a thread of this process: the time budget then only stops the
    /// wait, and memory is not bounded.
    pub compiler: Option<CompilerCommand>,
    /// Most resident memory the compiler child may reach (`DeployError::CompileBudget`
    /// past it). Cranelift's memory grows with the size of a component's functions, so one
    /// crafted huge function could otherwise take the host's memory at deploy.
    pub max_compile_memory_bytes: usize,
}

/// How to start a compiler child: a program that runs [`crate::compile::child_main`] when
/// given `args` (the `sluice` binary passes itself and a hidden subcommand).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompilerCommand {
    /// The program.
    pub program: PathBuf,
    /// Arguments before the ones the runtime adds.
    pub args: Vec<String>,
}

impl EngineConfig {
    /// Defaults suited to this project's 2-core machines, caching under `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_instances: 256,
            max_memory_bytes: 1 << 30,
            keep_resident_bytes: 4 << 20,
            max_component_bytes: 32 << 20,
            compile_timeout: Duration::from_secs(60),
            compiler: None,
            max_compile_memory_bytes: 1 << 30,
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
    pub(crate) ticker: Arc<Ticker>,
    pub(crate) max_component_bytes: usize,
    /// The configuration the engine was built from: a compiler child builds its own from it,
    /// so its artifacts load here.
    pub(crate) config: EngineConfig,
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
        let ticker = Arc::new(Ticker::default());
        spawn_epoch_ticker(&engine, ticker.clone());
        let linker = crate::host::linker(&engine)?;
        Ok(Self {
            engine,
            cache: Arc::new(ArtifactCache::open(&config.cache_dir)?),
            log,
            linker: Arc::new(linker),
            ticker,
            max_component_bytes: config.max_component_bytes,
            config: config.clone(),
        })
    }

    /// The underlying engine (for tools and benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

pub(crate) fn wasmtime_config(config: &EngineConfig) -> Config {
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

/// Ticks before an idle ticker parks: long enough that back-to-back batches never wake it.
const IDLE_TICKS_BEFORE_PARKING: u32 = 100;

/// Whether guests are running, so the epoch ticker runs only while one might need
/// interrupting: an idle host pays nothing for deadlines (a 1 ms ticker that never stops
/// costs ~1.6% of a core on an idle `sluice up`).
#[derive(Default)]
pub(crate) struct Ticker {
    /// Guest calls in progress.
    active: AtomicUsize,
    /// Set by the ticker thread (under `lock`) just before it waits for a guest to run.
    parked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Keeps the epoch ticking while a guest call runs; dropped when the call returns.
pub(crate) struct Ticking<'a>(&'a Ticker);

impl Ticker {
    /// Mark a guest call as running until the guard drops. Costs two atomic operations,
    /// plus a wake-up when the ticker had parked (the first call after an idle spell).
    pub(crate) fn enter(&self) -> Ticking<'_> {
        // SeqCst on both sides (here and in the ticker's park) so that either the ticker
        // sees this call before it parks, or this call sees `parked` and wakes it.
        if self.active.fetch_add(1, Ordering::SeqCst) == 0 && self.parked.load(Ordering::SeqCst) {
            // Taking the lock orders the notify after the ticker's wait has begun.
            let _guard = self.lock.lock();
            self.wake.notify_one();
        }
        Ticking(self)
    }
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Advance `engine`'s epoch every [`EPOCH_TICK`] while guest calls run, until the engine is
/// dropped. After [`IDLE_TICKS_BEFORE_PARKING`] ticks with no call it parks until the next.
fn spawn_epoch_ticker(engine: &Engine, ticker: Arc<Ticker>) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            let mut idle = 0;
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                if ticker.active.load(Ordering::SeqCst) == 0 {
                    idle += 1;
                } else {
                    idle = 0;
                }
                if idle >= IDLE_TICKS_BEFORE_PARKING {
                    let mut guard = ticker.lock.lock();
                    ticker.parked.store(true, Ordering::SeqCst);
                    while ticker.active.load(Ordering::SeqCst) == 0 {
                        // Wake now and then only to notice that the engine is gone.
                        let timed_out = ticker.wake.wait_for(&mut guard, Duration::from_secs(5));
                        if timed_out.timed_out() && weak.upgrade().is_none() {
                            return;
                        }
                    }
                    ticker.parked.store(false, Ordering::SeqCst);
                    idle = 0;
                    continue;
                }
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wait up to 2 s for `cond`.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn the_epoch_ticks_only_while_a_guest_call_runs() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(&EngineConfig::new(dir.path())).unwrap();
        let ticker = &runtime.ticker;
        // Nothing runs: the ticker parks after its idle spell.
        assert!(eventually(|| ticker.parked.load(Ordering::SeqCst)));
        // A call wakes it, and it keeps ticking for as long as the call lasts...
        let call = ticker.enter();
        assert!(eventually(|| !ticker.parked.load(Ordering::SeqCst)));
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !ticker.parked.load(Ordering::SeqCst),
            "parked during a call"
        );
        // ...and parks again once it is over.
        drop(call);
        assert!(eventually(|| ticker.parked.load(Ordering::SeqCst)));
    }
}
