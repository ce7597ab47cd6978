//! A worker's view of the store: write sets per event and per batch over a read snapshot, and
//! the one-transaction commit.
//!
//! # Layers
//! Reads look at the current event's writes, then the writes of events kept earlier in the
//! batch, then the snapshot. `finish_event(true)` folds the event layer into the batch layer;
//! `finish_event(false)` drops it. `commit` writes the batch layer, every secondary-index and
//! TTL entry it implies, the batch's dedupe records and its outbox rows in one redb
//! transaction with `Durability::Immediate`: all of a batch is durable, or none of it.
//!
//! # Why batches that touch the same state are serialized
//! Events must be serializable: N events incrementing one counter through read-modify-write
//! must leave exactly N, whatever the number of workers. The keys an event touches are chosen
//! by guest code at run time, so they cannot be known up front to partition by key. We take
//! the simplest mechanism that is correct by construction: at its first state access a
//! session takes the state locks of its scope and holds them, with a snapshot opened under
//! them, until commit or rollback; no other batch touching the same resources can interleave.
//! Workers still run in parallel while they do not touch state (parsing, computing, stateless
//! stages), and the locks are taken once per batch, not per event. Optimistic validation
//! (record read sets, re-check them in the commit, re-run conflicting batches) would let
//! batches on the same resources run state code in parallel too; it is the upgrade path if
//! state-heavy stages need it.
//!
//! # Lock scopes: one lock per bucket and table
//! A stage's scope ([`StateSession::set_lock_scope`]) is the buckets and tables it is granted.
//! A scoped session takes the store-wide lock shared, then the lock of each of its resources
//! in sorted order (see `locks.rs`); an unscoped one takes the store-wide lock exclusively. So
//! stages with disjoint grants never wait for each other — a stage stuck holding its state
//! stalls only the stages sharing a resource with it — while batches sharing a resource, such
//! as two batches of one stage, serialize exactly as with one lock.
//!
//! **Why the snapshot is still current for everything the session reads.** The session only
//! reads (and writes) resources of its scope: the runtime grants no others, and the session
//! refuses calls outside its scope. Every commit that writes a resource R comes from a session
//! holding R's lock (a scoped session with R in scope, or an unscoped one holding everything)
//! from before its first read until after its commit. When our session has taken R's lock,
//! every earlier holder has committed or rolled back, and the snapshot we open afterwards
//! contains all their writes; until we release it, nobody else can commit to R. Commits to
//! resources outside our scope may or may not be in the snapshot — we never read them, so it
//! makes no difference. The only writers that take no state lock are the sweeper, which
//! removes items that are already invisible, and the commit's dedupe, outbox and position
//! rows, which sessions do not read through the snapshot (dedupe records are re-checked in
//! the write transaction, below). Hence reads are exactly as current as with one global lock.
//!
//! Lock waits are bounded by the invocation's deadline ([`StateSession::set_deadline`]): a
//! wait that reaches it fails the state call with a store error, holds nothing, and
//! [`StateSession::take_fault`] reports [`Fault::Deadline`].
//!
//! # Storage failures
//! A storage error takes the store down (see `health.rs`): the failing state call reports
//! [`Fault::Store`], every later call and commit fails at once until the database has been
//! reopened, and [`StateSession::await_healthy`] waits for that. The session keeps the
//! `Arc<Database>` its snapshot and dedupe view came from until commit or rollback, which is
//! how the healer knows when the failed handle has no users left.
//!
//! Dedupe records need no lock: `recorded` reads committed records directly, and `commit`
//! inserts each record inside the write transaction and fails with
//! [`CommitError::Duplicate`] (nothing applied) if the event already had one — committed by
//! another session meanwhile, or never looked up. That check is what makes exactly-once hold;
//! the look-up before running an event only saves running it twice.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, Table};
use serde_json::Value;
use sluice_model::records::{RecordTable, Row, Scan, StagedRecords};
use sluice_model::rules;
use sluice_model::state::{
    CommitError, Condition, Emitted, Fault, IndexDef, Item, KeyPage, KvError, LockScope, Query,
    QueryPage, Recorded, RecordedOutcome, StateSession, StoreError, TableError,
};

mod query;
mod records;

use crate::codec;
use crate::commit::{self, Pending};
use crate::locks::{self, Held};
use crate::schema::{DEDUPE, FAILURES, ITEMS, KV};
use crate::store::Inner;

