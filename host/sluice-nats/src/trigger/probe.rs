//! A watchdog over a trigger's waits: the trigger loop and its settling each say what they
//! are waiting on, and a wait that lasts far longer than any healthy one is logged with its
//! name. No healthy wait of the loop lasts more than a few seconds (the pull wakes it every
//! 250 ms), so a long one is a stall worth naming: it says where to look.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The loop's own waits.
pub(super) const LOOP: usize = 0;
/// The settling of finished batches (acknowledgements, dead letters, the outbox).
pub(super) const SETTLE: usize = 1;

/// What each part of a trigger waits on now, and since when.
#[derive(Default)]
pub(super) struct Probe {
    slots: Mutex<[Option<(&'static str, Instant)>; 2]>,
}

impl Probe {
    /// `slot` starts waiting on `what`.
    pub(super) fn enter(&self, slot: usize, what: &'static str) {
        self.slots.lock().expect("probe lock")[slot] = Some((what, Instant::now()));
    }

    /// Await `f`, with `slot` waiting on `what` meanwhile.
    pub(super) async fn on<F: Future>(&self, slot: usize, what: &'static str, f: F) -> F::Output {
        /// Clears the slot however the wait ends, also when the future is dropped.
        struct Leave<'a>(&'a Probe, usize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.leave(self.1);
            }
        }
        self.enter(slot, what);
        let _leave = Leave(self, slot);
        f.await
    }

    /// `slot` waits on nothing.
    pub(super) fn leave(&self, slot: usize) {
        self.slots.lock().expect("probe lock")[slot] = None;
    }

    /// Waits that have lasted longer than `limit`, with their durations.
    fn overdue(&self, limit: Duration) -> Vec<(&'static str, Duration)> {
        let now = Instant::now();
        self.slots
            .lock()
            .expect("probe lock")
            .iter()
            .flatten()
            .map(|&(what, since)| (what, now - since))
            .filter(|&(_, d)| d > limit)
            .collect()
    }

    /// Log, every `every`, each wait of trigger `name` that has lasted past `limit`. Ends
    /// when the probe is dropped by everyone else.
    pub(super) fn watch(self: &Arc<Self>, name: String, every: Duration, limit: Duration) {
        let probe = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(probe) = probe.upgrade() else { return };
                for (what, lasted) in probe.overdue(limit) {
                    tracing::warn!(
                        trigger = %name,
                        "trigger {name} has been waiting on {what} for {} s",
                        lasted.as_secs()
                    );
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{LOOP, Probe, SETTLE};

    #[test]
    fn only_waits_past_the_limit_are_overdue() {
        let p = Probe::default();
        p.enter(LOOP, "the outbox");
        p.enter(SETTLE, "an ack");
        std::thread::sleep(Duration::from_millis(600));
        p.enter(SETTLE, "a dead letter");
        let overdue = p.overdue(Duration::from_millis(300));
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].0, "the outbox");
        p.leave(LOOP);
        assert!(
            p.overdue(Duration::ZERO)
                .iter()
                .all(|o| o.0 == "a dead letter")
        );
    }
}
