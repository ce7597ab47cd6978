//! The outbox relay: publishes committed emits, then deletes them.

use std::sync::Arc;

use std::collections::HashMap;

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use async_nats::jetstream::context::PublishErrorKind;
use sluice_store::Store;
use tokio::sync::Mutex;

/// Publishes the store's outbox rows to JetStream. One per store: triggers share it, and the
/// mutex keeps two drains from publishing the same rows twice.
#[derive(Clone)]
pub struct OutboxRelay {
    js: Context,
    store: Store,
    lock: Arc<Mutex<()>>,
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
    pub async fn drain(&self) -> Result<usize, String> {
        let _guard = self.lock.lock().await;
        let mut total = 0;
        let mut after = None;
        let mut parked: HashMap<String, usize> = HashMap::new();
        loop {
            let store = self.store.clone();
            let rows = tokio::task::spawn_blocking(move || store.outbox_after(after, 1000))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let Some(last) = rows.last() else {
                for (subject, n) in parked {
                    tracing::warn!(%subject, rows = n, "no stream takes these outbox rows (no stream captures the subject, or a message exceeds the server's payload limit): they stay in the outbox and are published once one does");
                }
                return Ok(total);
            };
            after = Some(last.seq);
            let mut acks = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut headers = HeaderMap::new();
                for (k, v) in &row.event.headers {
                    headers.append(k.as_str(), v.as_str());
                }
                headers.insert("Nats-Msg-Id", row.msg_id.as_str());
                let ack = self
                    .js
                    .publish_with_headers(
                        row.event.subject.clone(),
                        headers,
                        row.event.data.clone().into(),
                    )
                    .await
                    .map_err(|e| format!("publishing {}: {e}", row.msg_id))?;
                acks.push(ack);
            }
            let mut published = Vec::with_capacity(rows.len());
            let mut failed = None;
            for (row, ack) in rows.iter().zip(acks) {
                match ack.await {
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
            tokio::task::spawn_blocking(move || store.remove_outbox(&published))
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
