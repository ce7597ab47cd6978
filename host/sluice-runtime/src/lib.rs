//! Sluice's sandbox: runs pipeline stages as WebAssembly components.
//!
//! - [`Runtime`] owns the process's single `wasmtime::Engine` (component model, pooling
//!   allocator, epoch interruption) and the on-disk cache of compiled stages.
//! - [`Runtime::deploy`] validates a component against the `sluice:platform` stage world,
//!   compiles it once (or reloads the cached artifact), and pre-links it into a [`Stage`].
//! - A [`Worker`] runs events through one stage on its own thread, keeping a warm instance like
//!   a warm Lambda environment and recycling it after N events, on any trap, or past a memory
//!   mark. Every failure of the sandbox becomes a named [`sluice_model::StageError`]
//!   (`Sandbox.Timeout`, `Sandbox.MemoryLimit`, ...) of that one invocation.
//!
//! A worker is a plain thread that owns its `Store`. Guest calls run on wasmtime fibers
//! driven by the worker's own current-thread tokio runtime, with WASI linked async, so that a
//! deadline interrupts a guest blocked in a host call too (`call.rs`); Sluice's own imports
//! stay synchronous and suit the blocking redb backend that serves them.

mod bindings;
mod cache;
mod call;
pub mod compile;
mod config;
mod deploy;
mod engine;
mod host;
mod limiter;
mod stdio;
mod trap;
mod worker;

pub use cache::CacheOutcome;
pub use config::{Grants, Limits, StageConfig};
pub use deploy::{DeployError, Stage};
pub use engine::{CompilerCommand, EngineConfig, Runtime};
pub use stdio::{GuestLog, GuestLogSink, LogLevel, TracingSink};
pub use worker::{Detached, Invocation, Worker, WorkerStats, fingerprint};

/// The WIT package this runtime implements, for error messages and docs.
pub const WIT_PACKAGE: &str = "sluice:platform@0.1.0";
