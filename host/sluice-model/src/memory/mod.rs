//! The in-memory state backend: plain maps behind one mutex.
//!
//! It serves two masters. The runtime uses it in tests, the CLI and the demo when no database
//! is configured, and the redb-backed store's model-based tests use it as the reference model
//! its results are compared against. The second use is why everything here is written to be
//! obviously right rather than fast: every read rebuilds the merged view it needs from scratch
//! (base data, then the open write set on top), every query sorts its whole candidate set, and
//! there are no secondary structures — indexes are computed from documents on demand — so
//! there is nothing that can drift out of sync.
//!
//! # Semantics
//!
//! * **Write sets.** Each [`MemorySession`] keeps an overlay: key-value writes and table writes
//!   (deletions as tombstones) plus emitted events, of the current event and of the events of
//!   the open batch that finished successfully. Reads look at the overlay first, then at the
//!   shared base, which they read at call time, so a session sees what other sessions
//!   committed in the meantime. `finish_event(false)` restores the overlay to what it was when
//!   the event began; `commit` applies the overlay to the base under a single lock, so other
//!   sessions see all of a batch's writes or none of them; `rollback` drops it.
//! * **Isolation is read-committed, nothing more.** Conditions and compare-and-swap are checked
//!   against what the session sees at call time, and a kept write set is applied blindly (last
//!   writer wins). Two sessions racing on the same key can therefore both pass their checks;
//!   callers that need more must not run such events concurrently on this backend.
//! * **Calls outside `begin_event`/`finish_event`** act as if an implicit event were open: they
//!   collect in the overlay like any other write and are committed or rolled back with the
//!   batch. That implicit event starts where the last event finished (or the batch began), so
//!   a `finish_event` without a `begin_event` keeps or drops only those calls' writes and
//!   returns only their emits. Nothing ever reaches the base without a `commit`.
//! * **Versions** start at 1 and grow by one on every put or update of a live item; writing
//!   over an absent or expired item starts again at 1.
//! * **TTL.** An item whose `expires_at <= clock.now_ms()` is treated as absent by reads,
//!   queries and conditions; it physically stays until [`MemoryBackend::sweep_expired`] or an
//!   overwrite/delete removes it.
//! * **Argument checks come before conditions**: a non-object document fails with
//!   [`TableError::InvalidArgument`] even when the condition would also fail.
//! * **No locks, no faults.** Sessions never wait for each other (isolation is read-committed,
//!   above), so [`StateSession::set_lock_scope`] and [`StateSession::set_deadline`] have
//!   nothing to act on, and maps cannot fail like a disk: the trait's defaults apply
//!   (`take_fault` is always `None`, `await_healthy` returns `true` at once).
//! * **Page sizes.** A `limit` of 0 is treated as 1: an empty page with a cursor would make no
//!   progress, and an empty page without one would falsely claim the listing is complete.
//!
//! # Query cursors
//!
//! A query cursor is the JSON array of strings that positions the last returned item in the
//! query's sort order: `["<sk>"]` for a base-table query, `["<index sk>", "<pk>", "<sk>"]` for
//! an index query. The next page holds the matches strictly after (forward) or strictly before
//! (reverse) that position, so pages neither skip nor repeat items while the data stands still.
//! Anything else is rejected with [`TableError::InvalidArgument`]. Key-value cursors are the
//! last key of the page, as the listing is strictly after the cursor key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::records::{RecordTable, Row, Scan, StagedRecords, scan_map};
use crate::rules;
use crate::state::{
    Clock, CommitError, Condition, Emitted, IndexDef, Item, KeyPage, KvError, Query, QueryPage,
    Recorded, RecordedOutcome, StateBackend, StateSession, StoreError, TableDef, TableError,
};

/// (partition key, sort key) of a table item.
type ItemKey = (String, String);

/// Committed data, shared by every session of a backend.
#[derive(Debug, Default)]
struct Base {
    /// bucket → key → value.
    kv: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// table → (pk, sk) → item. Expired items stay until swept or overwritten.
    tables: BTreeMap<String, BTreeMap<ItemKey, Item>>,
    /// event id → dedupe record.
    records: BTreeMap<String, Recorded>,
    /// The workflow engine's rows, by table.
    engine: BTreeMap<RecordTable, BTreeMap<String, Vec<u8>>>,
}

/// Uncommitted writes: the kept events of the open batch plus the current event. `None` values
/// are tombstones hiding base entries.
#[derive(Debug, Default, Clone)]
struct Overlay {
    kv: BTreeMap<String, BTreeMap<String, Option<Vec<u8>>>>,
    tables: BTreeMap<String, BTreeMap<ItemKey, Option<Item>>>,
    emitted: Vec<Emitted>,
}

