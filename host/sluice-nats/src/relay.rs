//! The outbox relay: publishes committed emits, then deletes them.

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
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
    pub async fn drain(&self) -> Result<usize, String> {
        let _guard = self.lock.lock().await;
        let mut total = 0;
        loop {
            let store = self.store.clone();
            let rows = tokio::task::spawn_blocking(move || store.outbox(1000))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if rows.is_empty() {
                return Ok(total);
            }
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
            for ack in acks {
                ack.await
                    .map_err(|e| format!("awaiting a publish ack: {e}"))?;
            }
            let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.remove_outbox(&seqs))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            total += rows.len();
        }
    }
}
