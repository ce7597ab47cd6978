//! Naming sandbox failures: a wasmtime error from a guest call becomes a [`StageError`].

use sluice_model::StageError;
use sluice_model::names;
use wasmtime::Trap;

use crate::call::BlockedPastDeadline;
use crate::host::budget::BatchLimit;
use crate::host::{ContractViolation, LockPastDeadline};
use crate::limiter::Limiter;

/// Name the failure `err` of a guest call. `limiter` says whether a memory growth was refused
/// during the call; `stderr_tail` is the end of what the guest wrote to stderr (a Rust panic
/// message lands there just before the trap), quoted in the cause.
pub(crate) fn classify(err: &wasmtime::Error, limiter: &Limiter, stderr_tail: &str) -> StageError {
    let detail = {
        let tail = stderr_tail.trim();
        if tail.is_empty() {
            String::new()
        } else {
            format!("; guest stderr: {}", crate::stdio::truncate(tail, 512))
        }
    };
    if let Some(v) = err.downcast_ref::<ContractViolation>() {
        return StageError::new(names::SANDBOX_CONTRACT, v.0.clone(), false);
    }
    if let Some(b) = err.downcast_ref::<BlockedPastDeadline>() {
        return StageError::new(names::SANDBOX_TIMEOUT, b.to_string(), true);
    }
    if let Some(l) = err.downcast_ref::<LockPastDeadline>() {
        return StageError::new(names::SANDBOX_TIMEOUT, l.to_string(), true);
    }
    if let Some(b) = err.downcast_ref::<BatchLimit>() {
        return StageError::new(names::SANDBOX_BATCH_LIMIT, b.0.clone(), true);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => StageError::new(
            names::SANDBOX_TIMEOUT,
            "the invocation ran past its deadline and was interrupted",
            true,
        ),
        Some(Trap::StackOverflow) => StageError::new(
            names::SANDBOX_STACK_OVERFLOW,
            format!("the guest exhausted its call stack{detail}"),
            false,
        ),
        // A refused growth usually surfaces as the guest's own abort (`unreachable`) right
        // after; whatever the trap, the refusal is the root cause worth naming.
        _ if limiter.refused.is_some() => StageError::new(
            names::SANDBOX_MEMORY_LIMIT,
            limiter.refused.clone().unwrap_or_default(),
            false,
        ),
        Some(trap) => StageError::new(
            names::SANDBOX_TRAP,
            format!("wasm trap: {trap}{detail}"),
            false,
        ),
        None => StageError::new(names::SANDBOX_TRAP, format!("{err:#}{detail}"), false),
    }
}