/// In-memory [`StateBackend`]. Clones share the same data, so cloning is how to hand the
/// backend to several owners.
#[derive(Clone)]
pub struct MemoryBackend {
    base: Arc<Mutex<Base>>,
    /// Table name → declared indexes. Fixed at construction, so it lives outside the lock.
    indexes: Arc<HashMap<String, Vec<IndexDef>>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The clock is a trait object without `Debug`; the data is usually too big to print.
        f.debug_struct("MemoryBackend")
            .field("tables", &self.indexes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// An empty backend. `tables` declares the secondary indexes of each table (a later
    /// declaration of the same name replaces an earlier one); tables not declared here are
    /// still usable, as tables without indexes. `clock` decides item expiry.
    pub fn new(tables: Vec<TableDef>, clock: Arc<dyn Clock>) -> Self {
        let indexes = tables.into_iter().map(|t| (t.name, t.indexes)).collect();
        Self {
            base: Arc::default(),
            indexes: Arc::new(indexes),
            clock,
        }
    }

    /// A new session with the concrete type, for callers that want to avoid the `Box<dyn>` of
    /// [`StateBackend::session`].
    pub fn open_session(&self) -> MemorySession {
        MemorySession {
            backend: self.clone(),
            overlay: Overlay::default(),
            event_start: None,
            records: Vec::new(),
            implicit_start: Overlay::default(),
            staged: StagedRecords::default(),
        }
    }

    /// Remove every expired item from the committed data; returns how many were removed.
    /// Open write sets are untouched: their expired items are invisible anyway.
    pub fn sweep_expired(&self) -> usize {
        let now = self.clock.now_ms();
        let mut base = self.base.lock();
        let mut removed = 0;
        for rows in base.tables.values_mut() {
            let before = rows.len();
            rows.retain(|_, item| rules::is_live(item, now));
            removed += before - rows.len();
        }
        removed
    }
}

impl StateBackend for MemoryBackend {
    fn session(&self) -> Box<dyn StateSession> {
        Box::new(self.open_session())
    }
}

/// A [`StateSession`] over a [`MemoryBackend`]: the backend's shared data plus this session's
/// open write set.
pub struct MemorySession {
    backend: MemoryBackend,
    overlay: Overlay,
    /// The overlay as it was when the current event began; `None` outside an event.
    event_start: Option<Overlay>,
    /// Dedupe records made in the open batch.
    records: Vec<(String, Recorded)>,
    /// The overlay as it was when the last event finished or the batch began: where the
    /// implicit event of calls outside `begin_event`/`finish_event` starts.
    implicit_start: Overlay,
    /// The workflow engine's rows staged in the batch.
    staged: StagedRecords,
}

impl fmt::Debug for MemorySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySession")
            .field("overlay", &self.overlay)
            .finish_non_exhaustive()
    }
}

/// Table rows in partition `pk` (all rows when `None`), in (pk, sk) order.
fn rows_in<'a, V>(
    rows: &'a BTreeMap<ItemKey, V>,
    pk: Option<&'a str>,
) -> impl Iterator<Item = (&'a ItemKey, &'a V)> + 'a {
    // ("", "") is the smallest key, so `None` starts at the beginning and never stops early.
    let start = (pk.unwrap_or_default().to_owned(), String::new());
    rows.range(start..)
        .take_while(move |((p, _), _)| pk.is_none_or(|pk| p == pk))
}

/// Keys of `map` starting with `prefix`, in order.
fn keys_with_prefix<'a, V>(
    map: &'a BTreeMap<String, V>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a V)> + 'a {
    // Keys sharing a prefix are contiguous in byte order and start at the prefix itself.
    map.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
}

impl MemorySession {
    fn now(&self) -> u64 {
        self.backend.clock.now_ms()
    }

    /// The live item at (`table`, `pk`, `sk`) as this session sees it.
    fn live_item(&self, table: &str, pk: &str, sk: &str, now: u64) -> Option<Item> {
        let key = (pk.to_owned(), sk.to_owned());
        let stored = match self.overlay.tables.get(table).and_then(|t| t.get(&key)) {
            Some(written) => written.clone(),
            None => self
                .backend
                .base
                .lock()
                .tables
                .get(table)
                .and_then(|t| t.get(&key))
                .cloned(),
        };
        stored.filter(|item| rules::is_live(item, now))
    }

