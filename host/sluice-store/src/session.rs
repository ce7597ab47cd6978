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
//! # Why batches that touch state are serialized
//! Events must be serializable: N events incrementing one counter through read-modify-write
//! must leave exactly N, whatever the number of workers. The keys an event touches are chosen
//! by guest code at run time, so they cannot be known up front to partition by key. We take
//! the simplest mechanism that is correct by construction: a session takes the store's state
//! lock at its first state access and holds it, with a snapshot opened under it, until commit
//! or rollback. Every read is then current and no other batch can interleave. Workers still
//! run in parallel while they do not touch state (parsing, computing, stateless stages), and
//! the lock is taken once per batch, not per event. Optimistic validation (record read sets,
//! re-check them in the commit, re-run conflicting batches) would let disjoint batches run
//! state code in parallel too; it is the upgrade path if state-heavy stages need it.
//!
//! Dedupe records need no lock: `recorded` reads committed records directly, and `commit`
//! inserts each record inside the write transaction and fails with
//! [`CommitError::Duplicate`] (nothing applied) if the event already had one — committed by
//! another session meanwhile, or never looked up. That check is what makes exactly-once hold;
//! the look-up before running an event only saves running it twice.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{ArcMutexGuard, RawMutex};
use redb::{Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table};
use serde_json::Value;
use sluice_model::rules;
use sluice_model::state::{
    CommitError, Condition, Emitted, IndexDef, Item, KeyPage, KvError, Query, QueryPage, Recorded,
    RecordedOutcome, SortKeyCondition, StateSession, StoreError, TableError,
};

use crate::codec;
use crate::outbox;
use crate::schema::{DEDUPE, DEDUPE_BATCHES, INDEX, ITEMS, KV, OUTBOX, POSITIONS, TTL};
use crate::store::{Inner, Store};

type ItemKey = (String, String, String);

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
/// A session that has touched state holds the store's state lock until `commit` or
/// `rollback`: a thread must not hold two such sessions at once, or it waits for itself.
pub struct StoreSession {
    inner: Arc<Inner>,
    lock: Option<ArcMutexGuard<RawMutex, ()>>,
    snapshot: Option<ReadTransaction>,
    batch: Layer,
    event: Layer,
    event_id: Option<String>,
    /// Kept events' emits, with the id of the event that emitted them.
    outbox: Vec<(String, Emitted)>,
    records: Vec<(String, Recorded)>,
    /// Read transaction for dedupe look-ups outside the state lock, kept for the batch so a
    /// look-up costs a B-tree search, not a transaction. Staleness is harmless: `commit`
    /// re-checks the batch's records inside the write transaction.
    dedupe_view: Option<ReadOnlyTable<&'static str, &'static [u8]>>,
    positions: BTreeMap<String, u64>,
}

impl std::fmt::Debug for StoreSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSession")
            .field("locked", &self.lock.is_some())
            .finish_non_exhaustive()
    }
}