pub(crate) type ItemKey = (String, String, String);

#[derive(Default)]
struct Layer {
    kv: BTreeMap<(String, String), Option<Vec<u8>>>,
    items: BTreeMap<ItemKey, Option<Item>>,
    emitted: Vec<Emitted>,
}

impl Layer {
    fn is_empty(&self) -> bool {
        self.kv.is_empty() && self.items.is_empty() && self.emitted.is_empty()
    }
}

/// One worker's session; see the module docs.
///
/// A session that has touched state holds state locks until `commit` or `rollback`: a thread
/// must not hold two such sessions at once, or it may wait for itself.
pub struct StoreSession {
    inner: Arc<Inner>,
    /// `None`: every resource (the store lock, exclusively).
    scope: Option<LockScope>,
    deadline: Option<Instant>,
    fault: Option<Fault>,
    lock: Option<Held>,
    snapshot: Option<ReadTransaction>,
    batch: Layer,
    event: Layer,
    event_id: Option<String>,
    /// Kept events' emits, with the id of the event that emitted them.
    outbox: Vec<(String, Emitted)>,
    records: Vec<(String, Recorded)>,
    /// Retryable-failure counts to set (`0`: forget) with the batch, by event id.
    failures: BTreeMap<String, u32>,
    /// Read transaction for dedupe look-ups outside the state lock, kept for the batch so a
    /// look-up costs a B-tree search, not a transaction. Staleness is harmless: `commit`
    /// re-checks the batch's records inside the write transaction.
    dedupe_view: Option<ReadOnlyTable<&'static str, &'static [u8]>>,
    /// The handle `snapshot` and `dedupe_view` came from, kept as long as they are (declared
    /// after them, so it is dropped last): while a session holds it, the healer knows the
    /// handle is in use.
    db: Option<Arc<Database>>,
    positions: BTreeMap<String, u64>,
    /// The workflow engine's rows staged in the batch.
    engine: StagedRecords,
}

impl std::fmt::Debug for StoreSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSession")
            .field("locked", &self.lock.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why a state call failed when its lock wait reached the deadline.
const DEADLINE_PASSED: &str = "the invocation's deadline passed while waiting for the state lock \
                               that another batch holds until its commit";

fn store_err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}
fn kv_err(e: impl std::fmt::Display) -> KvError {
    KvError::Store(e.to_string())
}
/// Keeps the cause as it is (a `StoreError` displays as "commit failed: ...").
fn kv_store(e: StoreError) -> KvError {
    KvError::Store(e.0)
}
fn table_store(e: StoreError) -> TableError {
    TableError::Store(e.0)
}

pub(crate) fn remove_index_entries(
    index: &mut Table<'_, (&str, &str, &str, &str, &str, &str), ()>,
    indexes: &HashMap<String, Vec<IndexDef>>,
    table: &str,
    item: &Item,
) -> Result<(), StoreError> {
    for def in indexes.get(table).into_iter().flatten() {
        if let Some((ipk, isk)) = rules::index_key(def, item) {
            index
                .remove((
                    table,
                    def.name.as_str(),
                    ipk.as_str(),
                    isk.as_str(),
                    item.pk.as_str(),
                    item.sk.as_str(),
                ))
                .map_err(store_err)?;
        }
    }
    Ok(())
}

pub(crate) fn read_record(
    txn: &ReadTransaction,
    event_id: &str,
) -> Result<Option<Recorded>, StoreError> {
    let table = txn.open_table(DEDUPE).map_err(store_err)?;
    decode_found(
        table
            .get(event_id)
            .map_err(store_err)?
            .map(|v| v.value().to_vec()),
        event_id,
    )
}

/// The committed retryable-failure count of `event_id` (0 without a row).
pub(crate) fn read_failures(txn: &ReadTransaction, event_id: &str) -> Result<u32, StoreError> {
    let table = txn.open_table(FAILURES).map_err(store_err)?;
    Ok(table
        .get(event_id)
        .map_err(store_err)?
        .map_or(0, |v| v.value().0))
}

fn decode_found(found: Option<Vec<u8>>, event_id: &str) -> Result<Option<Recorded>, StoreError> {
    match found {
        Some(bytes) => codec::decode_record(&bytes)
            .map(Some)
            .ok_or_else(|| StoreError(format!("corrupt dedupe record for {event_id:?}"))),
        None => Ok(None),
    }
}

