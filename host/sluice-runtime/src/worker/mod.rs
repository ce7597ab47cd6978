//! Running events through a stage: warm instances, recycling, batches, and naming failures.
//!
//! A [`Worker`] belongs to one thread and one stage. Like a warm Lambda environment it keeps an
//! instance between events, because instantiating costs ~20x a call (PERFORMANCE.md). It drops
//! the instance after [`Limits::recycle_after_events`] events, after any trap (the guest's
//! memory may be inconsistent), and once the guest's memory has grown past
//! [`Limits::recycle_memory_mark`] (a leak should not follow every later event).
//!
//! Each call to [`Worker::invoke_batch`] is one unit of work for the state backend: every
//! event runs in its own write set, successful ones are kept, and the batch is committed once.
//!
//! A commit waits for the disk. To keep the stage busy meanwhile, a worker given a spare
//! session can pipeline: [`Worker::run_pending`] runs a batch and leaves its write set open,
//! [`Worker::detach`] hands that write set out to be committed on another thread
//! ([`Detached::commit`]) while the next batch runs, and [`Worker::complete`] takes it back.
//! Commits still happen in batch order, and a batch that touches state waits (at its first
//! state access) for the store lock the batch before it holds until its commit, so the
//! pipeline changes when work happens, never what it reads.
//!
//! [`Limits::recycle_after_events`]: crate::Limits::recycle_after_events
//! [`Limits::recycle_memory_mark`]: crate::Limits::recycle_memory_mark

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sluice_model::names;
use sluice_model::state::{
    Clock, CommitError, Emitted, LockScope, Recorded, RecordedOutcome, StateSession, SystemClock,
};
use sluice_model::{Event, StageError, StageOutcome};
use wasmtime::Store;

use crate::bindings::{batch_handler, handler};
use crate::call::Driver;
use crate::deploy::Stage;
use crate::engine::EPOCH_TICK;
use crate::host::{HostState, new_event_tag};
use crate::stdio::LogTag;
use crate::trap::classify;

mod invoke;
mod outcome;

pub use outcome::fingerprint;
use outcome::{give_up, is_platform_fault};

/// The result of one event: its outcome and, if it succeeded, the events it emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Output bytes or a named error.
    pub outcome: StageOutcome,
    /// Events the stage emitted, in order; empty unless the outcome is `Ok`.
    pub emitted: Vec<Emitted>,
    /// `Some` when the event already had a dedupe record and was not run again: `outcome` is
    /// then rebuilt from the record (a success carries an empty output, since only the
    /// output's digest is kept).
    pub replayed: Option<Recorded>,
    /// How many times the stage has now failed this event, by the store's count of its own
    /// failures (this one included), when it failed; `None` when the backend keeps no count,
    /// the failure was the platform's, or the event succeeded. An event source dead-letters
    /// on this count rather than on its delivery count, which the platform's own faults
    /// (broker outages, crashes) also raise.
    pub failures: Option<u32>,
}

impl Invocation {
    fn ran(outcome: StageOutcome, emitted: Vec<Emitted>) -> Self {
        Self {
            outcome,
            emitted,
            replayed: None,
            failures: None,
        }
    }

    fn replay(recorded: Recorded) -> Self {
        let outcome = match &recorded.outcome {
            RecordedOutcome::Succeeded { .. } => Ok(Vec::new()),
            RecordedOutcome::Failed { name, cause } => {
                Err(StageError::new(name.clone(), cause.clone(), false))
            }
        };
        Self {
            outcome,
            emitted: Vec::new(),
            replayed: Some(recorded),
            failures: None,
        }
    }
}

