//! Sluice's domain model, shared by every host crate.
//!
//! This crate sits at the bottom of the dependency graph on purpose: the workflow interpreter,
//! the redb store and the wasmtime runtime all speak these types, and none of them needs the
//! others to do so. It knows nothing of wasmtime, redb, NATS or HTTP.

pub mod event;
pub mod memory;
pub mod names;
pub mod records;
pub mod rules;
pub mod state;

pub use event::{Event, StageError, StageOutcome};
