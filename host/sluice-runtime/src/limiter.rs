//! Per-store resource limits that remember *why* a growth was refused.
//!
//! When a guest's `memory.grow` is refused, the guest usually does not trap at that point: Rust's
//! allocator reports the failure and the guest aborts with an `unreachable` trap. Recording the
//! refusal lets the host name that trap `Sandbox.MemoryLimit` rather than a generic trap.

use wasmtime::ResourceLimiter;

/// Most table elements a guest may grow a table to: enough for any real program, small enough
/// that a table-growing loop cannot exhaust host memory.
const MAX_TABLE_ELEMENTS: usize = 100_000;

pub(crate) struct Limiter {
    pub(crate) memory_limit: usize,
    /// Description of the last refused growth in the current event, if any.
    pub(crate) refused: Option<String>,
    /// Current size of the instance's largest linear memory.
    pub(crate) memory_size: usize,
}

impl Limiter {
    pub(crate) fn new(memory_limit: usize) -> Self {
        Self {
            memory_limit,
            refused: None,
            memory_size: 0,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.refused = Some(format!(
                "linear memory growth from {current} to {desired} bytes refused: the stage's limit is {} bytes",
                self.memory_limit
            ));
            return Ok(false);
        }
        self.memory_size = self.memory_size.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.refused = Some(format!(
                "table growth from {current} to {desired} elements refused (limit {MAX_TABLE_ELEMENTS})"
            ));
            return Ok(false);
        }
        Ok(true)
    }
}