/// The smallest string greater than every string starting with `s`... as far as tuple keys
/// go: `s` followed by NUL sorts after `s` and before any longer string starting with `s`
/// plus a non-NUL character, which is all a tuple-key upper bound needs (strings never
/// contain NUL in practice; one that does is still found by the exact filter).
fn after(s: &str) -> String {
    format!("{s}\0")
}

impl StoreSession {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            scope: None,
            deadline: None,
            fault: None,
            lock: None,
            snapshot: None,
            batch: Layer::default(),
            event: Layer::default(),
            event_id: None,
            outbox: Vec::new(),
            records: Vec::new(),
            failures: BTreeMap::new(),
            dedupe_view: None,
            db: None,
            positions: BTreeMap::new(),
            engine: StagedRecords::default(),
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Take the state locks (once per batch) and the snapshot opened under them.
    fn snapshot(&mut self) -> Result<&ReadTransaction, StoreError> {
        if self.inner.handle.is_down() {
            // Fail before waiting for locks: nothing can commit until the store is back.
            return Err(self.inner.handle.unavailable());
        }
        if self.lock.is_none() {
            let names = self.scope.as_ref().map(locks::resource_names);
            let Some(held) = self.inner.locks.acquire(names.as_deref(), self.deadline) else {
                self.fault = Some(Fault::Deadline);
                return Err(StoreError(DEADLINE_PASSED.into()));
            };
            self.lock = Some(held);
            self.snapshot = None;
        }
        if self.snapshot.is_none() {
            let db = self.db()?;
            let txn = db.begin_read().map_err(store_err)?;
            self.snapshot = Some(txn);
        }
        self.snapshot
            .as_ref()
            .ok_or_else(|| StoreError("no snapshot".into()))
    }

    /// The handle this batch reads from: the one it started on, or the current one. Fails
    /// while the store is down, even for a batch that started on the failed handle, so the
    /// batch ends and lets the healer reopen the file.
    fn db(&mut self) -> Result<Arc<Database>, StoreError> {
        if self.inner.handle.is_down() {
            return Err(self.inner.handle.unavailable());
        }
        if let Some(db) = &self.db {
            return Ok(db.clone());
        }
        let db = self.inner.handle.db()?;
        self.db = Some(db.clone());
        Ok(db)
    }

    /// A state call failed with `cause` for a storage reason (the caller ruled out the
    /// guest's mistakes): report it by [`StateSession::take_fault`] and take the store down.
    /// A deadline fault set by the lock wait stays.
    fn storage_failure(&mut self, cause: &str) {
        if cause == DEADLINE_PASSED || crate::health::is_corruption(cause) {
            return;
        }
        self.fault = Some(Fault::Store(cause.to_owned()));
        if let Some(db) = &self.db {
            self.inner.handle.fail(db, cause);
        }
    }

    fn note_kv<T>(&mut self, r: Result<T, KvError>) -> Result<T, KvError> {
        if let Err(KvError::Store(cause)) = &r {
            self.storage_failure(cause);
        }
        r
    }

    fn note_table<T>(&mut self, r: Result<T, TableError>) -> Result<T, TableError> {
        if let Err(TableError::Store(cause)) = &r {
            self.storage_failure(cause);
        }
        r
    }

    /// Refuse a bucket outside the scope: its lock is not held, so reads of it could be
    /// stale (the runtime's grants keep guests from getting here).
    fn bucket_in_scope(&self, bucket: &str) -> Result<(), KvError> {
        match &self.scope {
            Some(s) if !s.buckets.iter().any(|b| b == bucket) => Err(KvError::Store(format!(
                "bucket {bucket:?} is outside this session's lock scope"
            ))),
            _ => Ok(()),
        }
    }

    fn table_in_scope(&self, table: &str) -> Result<(), TableError> {
        match &self.scope {
            Some(s) if !s.tables.iter().any(|t| t == table) => Err(TableError::Store(format!(
                "table {table:?} is outside this session's lock scope"
            ))),
            _ => Ok(()),
        }
    }

