//! The store data of a stage instance and the host side of every imported interface.
//!
//! One module per WIT interface (`keyvalue`, `table`, `emit`, `log`, `batch`), each holding only
//! its `Host` impls; this module holds the state they share and the linker that wires them up.
//! Every size a guest chooses is capped here, before it reaches the state backend.

pub(crate) mod batch;
pub(crate) mod emit;
pub(crate) mod keyvalue;
pub(crate) mod log;
pub(crate) mod table;

use std::sync::Arc;

use parking_lot::Mutex;
use sluice_model::state::{Clock, Emitted, StateSession, SystemClock};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::BatchStage;
use crate::config::Grants;
use crate::limiter::Limiter;
use crate::stdio::{LogLevel, LogPipe, LogTag};

/// Most bucket/table handles a guest may hold open at once. Without a cap, a loop calling
/// `open` would grow the resource table (host memory) without bound.
pub(crate) const MAX_OPEN_HANDLES: usize = 256;

/// Tracks which event of a `handle-batch` call the guest is working on.
pub(crate) struct BatchCursor {
    pub(crate) ids: Vec<String>,
    pub(crate) current: usize,
    /// Events emitted by each event whose write set was (tentatively) kept.
    pub(crate) emitted: Vec<Vec<Emitted>>,
}

/// Everything a stage instance's host calls can reach.
pub(crate) struct HostState {
    wasi: WasiCtx,
    pub(crate) resources: ResourceTable,
    pub(crate) open_handles: usize,
    pub(crate) limiter: Limiter,
    pub(crate) session: Box<dyn StateSession>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tag: LogTag,
    stdout: LogPipe,
    stderr: LogPipe,
    /// Emits made by the current event, for the per-event cap.
    pub(crate) emits: usize,
    pub(crate) batch: Option<BatchCursor>,
}

impl HostState {
    pub(crate) fn new(
        session: Box<dyn StateSession>,
        grants: Arc<Grants>,
        memory_limit: usize,
        tag: LogTag,
    ) -> Self {
        let stdout = LogPipe::new(tag.clone(), "stdout", LogLevel::Info);
        let stderr = LogPipe::new(tag.clone(), "stderr", LogLevel::Warn);
        let mut wasi = WasiCtx::builder();
        // Deny by default: no args, no inherited environment or stdio, no preopens, no
        // network. Only what the stage's grants list is added.
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(grants.network)
            .allow_udp(grants.network)
            .allow_ip_name_lookup(grants.network)
            .allow_blocking_current_thread(true);
        if !grants.network {
            wasi.socket_addr_check(|_, _| Box::pin(async { false }));
        }
        for (k, v) in &grants.env {
            wasi.env(k, v);
        }
        for (host, guest) in &grants.dirs {
            if let Err(e) = wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly) {
                tracing::warn!(stage = %tag.stage, dir = %host.display(), "granted directory not opened: {e:#}");
            }
        }
        Self {
            wasi: wasi.build(),
            resources: ResourceTable::new(),
            open_handles: 0,
            limiter: Limiter::new(memory_limit),
            session,
            grants,
            clock: Arc::new(SystemClock),
            tag,
            stdout,
            stderr,
            emits: 0,
            batch: None,
        }
    }

    /// Prepare for a new event: tag logs with its id and reset per-event counters.
    pub(crate) fn start_event(&mut self, event_id: &str) {
        event_id.clone_into(&mut self.tag.event_id.lock());
        self.limiter.refused = None;
        self.emits = 0;
    }

    /// Flush the event's output; returns the tail of its stderr (for trap causes).
    pub(crate) fn end_event(&mut self) -> String {
        self.stdout.finish_event();
        self.stderr.finish_event()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.resources,
        }
    }
}

/// Shared handle to the current event id, for [`LogTag`].
pub(crate) fn new_event_tag() -> Arc<Mutex<String>> {
    Arc::new(Mutex::new(String::new()))
}

/// The linker every stage is pre-linked with: WASI 0.2 (sync) plus `sluice:platform`.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    BatchStage::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A guest broke a rule of the contract; raised as a trap and reported as
/// `Sandbox.ContractViolation`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ContractViolation(pub(crate) String);

impl crate::bindings::types::Host for HostState {}
