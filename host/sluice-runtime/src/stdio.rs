//! Guest output: WASI stdout/stderr and the `log` interface, routed to the host's log with the
//! stage name and the current event id.
//!
//! A guest writes through a [`LogPipe`], which never fails a write (Rust's `println!` panics
//! on a failed write, so refusing output would turn chattiness into a trap). Instead, output
//! beyond [`MAX_BYTES_PER_EVENT`] per stream and event is counted and dropped, and lines are
//! cut at [`MAX_LINE`], so a guest cannot drive host memory or flood the log.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line passed to the sink; the rest of the line is cut.
pub const MAX_LINE: usize = 4096;
/// Output bytes accepted per stream per event; the excess is dropped and reported once.
pub const MAX_BYTES_PER_EVENT: usize = 64 << 10;
/// Bytes of stderr remembered per event, quoted in the cause of a trap (a panic message).
const STDERR_TAIL: usize = 1024;

/// Severity of a guest log record (mirrors `sluice:platform/log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// One line of guest output.
#[derive(Debug, Clone, Copy)]
pub struct GuestLog<'a> {
    /// Stage that wrote it.
    pub stage: &'a str,
    /// Event being handled when it was written.
    pub event_id: &'a str,
    /// `stdout`, `stderr` or `log`.
    pub stream: &'static str,
    /// Severity (stdout is `Info`, stderr `Warn`).
    pub level: LogLevel,
    /// The line, without its newline.
    pub message: &'a str,
}

/// Where guest output goes. Injected so tests can capture it.
pub trait GuestLogSink: Send + Sync {
    /// Record one line.
    fn log(&self, line: &GuestLog<'_>);
}

/// The default sink: `tracing` events under the target `sluice::guest`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl GuestLogSink for TracingSink {
    fn log(&self, l: &GuestLog<'_>) {
        let (stage, event, stream, msg) = (l.stage, l.event_id, l.stream, l.message);
        match l.level {
            LogLevel::Trace => {
                tracing::trace!(target: "sluice::guest", stage, event, stream, "{msg}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "sluice::guest", stage, event, stream, "{msg}")
            }
            LogLevel::Info => {
                tracing::info!(target: "sluice::guest", stage, event, stream, "{msg}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "sluice::guest", stage, event, stream, "{msg}")
            }
            LogLevel::Error => {
                tracing::error!(target: "sluice::guest", stage, event, stream, "{msg}")
            }
        }
    }
}

/// The stage name and current event id that tag every line, shared by a store's pipes.
#[derive(Clone)]
pub(crate) struct LogTag {
    pub(crate) stage: Arc<str>,
    pub(crate) event_id: Arc<Mutex<String>>,
    pub(crate) sink: Arc<dyn GuestLogSink>,
}

impl LogTag {
    pub(crate) fn emit(&self, stream: &'static str, level: LogLevel, message: &str) {
        let event_id = self.event_id.lock();
        self.sink.log(&GuestLog {
            stage: &self.stage,
            event_id: &event_id,
            stream,
            level,
            message: truncate(message, MAX_LINE),
        });
    }
}

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Default)]
struct PipeState {
    partial: Vec<u8>,
    accepted: usize,
    dropped: usize,
    tail: Vec<u8>,
}

/// A WASI output stream that turns bytes into tagged log lines.
#[derive(Clone)]
pub(crate) struct LogPipe {
    tag: LogTag,
    stream: &'static str,
    level: LogLevel,
    state: Arc<Mutex<PipeState>>,
}

impl LogPipe {
    pub(crate) fn new(tag: LogTag, stream: &'static str, level: LogLevel) -> Self {
        Self {
            tag,
            stream,
            level,
            state: Arc::default(),
        }
    }

    fn accept(&self, bytes: &[u8]) {
        let mut st = self.state.lock();
        let room = MAX_BYTES_PER_EVENT.saturating_sub(st.accepted);
        let (take, rest) = bytes.split_at(bytes.len().min(room));
        st.accepted += take.len();
        st.dropped += rest.len();
        st.tail.extend_from_slice(take);
        if st.tail.len() > STDERR_TAIL {
            let cut = st.tail.len() - STDERR_TAIL;
            st.tail.drain(..cut);
        }
        st.partial.extend_from_slice(take);
        while let Some(nl) = st.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = st.partial.drain(..=nl).collect();
            self.tag.emit(
                self.stream,
                self.level,
                String::from_utf8_lossy(&line[..line.len() - 1]).trim_end_matches('\r'),
            );
        }
        if st.partial.len() > MAX_LINE {
            let line: Vec<u8> = std::mem::take(&mut st.partial);
            self.tag
                .emit(self.stream, self.level, &String::from_utf8_lossy(&line));
        }
    }

    /// End of an event: emit any unterminated line and the count of dropped bytes, then reset.
    /// Returns the tail of what was written, for trap causes.
    pub(crate) fn finish_event(&self) -> String {
        let mut st = self.state.lock();
        if !st.partial.is_empty() {
            let line = std::mem::take(&mut st.partial);
            self.tag
                .emit(self.stream, self.level, &String::from_utf8_lossy(&line));
        }
        if st.dropped > 0 {
            let msg = format!(
                "[sluice: dropped {} bytes of {} past the per-event limit]",
                st.dropped, self.stream
            );
            self.tag.emit(self.stream, LogLevel::Warn, &msg);
        }
        let tail = String::from_utf8_lossy(&st.tail).into_owned();
        *st = PipeState::default();
        tail
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: excess is dropped in `accept`, never refused.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