fn store_err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}
fn kv_err(e: impl std::fmt::Display) -> KvError {
    KvError::Store(e.to_string())
}
fn table_err(e: impl std::fmt::Display) -> TableError {
    TableError::Store(e.to_string())
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

fn decode_found(found: Option<Vec<u8>>, event_id: &str) -> Result<Option<Recorded>, StoreError> {
    match found {
        Some(bytes) => codec::decode_record(&bytes)
            .map(Some)
            .ok_or_else(|| StoreError(format!("corrupt dedupe record for {event_id:?}"))),
        None => Ok(None),
    }
}

/// Lower and upper bounds on sort keys that `cond` implies (`matches` still filters exactly).
fn sk_bounds(cond: &SortKeyCondition) -> (Bound<String>, Bound<String>) {
    use Bound::{Excluded, Included, Unbounded};
    match cond {
        SortKeyCondition::Any => (Unbounded, Unbounded),
        SortKeyCondition::Equals(v) => (Included(v.clone()), Included(v.clone())),
        SortKeyCondition::BeginsWith(p) => (Included(p.clone()), Unbounded),
        SortKeyCondition::Between(lo, hi) => (Included(lo.clone()), Included(hi.clone())),
        SortKeyCondition::LessThan(v) => (Unbounded, Excluded(v.clone())),
        SortKeyCondition::LessOrEqual(v) => (Unbounded, Included(v.clone())),
        SortKeyCondition::GreaterThan(v) => (Excluded(v.clone()), Unbounded),
        SortKeyCondition::GreaterOrEqual(v) => (Included(v.clone()), Unbounded),
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
            lock: None,
            snapshot: None,
            batch: Layer::default(),
            event: Layer::default(),
            event_id: None,
            outbox: Vec::new(),
            records: Vec::new(),
            dedupe_view: None,
            positions: BTreeMap::new(),
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Take the state lock (once per batch) and the snapshot opened under it.
    fn snapshot(&mut self) -> Result<&ReadTransaction, StoreError> {
        if self.lock.is_none() {
            self.lock = Some(self.inner.state_lock.lock_arc());
            self.snapshot = None;
        }
        if self.snapshot.is_none() {
            self.snapshot = Some(self.inner.db.begin_read().map_err(store_err)?);
        }
        Ok(self.snapshot.as_ref().expect("just opened"))
    }

    fn release(&mut self) {
        self.snapshot = None;
        self.lock = None;
        self.batch = Layer::default();
        self.event = Layer::default();
        self.outbox.clear();
        self.records.clear();
        self.dedupe_view = None;
        self.positions.clear();
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
            .map_err(table_err)?
            .filter(|i| rules::is_live(i, now)))
    }

    fn write_item(&mut self, table: &str, pk: &str, sk: &str, item: Option<Item>) {
        self.event
            .items
            .insert((table.to_owned(), pk.to_owned(), sk.to_owned()), item);
    }

    /// Overlay entries of `table` (event over batch).
    fn overlay_items(&self, table: &str) -> BTreeMap<(String, String), Option<Item>> {
        let mut out = BTreeMap::new();
        for layer in [&self.batch, &self.event] {
            for ((t, pk, sk), v) in &layer.items {
                if t == table {
                    out.insert((pk.clone(), sk.clone()), v.clone());
                }
            }
        }
        out
    }

    /// Live, matching items of a base-table query from the snapshot: at most `want` of them,
    /// in query order, starting after `after_sk`, skipping keys the overlay decides.
    fn db_base_rows(
        &mut self,
        table: &str,
        q: &Query,
        after_sk: Option<&str>,
        want: usize,
        overlay: &BTreeMap<(String, String), Option<Item>>,
    ) -> Result<Vec<(Vec<String>, Item)>, StoreError> {
        let now = self.now();
        let (mut lo, mut hi) = sk_bounds(&q.sk);
        if let Some(c) = after_sk {
            if q.forward {
                lo = Bound::Excluded(c.to_owned());
            } else {
                hi = Bound::Excluded(c.to_owned());
            }
        }
        let pk = q.pk.as_str();
        let pk_end = after(pk);
        let lower: Bound<(&str, &str, &str)> = match &lo {
            Bound::Included(s) => Bound::Included((table, pk, s.as_str())),
            Bound::Excluded(s) => Bound::Excluded((table, pk, s.as_str())),
            Bound::Unbounded => Bound::Included((table, pk, "")),
        };
        let upper: Bound<(&str, &str, &str)> = match &hi {
            Bound::Included(s) => Bound::Included((table, pk, s.as_str())),
            Bound::Excluded(s) => Bound::Excluded((table, pk, s.as_str())),
            Bound::Unbounded => Bound::Excluded((table, pk_end.as_str(), "")),
        };
        let snap = self.snapshot()?;
        let items = snap.open_table(ITEMS).map_err(store_err)?;
        let range = items
            .range::<(&str, &str, &str)>((lower, upper))
            .map_err(store_err)?;
        let iter: Box<dyn Iterator<Item = _>> = if q.forward {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        let mut out = Vec::new();
        for entry in iter {
            let (k, v) = entry.map_err(store_err)?;
            let (_, ipk, isk) = k.value();
            if ipk != pk {
                continue;
            }
            if overlay.contains_key(&(ipk.to_owned(), isk.to_owned())) || !q.sk.matches(isk) {
                continue;
            }
            let Some(item) = codec::decode(ipk, isk, v.value()) else {
                continue;
            };
            if !rules::is_live(&item, now) {
                continue;
            }
            out.push((vec![item.sk.clone()], item));
            if out.len() >= want {
                break;
            }
        }
        Ok(out)
    }

    /// Like [`Self::db_base_rows`] for a secondary index; positions are (index sk, pk, sk).
    #[allow(
        clippy::too_many_arguments,
        reason = "a query's parts, kept apart for clarity"
    )]
    fn db_index_rows(
        &mut self,
        table: &str,
        index: &str,
        q: &Query,
        after_pos: Option<&[String]>,
        want: usize,
        overlay: &BTreeMap<(String, String), Option<Item>>,
    ) -> Result<Vec<(Vec<String>, Item)>, StoreError> {
        let now = self.now();
        let (lo, hi) = sk_bounds(&q.sk);
        let ipk = q.pk.as_str();
        let ipk_end = after(ipk);
        let lo_after;
        let hi_after;
        type K<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);
        let mut lower: Bound<K<'_>> = match &lo {
            Bound::Included(s) => Bound::Included((table, index, ipk, s.as_str(), "", "")),
            Bound::Excluded(s) => {
                lo_after = after(s);
                Bound::Included((table, index, ipk, lo_after.as_str(), "", ""))
            }
            Bound::Unbounded => Bound::Included((table, index, ipk, "", "", "")),
        };
        let mut upper: Bound<K<'_>> = match &hi {
            Bound::Included(s) => {
                hi_after = after(s);
                Bound::Excluded((table, index, ipk, hi_after.as_str(), "", ""))
            }
            Bound::Excluded(s) => Bound::Excluded((table, index, ipk, s.as_str(), "", "")),
            Bound::Unbounded => Bound::Excluded((table, index, ipk_end.as_str(), "", "", "")),
        };
        if let Some([isk, pk, sk]) = after_pos {
            let at = (table, index, ipk, isk.as_str(), pk.as_str(), sk.as_str());
            if q.forward {
                lower = Bound::Excluded(at);
            } else {
                upper = Bound::Excluded(at);
            }
        }
        let snap = self.snapshot()?;
        let entries = snap.open_table(INDEX).map_err(store_err)?;
        let items = snap.open_table(ITEMS).map_err(store_err)?;
        let range = entries.range::<K<'_>>((lower, upper)).map_err(store_err)?;
        let iter: Box<dyn Iterator<Item = _>> = if q.forward {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        let mut out = Vec::new();
        for entry in iter {
            let (k, _) = entry.map_err(store_err)?;
            let (_, _, eipk, eisk, pk, sk) = k.value();
            if eipk != ipk
                || !q.sk.matches(eisk)
                || overlay.contains_key(&(pk.to_owned(), sk.to_owned()))
            {
                continue;
            }
            let Some(v) = items.get((table, pk, sk)).map_err(store_err)? else {
                continue;
            };
            let Some(item) = codec::decode(pk, sk, v.value()) else {
                continue;
            };
            if !rules::is_live(&item, now) {
                continue;
            }
            out.push((vec![eisk.to_owned(), pk.to_owned(), sk.to_owned()], item));
            if out.len() >= want {
                break;
            }
        }
        Ok(out)
    }
}