    fn release(&mut self) {
        self.snapshot = None;
        self.dedupe_view = None;
        self.db = None;
        self.lock = None;
        self.batch = Layer::default();
        self.event = Layer::default();
        self.outbox.clear();
        self.records.clear();
        self.failures.clear();
        self.positions.clear();
        self.engine.clear();
    }

    /// The committed dedupe record of `event_id`, from the snapshot or the dedupe view.
    fn recorded_stored(&mut self, event_id: &str) -> Result<Option<Recorded>, StoreError> {
        if let Some(snap) = &self.snapshot {
            return read_record(snap, event_id);
        }
        let table = match &self.dedupe_view {
            Some(table) => table,
            None => {
                let db = self.db()?;
                let txn = db.begin_read().map_err(store_err)?;
                self.dedupe_view
                    .insert(txn.open_table(DEDUPE).map_err(store_err)?)
            }
        };
        decode_found(
            table
                .get(event_id)
                .map_err(store_err)?
                .map(|v| v.value().to_vec()),
            event_id,
        )
    }

    /// The batch in one durable write transaction, on the handle the batch read from.
    fn write_batch(&mut self) -> Result<(), CommitError> {
        let db = self.db()?;
        let pending = Pending {
            kv: &self.batch.kv,
            items: &self.batch.items,
            records: &self.records,
            failures: &self.failures,
            outbox: &self.outbox,
            positions: &self.positions,
            engine: &self.engine,
        };
        let result = commit::write_batch(&db, &self.inner, &pending);
        if let Err(CommitError::Store(e)) = &result {
            self.inner.handle.fail(&db, &e.0);
        }
        result
    }

    /// Commit `position` as `partition`'s position together with this batch (it only moves
    /// forward). The event source uses it to recognise redeliveries without a look-up by id.
    pub fn set_position(&mut self, partition: &str, position: u64) {
        let p = self
            .positions
            .entry(partition.to_owned())
            .or_insert(position);
        *p = (*p).max(position);
    }

    fn overlay_kv(&self, bucket: &str, key: &str) -> Option<&Option<Vec<u8>>> {
        let k = (bucket.to_owned(), key.to_owned());
        self.event.kv.get(&k).or_else(|| self.batch.kv.get(&k))
    }

    fn overlay_item(&self, key: &ItemKey) -> Option<&Option<Item>> {
        self.event
            .items
            .get(key)
            .or_else(|| self.batch.items.get(key))
    }

    /// The item as this session sees it, live or not.
    fn stored_item(&mut self, table: &str, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let key = (table.to_owned(), pk.to_owned(), sk.to_owned());
        if let Some(v) = self.overlay_item(&key) {
            return Ok(v.clone());
        }
        let snap = self.snapshot()?;
        let items = snap.open_table(ITEMS).map_err(store_err)?;
        let got = items.get((table, pk, sk)).map_err(store_err)?;
        Ok(got.and_then(|v| codec::decode(pk, sk, v.value())))
    }

    fn live_item(&mut self, table: &str, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        let now = self.now();
        Ok(self
            .stored_item(table, pk, sk)
            .map_err(table_store)?
            .filter(|i| rules::is_live(i, now)))
    }

    fn write_item(&mut self, table: &str, pk: &str, sk: &str, item: Option<Item>) {
        self.event
            .items
            .insert((table.to_owned(), pk.to_owned(), sk.to_owned()), item);
    }
}

/// The state calls, before the scope check and the fault bookkeeping of the trait's methods.
impl StoreSession {
    fn kv_get_inner(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(v) = self.overlay_kv(bucket, key) {
            return Ok(v.clone());
        }
        let snap = self.snapshot().map_err(kv_store)?;
        let kv = snap.open_table(KV).map_err(kv_err)?;
        Ok(kv
            .get((bucket, key))
            .map_err(kv_err)?
            .map(|v| v.value().to_vec()))
    }

    fn kv_set_inner(&mut self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        // Blind writes take the lock too: the batch's writes must not interleave with another
        // batch's read-modify-write of the same key.
        self.snapshot().map_err(kv_store)?;
        self.event
            .kv
            .insert((bucket.to_owned(), key.to_owned()), Some(value));
        Ok(())
    }

    fn kv_delete_inner(&mut self, bucket: &str, key: &str) -> Result<(), KvError> {
        self.snapshot().map_err(kv_store)?;
        self.event
            .kv
            .insert((bucket.to_owned(), key.to_owned()), None);
        Ok(())
    }