    /// Record a write (`Some`) or a deletion (`None`) of (`table`, `pk`, `sk`) in the overlay.
    fn write_item(&mut self, table: &str, pk: &str, sk: &str, item: Option<Item>) {
        self.overlay
            .tables
            .entry(table.to_owned())
            .or_default()
            .insert((pk.to_owned(), sk.to_owned()), item);
    }

    /// Live items of `table` in partition `pk` (every partition when `None`), base merged with
    /// the overlay, in (pk, sk) order.
    fn live_rows(&self, table: &str, pk: Option<&str>, now: u64) -> Vec<Item> {
        let mut merged: BTreeMap<ItemKey, Item> = {
            let base = self.backend.base.lock();
            base.tables.get(table).map_or_else(BTreeMap::new, |rows| {
                rows_in(rows, pk)
                    .map(|(k, item)| (k.clone(), item.clone()))
                    .collect()
            })
        };
        if let Some(rows) = self.overlay.tables.get(table) {
            for (key, written) in rows_in(rows, pk) {
                match written {
                    Some(item) => merged.insert(key.clone(), item.clone()),
                    None => merged.remove(key),
                };
            }
        }
        merged
            .into_values()
            .filter(|item| rules::is_live(item, now))
            .collect()
    }

    /// The query's candidates, each with its position in the query's sort order (see the
    /// module docs for the shape), filtered by partition and sort-key condition.
    fn positioned_matches(
        &self,
        table: &str,
        q: &Query,
        now: u64,
    ) -> Result<Vec<(Vec<String>, Item)>, TableError> {
        let Some(index_name) = &q.index else {
            return Ok(self
                .live_rows(table, Some(&q.pk), now)
                .into_iter()
                .filter(|item| q.sk.matches(&item.sk))
                .map(|item| (vec![item.sk.clone()], item))
                .collect());
        };
        let index = self
            .backend
            .indexes
            .get(table)
            .and_then(|defs| defs.iter().find(|d| &d.name == index_name))
            .ok_or_else(|| TableError::NoSuchIndex(index_name.clone()))?;
        // An index partition can draw from every base partition, so scan the whole table.
        Ok(self
            .live_rows(table, None, now)
            .into_iter()
            .filter_map(|item| {
                let index_pk = rules::index_value(&item.doc, &index.pk_attr)?;
                if index_pk != q.pk {
                    return None;
                }
                let index_sk = match &index.sk_attr {
                    Some(attr) => rules::index_value(&item.doc, attr)?,
                    None => item.sk.clone(),
                };
                if !q.sk.matches(&index_sk) {
                    return None;
                }
                Some((vec![index_sk, item.pk.clone(), item.sk.clone()], item))
            })
            .collect())
    }
}

impl StateSession for MemorySession {
    fn begin_event(&mut self, _event_id: &str) {
        // An event still open is dropped: back to what the batch had kept.
        if let Some(kept) = self.event_start.take() {
            self.overlay = kept;
        }
        // The overlay holds the batch's kept events too; remember it so a failed event can be
        // dropped alone. Cloning is O(batch writes): fine for a reference model.
        self.event_start = Some(self.overlay.clone());
    }

    fn finish_event(&mut self, keep: bool) -> Vec<Emitted> {
        let start = self
            .event_start
            .take()
            .unwrap_or_else(|| std::mem::take(&mut self.implicit_start));
        if !keep {
            self.overlay = start.clone();
            self.implicit_start = start;
            return Vec::new();
        }
        self.implicit_start = self.overlay.clone();
        self.overlay.emitted[start.emitted.len()..].to_vec()
    }

    fn commit(&mut self) -> Result<(), CommitError> {
        if let Some(kept) = self.event_start.take() {
            self.overlay = kept;
        }
        let overlay = std::mem::take(&mut self.overlay);
        self.implicit_start = Overlay::default();
        // One lock for the whole write set: other sessions see all of it or none of it.
        let mut base = self.backend.base.lock();
        // A record committed since this batch looked means the batch ran that event again.
        let mut ids = BTreeSet::new();
        if let Some((id, _)) = self
            .records
            .iter()
            .find(|(id, _)| base.records.contains_key(id) || !ids.insert(id.as_str()))
        {
            let id = id.clone();
            drop(base);
            self.rollback();
            return Err(CommitError::Duplicate(id));
        }
        base.records.extend(self.records.drain(..));
        for (table, key, value) in self.staged.take().iter() {
            let rows = base.engine.entry(table).or_default();
            match value {
                Some(v) => rows.insert(key.to_owned(), v.to_vec()),
                None => rows.remove(key),
            };
        }
        for (bucket, writes) in overlay.kv {
            let stored = base.kv.entry(bucket).or_default();
            for (key, value) in writes {
                match value {
                    Some(value) => stored.insert(key, value),
                    None => stored.remove(&key),
                };
            }
        }
        for (table, writes) in overlay.tables {
            let stored = base.tables.entry(table).or_default();
            for (key, item) in writes {
                match item {
                    Some(item) => stored.insert(key, item),
                    None => stored.remove(&key),
                };
            }
        }
        Ok(())
    }

