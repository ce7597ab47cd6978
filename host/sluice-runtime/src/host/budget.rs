//! What one event may make the host hold: bytes of state writes and of emitted events, log
//! bytes, and its share of the batch it runs in.
//!
//! Everything here lives in host memory, outside the guest's memory limit, until the batch
//! commits (write sets, outbox rows) or is written out (logs). Each host function charges
//! the bytes it is about to keep *before* keeping them, so a guest looping on `set` meets a
//! `too-large` error after a few megabytes instead of growing the host by gigabytes before
//! its deadline. Overwriting a key charges again: the charge is an upper bound of what is
//! held, cheap to keep, and a stage that needs more can be configured for it.

use crate::config::Limits;

/// Why a charge was refused.
pub(crate) enum Refused {
    /// The event's own cap: the guest sees a `too-large` error and may carry on.
    Event(String),
    /// The batch's cap: the host fails the event with `Sandbox.BatchLimit` (retryable).
    Batch(BatchLimit),
}

/// The batch the event runs in holds as much as the stage allows; raised as a trap.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BatchLimit(pub(crate) String);

/// Byte counters of the current event.
#[derive(Debug, Clone, Default)]
pub(crate) struct Budget {
    max_write: usize,
    max_emit: usize,
    max_log: usize,
    max_batch: usize,
    /// Bytes the batch held before this event began (kept events' writes, emits, outputs).
    /// Zero for the first event of a batch, which is never refused for the batch's sake.
    pub(crate) batch_before: usize,
    pub(crate) written: usize,
    pub(crate) emitted: usize,
    pub(crate) logged: usize,
    pub(crate) log_dropped: usize,
}

impl Budget {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_write: limits.max_write_bytes_per_event,
            max_emit: limits.max_emit_bytes_per_event,
            max_log: limits.max_log_bytes_per_event,
            max_batch: limits.max_batch_bytes,
            ..Self::default()
        }
    }

    /// A new event starts, after `batch_before` bytes held by the batch's kept events.
    pub(crate) fn start_event(&mut self, batch_before: usize) {
        self.batch_before = batch_before;
        self.written = 0;
        self.emitted = 0;
        self.logged = 0;
        // `log_dropped` is reported and reset at the end of the call (a `handle-batch` call
        // starts several events), not here.
    }

    /// The event's log budget, in bytes.
    pub(crate) fn max_log(&self) -> usize {
        self.max_log
    }

    /// What the current event holds so far.
    pub(crate) fn held(&self) -> usize {
        self.written.saturating_add(self.emitted)
    }

    fn check_batch(&self, more: usize) -> Result<(), Refused> {
        let total = self
            .batch_before
            .saturating_add(self.held())
            .saturating_add(more);
        if self.batch_before > 0 && total > self.max_batch {
            return Err(Refused::Batch(BatchLimit(format!(
                "the batch already holds {} bytes of writes, emits and outputs, and this event's {} more would pass the stage's max_batch_bytes of {}; the event is retried in another batch",
                self.batch_before,
                self.held().saturating_add(more),
                self.max_batch
            ))));
        }
        Ok(())
    }

    /// Charge `bytes` of state writes.
    pub(crate) fn write(&mut self, bytes: usize) -> Result<(), Refused> {
        let next = self.written.saturating_add(bytes);
        if next > self.max_write {
            return Err(Refused::Event(format!(
                "this write of {bytes} bytes would take the event's writes to {next} bytes, past the stage's max_write_bytes_per_event of {}",
                self.max_write
            )));
        }
        self.check_batch(bytes)?;
        self.written = next;
        Ok(())
    }

    /// Charge `bytes` of an emitted event.
    pub(crate) fn emit(&mut self, bytes: usize) -> Result<(), Refused> {
        let next = self.emitted.saturating_add(bytes);
        if next > self.max_emit {
            return Err(Refused::Event(format!(
                "this emit of {bytes} bytes would take the event's emits to {next} bytes, past the stage's max_emit_bytes_per_event of {}",
                self.max_emit
            )));
        }
        self.check_batch(bytes)?;
        self.emitted = next;
        Ok(())
    }

    /// How much of a `bytes`-long log message may still be written for this event; the rest
    /// is counted as dropped.
    pub(crate) fn log(&mut self, bytes: usize) -> usize {
        let room = self.max_log.saturating_sub(self.logged);
        let take = bytes.min(room);
        self.logged += take;
        self.log_dropped += bytes - take;
        take
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_write_bytes_per_event: 100,
            max_emit_bytes_per_event: 50,
            max_log_bytes_per_event: 10,
            max_batch_bytes: 200,
            ..Limits::default()
        }
    }

    #[test]
    fn event_caps_refuse_the_write_that_passes_them_and_keep_the_count() {
        let mut b = Budget::new(&limits());
        b.start_event(0);
        assert!(b.write(60).is_ok());
        assert!(matches!(b.write(41), Err(Refused::Event(_))));
        assert_eq!(b.written, 60, "a refused write is not charged");
        assert!(b.write(40).is_ok());
        assert!(matches!(b.emit(51), Err(Refused::Event(_))));
        assert!(b.emit(50).is_ok());
        assert_eq!(b.held(), 150);
    }

    #[test]
    fn the_batch_cap_applies_to_every_event_but_the_first() {
        let mut b = Budget::new(&limits());
        b.start_event(0);
        assert!(
            b.write(100).is_ok(),
            "the first event only meets its own caps"
        );
        b.start_event(150);
        assert!(b.write(50).is_ok());
        assert!(matches!(b.write(1), Err(Refused::Batch(_))));
        assert!(matches!(b.emit(1), Err(Refused::Batch(_))));
    }

    #[test]
    fn logs_past_the_budget_are_dropped_and_counted() {
        let mut b = Budget::new(&limits());
        b.start_event(0);
        assert_eq!(b.log(6), 6);
        assert_eq!(b.log(6), 4);
        assert_eq!(b.log(6), 0);
        assert_eq!((b.logged, b.log_dropped), (10, 8));
        b.start_event(0);
        assert_eq!(b.log(3), 3);
    }
}
