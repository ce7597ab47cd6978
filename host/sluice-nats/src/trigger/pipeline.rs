//! The trigger's pipeline: while the trigger collects a batch, each partition's worker runs
//! the batch before it on a thread of its own, and the batch before that commits.
//!
//! A partition's thread takes its jobs from a queue, so it goes from one batch to the next
//! without waiting for the trigger loop to be scheduled: handing batches over through the
//! loop cost the worker ~15% of its time in a benchmark (the loop had to wake up, collect the
//! results, and spawn the next run). The thread reports each share it has finished —
//! committed, and re-run if its commit met a redelivery — and the trigger settles batches in
//! arrival order once every share of them is finished.
//!
//! The queues are unbounded so that the trigger loop never stops reading the pull: a message
//! is either in a batch, which sends in-progress acks from the moment it is formed, or briefly
//! in the client's buffer. What bounds the queues is the consumer's `max_ack_pending`: past
//! it, the server delivers no more.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream::Message;
use sluice_model::Event;
use sluice_runtime::{Detached, Invocation, Worker};
use tokio::sync::mpsc;

/// A batch handed to the partitions and not yet finished everywhere, with what settling it
/// needs.
pub(super) struct InFlight {
    /// The batch's messages, in arrival order.
    pub(super) msgs: Arc<Vec<Message>>,
    /// Each partition's share: the positions of its events in the batch (empty for none).
    pub(super) parts: Vec<Vec<usize>>,
    /// Final results by position, filled in as the partitions finish their shares.
    pub(super) results: Vec<Option<Invocation>>,
    /// Partitions that have not finished their (non-empty) share yet.
    pub(super) owed: Vec<bool>,
    /// Sends in-progress acks until the batch is settled.
    pub(super) progress: tokio::task::JoinHandle<()>,
}

impl InFlight {
    /// A batch of `msgs` split into `parts` (positions per partition), owed by every
    /// partition with a non-empty share.
    pub(super) fn new(
        msgs: Arc<Vec<Message>>,
        parts: Vec<Vec<usize>>,
        progress: tokio::task::JoinHandle<()>,
    ) -> Self {
        let total = parts.iter().map(Vec::len).sum();
        Self {
            msgs,
            owed: parts.iter().map(|p| !p.is_empty()).collect(),
            parts,
            results: vec![None; total],
            progress,
        }
    }

    /// Whether every partition has finished its share.
    fn finished(&self) -> bool {
        !self.owed.iter().any(|&o| o)
    }
}

impl Drop for InFlight {
    /// However a batch leaves the pipeline — settled, or dropped on an error path — its
    /// in-progress acks stop, so JetStream can redeliver what was not acknowledged.
    fn drop(&mut self) {
        self.progress.abort();
    }
}

/// What a partition's thread reports.
pub(super) enum Reply {
    /// `slot` finished its share of its oldest unfinished batch: the final results, in the
    /// share's order.
    Finished {
        slot: usize,
        results: Vec<Invocation>,
    },
    /// `slot`'s worker panicked; the trigger cannot go on without it.
    Lost { slot: usize },
}

/// The partitions' threads and the batches they hold, oldest first.
pub(super) struct Pipeline {
    jobs: Vec<mpsc::UnboundedSender<Vec<Event>>>,
    replies: mpsc::UnboundedReceiver<Reply>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Set when the pipeline is dropped: the threads skip what is still queued.
    cancel: Arc<AtomicBool>,
    /// Set at shutdown: workers stop waiting for a failed store to heal.
    give_up: Arc<AtomicBool>,
    /// Batches handed over and not yet finished by every partition, oldest first.
    pub(super) in_flight: VecDeque<InFlight>,
    /// A partition whose worker panicked.
    pub(super) lost: Option<usize>,
}