    fn kv_list_inner(
        &mut self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<KeyPage, KvError> {
        let limit = limit.max(1);
        let mut overlay: BTreeMap<String, bool> = BTreeMap::new();
        for layer in [&self.batch, &self.event] {
            for ((b, k), v) in &layer.kv {
                if b == bucket && k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c) {
                    overlay.insert(k.clone(), v.is_some());
                }
            }
        }
        // Enough stored keys that, after the overlay hides some, `limit + 1` can remain.
        let want = limit + 1 + overlay.len();
        let mut live: BTreeMap<String, bool> = BTreeMap::new();
        {
            let snap = self.snapshot().map_err(kv_store)?;
            let kv = snap.open_table(KV).map_err(kv_err)?;
            let start = match cursor {
                Some(c) if c >= prefix => Bound::Excluded((bucket, c)),
                _ => Bound::Included((bucket, prefix)),
            };
            let bucket_end = after(bucket);
            let range = kv
                .range::<(&str, &str)>((start, Bound::Excluded((bucket_end.as_str(), ""))))
                .map_err(kv_err)?;
            for entry in range {
                let (k, _) = entry.map_err(kv_err)?;
                let (b, key) = k.value();
                if b != bucket || !key.starts_with(prefix) {
                    break;
                }
                live.insert(key.to_owned(), true);
                if live.len() >= want {
                    break;
                }
            }
        }
        live.extend(overlay);
        Ok(rules::key_page(
            live.into_iter()
                .filter(|(_, is_live)| *is_live)
                .map(|(k, _)| k),
            cursor,
            limit,
        ))
    }

    fn table_put_inner(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        doc: Value,
        cond: Condition,
        expires_at: Option<u64>,
    ) -> Result<u64, TableError> {
        let current = self.live_item(table, pk, sk)?;
        let item = rules::put(table, pk, sk, doc, cond, expires_at, current.as_ref())?;
        let version = item.version;
        self.write_item(table, pk, sk, Some(item));
        Ok(version)
    }

    fn table_get_inner(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
    ) -> Result<Option<Item>, TableError> {
        self.live_item(table, pk, sk)
    }

    fn table_delete_inner(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        cond: Condition,
    ) -> Result<bool, TableError> {
        let current = self.live_item(table, pk, sk)?;
        rules::check_condition(table, pk, sk, cond, current.as_ref())?;
        self.write_item(table, pk, sk, None);
        Ok(current.is_some())
    }

    fn table_update_inner(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        patch: &Value,
        cond: Condition,
    ) -> Result<Item, TableError> {
        let current = self.live_item(table, pk, sk)?;
        let item = rules::update(table, pk, sk, patch, cond, current)?;
        self.write_item(table, pk, sk, Some(item.clone()));
        Ok(item)
    }
}

impl StateSession for StoreSession {
    fn begin_event(&mut self, event_id: &str) {
        self.event = Layer::default();
        self.event_id = Some(event_id.to_owned());
        // A fault belongs to the event whose call it failed.
        self.fault = None;
    }

    fn finish_event(&mut self, keep: bool) -> Vec<Emitted> {
        let event = std::mem::take(&mut self.event);
        let id = self.event_id.take().unwrap_or_default();
        if !keep {
            return Vec::new();
        }
        self.batch.kv.extend(event.kv);
        self.batch.items.extend(event.items);
        for e in &event.emitted {
            self.outbox.push((id.clone(), e.clone()));
        }
        event.emitted
    }

    fn record_outcome(&mut self, event_id: &str, outcome: RecordedOutcome) {
        let recorded_at_ms = self.now();
        self.records.push((
            event_id.to_owned(),
            Recorded {
                recorded_at_ms,
                outcome,
            },
        ));
    }

    fn forget_outcome(&mut self, event_id: &str) {
        self.records.retain(|(id, _)| id != event_id);
        self.failures.remove(event_id);
    }

    fn recorded(&mut self, event_id: &str) -> Result<Option<Recorded>, StoreError> {
        if let Some((_, r)) = self.records.iter().rev().find(|(id, _)| id == event_id) {
            return Ok(Some(r.clone()));
        }
        let r = self.recorded_stored(event_id);
        if let Err(e) = &r {
            self.storage_failure(&e.0);
        }
        r
    }

