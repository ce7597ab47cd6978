//! `sluice:platform/log`: guest log records into the host log, tagged with stage and event.

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
        self.tag.emit("log", level, &message);
        Ok(())
    }
}