impl Pipeline {
    /// One thread per worker (partition `i` runs on `workers[i]`), named after `trigger`.
    /// `slot`: where the partitions find the stage version to run (checked before each
    /// batch); `None` keeps each worker's own.
    pub(super) fn start(
        trigger: &str,
        workers: Vec<Worker>,
        slot: Option<Arc<super::StageSlot>>,
    ) -> Self {
        let (reply_tx, replies) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Handle::current();
        let cancel = Arc::new(AtomicBool::new(false));
        let give_up = Arc::new(AtomicBool::new(false));
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        let stage_slot = slot;
        for (slot, worker) in workers.into_iter().enumerate() {
            // A worker holds a batch while the store is down, until it heals; at shutdown it
            // stops waiting, and the batch's messages are retried without being counted.
            let worker = worker.with_give_up(give_up.clone());
            let (tx, rx) = mpsc::unbounded_channel();
            let replies = reply_tx.clone();
            let runtime = runtime.clone();
            let cancel = cancel.clone();
            let stage = stage_slot.clone();
            let thread = std::thread::Builder::new()
                .name(format!("sluice-{trigger}-{slot}"))
                .spawn(move || {
                    partition(
                        slot,
                        worker,
                        rx,
                        replies,
                        (&runtime, &cancel, stage.as_deref()),
                    );
                })
                .expect("spawning a partition thread");
            jobs.push(tx);
            threads.push(thread);
        }
        Self {
            jobs,
            replies,
            threads,
            cancel,
            give_up,
            in_flight: VecDeque::new(),
            lost: None,
        }
    }

    /// How many partitions.
    pub(super) fn partitions(&self) -> usize {
        self.jobs.len()
    }

    /// The next report of a partition thread. Cancel-safe.
    pub(super) async fn reply(&mut self) -> Reply {
        match self.replies.recv().await {
            Some(r) => r,
            // Every thread holds a sender until it ends, and threads end only when the
            // pipeline is dropped: a closed channel means they all died.
            None => Reply::Lost { slot: 0 },
        }
    }

    /// A report already waiting, if any.
    pub(super) fn try_reply(&mut self) -> Option<Reply> {
        self.replies.try_recv().ok()
    }

    /// Record `reply`; the batches at the front that every partition has finished are
    /// returned, oldest first, to be settled.
    pub(super) fn record(&mut self, reply: Reply) -> Vec<InFlight> {
        match reply {
            Reply::Lost { slot } => self.lost = Some(slot),
            Reply::Finished { slot, results } => {
                // A thread finishes its shares in the order it got them.
                let batch = self
                    .in_flight
                    .iter_mut()
                    .find(|b| b.owed[slot])
                    .expect("a partition finishes only shares it was given");
                batch.owed[slot] = false;
                for (&i, inv) in batch.parts[slot].iter().zip(results) {
                    batch.results[i] = Some(inv);
                }
            }
        }
        let mut done = Vec::new();
        while self.in_flight.front().is_some_and(InFlight::finished) {
            done.extend(self.in_flight.pop_front());
        }
        done
    }

    /// Queue `share` for partition `slot`; false (and the partition recorded lost) if its
    /// thread is gone.
    pub(super) fn send(&mut self, slot: usize, share: Vec<Event>) -> bool {
        let sent = self.jobs[slot].send(share).is_ok();
        if !sent {
            self.lost = Some(slot);
        }
        sent
    }
}

impl Pipeline {
    /// From now on, workers stop waiting for a failed store to heal: the batches they hold
    /// end with a platform fault, retried later without counting against their events.
    /// Called when the trigger stops, before it flushes, so a stop never waits for a disk.
    pub(super) fn stop_waiting_for_the_store(&self) {
        self.give_up.store(true, Ordering::Relaxed);
    }

    /// Close the queues and wait, off the async threads, until every partition thread has
    /// finished what it holds and ended.
    pub(super) async fn shutdown(mut self) {
        self.give_up.store(true, Ordering::Relaxed);
        self.jobs.clear();
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for Pipeline {
    /// Without [`Pipeline::shutdown`] (after a fatal error): each thread finishes the share it
    /// is running and committing, skips what is still queued (nobody would acknowledge its
    /// results), and ends on its own. Not joined: that would block an async thread.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.give_up.store(true, Ordering::Relaxed);
        self.jobs.clear();
    }
}

/// Reports the partition lost if its thread unwinds.
struct LostGuard {
    slot: usize,
    replies: mpsc::UnboundedSender<Reply>,
}

impl Drop for LostGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.replies.send(Reply::Lost { slot: self.slot });
        }
    }
}

/// A share that ran and is committing on a blocking thread.
struct Committing {
    events: Vec<Event>,
    commit: tokio::task::JoinHandle<Detached>,
}

