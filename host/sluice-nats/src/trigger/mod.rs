//! A trigger: a durable pull consumer on a stream, feeding batches to a stage and
//! acknowledging each message only after the batch's commit.

mod config;
mod pipeline;
mod probe;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::{self, Context, Message};
use futures::{FutureExt, StreamExt};
use sluice_model::{Event, StageError, names};
use sluice_runtime::{Invocation, Stage, Worker};
use sluice_store::Store;
use tokio::sync::watch;

use config::partition_of;
pub use config::{PartitionKey, TriggerConfig};
use pipeline::{InFlight, Pipeline, Reply};
use probe::{LOOP, Probe, SETTLE};

use crate::pattern::{EventPattern, PatternError};
use crate::relay::OutboxRelay;
use crate::{DLQ_ATTEMPTS, DLQ_ERROR_CAUSE, DLQ_ERROR_NAME, DLQ_ORIGINAL_SUBJECT, to_event};

/// Fewest messages a trigger's pull asks for at a time (see `run_parsed`).
const MIN_PREFETCH: usize = 64;

/// The stream that holds dead letters sent to the default subjects (`sluice.dlq.<trigger>`).
pub const DLQ_STREAM: &str = "SLUICE_DLQ";

/// Why a trigger stopped.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The trigger's event pattern is malformed.
    #[error("trigger {trigger}: {source}")]
    Pattern {
        /// Trigger name.
        trigger: String,
        /// What is wrong.
        source: PatternError,
    },
    /// The stream or consumer exists with a definition that conflicts with the trigger's.
    #[error("trigger {trigger}: {problem}")]
    Conflict {
        /// Trigger name.
        trigger: String,
        /// What conflicts.
        problem: String,
    },
    /// Talking to JetStream failed.
    #[error("trigger {trigger}: {source}")]
    Nats {
        /// Trigger name.
        trigger: String,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a trigger did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TriggerStats {
    /// Batches processed.
    pub batches: u64,
    /// Messages acknowledged after success (or as already committed).
    pub acked: u64,
    /// Messages NAKed for a retry.
    pub retried: u64,
    /// Messages dead-lettered and terminated.
    pub dead_lettered: u64,
    /// Messages acknowledged without running because they did not match the pattern.
    pub filtered: u64,
}

/// The settling of the last batch, in the background: it settles after the batch before it,
/// and comes to what every batch so far amounts to.
type Settling = Option<tokio::task::JoinHandle<TriggerStats>>;

impl TriggerStats {
    fn add(&mut self, other: Self) {
        self.batches += other.batches;
        self.acked += other.acked;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.filtered += other.filtered;
    }
}

/// The version of a stage a trigger runs, replaceable while it runs: each partition moves to
/// the new version at its next batch boundary (after the batch it is committing), so every
/// batch runs on one version, and no event runs twice or not at all.
#[derive(Debug)]
pub struct StageSlot(parking_lot::Mutex<Arc<Stage>>);

impl StageSlot {
    /// A slot holding `stage`.
    pub fn new(stage: Arc<Stage>) -> Arc<Self> {
        Arc::new(Self(parking_lot::Mutex::new(stage)))
    }

    /// The version batches start on from now.
    pub fn get(&self) -> Arc<Stage> {
        self.0.lock().clone()
    }

    /// Run `stage` from each partition's next batch.
    pub fn set(&self, stage: Arc<Stage>) {
        *self.0.lock() = stage;
    }
}

/// A running binding of a stream to a stage.
pub struct Trigger {
    pattern: Option<EventPattern>,
    js: Context,
    config: TriggerConfig,
    stage: Arc<StageSlot>,
    store: Store,
    relay: OutboxRelay,
    /// What the loop and the settling wait on, for the stall watchdog.
    probe: Arc<Probe>,
}

impl std::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trigger")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Trigger {
    /// A trigger running `stage` over `store` for the messages `config` selects.
    pub fn new(
        js: Context,
        config: TriggerConfig,
        stage: Arc<Stage>,
        store: Store,
        relay: OutboxRelay,
    ) -> Self {
        Self::with_slot(js, config, StageSlot::new(stage), store, relay)
    }

    /// A trigger running whatever version `stage` holds at each batch.
    pub fn with_slot(
        js: Context,
        config: TriggerConfig,
        stage: Arc<StageSlot>,
        store: Store,
        relay: OutboxRelay,
    ) -> Self {
        Self {
            pattern: None,
            js,
            config,
            stage,
            store,
            relay,
            probe: Arc::default(),
        }
    }

    fn nats(&self, e: impl std::error::Error + Send + Sync + 'static) -> TriggerError {
        TriggerError::Nats {
            trigger: self.config.name.clone(),
            source: Box::new(e),
        }
    }

    /// Create the stream and the durable consumer when missing; refuse conflicting ones.
    async fn consumer(&self) -> Result<jetstream::consumer::Consumer<pull::Config>, TriggerError> {
        ensure_consumer(&self.js, &self.config).await
    }

    /// Consume until `shutdown` becomes true; the batches already handed to the partitions
    /// are finished, committed and acknowledged, and the outbox drained, before returning.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<TriggerStats, TriggerError> {
        let mut this = self;
        this.pattern = match &this.config.pattern {
            None => None,
            Some(p) => Some(
                EventPattern::parse(p).map_err(|source| TriggerError::Pattern {
                    trigger: this.config.name.clone(),
                    source,
                })?,
            ),
        };
        Box::pin(this.run_parsed(shutdown)).await
    }

    async fn run_parsed(
        self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<TriggerStats, TriggerError> {
        // Shared with the tasks that settle batches in the background.
        let this = Arc::new(self);
        let self_ = &this;
        let probe = &self_.probe;
        probe.watch(
            self_.config.name.clone(),
            Duration::from_secs(5),
            Duration::from_secs(20),
        );
        // Connection trouble (a broker restart) is waited out; a conflicting definition is
        // not, since no retry can fix it.
        let consumer = loop {
            match probe
                .on(LOOP, "creating its consumer", self_.consumer())
                .await
            {
                Ok(c) => break c,
                Err(e @ TriggerError::Conflict { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!("{e}; retrying");
                    if self_.pause(&mut shutdown).await {
                        return Ok(TriggerStats::default());
                    }
                }
            }
        };
        let mut stats = TriggerStats::default();
        // Each worker has a spare session, so one batch commits while the next runs.
        let workers: Vec<Worker> = (0..self_.config.partitions.max(1))
            .map(|_| {
                Worker::new(self_.stage.get(), Box::new(self_.store.open_session()))
                    .with_spare_session(Box::new(self_.store.open_session()))
                    .with_output_subject(self_.config.output_subject.clone())
            })
            .collect();
        let mut pipe = Pipeline::start(&self_.config.name, workers, Some(self_.stage.clone()));
        // A continuous pull: the client keeps up to two batches requested ahead, so the next
        // batch arrives while this one runs (PERFORMANCE.md: ~40% faster than fetch()).
        let mut incoming: Option<pull::Stream> = None;
        let mut settling: Settling = None;
        let mut drain_due = true;
        while !*shutdown.borrow() {
            if incoming.is_none() {
                // The pull's own batch is the prefetch, not the processing batch: the client
                // asks again when half is used, so a pull of 1 would cost a round trip (and a
                // pull request for the server to handle) per message. A small floor keeps the
                // buffer full; buffered messages wait at most a few batches, far inside the
                // ack wait for any stage within its deadline.
                let opened = consumer
                    .stream()
                    .max_messages_per_batch(self_.config.batch_size.max(MIN_PREFETCH))
                    .heartbeat(Duration::from_secs(5))
                    .messages();
                match probe.on(LOOP, "opening its pull", opened).await {
                    Ok(s) => incoming = Some(s),
                    Err(e) => {
                        tracing::warn!("trigger {}: {e}; retrying", self_.config.name);
                        if self_.pause(&mut shutdown).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            let stream = incoming.as_mut().expect("just opened");
            // Whatever a crash or an outage left in the outbox goes out first, and again
            // whenever the trigger is idle or an error interrupted it. While batches flow,
            // each batch's settling drains what it committed, off this loop.
            let drained = if drain_due {
                probe
                    .on(LOOP, "the outbox relay", self_.relay.drain())
                    .await
                    .map(drop)
                    .map_err(|e| self_.nats(std::io::Error::other(e)))
            } else {
                Ok(())
            };
            // A drain that fails (the store down, or the broker) leaves the rows for the next
            // drain and must not stop the trigger from reading the pull: the batches it holds
            // need their in-progress acks, and a broken broker shows in the step anyway.
            if let Err(e) = drained {
                tracing::warn!(
                    "trigger {}: draining the outbox: {e}; later",
                    self_.config.name
                );
            }
            let step = probe
                .on(
                    LOOP,
                    "its next batch",
                    self_.step(
                        &this,
                        &mut settling,
                        stream,
                        &mut pipe,
                        &mut stats,
                        &mut shutdown,
                    ),
                )
                .await;
            let step = match step {
                // A lost partition is fatal, and its shares will never finish: no flush.
                Err(e) if pipe.lost.is_some() => return Err(e),
                step => step,
            };
            drain_due = !matches!(step, Ok(true));
            if step.is_err() {
                // Reopen the pull after any error: its requests may be gone with the server.
                incoming = None;
                // The batches running and committing are finished first; their acks may fail,
                // and then their messages come back to meet their dedupe records. A stop meanwhile
                // ends the wait (the batches may be held for a failed store): the final flush
                // below tells the workers to stop waiting first.
                if *shutdown.borrow() {
                    break;
                }
                let flush = self_.flush(&this, &mut settling, &mut pipe, &mut stats);
                let flushed = tokio::select! {
                    flushed = probe.on(LOOP, "its partitions' batches", flush) => flushed,
                    _ = shutdown.changed() => break,
                };
                if let Err(e) = flushed {
                    if pipe.lost.is_some() {
                        return Err(e);
                    }
                    tracing::warn!("{e}");
                }
            }
            match step {
                Ok(_) => {}
                Err(e) if pipe.lost.is_some() => return Err(e),
                Err(e) => {
                    // Nothing is lost: unacknowledged messages are redelivered, committed
                    // ones meet their dedupe records, and the outbox keeps its rows.
                    tracing::warn!("{e}; retrying");
                    if self_.pause(&mut shutdown).await {
                        break;
                    }
                }
            }
        }
        // No more messages: the server stops sending, and what the client had buffered comes
        // back after the ack wait.
        drop(incoming);
        // The batches in the pipeline finish, and the last acks, before the trigger reports
        // it is done; but none waits for a failed store to heal, or a stop during an outage
        // would wait for the disk.
        pipe.stop_waiting_for_the_store();
        self_
            .flush(&this, &mut settling, &mut pipe, &mut stats)
            .await?;
        if let Some(last) = settling.take() {
            match last.await {
                Ok(settled) => stats.add(settled),
                Err(e) => tracing::warn!("settling the last batches: {e}"),
            }
        }
        // The partition threads hold nothing now: closing their queues ends them at once.
        pipe.shutdown().await;
        let _ = self_.relay.drain().await;
        Ok(stats)
    }

    /// Wait a moment before retrying; true if shutdown was requested meanwhile.
    async fn pause(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => *shutdown.borrow(),
            _ = shutdown.changed() => true,
        }
    }

    /// Collect one batch and hand it to the partitions; meanwhile, settle the batches they
    /// finish. True if a batch was handed over.
    async fn step(
        &self,
        this: &Arc<Self>,
        settling: &mut Settling,
        incoming: &mut pull::Stream,
        pipe: &mut Pipeline,
        stats: &mut TriggerStats,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, TriggerError> {
        let io = |e: &dyn std::fmt::Display| self.nats(std::io::Error::other(e.to_string()));
        // Settle what the partitions have finished since the last batch.
        while let Some(r) = pipe.try_reply() {
            self.on_reply(this, settling, pipe, stats, r)?;
        }
        // The first message may take a while; wake up now and then to check for shutdown,
        // and meanwhile settle the batches the partitions finish (their acks should not wait
        // for the next batch).
        let first = loop {
            tokio::select! {
                m = tokio::time::timeout(Duration::from_millis(250), incoming.next()) => break m,
                r = pipe.reply(), if !pipe.in_flight.is_empty() => {
                    self.on_reply(this, settling, pipe, stats, r)?;
                }
                _ = shutdown.changed() => return Ok(false),
            }
        };
        let mut msgs: Vec<Message> = Vec::with_capacity(self.config.batch_size);
        match first {
            Err(_) => return Ok(false), // nothing arrived: loop (and drain the outbox)
            Ok(None) => return Err(io(&"the pull subscription ended")),
            Ok(Some(m)) => msgs.push(m.map_err(|e| io(&e))?),
        }
        // Fill the batch from what is already buffered, waiting at most `max_wait_ms` more.
        let until = tokio::time::Instant::now() + Duration::from_millis(self.config.max_wait_ms);
        while msgs.len() < self.config.batch_size {
            // Take what is buffered without arming a timer per message; wait (with the
            // timer) only when the buffer is empty.
            let next = match incoming.next().now_or_never() {
                Some(next) => next,
                // While waiting, batches that finish are settled at once: their acks should
                // not wait out this batch's fill time.
                None => tokio::select! {
                    next = tokio::time::timeout_at(until, incoming.next()) => match next {
                        Ok(next) => next,
                        Err(_) => break,
                    },
                    r = pipe.reply(), if !pipe.in_flight.is_empty() => {
                        self.on_reply(this, settling, pipe, stats, r)?;
                        continue;
                    }
                },
            };
            match next {
                Some(m) => msgs.push(m.map_err(|e| io(&e))?),
                None => return Err(io(&"the pull subscription ended")),
            }
        }
        let mut events: Vec<Event> = Vec::with_capacity(msgs.len());
        let mut matching = Vec::with_capacity(msgs.len());
        for m in msgs {
            let e = to_event(&m);
            if self.pattern.as_ref().is_none_or(|p| p.matches(&e)) {
                events.push(e);
                matching.push(m);
            } else {
                m.ack()
                    .await
                    .map_err(|e| self.nats(std::io::Error::other(e.to_string())))?;
                stats.filtered += 1;
            }
        }
        let msgs = matching;
        if msgs.is_empty() {
            return Ok(false);
        }
        // Split by partition key, keeping arrival order within each partition.
        let p = pipe.partitions();
        let mut parts: Vec<Vec<usize>> = vec![Vec::new(); p];
        let mut shares: Vec<Vec<Event>> = vec![Vec::new(); p];
        for (i, e) in events.into_iter().enumerate() {
            let slot = partition_of(self.config.partition_key.of(&e), p);
            parts[slot].push(i);
            shares[slot].push(e);
        }
        // While a long batch runs and commits, tell JetStream it is in progress so it does not
        // redeliver work that is still being done.
        let msgs = Arc::new(msgs);
        let every =
            Duration::from_millis(self.config.ack_wait_ms / 3).max(Duration::from_millis(10));
        let progress = {
            let msgs = msgs.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    for m in msgs.iter() {
                        let _ = m.ack_with(AckKind::Progress).await;
                    }
                }
            })
        };
        pipe.in_flight
            .push_back(InFlight::new(msgs, parts, progress));
        // Hand each share to its partition's queue; this never waits.
        for (slot, share) in shares.into_iter().enumerate() {
            if !share.is_empty() && !pipe.send(slot, share) {
                return Err(io(&format!("partition {slot}'s worker is gone")));
            }
        }
        Ok(true)
    }

    /// Take in what a partition reports, and settle the batches it completes.
    fn on_reply(
        &self,
        this: &Arc<Self>,
        settling: &mut Settling,
        pipe: &mut Pipeline,
        stats: &mut TriggerStats,
        reply: Reply,
    ) -> Result<(), TriggerError> {
        for batch in pipe.record(reply) {
            Self::settle_batch(this, settling, stats, batch);
        }
        match pipe.lost {
            // A panic inside a worker loses it: that is fatal for the trigger.
            Some(slot) => Err(self.nats(std::io::Error::other(format!(
                "partition {slot}'s worker panicked"
            )))),
            None => Ok(()),
        }
    }

    /// `batch` is committed in every partition: now, and only now, settle each message — in
    /// a task of its own, so that the trigger goes on reading the pull meanwhile. Each
    /// batch's task first waits for the one before, so batches settle in order.
    fn settle_batch(
        this: &Arc<Self>,
        settling: &mut Settling,
        stats: &mut TriggerStats,
        mut batch: InFlight,
    ) {
        let msgs = std::mem::take(&mut batch.msgs);
        let results: Vec<Invocation> = std::mem::take(&mut batch.results)
            .into_iter()
            .map(|r| r.expect("every event ran"))
            .collect();
        // Settled from here on: dropping the batch stops its in-progress acks.
        drop(batch);
        stats.batches += 1;
        let previous = settling.take();
        let me = this.clone();
        *settling = Some(tokio::spawn(async move {
            let mut settled = match previous {
                Some(previous) => previous.await.unwrap_or_else(|e| {
                    tracing::warn!("settling earlier batches: {e}");
                    TriggerStats::default()
                }),
                None => TriggerStats::default(),
            };
            let probe = &me.probe;
            let outcome: Result<(), TriggerError> = async {
                let mut counted = Vec::new();
                for (msg, inv) in msgs.iter().zip(&results) {
                    let settle = me.settle(msg, inv, &mut settled);
                    if probe.on(SETTLE, "an acknowledgement", settle).await?
                        && inv.failures.is_some()
                    {
                        counted.push(to_event(msg).id);
                    }
                }
                let forget = me.forget_failures(counted);
                probe.on(SETTLE, "the store", forget).await;
                probe
                    .on(SETTLE, "the outbox relay", me.relay.drain())
                    .await
                    .map_err(|e| me.nats(std::io::Error::other(e)))?;
                Ok(())
            }
            .await;
            // The batch is committed whatever happens here: a message left unsettled comes
            // back after the ack wait and meets its dedupe record, and the outbox keeps its
            // rows for the next drain. The next batch still settles.
            if let Err(e) = outcome {
                tracing::warn!("{e}; unsettled messages come back after the ack wait");
            }
            settled
        }));
    }

    /// Empty the pipeline: wait until the partitions have finished every batch they hold,
    /// and settle those.
    async fn flush(
        &self,
        this: &Arc<Self>,
        settling: &mut Settling,
        pipe: &mut Pipeline,
        stats: &mut TriggerStats,
    ) -> Result<(), TriggerError> {
        while !pipe.in_flight.is_empty() {
            if pipe.lost.is_some() {
                // A lost partition never finishes its shares: waiting would hang.
                return Err(self.nats(std::io::Error::other("a partition's worker was lost")));
            }
            let r = pipe.reply().await;
            self.on_reply(this, settling, pipe, stats, r)?;
        }
        Ok(())
    }

    /// Dead-lettered events leave no failure count behind, so one republished from the dead
    /// letters after a fix starts afresh. Best effort: a count left over (the store down)
    /// is removed by the sweeper after the dedupe retention.
    async fn forget_failures(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let store = self.store.clone();
        let forgot = tokio::task::spawn_blocking(move || {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            store.forget_failures(&ids)
        })
        .await;
        if let Ok(Err(e)) = forgot {
            tracing::debug!("forgetting the failure counts of dead letters: {e}");
        }
    }

    /// Settle one message by its invocation's outcome; `true` when it was dead-lettered.
    async fn settle(
        &self,
        msg: &Message,
        inv: &Invocation,
        stats: &mut TriggerStats,
    ) -> Result<bool, TriggerError> {
        // The stage's own failures so far, by the store's count: deliveries the platform
        // spent (a broker outage, a dropped connection, a crash) are not the event's. The
        // delivery count only where the store keeps no count. Parsed only for failures:
        // success is the hot path.
        let attempts = || {
            inv.failures
                .map_or_else(|| msg.info().map_or(1, |i| i.delivered), i64::from)
        };
        match &inv.outcome {
            Ok(_) => {
                msg.ack()
                    .await
                    .map_err(|e| self.nats(std::io::Error::other(e.to_string())))?;
                stats.acked += 1;
            }
            // The platform's own faults (the store was down when the host stopped waiting
            // for it) and a full batch are not the event's doing: retry it, whatever its
            // delivery count, and never dead-letter it for them.
            Err(e) if e.retryable && !names::counts_against_the_event(&e.name) => {
                msg.ack_with(AckKind::Nak(Some(self.config.backoff(1))))
                    .await
                    .map_err(|e| self.nats(std::io::Error::other(e.to_string())))?;
                stats.retried += 1;
            }
            Err(e) if e.retryable && attempts() < self.config.max_deliver => {
                msg.ack_with(AckKind::Nak(Some(self.config.backoff(attempts()))))
                    .await
                    .map_err(|e| self.nats(std::io::Error::other(e.to_string())))?;
                stats.retried += 1;
            }
            Err(e) => {
                self.dead_letter(msg, e, attempts()).await?;
                msg.ack_with(AckKind::Term)
                    .await
                    .map_err(|e| self.nats(std::io::Error::other(e.to_string())))?;
                stats.dead_lettered += 1;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Publish `msg` with the error to the dead-letter subject and wait for JetStream's ack.
    /// The message id derives from the event id, so a repeat after a crash is a duplicate.
    async fn dead_letter(
        &self,
        msg: &Message,
        e: &StageError,
        delivered: i64,
    ) -> Result<(), TriggerError> {
        let event = to_event(msg);
        let mut headers = msg.headers.clone().unwrap_or_default();
        headers.insert(
            "Nats-Msg-Id",
            format!("dlq/{}/{}", self.config.name, event.id).as_str(),
        );
        headers.insert(DLQ_ERROR_NAME, e.name.as_str());
        headers.insert(DLQ_ERROR_CAUSE, sanitize(&e.cause).as_str());
        headers.insert(DLQ_ATTEMPTS, delivered.to_string().as_str());
        headers.insert(DLQ_ORIGINAL_SUBJECT, msg.subject.as_str());
        let ack = self
            .js
            .publish_with_headers(
                self.config.dead_letter_subject(),
                headers,
                msg.payload.clone(),
            )
            .await
            .map_err(|e| self.nats(e))?;
        ack.await.map_err(|e| self.nats(e))?;
        Ok(())
    }
}

/// Header values cannot hold line breaks.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1024)
        .collect()
}

/// Create `c`'s stream and durable consumer when missing; refuse conflicting ones. Shared by
/// the stage triggers and the workflow triggers.
pub async fn ensure_consumer(
    js: &Context,
    c: &TriggerConfig,
) -> Result<jetstream::consumer::Consumer<pull::Config>, TriggerError> {
    let nats = |e: Box<dyn std::error::Error + Send + Sync>| TriggerError::Nats {
        trigger: c.name.clone(),
        source: e,
    };
    let conflict = |problem: String| TriggerError::Conflict {
        trigger: c.name.clone(),
        problem,
    };
    let mut stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: c.stream.clone(),
            subjects: c.stream_subjects.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| nats(Box::new(e)))?;
    let info = stream.info().await.map_err(|e| nats(Box::new(e)))?;
    if !c.stream_subjects.is_empty() && info.config.subjects != c.stream_subjects {
        return Err(conflict(format!(
            "stream {} exists with subjects {:?}, not {:?}",
            c.stream, info.config.subjects, c.stream_subjects
        )));
    }
    if c.dead_letter_subject.is_none() {
        js.get_or_create_stream(jetstream::stream::Config {
            name: DLQ_STREAM.to_owned(),
            subjects: vec!["sluice.dlq.>".to_owned()],
            ..Default::default()
        })
        .await
        .map_err(|e| nats(Box::new(e)))?;
    }
    let wanted = pull::Config {
        durable_name: Some(c.name.clone()),
        filter_subject: c.filter_subject.clone(),
        ack_policy: AckPolicy::Explicit,
        // Sluice decides when retries are exhausted (to dead-letter first), so the
        // server itself never gives up on a message.
        max_deliver: -1,
        ack_wait: Duration::from_millis(c.ack_wait_ms),
        // Unacknowledged at once: a batch collecting, the batches queued for and
        // running on the partitions, one committing, one settling, and the prefetch.
        // Past this bound the server stops delivering, which is what bounds the
        // partitions' queues.
        max_ack_pending: i64::try_from(c.batch_size.saturating_mul(8))
            .unwrap_or(i64::MAX)
            .max(1000),
        ..Default::default()
    };
    let mut consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(&c.name, wanted.clone())
        .await
        .map_err(|e| nats(Box::new(e)))?;
    let existing = &consumer.cached_info().config;
    if existing.filter_subject != c.filter_subject {
        return Err(conflict(format!(
            "consumer {} exists with filter {:?}, not {:?}",
            c.name, existing.filter_subject, c.filter_subject
        )));
    }
    // JetStream cannot change a consumer's ack policy, and a trigger needs explicit acks.
    if existing.ack_policy != wanted.ack_policy {
        return Err(conflict(format!(
            "consumer {} exists with ack policy {:?}, not explicit",
            c.name, existing.ack_policy
        )));
    }
    // The rest of the definition follows the declaration: an ack wait changed there, or
    // a consumer made by an older Sluice, is brought up to date (JetStream allows these
    // edits on a durable consumer; its position is kept).
    if existing.max_deliver != wanted.max_deliver
        || existing.ack_wait != wanted.ack_wait
        || existing.max_ack_pending != wanted.max_ack_pending
    {
        tracing::info!(
            "trigger {}: updating its consumer to the declared settings",
            c.name
        );
        consumer = stream
            .update_consumer(wanted)
            .await
            .map_err(|e| nats(Box::new(e)))?;
    }
    Ok(consumer)
}
