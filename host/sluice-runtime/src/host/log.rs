//! `sluice:platform/log`: guest log records into the host log, tagged with stage and event.
//!
//! Like stdout and stderr, `log` has a per-event byte budget (`max_log_bytes_per_event`):
//! what passes it is dropped and counted in one warning at the end of the event, never a
//! trap, so a chatty guest cannot flood the host's log (100,000 calls of 64 KiB each once
//! wrote 426 MB for one event).

use crate::bindings::log::{Host, Level};
use crate::host::HostState;
use crate::stdio::LogLevel;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Lines are cut at the line limit anyway; the budget counts what reaches the log.
        let line = crate::stdio::truncate(&message, crate::stdio::MAX_LINE);
        let take = self.budget.log(line.len());
        if take > 0 {
            self.tag
                .emit("log", level, crate::stdio::truncate(line, take));
        }
        Ok(())
    }
}