    fn record_outcome(&mut self, event_id: &str, outcome: RecordedOutcome) {
        let recorded_at_ms = self.backend.clock.now_ms();
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
    }

    fn recorded(&mut self, event_id: &str) -> Result<Option<Recorded>, StoreError> {
        if let Some((_, r)) = self.records.iter().rev().find(|(id, _)| id == event_id) {
            return Ok(Some(r.clone()));
        }
        Ok(self.backend.base.lock().records.get(event_id).cloned())
    }

    fn put_record(
        &mut self,
        table: RecordTable,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.staged.put(table, key, value);
        Ok(())
    }

    fn get_record(&mut self, table: RecordTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.staged.get(table, key) {
            return Ok(v.map(<[u8]>::to_vec));
        }
        let base = self.backend.base.lock();
        Ok(base.engine.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan_records(
        &mut self,
        table: RecordTable,
        scan: &Scan<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let limit = self.staged.committed_limit(table, scan);
        let committed = {
            let base = self.backend.base.lock();
            base.engine
                .get(&table)
                .map(|t| scan_map(t, scan, limit))
                .unwrap_or_default()
        };
        Ok(self.staged.merge(table, scan, committed))
    }

    fn rollback(&mut self) {
        self.staged.clear();
        self.records.clear();
        self.event_start = None;
        self.overlay = Overlay::default();
        self.implicit_start = Overlay::default();
    }

    fn kv_get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(written) = self.overlay.kv.get(bucket).and_then(|b| b.get(key)) {
            return Ok(written.clone());
        }
        let base = self.backend.base.lock();
        Ok(base.kv.get(bucket).and_then(|b| b.get(key)).cloned())
    }

    fn kv_set(&mut self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.overlay
            .kv
            .entry(bucket.to_owned())
            .or_default()
            .insert(key.to_owned(), Some(value));
        Ok(())
    }

    fn kv_delete(&mut self, bucket: &str, key: &str) -> Result<(), KvError> {
        self.overlay
            .kv
            .entry(bucket.to_owned())
            .or_default()
            .insert(key.to_owned(), None);
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
        let mut live: BTreeSet<String> = {
            let base = self.backend.base.lock();
            base.kv.get(bucket).map_or_else(BTreeSet::new, |stored| {
                keys_with_prefix(stored, prefix)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
        };
        if let Some(writes) = self.overlay.kv.get(bucket) {
            for (key, value) in keys_with_prefix(writes, prefix) {
                if value.is_some() {
                    live.insert(key.clone());
                } else {
                    live.remove(key);
                }
            }
        }
        Ok(rules::key_page(live, cursor, limit))
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
        let current = self.live_item(table, pk, sk, self.now());
        let item = rules::put(table, pk, sk, doc, cond, expires_at, current.as_ref())?;
        let version = item.version;
        self.write_item(table, pk, sk, Some(item));
        Ok(version)
    }

    fn table_get(&mut self, table: &str, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        Ok(self.live_item(table, pk, sk, self.now()))
    }

    fn table_delete(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        cond: Condition,
    ) -> Result<bool, TableError> {
        let current = self.live_item(table, pk, sk, self.now());
        rules::check_condition(table, pk, sk, cond, current.as_ref())?;
        // The tombstone also clears an expired item still stored under the key, which is
        // invisible anyway; only a live item counts as removed.
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
        let current = self.live_item(table, pk, sk, self.now());
        let item = rules::update(table, pk, sk, patch, cond, current)?;
        self.write_item(table, pk, sk, Some(item.clone()));
        Ok(item)
    }

    fn table_query(&mut self, table: &str, q: &Query) -> Result<QueryPage, TableError> {
        let position_len = if q.index.is_some() { 3 } else { 1 };
        let after = q
            .cursor
            .as_deref()
            .map(|c| rules::parse_cursor(c, position_len))
            .transpose()?;
        let matches = self.positioned_matches(table, q, self.now())?;
        Ok(rules::paginate(
            matches,
            q.forward,
            after.as_deref(),
            q.limit,
        ))
    }

    fn emit(&mut self, event: Emitted) {
        self.overlay.emitted.push(event);
    }
}

#[cfg(test)]
mod tests;