impl StateSession for StoreSession {
    fn begin_event(&mut self, event_id: &str) {
        self.event = Layer::default();
        self.event_id = Some(event_id.to_owned());
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

    fn recorded(&mut self, event_id: &str) -> Result<Option<Recorded>, StoreError> {
        if let Some((_, r)) = self.records.iter().rev().find(|(id, _)| id == event_id) {
            return Ok(Some(r.clone()));
        }
        if let Some(snap) = &self.snapshot {
            return read_record(snap, event_id);
        }
        if self.dedupe_view.is_none() {
            let txn = self.inner.db.begin_read().map_err(store_err)?;
            self.dedupe_view = Some(txn.open_table(DEDUPE).map_err(store_err)?);
        }
        let table = self.dedupe_view.as_ref().expect("just opened");
        decode_found(
            table
                .get(event_id)
                .map_err(store_err)?
                .map(|v| v.value().to_vec()),
            event_id,
        )
    }

    fn commit(&mut self) -> Result<(), CommitError> {
        self.event = Layer::default();
        if self.batch.is_empty()
            && self.records.is_empty()
            && self.outbox.is_empty()
            && self.positions.is_empty()
        {
            self.release();
            return Ok(());
        }
        let result = self.write_batch();
        self.release();
        result
    }

    fn rollback(&mut self) {
        self.release();
    }

    fn kv_get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(v) = self.overlay_kv(bucket, key) {
            return Ok(v.clone());
        }
        let snap = self.snapshot().map_err(kv_err)?;
        let kv = snap.open_table(KV).map_err(kv_err)?;
        Ok(kv
            .get((bucket, key))
            .map_err(kv_err)?
            .map(|v| v.value().to_vec()))
    }

