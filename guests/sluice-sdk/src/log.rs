//! Logging into the host's log: the WIT's `log` interface. The host tags each line with the
//! stage and the current event's id, and truncates it at its line limit (and a stage's log
//! bytes per event at `max_log_bytes_per_event`). Each call is one host call.

use crate::bindings::sluice::platform::log as wit;

pub use wit::Level;

/// Write `message` at `level`.
pub fn log(level: Level, message: &str) {
    wit::log(level, message);
}

/// Write `message` at `trace`.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message.as_ref());
}

/// Write `message` at `debug`.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Write `message` at `info`.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Write `message` at `warn`.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

/// Write `message` at `error`.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