/// A partition's thread: run each job, start its commit at once, and finish the share before
/// it (its commit's outcome, and a re-run if that commit met a redelivery).
fn partition(
    slot: usize,
    mut w: Worker,
    mut jobs: mpsc::UnboundedReceiver<Vec<Event>>,
    replies: mpsc::UnboundedSender<Reply>,
    (runtime, cancel, stage): (
        &tokio::runtime::Handle,
        &AtomicBool,
        Option<&super::StageSlot>,
    ),
) {
    // Moved into the guard, which reports the partition lost if this thread unwinds.
    let guard = LostGuard { slot, replies };
    let replies = &guard.replies;
    let finish =
        |w: &mut Worker, share: Committing, next: Option<(&[Event], &mut Vec<Invocation>)>| {
            let detached =
                futures::executor::block_on(share.commit).expect("a commit task does not panic");
            let results = w.complete(detached, &share.events, next);
            let _ = replies.send(Reply::Finished { slot, results });
        };
    let mut committing: Option<Committing> = None;
    loop {
        let run = match jobs.try_recv() {
            Ok(run) => run,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Nothing queued: finish the share in flight now (its acks should not wait
                // for the next batch), then wait.
                if let Some(share) = committing.take() {
                    finish(&mut w, share, None);
                }
                match jobs.blocking_recv() {
                    Some(run) => run,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        if cancel.load(Ordering::Relaxed) {
            continue;
        }
        if run.is_empty() {
            // Nothing to run: just finish what is in flight.
            if let Some(share) = committing.take() {
                finish(&mut w, share, None);
            }
            continue;
        }
        // A new version takes over here, between batches: the share committing finishes on
        // the version that ran it, and this batch runs wholly on the new one.
        if let Some(current) = stage.map(super::StageSlot::get)
            && !Arc::ptr_eq(&current, w.stage())
        {
            if let Some(share) = committing.take() {
                finish(&mut w, share, None);
            }
            w.replace_stage(current);
        }
        let mut ran = w.run_pending(&run);
        if let Some(share) = committing.take() {
            finish(&mut w, share, Some((&run, &mut ran)));
        }
        // Start this share's commit at once and go on with the spare session. Not after the
        // other partitions: if this share holds the store lock, another partition may be
        // waiting for it.
        let mut detached = w.detach(ran);
        committing = Some(Committing {
            events: run,
            commit: runtime.spawn_blocking(move || {
                detached.commit();
                detached
            }),
        });
    }
    if let Some(share) = committing.take() {
        finish(&mut w, share, None);
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline against real partition threads running a real guest (`passthrough`)
    //! over the in-memory state backend; no NATS (batches carry no messages here).

    use std::sync::Arc;

    use sluice_model::memory::MemoryBackend;
    use sluice_model::state::SystemClock;
    use sluice_model::{Event, StageOutcome};
    use sluice_runtime::{EngineConfig, Runtime, Stage, StageConfig, Worker};

    use super::{InFlight, Pipeline, Reply};

    fn stage(dir: &std::path::Path) -> Arc<Stage> {
        let runtime = Runtime::new(&EngineConfig::new(dir)).expect("runtime");
        let bytes = sluice_test_artifacts::read(sluice_test_artifacts::PASSTHROUGH);
        runtime
            .deploy("passthrough", &bytes, StageConfig::default())
            .expect("deploying passthrough")
    }

    fn worker(stage: &Arc<Stage>, backend: &MemoryBackend, spare: bool) -> Worker {
        let w = Worker::new(stage.clone(), Box::new(backend.open_session()));
        if spare {
            w.with_spare_session(Box::new(backend.open_session()))
        } else {
            w
        }
    }

    fn event(n: usize) -> Event {
        Event::json(format!("e-{n}"), &serde_json::json!({ "n": n }))
    }

    /// A batch (without messages) whose shares are `parts` (positions per partition).
    fn batch(parts: Vec<Vec<usize>>) -> InFlight {
        InFlight::new(Arc::new(Vec::new()), parts, tokio::spawn(async {}))
    }

    /// Two partitions running `passthrough`; `spares` says which workers get a spare
    /// session (one without panics when it detaches a batch for its commit).
    fn two_partitions(dir: &std::path::Path, spares: [bool; 2]) -> Pipeline {
        let stage = stage(dir);
        let backend = MemoryBackend::new(Vec::new(), Arc::new(SystemClock));
        let workers = spares.map(|spare| worker(&stage, &backend, spare));
        Pipeline::start("t", workers.into(), None)
    }

    async fn next_reply(pipe: &mut Pipeline) -> Reply {
        tokio::time::timeout(std::time::Duration::from_secs(30), pipe.reply())
            .await
            .expect("the partitions report")
    }

    /// Queue `inflight` and send each partition its share of `events` (global positions).
    fn hand_over(pipe: &mut Pipeline, inflight: InFlight, events: &[Event]) {
        let shares: Vec<Vec<Event>> = inflight
            .parts
            .iter()
            .map(|p| p.iter().map(|&i| events[i].clone()).collect())
            .collect();
        pipe.in_flight.push_back(inflight);
        for (slot, share) in shares.into_iter().enumerate() {
            if !share.is_empty() {
                assert!(pipe.send(slot, share), "partition {slot} is alive");
            }
        }
    }

    fn output(outcome: &StageOutcome) -> serde_json::Value {
        serde_json::from_slice(outcome.as_ref().expect("passthrough succeeds")).unwrap()
    }

    /// Batches whose shares spread unevenly over two partitions (some empty) come out
    /// finished in the order they went in, each result at its event's position.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_finish_in_order_with_each_result_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut pipe = two_partitions(dir.path(), [true, true]);
        // Three batches: only partition 0; only partition 1; both.
        let layouts = [
            vec![vec![0, 1], vec![]],
            vec![vec![], vec![0]],
            vec![vec![1], vec![0, 2]],
        ];
        let mut next = 0;
        let mut sent = Vec::new();
        for parts in &layouts {
            let total: usize = parts.iter().map(Vec::len).sum();
            let events: Vec<Event> = (next..next + total).map(event).collect();
            next += total;
            hand_over(&mut pipe, batch(parts.clone()), &events);
            sent.push(events);
        }
        let mut done = Vec::new();
        while done.len() < layouts.len() {
            let reply = next_reply(&mut pipe).await;
            assert!(matches!(reply, Reply::Finished { .. }));
            done.extend(pipe.record(reply));
        }
        assert!(pipe.in_flight.is_empty());
        for (finished, events) in done.iter().zip(&sent) {
            for (inv, e) in finished.results.iter().zip(events) {
                let inv = inv.as_ref().expect("every position has its result");
                assert_eq!(
                    output(&inv.outcome),
                    serde_json::from_slice::<serde_json::Value>(&e.data).unwrap()
                );
            }
        }
        pipe.shutdown().await;
    }

    /// A partition whose worker panics is reported lost; the other partition still finishes
    /// its share, the batch stays unfinished (it must not be settled), the lost partition
    /// takes no more work, and shutting down does not wait for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_partition_is_reported_lost() {
        let dir = tempfile::tempdir().unwrap();
        // Without a spare session, detaching the batch for its commit panics.
        let mut pipe = two_partitions(dir.path(), [true, false]);
        let events: Vec<Event> = (0..2).map(event).collect();
        hand_over(&mut pipe, batch(vec![vec![0], vec![1]]), &events);
        let (mut finished, mut lost) = (false, false);
        while !(finished && lost) {
            let reply = next_reply(&mut pipe).await;
            match &reply {
                Reply::Finished { slot, .. } => {
                    assert_eq!(*slot, 0);
                    finished = true;
                }
                Reply::Lost { slot } => {
                    assert_eq!(*slot, 1);
                    lost = true;
                }
            }
            assert!(
                pipe.record(reply).is_empty(),
                "a batch with a lost share never finishes"
            );
        }
        assert_eq!(pipe.lost, Some(1));
        assert_eq!(pipe.in_flight.len(), 1);
        // Its queue closes as its thread finishes unwinding (just after it reported).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pipe.send(1, vec![event(9)]) {
            assert!(
                std::time::Instant::now() < deadline,
                "the lost partition still takes work"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::timeout(std::time::Duration::from_secs(30), pipe.shutdown())
            .await
            .expect("shutdown does not wait for the lost partition");
    }
}
