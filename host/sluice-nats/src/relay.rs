//! The outbox relay: publishes committed emits, then deletes them.

use std::sync::Arc;

use std::collections::HashMap;

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use async_nats::jetstream::context::PublishErrorKind;
use sluice_store::Store;
use tokio::sync::Mutex;

/// The longest one drain may take.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Publishes the store's outbox rows to JetStream. One per store: triggers share it, and the
/// mutex keeps two drains from publishing the same rows twice.
#[derive(Clone)]
pub struct OutboxRelay {
    js: Context,
    store: Store,
    lock: Arc<Mutex<()>>,
    /// What the drain holding the lock waits on, and since when (for the stall warning).
    phase: Arc<std::sync::Mutex<(&'static str, std::time::Instant)>>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay").finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay publishing `store`'s outbox through `js`.
    pub fn new(js: Context, store: Store) -> Self {
        Self {
            js,
            store,
            lock: Arc::default(),
            phase: Arc::new(std::sync::Mutex::new((
                "nothing",
                std::time::Instant::now(),
            ))),
        }
    }

    /// Publish every row in the outbox (in order, pipelined), await the acks, delete the rows.
    /// Returns how many were published. Safe to repeat after a crash: rows carry
    /// deterministic `Nats-Msg-Id`s, so JetStream drops a republished row as a duplicate.
    ///
    /// A row that no stream can take (no stream captures its subject, or it exceeds the
    /// server's payload limit) stays in the outbox, named in a warning, and is tried again at
    /// every drain, while the rows behind it go out: one bad subject (a workflow publishing
    /// where no stream listens) must not hold up every other stage's emits.
    ///
    /// One drain lasts at most a minute: the rows it has published by then are removed, the
    /// rest wait for the next drain. A drain stuck on the broker (every trigger waits for
    /// the relay) is dropped at that point, and what it held is released.
    pub async fn drain(&self) -> Result<usize, String> {
        match tokio::time::timeout(DRAIN_LIMIT, self.drain_rows()).await {
            Ok(drained) => drained,
            Err(_) => {
                let (what, since) = *self.phase.lock().expect("phase lock");
                Err(format!(
                    "the outbox drain took over {} s (at {what} for the last {} s); the rest goes at the next drain",
                    DRAIN_LIMIT.as_secs(),
                    since.elapsed().as_secs()
                ))
            }
        }
    }

    async fn drain_rows(&self) -> Result<usize, String> {
        let lock = self.lock.lock();
        tokio::pin!(lock);
        let _guard = match tokio::time::timeout(std::time::Duration::from_secs(20), &mut lock).await
        {
            Ok(guard) => guard,
            Err(_) => {
                let (what, since) = *self.phase.lock().expect("phase lock");
                tracing::warn!(
                    "the outbox relay has waited 20 s for its lock; the drain holding it is at {what} since {} s",
                    since.elapsed().as_secs()
                );
                lock.await
            }
        };
        self.mark("holding the lock");
        let mut total = 0;
        let mut after = None;
        let mut parked: HashMap<String, usize> = HashMap::new();
        loop {
            let store = self.store.clone();
            let rows = self
                .named(
                    "reading the outbox",
                    tokio::task::spawn_blocking(move || store.outbox_after(after, 1000)),
                )
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let Some(last) = rows.last() else {
                for (subject, n) in parked {
                    tracing::warn!(%subject, rows = n, "no stream takes these outbox rows (no stream captures the subject, or a message exceeds the server's payload limit): they stay in the outbox and are published once one does");
                }
                self.mark("nothing");
                return Ok(total);
            };
            after = Some(last.seq);
            // Publish the round (each send has its own time-out), then await its acks.
            self.mark("publishing");
            let mut sent = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut headers = HeaderMap::new();
                for (k, v) in &row.event.headers {
                    headers.append(k.as_str(), v.as_str());
                }
                headers.insert("Nats-Msg-Id", row.msg_id.as_str());
                let publish = self.js.publish_with_headers(
                    row.event.subject.clone(),
                    headers,
                    row.event.data.clone().into(),
                );
                match publish.await {
                    Ok(ack) => sent.push((row, ack)),
                    // The client checks the size before sending: park the row, go on.
                    Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                        *parked.entry(row.event.subject.clone()).or_default() += 1;
                    }
                    Err(e) => return Err(format!("publishing {}: {e}", row.msg_id)),
                }
            }
            // The acks are awaited together: each has its own time-out (5 s), and a broker
            // that lost the publishes (killed as they went out) answers none of them. Awaited
            // one after another, 1,000 lost acks held the relay, and with it every trigger,
            // for 5,000 s (the broker-restart fault test's stall).
            let (sent, acks): (Vec<_>, Vec<_>) = sent.into_iter().unzip();
            let acks = acks.into_iter().map(IntoFuture::into_future);
            let answers = self
                .named("the publish acks", futures::future::join_all(acks))
                .await;
            let mut published = Vec::with_capacity(rows.len());
            let mut failed = None;
            for (row, answer) in sent.iter().zip(answers) {
                match answer {
                    Ok(_) => published.push(row.seq),
                    Err(e)
                        if matches!(
                            e.kind(),
                            PublishErrorKind::StreamNotFound | PublishErrorKind::MaxPayloadExceeded
                        ) =>
                    {
                        *parked.entry(row.event.subject.clone()).or_default() += 1;
                    }
                    Err(e) => {
                        failed.get_or_insert_with(|| format!("awaiting a publish ack: {e}"));
                    }
                }
            }
            let n = published.len();
            let store = self.store.clone();
            self.named(
                "removing published rows",
                tokio::task::spawn_blocking(move || store.remove_outbox(&published)),
            )
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            total += n;
            if let Some(e) = failed {
                // The rest is tried again at the next drain (what went out is gone from the
                // outbox; what went out twice JetStream drops).
                return Err(e);
            }
        }
    }
}

impl OutboxRelay {
    fn mark(&self, what: &'static str) {
        *self.phase.lock().expect("phase lock") = (what, std::time::Instant::now());
    }

    /// Await `f`; if it takes longer than any healthy wait (20 s), say what the relay waits
    /// on: every trigger's loop waits for the relay, so a stall here stops them all.
    async fn named<F: IntoFuture>(&self, what: &'static str, f: F) -> F::Output {
        self.mark(what);
        let f = f.into_future();
        tokio::pin!(f);
        let out = match tokio::time::timeout(std::time::Duration::from_secs(20), &mut f).await {
            Ok(out) => out,
            Err(_) => {
                tracing::warn!("the outbox relay has waited 20 s on {what}");
                f.await
            }
        };
        self.mark("between awaits");
        out
    }
}