    fn kv_set(&mut self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        // Blind writes take the lock too: the batch's writes must not interleave with another
        // batch's read-modify-write of the same key.
        self.snapshot().map_err(kv_err)?;
        self.event
            .kv
            .insert((bucket.to_owned(), key.to_owned()), Some(value));
        Ok(())
    }

    fn kv_delete(&mut self, bucket: &str, key: &str) -> Result<(), KvError> {
        self.snapshot().map_err(kv_err)?;
        self.event
            .kv
            .insert((bucket.to_owned(), key.to_owned()), None);
        Ok(())
    }

    fn kv_list(
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
            let snap = self.snapshot().map_err(kv_err)?;
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

    fn table_put(
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

    fn table_get(&mut self, table: &str, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        self.live_item(table, pk, sk)
    }

    fn table_delete(
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

    fn table_update(
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

    fn table_query(&mut self, table: &str, q: &Query) -> Result<QueryPage, TableError> {
        let index = match &q.index {
            None => None,
            Some(name) => Some(
                self.inner
                    .indexes
                    .get(table)
                    .and_then(|defs| defs.iter().find(|d| &d.name == name))
                    .cloned()
                    .ok_or_else(|| TableError::NoSuchIndex(name.clone()))?,
            ),
        };
        let after_pos = q
            .cursor
            .as_deref()
            .map(|c| rules::parse_cursor(c, if index.is_some() { 3 } else { 1 }))
            .transpose()?;
        let limit = q.limit.max(1);
        let now = self.now();
        let overlay = self.overlay_items(table);
        let past_cursor = |pos: &Vec<String>| match &after_pos {
            None => true,
            Some(after) if q.forward => pos > after,
            Some(after) => pos < after,
        };
        // Overlay candidates: every live overlay item of the partition that matches.
        let mut rows: Vec<(Vec<String>, Item)> = overlay
            .values()
            .flatten()
            .filter(|item| rules::is_live(item, now))
            .filter_map(|item| match &index {
                None => (item.pk == q.pk && q.sk.matches(&item.sk))
                    .then(|| (vec![item.sk.clone()], item.clone())),
                Some(def) => {
                    let (ipk, isk) = rules::index_key(def, item)?;
                    (ipk == q.pk && q.sk.matches(&isk))
                        .then(|| (vec![isk, item.pk.clone(), item.sk.clone()], item.clone()))
                }
            })
            .filter(|(pos, _)| past_cursor(pos))
            .collect();
        let want = limit + 1;
        let stored = match &index {
            None => self.db_base_rows(
                table,
                q,
                after_pos.as_ref().map(|p| p[0].as_str()),
                want,
                &overlay,
            ),
            Some(def) => {
                self.db_index_rows(table, &def.name, q, after_pos.as_deref(), want, &overlay)
            }
        }
        .map_err(table_err)?;
        rows.extend(stored);
        Ok(rules::paginate(
            rows,
            q.forward,
            after_pos.as_deref(),
            limit,
        ))
    }

    fn emit(&mut self, event: Emitted) {
        self.event.emitted.push(event);
    }
}

impl StoreSession {
    /// The batch in one durable write transaction.
    fn write_batch(&mut self) -> Result<(), CommitError> {
        let inner = self.inner.clone();
        let mut txn = inner.db.begin_write().map_err(store_err)?;
        txn.set_durability(Durability::Immediate)
            .map_err(store_err)?;
        {
            let mut dedupe = txn.open_table(DEDUPE).map_err(store_err)?;
            let mut newest = 0;
            for (id, r) in &self.records {
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
            if let Some((first, _)) = self.records.first() {
                txn.open_table(DEDUPE_BATCHES)
                    .map_err(store_err)?
                    .insert(
                        (newest, first.as_str()),
                        codec::encode_ids(self.records.iter().map(|(id, _)| id.as_str()))
                            .as_slice(),
                    )
                    .map_err(store_err)?;
            }

            let mut kv = txn.open_table(KV).map_err(store_err)?;
            for ((bucket, key), value) in &self.batch.kv {
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
            for ((table, pk, sk), new) in &self.batch.items {
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
            for (partition, p) in &self.positions {
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
            for (source, e) in &self.outbox {
                let n = counts.entry(source.as_str()).or_default();
                let msg_id = format!("{source}/{n}");
                *n += 1;
                rows.insert(
                    Store::next_outbox_seq(&inner),
                    outbox::encode(&msg_id, e).as_slice(),
                )
                .map_err(store_err)?;
            }
        }
        Ok(txn.commit().map_err(store_err)?)
    }
}