    fn failures(&mut self, event_id: &str) -> Option<u32> {
        if let Some(n) = self.failures.get(event_id) {
            return Some(*n);
        }
        // Only on the failure path: its own read transaction is cheap enough there.
        let mut read = || -> Result<u32, StoreError> {
            let db = self.db()?;
            let txn = db.begin_read().map_err(store_err)?;
            read_failures(&txn, event_id)
        };
        read().ok()
    }

    fn record_failures(&mut self, event_id: &str, count: u32) {
        self.failures.insert(event_id.to_owned(), count);
    }

    fn commit(&mut self) -> Result<(), CommitError> {
        self.event = Layer::default();
        if self.batch.is_empty()
            && self.records.is_empty()
            && self.failures.is_empty()
            && self.outbox.is_empty()
            && self.positions.is_empty()
            && self.engine.is_empty()
        {
            self.release();
            return Ok(());
        }
        let started = Instant::now();
        let result = self.write_batch();
        metrics::histogram!("sluice_commit_seconds").record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("sluice_commit_failures_total").increment(1);
        }
        self.release();
        result
    }

    fn rollback(&mut self) {
        self.release();
    }

    fn put_record(
        &mut self,
        table: RecordTable,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.engine.put(table, key, value);
        Ok(())
    }

    fn get_record(&mut self, table: RecordTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.record(table, key)
    }

    fn scan_records(
        &mut self,
        table: RecordTable,
        scan: &Scan<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        self.record_page(table, scan)
    }

    fn kv_get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bucket_in_scope(bucket)?;
        let r = self.kv_get_inner(bucket, key);
        self.note_kv(r)
    }

    fn kv_set(&mut self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.bucket_in_scope(bucket)?;
        let r = self.kv_set_inner(bucket, key, value);
        self.note_kv(r)
    }

    fn kv_delete(&mut self, bucket: &str, key: &str) -> Result<(), KvError> {
        self.bucket_in_scope(bucket)?;
        let r = self.kv_delete_inner(bucket, key);
        self.note_kv(r)
    }

    fn kv_list(
        &mut self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<KeyPage, KvError> {
        self.bucket_in_scope(bucket)?;
        let r = self.kv_list_inner(bucket, prefix, cursor, limit);
        self.note_kv(r)
    }

    fn table_put(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        doc: Value,
        cond: Condition,
        expires_at: Option<u64>,
    ) -> Result<u64, TableError> {
        self.table_in_scope(table)?;
        let r = self.table_put_inner(table, pk, sk, doc, cond, expires_at);
        self.note_table(r)
    }

    fn table_get(&mut self, table: &str, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        self.table_in_scope(table)?;
        let r = self.table_get_inner(table, pk, sk);
        self.note_table(r)
    }

    fn table_delete(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        cond: Condition,
    ) -> Result<bool, TableError> {
        self.table_in_scope(table)?;
        let r = self.table_delete_inner(table, pk, sk, cond);
        self.note_table(r)
    }

    fn table_update(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        patch: &Value,
        cond: Condition,
    ) -> Result<Item, TableError> {
        self.table_in_scope(table)?;
        let r = self.table_update_inner(table, pk, sk, patch, cond);
        self.note_table(r)
    }

    fn table_query(&mut self, table: &str, q: &Query) -> Result<QueryPage, TableError> {
        self.table_in_scope(table)?;
        let r = self.table_query_inner(table, q);
        self.note_table(r)
    }

    fn emit(&mut self, event: Emitted) {
        self.event.emitted.push(event);
    }

    fn set_lock_scope(&mut self, scope: Option<LockScope>) {
        // Takes effect at the next batch's first state access; a batch holding locks keeps
        // the ones it took.
        self.scope = scope;
    }

    fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    fn take_fault(&mut self) -> Option<Fault> {
        self.fault.take()
    }

    fn await_healthy(&mut self, timeout: Duration) -> bool {
        if self.inner.handle.is_down() && (self.db.is_some() || self.lock.is_some()) {
            // The batch cannot commit, and while it holds the failed handle the store cannot
            // heal: waiting with it would only wait for the timeout.
            tracing::warn!("await_healthy with a batch still open: rolling it back");
            self.release();
        }
        self.inner.handle.await_healthy(timeout)
    }
}
