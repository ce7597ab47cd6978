//! A batch's commit: its state writes, the secondary-index and TTL entries they imply, its
//! dedupe records, outbox rows and partition positions, in ONE redb transaction with
//! `Durability::Immediate` — all of a batch is durable, or none of it.

use std::collections::{BTreeMap, HashMap};

use redb::{Database, Durability, ReadableTable};
use sluice_model::records::{RecordTable, StagedRecords};
use sluice_model::rules;
use sluice_model::state::{CommitError, Emitted, Item, Recorded, StoreError};

use crate::codec;
use crate::outbox;
use crate::schema::{
    DEDUPE, DEDUPE_BATCHES, FAILURES, INDEX, ITEMS, KV, OUTBOX, POSITIONS, TTL, record_table,
};
use crate::session::{ItemKey, remove_index_entries};
use crate::store::{Inner, Store};

/// What a session's batch leaves to commit.
pub(crate) struct Pending<'a> {
    /// (bucket, key) → value, `None` deleting.
    pub(crate) kv: &'a BTreeMap<(String, String), Option<Vec<u8>>>,
    /// (table, pk, sk) → item, `None` deleting.
    pub(crate) items: &'a BTreeMap<ItemKey, Option<Item>>,
    pub(crate) records: &'a [(String, Recorded)],
    /// event id → retryable failures so far (`0`: the row goes).
    pub(crate) failures: &'a BTreeMap<String, u32>,
    /// Kept events' emits, with the id of the event that emitted them.
    pub(crate) outbox: &'a [(String, Emitted)],
    pub(crate) positions: &'a BTreeMap<String, u64>,
    /// The workflow engine's rows.
    pub(crate) engine: &'a StagedRecords,
}

fn store_err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Write `batch` in one durable transaction on `db`.
pub(crate) fn write_batch(
    db: &Database,
    inner: &Inner,
    batch: &Pending<'_>,
) -> Result<(), CommitError> {
    let mut txn = db.begin_write().map_err(store_err)?;
    txn.set_durability(Durability::Immediate)
        .map_err(store_err)?;
    {
        let mut dedupe = txn.open_table(DEDUPE).map_err(store_err)?;
        let mut newest = 0;
        for (id, r) in batch.records {
            // `insert` returns the previous record: if another session committed this
            // event since we looked, this batch ran it a second time, and nothing of the
            // batch may land (returning before `commit` drops the transaction).
            let previous = dedupe
                .insert(id.as_str(), codec::encode_record(r).as_slice())
                .map_err(store_err)?;
            if previous.is_some() {
                return Err(CommitError::Duplicate(id.clone()));
            }
            newest = newest.max(r.recorded_at_ms);
        }
        // One retention entry for the batch, at its newest record's time, so no record
        // is swept before its own time passes the horizon.
        if let Some((first, _)) = batch.records.first() {
            txn.open_table(DEDUPE_BATCHES)
                .map_err(store_err)?
                .insert(
                    (newest, first.as_str()),
                    codec::encode_ids(batch.records.iter().map(|(id, _)| id.as_str())).as_slice(),
                )
                .map_err(store_err)?;
        }

        for t in RecordTable::ALL {
            let mut rows = batch.engine.iter().filter(|(of, _, _)| *of == t).peekable();
            if rows.peek().is_none() {
                continue;
            }
            let mut table = txn.open_table(record_table(t)).map_err(store_err)?;
            for (_, key, value) in rows {
                match value {
                    Some(v) => table.insert(key, v).map(drop),
                    None => table.remove(key).map(drop),
                }
                .map_err(store_err)?;
            }
        }

        if !batch.failures.is_empty() {
            let now = inner.clock.now_ms();
            let mut failures = txn.open_table(FAILURES).map_err(store_err)?;
            for (id, n) in batch.failures {
                if *n == 0 {
                    failures.remove(id.as_str()).map(drop)
                } else {
                    failures.insert(id.as_str(), (*n, now)).map(drop)
                }
                .map_err(store_err)?;
            }
        }

        let mut kv = txn.open_table(KV).map_err(store_err)?;
        for ((bucket, key), value) in batch.kv {
            match value {
                Some(v) => kv
                    .insert((bucket.as_str(), key.as_str()), v.as_slice())
                    .map(drop),
                None => kv.remove((bucket.as_str(), key.as_str())).map(drop),
            }
            .map_err(store_err)?;
        }

        let mut items = txn.open_table(ITEMS).map_err(store_err)?;
        let mut index = txn.open_table(INDEX).map_err(store_err)?;
        let mut ttl = txn.open_table(TTL).map_err(store_err)?;
        for ((table, pk, sk), new) in batch.items {
            let key = (table.as_str(), pk.as_str(), sk.as_str());
            let old = items
                .get(key)
                .map_err(store_err)?
                .and_then(|v| codec::decode(pk, sk, v.value()));
            if let Some(old) = &old {
                remove_index_entries(&mut index, &inner.indexes, table, old)?;
                if let Some(at) = old.expires_at {
                    ttl.remove((at, table.as_str(), pk.as_str(), sk.as_str()))
                        .map_err(store_err)?;
                }
            }
            match new {
                Some(item) => {
                    items
                        .insert(key, codec::encode(item).as_slice())
                        .map_err(store_err)?;
                    for def in inner.indexes.get(table).into_iter().flatten() {
                        if let Some((ipk, isk)) = rules::index_key(def, item) {
                            index
                                .insert(
                                    (
                                        table.as_str(),
                                        def.name.as_str(),
                                        ipk.as_str(),
                                        isk.as_str(),
                                        pk.as_str(),
                                        sk.as_str(),
                                    ),
                                    (),
                                )
                                .map_err(store_err)?;
                        }
                    }
                    if let Some(at) = item.expires_at {
                        ttl.insert((at, table.as_str(), pk.as_str(), sk.as_str()), ())
                            .map_err(store_err)?;
                    }
                }
                None => {
                    items.remove(key).map_err(store_err)?;
                }
            }
        }

        let mut positions = txn.open_table(POSITIONS).map_err(store_err)?;
        for (partition, p) in batch.positions {
            let current = positions
                .get(partition.as_str())
                .map_err(store_err)?
                .map(|v| v.value());
            if current.is_none_or(|c| c < *p) {
                positions
                    .insert(partition.as_str(), *p)
                    .map_err(store_err)?;
            }
        }

        let mut rows = txn.open_table(OUTBOX).map_err(store_err)?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (source, e) in batch.outbox {
            let n = counts.entry(source.as_str()).or_default();
            let msg_id = format!("{source}/{n}");
            *n += 1;
            rows.insert(
                Store::next_outbox_seq(inner),
                outbox::encode(&msg_id, e).as_slice(),
            )
            .map_err(store_err)?;
        }
    }
    Ok(txn.commit().map_err(store_err)?)
}
