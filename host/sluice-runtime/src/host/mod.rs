//! The store data of a stage instance and the host side of every imported interface.
//!
//! One module per WIT interface (`keyvalue`, `table`, `emit`, `log`, `batch`), each holding only
//! its `Host` impls; this module holds the state they share and the linker that wires them up.
//! Every size a guest chooses is capped here, before it reaches the state backend.

pub(crate) mod batch;
pub(crate) mod budget;
pub(crate) mod emit;
pub(crate) mod keyvalue;
pub(crate) mod log;
pub(crate) mod table;

use std::sync::Arc;

use parking_lot::Mutex;
use sluice_model::state::{Clock, Emitted, Fault, StateSession, SystemClock};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::BatchStage;
use crate::config::{Grants, Limits};
use crate::limiter::Limiter;
use crate::stdio::{LogLevel, LogPipe, LogTag};
use budget::{BatchLimit, Budget, Refused};

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
    /// Bytes the current event makes the host hold.
    pub(crate) budget: Budget,
    /// A store failure one of the current event's state calls met: the event's outcome is
    /// then the platform's fault, whatever the guest made of the error.
    pub(crate) store_fault: Option<String>,
    pub(crate) batch: Option<BatchCursor>,
}

impl HostState {
    pub(crate) fn new(
        session: Box<dyn StateSession>,
        grants: Arc<Grants>,
        limits: &Limits,
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
            limiter: Limiter::new(limits.memory_bytes),
            session,
            grants,
            clock: Arc::new(SystemClock),
            tag,
            stdout,
            stderr,
            emits: 0,
            budget: Budget::new(limits),
            store_fault: None,
            batch: None,
        }
    }

    /// Prepare for a new event: tag logs with its id and reset per-event counters. The batch
    /// already holds `batch_held` bytes for the events kept before this one.
    pub(crate) fn start_event(&mut self, event_id: &str, batch_held: usize) {
        event_id.clone_into(&mut self.tag.event_id.lock());
        self.limiter.refused = None;
        self.emits = 0;
        self.budget.start_event(batch_held);
        self.store_fault = None;
    }

    /// Flush the event's output; returns the tail of its stderr (for trap causes).
    pub(crate) fn end_event(&mut self) -> String {
        if self.budget.log_dropped > 0 {
            let msg = format!(
                "[sluice: dropped {} bytes of log past the per-event limit of {} bytes]",
                self.budget.log_dropped,
                self.budget.max_log()
            );
            self.tag.emit("log", LogLevel::Warn, &msg);
            self.budget.log_dropped = 0;
        }
        self.stdout.finish_event();
        self.stderr.finish_event()
    }

    /// Charge `bytes` of state writes: `Ok(Err(message))` for the guest's own cap (its
    /// `too-large` error), a trap for the batch's.
    pub(crate) fn charge_write(&mut self, bytes: usize) -> wasmtime::Result<Result<(), String>> {
        refusal(self.budget.write(bytes))
    }

    /// Like [`HostState::charge_write`] for an emitted event.
    pub(crate) fn charge_emit(&mut self, bytes: usize) -> wasmtime::Result<Result<(), String>> {
        refusal(self.budget.emit(bytes))
    }

    /// Look behind a failed state call: a lock wait that reached the deadline ends the call
    /// as a timeout (a trap), and a store failure is remembered as the platform's fault.
    pub(crate) fn after_state_error(&mut self) -> wasmtime::Result<()> {
        match self.session.take_fault() {
            Some(Fault::Deadline) => Err(wasmtime::Error::new(LockPastDeadline)),
            Some(Fault::Store(cause)) => {
                self.store_fault.get_or_insert(cause);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn refusal(r: Result<(), Refused>) -> wasmtime::Result<Result<(), String>> {
    match r {
        Ok(()) => Ok(Ok(())),
        Err(Refused::Event(msg)) => Ok(Err(msg)),
        Err(Refused::Batch(limit)) => Err(wasmtime::Error::new::<BatchLimit>(limit)),
    }
}

/// A state call waited for a lock held by another stage until the invocation's deadline.
#[derive(Debug, thiserror::Error)]
#[error("the invocation waited for a state lock until its deadline passed")]
pub(crate) struct LockPastDeadline;

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
    // WASI in its async form, so that a guest blocked in `poll`, a clock subscription or a
    // stream read can be interrupted at its deadline (see `call.rs`). Sluice's own imports
    // stay synchronous: they never wait beyond the deadline the session is given.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    BatchStage::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A guest broke a rule of the contract; raised as a trap and reported as
/// `Sandbox.ContractViolation`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ContractViolation(pub(crate) String);

impl crate::bindings::types::Host for HostState {}