/// Counters of what a worker did, for tests, benchmarks and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    /// Events handled.
    pub events: u64,
    /// Instances created.
    pub instantiations: u64,
    /// Instances dropped after serving `recycle_after_events` events.
    pub recycled_after_events: u64,
    /// Instances dropped because a call trapped (or timed out).
    pub recycled_on_trap: u64,
    /// Instances dropped because their memory passed the mark.
    pub recycled_on_memory: u64,
    /// `handle-batch` calls made.
    pub batch_calls: u64,
    /// Batches re-run event by event because an event in them failed.
    pub batch_fallbacks: u64,
    /// Batches re-run with dedupe look-ups because their commit found an event already
    /// committed (a redelivery).
    pub dedupe_reruns: u64,
    /// Batches held and re-run because the store failed (a failed commit or state call).
    pub store_fault_reruns: u64,
}

struct Warm {
    store: Store<HostState>,
    handler: handler::Guest,
    batch: Option<batch_handler::Guest>,
    served: u64,
}

/// Runs events through one stage on the current thread.
pub struct Worker {
    stage: Arc<Stage>,
    warm: Option<Warm>,
    /// The state session while no instance holds it in its store data.
    idle: Option<Box<dyn StateSession>>,
    clock: Arc<dyn Clock>,
    event_tag: Arc<Mutex<String>>,
    stats: WorkerStats,
    output_subject: Option<String>,
    /// The second session of a pipelining worker, while it is not out committing.
    spare: Option<Box<dyn StateSession>>,
    /// Drives guest calls (fibers) on this worker's thread.
    driver: Driver,
    /// Bytes the kept events of the current batch hold (writes, emits, outputs).
    batch_held: usize,
    /// Set when the worker should stop waiting for a failed store to heal (shutdown).
    give_up: Option<Arc<AtomicBool>>,
}

/// A batch that ran and whose write set is out of its worker, to be committed on any thread
/// while the worker runs the next batch; then it goes back to [`Worker::complete`].
pub struct Detached {
    session: Box<dyn StateSession>,
    results: Vec<Invocation>,
    committed: Option<Result<(), CommitError>>,
}

impl std::fmt::Debug for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detached")
            .field("events", &self.results.len())
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl Detached {
    /// Commit the batch's write set. Blocks on the disk; call it off the async runtime.
    pub fn commit(&mut self) {
        if self.committed.is_none() {
            self.committed = Some(self.session.commit());
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("stage", &self.stage.name)
            .field("warm", &self.warm.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Recycle {
    Trap,
    Fresh,
    AfterEvents,
    Memory,
}

impl Worker {
    /// A worker for `stage` whose state calls go to `session`.
    ///
    /// The session's locks are confined to the buckets and tables the stage is granted, so
    /// stages with disjoint grants never wait for each other's state.
    pub fn new(stage: Arc<Stage>, mut session: Box<dyn StateSession>) -> Self {
        session.set_lock_scope(Some(lock_scope(&stage)));
        Self {
            stage,
            warm: None,
            idle: Some(session),
            clock: Arc::new(SystemClock),
            event_tag: new_event_tag(),
            stats: WorkerStats::default(),
            output_subject: None,
            spare: None,
            driver: Driver::default(),
            batch_held: 0,
            give_up: None,
        }
    }

    /// Give the worker a second session over the same state, so that one batch can commit
    /// (through [`Worker::detach`]) while the next runs. Both sessions must belong to one
    /// store: the store's lock is what keeps the second batch from reading ahead of the first.
    pub fn with_spare_session(mut self, mut spare: Box<dyn StateSession>) -> Self {
        spare.set_lock_scope(Some(lock_scope(&self.stage)));
        self.spare = Some(spare);
        self
    }

    /// Stop waiting for a failed store to heal once `flag` is set (at shutdown): the batch
    /// then ends with [`names::STATE_COMMIT_FAILED`], which an event source retries without
    /// counting it against the event.
    pub fn with_give_up(mut self, flag: Arc<AtomicBool>) -> Self {
        self.give_up = Some(flag);
        self
    }

    /// Use `clock` for table TTLs instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.recycle(None);
        self.clock = clock;
        self
    }

    /// Publish each successful event's output as an event on `subject`, through the outbox and
    /// in the same commit as the event (message id `<event id>/<n>` after the stage's own
    /// emits), which is how stages chain through subjects exactly once.
    pub fn with_output_subject(mut self, subject: Option<String>) -> Self {
        self.output_subject = subject;
        self
    }

    /// Run `stage` (another version of this worker's stage) from the next batch on: the warm
    /// instance of the old one is dropped, the sessions keep their state and take the new
    /// stage's lock scope. Call it between batches, with no batch detached (its commit must
    /// have come back through [`Worker::complete`]), which is what makes a new version take
    /// over at a batch boundary with nothing lost or run twice.
    pub fn replace_stage(&mut self, stage: Arc<Stage>) {
        self.recycle(None);
        let scope = lock_scope(&stage);
        self.stage = stage;
        self.session().set_lock_scope(Some(scope.clone()));
        if let Some(spare) = self.spare.as_mut() {
            spare.set_lock_scope(Some(scope));
        }
    }

    /// What this worker has done so far.
    pub fn stats(&self) -> WorkerStats {
        self.stats
    }

    /// The stage this worker runs.
    pub fn stage(&self) -> &Arc<Stage> {
        &self.stage
    }

    /// Run one event and commit its effects.
    pub fn invoke(&mut self, event: &Event) -> Invocation {
        self.invoke_batch(std::slice::from_ref(event))
            .pop()
            .expect("one result per event")
    }

    /// Run `events` in order and commit the effects of the successful ones in one commit.
    /// Uses the stage's `handle-batch` export when it has one; if any event of such a call
    /// fails, the call's effects are dropped and the events re-run one `handle` call each, so
    /// a failure stays with its own event.
    pub fn invoke_batch(&mut self, events: &[Event]) -> Vec<Invocation> {
        if events.is_empty() {
            return Vec::new();
        }
        // Optimistic dedupe: run without looking each event up, and let the commit, which
        // inserts every dedupe record, refuse the batch if an event was already committed
        // (a redelivery). Only then run the batch again with look-ups, answering recorded
        // events from their records. Look-ups cost a B-tree search per event (more than
        // the commit itself, see the store's benchmark); redeliveries are rare.
        let results = self.run_pending(events);
        let committed = self.session().commit();
        self.after_commit(committed, events, results)
    }

    /// Run `events` as [`Worker::invoke_batch`] does, but leave their write sets in the
    /// worker's session, uncommitted, for [`Worker::detach`].
    pub fn run_pending(&mut self, events: &[Event]) -> Vec<Invocation> {
        if events.is_empty() {
            return Vec::new();
        }
        self.stats.events += events.len() as u64;
        self.run_batch(events, false)
    }

    /// Run `events` as [`Worker::run_pending`] does, with their effects (state writes, emits,
    /// dedupe records) staged in `session` instead of the worker's own, uncommitted: the
    /// durable workflow engine commits them with the step that consumes their results. The
    /// worker's own session is back in place afterwards; `session`'s lock scope is the
    /// caller's to set.
    pub fn run_in(
        &mut self,
        session: &mut Box<dyn StateSession>,
        events: &[Event],
    ) -> Vec<Invocation> {
        std::mem::swap(self.session(), session);
        let results = self.run_pending(events);
        std::mem::swap(self.session(), session);
        results
    }

    /// Take the write set of the batch [`Worker::run_pending`] returned `results` for out of
    /// the worker, putting the spare session in its place.
    ///
    /// # Panics
    /// If the worker has no spare session: it was built without
    /// [`Worker::with_spare_session`], or the last detached batch has not come back through
    /// [`Worker::complete`].
    pub fn detach(&mut self, results: Vec<Invocation>) -> Detached {
        let spare = self
            .spare
            .take()
            .expect("a spare session: with_spare_session, and complete() before the next detach");
        let session = std::mem::replace(self.session(), spare);
        Detached {
            session,
            results,
            committed: None,
        }
    }

    /// Finish the detached batch of `events` (committing it now if that has not happened) and
    /// return its final results; its session becomes the spare again.
    ///
    /// `next` is the batch run since, still uncommitted in the worker's session, with its
    /// results. If the commit found an event already committed (a redelivery), or the store
    /// failed, that batch may have read state this one would have changed (and it holds
    /// locks the store's recovery needs), so it is rolled back, this batch runs again (with
    /// dedupe look-ups) and commits, and `next` runs again, its results replaced.
    pub fn complete(
        &mut self,
        mut detached: Detached,
        events: &[Event],
        next: Option<(&[Event], &mut Vec<Invocation>)>,
    ) -> Vec<Invocation> {
        detached.commit();
        let Detached {
            session,
            results,
            committed,
        } = detached;
        self.spare = Some(session);
        let committed = committed.expect("committed above");
        let rerun_next = committed.is_err() || results.iter().any(is_platform_fault);
        if rerun_next {
            self.session().rollback();
        }
        let results = self.after_commit(committed, events, results);
        if let Some((next_events, next_results)) = next.filter(|_| rerun_next) {
            *next_results = self.run_batch(next_events, false);
        }
        results
    }

    /// The final results of a batch whose first commit returned `committed`: on a duplicate,
    /// the batch runs again with look-ups (in the worker's session, which must be clean).
    ///
    /// A failure of the store (a failed commit, or a state call that met one) is not the
    /// events' doing, so it must not cost them a delivery: the worker holds the batch, waits
    /// for the store to heal and runs it again with look-ups, until it commits. An event
    /// source keeps the messages alive meanwhile (in-progress acks), so nothing is redelivered
    /// or dead-lettered for it. Only when told to give up (shutdown) do the held events end
    /// with [`names::STATE_COMMIT_FAILED`], which event sources retry without counting.
    fn after_commit(
        &mut self,
        mut committed: Result<(), CommitError>,
        events: &[Event],
        mut results: Vec<Invocation>,
    ) -> Vec<Invocation> {
        let mut waited = 0_u32;
        loop {
            match committed {
                Ok(()) if !results.iter().any(is_platform_fault) => return results,
                Ok(()) => {
                    // Committed, but some events met a store failure and were left out: run
                    // the batch again with look-ups, so the committed events are answered
                    // from their records, and keep their first results.
                    if !self.await_store(&mut waited) {
                        return give_up(results, "the store failed and the host is stopping");
                    }
                    self.stats.store_fault_reruns += 1;
                    let rerun = self.run_batch(events, true);
                    committed = self.session().commit();
                    for (first, again) in results.iter_mut().zip(rerun) {
                        if is_platform_fault(first) {
                            *first = again;
                        }
                    }
                }
                Err(CommitError::Duplicate(id)) => {
                    tracing::debug!(stage = %self.stage.name, event = %id, "batch held an already committed event; re-running it with dedupe look-ups");
                    self.stats.dedupe_reruns += 1;
                    results = self.run_batch(events, true);
                    committed = self.session().commit();
                }
                Err(CommitError::Store(e)) => {
                    tracing::debug!(stage = %self.stage.name, "batch commit failed, holding it until the store heals: {e}");
                    if !self.await_store(&mut waited) {
                        return give_up(results, &e.to_string());
                    }
                    self.stats.store_fault_reruns += 1;
                    results = self.run_batch(events, true);
                    committed = self.session().commit();
                }
            }
        }
    }

    /// Whether the worker was told to stop waiting for a failed store ([`Worker::with_give_up`]).
    fn told_to_give_up(&self) -> bool {
        self.give_up
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Wait until the store can commit again; `false` if told to give up first. `attempts`
    /// counts the waits for this batch: from the second on, the worker also backs off (50 ms
    /// doubling to 5 s), so a fault that outlives the store's own recovery is retried at a
    /// calm pace instead of in a tight loop.
    fn await_store(&mut self, attempts: &mut u32) -> bool {
        if *attempts == 0 {
            tracing::warn!(stage = %self.stage.name, "holding a batch until the state store heals");
        }
        let pause = (*attempts > 0).then(|| {
            Duration::from_millis(50)
                .saturating_mul(1 << (*attempts - 1).min(7))
                .min(Duration::from_secs(5))
        });
        *attempts = attempts.saturating_add(1);
        self.session().rollback();
        if let Some(pause) = pause {
            let until = std::time::Instant::now() + pause;
            while std::time::Instant::now() < until {
                if self.told_to_give_up() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10).min(pause));
            }
        }
        loop {
            if self.told_to_give_up() {
                return false;
            }
            if self.session().await_healthy(Duration::from_millis(250)) {
                return true;
            }
        }
    }

    /// Run `events` (through `handle-batch` when the stage has it) without committing.
    fn run_batch(&mut self, events: &[Event], lookup: bool) -> Vec<Invocation> {
        let started = std::time::Instant::now();
        let mut results = self.run_batch_uncommitted(events, lookup);
        self.record_metrics(&results, started.elapsed());
        if let Some(subject) = self.output_subject.clone() {
            for (event, inv) in events.iter().zip(results.iter_mut()) {
                let Ok(output) = &inv.outcome else { continue };
                if inv.replayed.is_some() {
                    continue;
                }
                let out = Emitted {
                    subject: subject.clone(),
                    data: output.clone(),
                    headers: vec![
                        ("ce-type".to_owned(), format!("{}.output", self.stage.name)),
                        ("ce-source".to_owned(), event.id.clone()),
                    ],
                };
                // The output joins the event's records in this batch: a write set holding
                // only this emit, kept, so it commits (and is published) with the event.
                let session = self.session();
                session.begin_event(&event.id);
                session.emit(out);
                inv.emitted.extend(session.finish_event(true));
            }
        }
        results
    }

    /// Count a batch's events, their errors by name, their latency and the batch's size.
    fn record_metrics(&self, results: &[Invocation], took: Duration) {
        let m = &self.stage.metrics;
        let n = results.len() as u64;
        m.invocations.increment(n);
        m.batch_size.record(n as f64);
        if n > 0 {
            m.latency
                .record_many(took.as_secs_f64() / n as f64, n as usize);
        }
        for inv in results {
            if let Err(e) = &inv.outcome {
                // Errors are rare next to successes: a lookup by labels each is affordable.
                metrics::counter!(
                    "sluice_invocation_errors_total",
                    "stage" => self.stage.name.clone(),
                    "error" => e.name.clone()
                )
                .increment(1);
            }
        }
    }

    fn run_batch_uncommitted(&mut self, events: &[Event], lookup: bool) -> Vec<Invocation> {
        self.batch_held = 0;
        let use_batch = events.len() > 1
            && self.stage.batch.is_some()
            && !self.stage.config.limits.fresh_instance_per_event
            && self.batchable(events, lookup);
        match use_batch.then(|| self.run_batch_export(events)).flatten() {
            Some(results) => results,
            None => {
                if use_batch {
                    self.stats.batch_fallbacks += 1;
                    self.session().rollback();
                    self.batch_held = 0;
                }
                events.iter().map(|e| self.run_one(e, lookup)).collect()
            }
        }
    }

    /// Whether `events` may go to `handle-batch` in one call: no id twice and, when looking
    /// up, none recorded (otherwise they go one by one, so each duplicate is answered from
    /// its record).
    fn batchable(&mut self, events: &[Event], lookup: bool) -> bool {
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        events.iter().all(|e| {
            seen.insert(e.id.as_str())
                && (!lookup || matches!(self.session().recorded(&e.id), Ok(None)))
        })
    }

    fn session(&mut self) -> &mut Box<dyn StateSession> {
        match &mut self.warm {
            Some(w) => &mut w.store.data_mut().session,
            None => self
                .idle
                .as_mut()
                .expect("the session is idle when no instance is warm"),
        }
    }

    fn ensure_warm(&mut self) -> Result<&mut Warm, StageError> {
        if self.warm.is_none() {
            let stage = &self.stage;
            let limits = &stage.config.limits;
            let session = self
                .idle
                .take()
                .expect("the session is idle when no instance is warm");
            let tag = LogTag {
                stage: stage.name_tag.clone(),
                event_id: self.event_tag.clone(),
                sink: stage.runtime.log.clone(),
            };
            let mut data = HostState::new(session, stage.grants.clone(), limits, tag);
            data.clock = self.clock.clone();
            let mut store = Store::new(&stage.runtime.engine, data);
            store.limiter(|s| &mut s.limiter);
            store.set_epoch_deadline(ticks(limits.deadline));
            let instantiated = self.driver.run(
                &stage.runtime.ticker,
                limits.deadline,
                std::time::Instant::now() + limits.deadline,
                stage.pre.instantiate_async(&mut store),
            );
            let loaded = instantiated.and_then(|instance| {
                let handler = stage.handler.load(&mut store, &instance)?;
                let batch = match &stage.batch {
                    Some(indices) => Some(indices.load(&mut store, &instance)?),
                    None => None,
                };
                Ok((handler, batch))
            });
            match loaded {
                Ok((handler, batch)) => {
                    self.stats.instantiations += 1;
                    self.warm = Some(Warm {
                        store,
                        handler,
                        batch,
                        served: 0,
                    });
                }
                Err(e) => {
                    let mut data = store.into_data();
                    let tail = data.end_event();
                    let mut err = classify(&e, &data.limiter, &tail);
                    if err.name == names::SANDBOX_TRAP {
                        err = StageError::new(names::SANDBOX_INSTANTIATION, format!("{e:#}"), true);
                    }
                    self.idle = Some(data.session);
                    return Err(err);
                }
            }
        }
        Ok(self.warm.as_mut().expect("just made warm"))
    }

    /// Drop the warm instance (if any), keeping the session.
    fn recycle(&mut self, why: Option<Recycle>) {
        if let Some(w) = self.warm.take() {
            self.idle = Some(w.store.into_data().session);
            match why {
                Some(Recycle::Trap) => self.stats.recycled_on_trap += 1,
                Some(Recycle::AfterEvents) => self.stats.recycled_after_events += 1,
                Some(Recycle::Memory) => self.stats.recycled_on_memory += 1,
                Some(Recycle::Fresh) | None => {}
            }
        }
    }

    /// After `served` more events: recycle if the limits say so.
    fn after_calls(&mut self, served: u64, trapped: bool) {
        let limits = &self.stage.config.limits;
        let Some(w) = self.warm.as_mut() else { return };
        w.served += served;
        let why = if trapped {
            Some(Recycle::Trap)
        } else if limits.fresh_instance_per_event {
            Some(Recycle::Fresh)
        } else if w.served >= limits.recycle_after_events {
            Some(Recycle::AfterEvents)
        } else if w.store.data().limiter.memory_size > limits.recycle_memory_mark {
            Some(Recycle::Memory)
        } else {
            None
        };
        if why.is_some() {
            self.recycle(why);
        }
    }
}

/// The locks a stage's sessions take: the buckets and tables it is granted.
fn lock_scope(stage: &Stage) -> LockScope {
    LockScope {
        buckets: stage.grants.kv_buckets.clone(),
        tables: stage.grants.tables.iter().map(|t| t.name.clone()).collect(),
    }
}

/// Epoch ticks for `d`, rounded up, plus one so a deadline is never shorter than asked.
pub(crate) fn ticks(d: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    u64::try_from(d.as_nanos().div_ceil(tick))
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}
