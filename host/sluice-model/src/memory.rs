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

    fn recorded(&mut self, event_id: &str) -> Result<Option<Recorded>, StoreError> {
        if let Some((_, r)) = self.records.iter().rev().find(|(id, _)| id == event_id) {
            return Ok(Some(r.clone()));
        }
        Ok(self.backend.base.lock().records.get(event_id).cloned())
    }

    fn rollback(&mut self) {
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
mod tests {
    use super::*;
    use crate::state::SortKeyCondition;
    use serde_json::json;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock the test moves by hand.
    #[derive(Default)]
    struct ManualClock(AtomicU64);

    impl ManualClock {
        fn set(&self, ms: u64) {
            self.0.store(ms, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const T: &str = "orders";

    fn defs() -> Vec<TableDef> {
        vec![TableDef {
            name: T.into(),
            indexes: vec![
                IndexDef {
                    name: "by_status".into(),
                    pk_attr: "status".into(),
                    sk_attr: Some("placed".into()),
                },
                IndexDef {
                    name: "by_customer".into(),
                    pk_attr: "customer".into(),
                    sk_attr: None,
                },
            ],
        }]
    }

    fn backend() -> (MemoryBackend, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        clock.set(1_000);
        (MemoryBackend::new(defs(), clock.clone()), clock)
    }

    fn query(pk: &str, sk: SortKeyCondition) -> Query {
        Query {
            index: None,
            pk: pk.into(),
            sk,
            forward: true,
            limit: 100,
            cursor: None,
        }
    }

    fn index_query(index: &str, pk: &str) -> Query {
        Query {
            index: Some(index.into()),
            ..query(pk, SortKeyCondition::Any)
        }
    }

    fn sks(page: &QueryPage) -> Vec<String> {
        page.items.iter().map(|i| i.sk.clone()).collect()
    }

    fn keys(items: &[Item]) -> Vec<(String, String)> {
        items.iter().map(|i| (i.pk.clone(), i.sk.clone())).collect()
    }

    /// Every page of `q`, following cursors to the end.
    fn all_pages(s: &mut dyn StateSession, table: &str, q: &Query) -> Vec<QueryPage> {
        let mut q = q.clone();
        let mut pages = Vec::new();
        loop {
            let page = s.table_query(table, &q).unwrap();
            let next = page.cursor.clone();
            pages.push(page);
            match next {
                Some(c) => q.cursor = Some(c),
                None => return pages,
            }
        }
    }

    fn put(s: &mut dyn StateSession, pk: &str, sk: &str, doc: Value) -> u64 {
        s.table_put(T, pk, sk, doc, Condition::Always, None)
            .unwrap()
    }

    fn commit_puts(b: &MemoryBackend, rows: &[(&str, &str, Value)]) {
        let mut s = b.session();
        s.begin_event("seed");
        for (pk, sk, doc) in rows {
            put(s.as_mut(), pk, sk, doc.clone());
        }
        assert!(s.finish_event(true).is_empty());
        s.commit().unwrap();
    }

    fn emitted(subject: &str) -> Emitted {
        Emitted {
            subject: subject.into(),
            data: subject.as_bytes().to_vec(),
            headers: vec![("h".into(), subject.into())],
        }
    }

    // ---- write sets ----

    #[test]
    fn own_writes_are_visible_before_commit_and_to_others_only_after() {
        let (b, _) = backend();
        let mut a = b.session();
        let mut other = b.session();
        a.begin_event("e1");
        a.kv_set("k", "x", b"1".to_vec()).unwrap();
        put(a.as_mut(), "p", "s", json!({"n": 1}));
        assert_eq!(a.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            a.table_get(T, "p", "s").unwrap().unwrap().doc,
            json!({"n": 1})
        );
        other.begin_event("e2");
        assert_eq!(other.kv_get("k", "x").unwrap(), None);
        assert_eq!(other.table_get(T, "p", "s").unwrap(), None);
        // Kept in the batch: still the session's own, still invisible to others.
        a.finish_event(true);
        assert_eq!(a.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
        assert_eq!(a.table_get(T, "p", "s").unwrap().unwrap().version, 1);
        assert_eq!(other.kv_get("k", "x").unwrap(), None);
        assert_eq!(other.table_get(T, "p", "s").unwrap(), None);
        assert_eq!(b.session().kv_get("k", "x").unwrap(), None);
        a.commit().unwrap();
        assert_eq!(other.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
        assert_eq!(other.table_get(T, "p", "s").unwrap().unwrap().version, 1);
        // A clone of the backend shares the same data.
        let mut third = b.clone().session();
        assert_eq!(third.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn failed_event_drops_its_writes_and_successful_one_keeps_them() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("ok");
        s.kv_set("k", "kept", b"v".to_vec()).unwrap();
        put(s.as_mut(), "p", "kept", json!({}));
        assert!(s.finish_event(true).is_empty());

        s.begin_event("bad");
        s.kv_set("k", "dropped", b"v".to_vec()).unwrap();
        s.kv_delete("k", "kept").unwrap();
        put(s.as_mut(), "p", "dropped", json!({}));
        s.table_delete(T, "p", "kept", Condition::Always).unwrap();
        s.emit(emitted("lost"));
        assert!(s.finish_event(false).is_empty());

        s.begin_event("check");
        assert_eq!(s.kv_get("k", "kept").unwrap(), Some(b"v".to_vec()));
        assert_eq!(s.kv_get("k", "dropped").unwrap(), None);
        assert!(s.table_get(T, "p", "kept").unwrap().is_some());
        assert!(s.table_get(T, "p", "dropped").unwrap().is_none());
        assert!(s.finish_event(true).is_empty());
    }

    #[test]
    fn begin_event_drops_an_open_write_set_and_implicit_writes_wait_for_commit() {
        let (b, _) = backend();
        let mut s = b.session();
        let mut other = b.session();
        // Outside any event: collected in the batch, invisible to others, and (unlike an open
        // event's writes) not dropped by the next begin.
        s.kv_set("k", "implicit", b"1".to_vec()).unwrap();
        assert_eq!(s.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
        assert_eq!(other.kv_get("k", "implicit").unwrap(), None);
        s.begin_event("e");
        assert_eq!(s.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
        s.kv_set("k", "open", b"1".to_vec()).unwrap();
        s.begin_event("e-again");
        assert_eq!(s.kv_get("k", "open").unwrap(), None);
        assert_eq!(s.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
        s.finish_event(true);
        assert_eq!(other.kv_get("k", "open").unwrap(), None);
        assert_eq!(other.kv_get("k", "implicit").unwrap(), None);
        s.commit().unwrap();
        // The dropped event never reaches the base; the implicit write does, with the batch.
        assert_eq!(other.kv_get("k", "open").unwrap(), None);
        assert_eq!(other.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
        // Outside any event, then finish(true): kept, applied by the commit.
        s.kv_set("k", "implicit", b"2".to_vec()).unwrap();
        s.finish_event(true);
        assert_eq!(other.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
        s.commit().unwrap();
        assert_eq!(other.kv_get("k", "implicit").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn emits_come_back_in_call_order_once() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        for subject in ["a", "c", "b"] {
            s.emit(emitted(subject));
        }
        let out = s.finish_event(true);
        assert_eq!(out, vec![emitted("a"), emitted("c"), emitted("b")]);
        s.begin_event("next");
        assert!(s.finish_event(true).is_empty());
    }

    // ---- batches ----

    #[test]
    fn rollback_drops_every_kept_event_of_the_batch() {
        let (b, _) = backend();
        commit_puts(&b, &[("p", "committed", json!({"n": 0}))]);
        let mut s = b.session();
        let mut other = b.session();
        s.begin_event("a");
        s.kv_set("k", "a", b"a".to_vec()).unwrap();
        put(s.as_mut(), "p", "a", json!({"n": 1}));
        s.table_update(T, "p", "committed", &json!({"n": 1}), Condition::Always)
            .unwrap();
        assert!(s.finish_event(true).is_empty());
        s.begin_event("b");
        s.kv_set("k", "b", b"b".to_vec()).unwrap();
        put(s.as_mut(), "p", "b", json!({"n": 2}));
        s.table_delete(T, "p", "committed", Condition::Always)
            .unwrap();
        assert!(s.finish_event(true).is_empty());
        // Both kept: the session sees them, nobody else does.
        assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(s.kv_get("k", "b").unwrap(), Some(b"b".to_vec()));
        assert_eq!(s.table_get(T, "p", "committed").unwrap(), None);
        assert_eq!(other.kv_get("k", "a").unwrap(), None);
        assert_eq!(other.kv_get("k", "b").unwrap(), None);

        s.rollback();
        let committed_only = |sess: &mut dyn StateSession| {
            assert_eq!(sess.kv_get("k", "a").unwrap(), None);
            assert_eq!(sess.kv_get("k", "b").unwrap(), None);
            assert_eq!(sess.kv_list("k", "", None, 10).unwrap(), KeyPage::default());
            assert_eq!(sess.table_get(T, "p", "a").unwrap(), None);
            assert_eq!(sess.table_get(T, "p", "b").unwrap(), None);
            let page = sess
                .table_query(T, &query("p", SortKeyCondition::Any))
                .unwrap();
            assert_eq!(sks(&page), ["committed"]);
            assert_eq!(page.items[0].doc, json!({"n": 0}));
            assert_eq!(page.items[0].version, 1);
        };
        committed_only(s.as_mut());
        committed_only(other.as_mut());
        committed_only(b.session().as_mut());
        // Nothing is left for a later commit to apply.
        s.commit().unwrap();
        committed_only(b.session().as_mut());
    }

    #[test]
    fn failed_event_drops_only_its_own_writes_from_the_batch() {
        let (b, _) = backend();
        commit_puts(&b, &[("p", "base", json!({"n": 0}))]);
        let mut s = b.session();
        s.begin_event("a");
        s.kv_set("k", "a", b"a".to_vec()).unwrap();
        assert_eq!(s.kv_increment("k", "n", 1).unwrap(), 1);
        put(s.as_mut(), "p", "a", json!({"by": "a"}));
        assert!(s.finish_event(true).is_empty());

        s.begin_event("b");
        // B builds on A, overwrites and deletes A's writes, and touches committed data.
        assert_eq!(s.kv_increment("k", "n", 10).unwrap(), 11);
        s.kv_set("k", "a", b"from b".to_vec()).unwrap();
        s.kv_set("k", "b", b"b".to_vec()).unwrap();
        s.table_delete(T, "p", "a", Condition::MustExist).unwrap();
        put(s.as_mut(), "p", "b", json!({"by": "b"}));
        s.table_update(T, "p", "base", &json!({"by": "b"}), Condition::Always)
            .unwrap();
        s.emit(emitted("b"));
        assert!(s.finish_event(false).is_empty());

        s.begin_event("c");
        // A's writes survived B's failure; none of B's are left.
        assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(s.kv_get("k", "b").unwrap(), None);
        assert_eq!(s.kv_increment("k", "n", 100).unwrap(), 101);
        let a = s.table_get(T, "p", "a").unwrap().unwrap();
        assert_eq!((a.doc, a.version), (json!({"by": "a"}), 1));
        assert_eq!(s.table_get(T, "p", "b").unwrap(), None);
        let base = s.table_get(T, "p", "base").unwrap().unwrap();
        assert_eq!((base.doc, base.version), (json!({"n": 0}), 1));
        // C's writes depend on what it read of A.
        s.table_update(
            T,
            "p",
            "a",
            &json!({"seen_by": "c"}),
            Condition::VersionIs(1),
        )
        .unwrap();
        s.kv_set("k", "c", b"c".to_vec()).unwrap();
        s.emit(emitted("c"));
        assert_eq!(s.finish_event(true), vec![emitted("c")]);
        // Still nothing visible to others before the commit.
        assert_eq!(b.session().kv_get("k", "a").unwrap(), None);
        assert_eq!(b.session().kv_get("k", "c").unwrap(), None);

        s.commit().unwrap();
        let mut fresh = b.session();
        assert_eq!(fresh.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(fresh.kv_get("k", "c").unwrap(), Some(b"c".to_vec()));
        assert_eq!(fresh.kv_get("k", "b").unwrap(), None);
        assert_eq!(
            fresh.kv_get("k", "n").unwrap(),
            Some(101i64.to_le_bytes().to_vec())
        );
        assert_eq!(
            fresh.kv_list("k", "", None, 10).unwrap().keys,
            ["a", "c", "n"]
        );
        let a = fresh.table_get(T, "p", "a").unwrap().unwrap();
        assert_eq!((a.doc, a.version), (json!({"by": "a", "seen_by": "c"}), 2));
        assert_eq!(fresh.table_get(T, "p", "b").unwrap(), None);
        let base = fresh.table_get(T, "p", "base").unwrap().unwrap();
        assert_eq!((base.doc, base.version), (json!({"n": 0}), 1));
    }

    #[test]
    fn finish_event_returns_only_the_emits_of_that_event() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("a");
        s.emit(emitted("a1"));
        s.emit(emitted("a2"));
        assert_eq!(s.finish_event(true), vec![emitted("a1"), emitted("a2")]);
        s.begin_event("b");
        s.emit(emitted("b1"));
        assert_eq!(s.finish_event(true), vec![emitted("b1")]);
        s.begin_event("failed");
        s.emit(emitted("lost"));
        assert!(s.finish_event(false).is_empty());
        s.begin_event("c");
        s.emit(emitted("c1"));
        s.emit(emitted("c2"));
        assert_eq!(s.finish_event(true), vec![emitted("c1"), emitted("c2")]);
        s.begin_event("quiet");
        assert!(s.finish_event(true).is_empty());
        s.commit().unwrap();
        // A new batch starts clean, and a rolled-back one leaves nothing behind either.
        s.begin_event("d");
        s.emit(emitted("d1"));
        assert_eq!(s.finish_event(true), vec![emitted("d1")]);
        s.rollback();
        s.begin_event("e");
        s.emit(emitted("e1"));
        assert_eq!(s.finish_event(true), vec![emitted("e1")]);
    }

    #[test]
    fn begin_event_while_an_event_is_open_drops_only_that_event() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("a");
        s.kv_set("k", "x", b"a".to_vec()).unwrap();
        put(s.as_mut(), "p", "a", json!({}));
        s.emit(emitted("a"));
        assert_eq!(s.finish_event(true), vec![emitted("a")]);

        s.begin_event("b");
        s.kv_set("k", "x", b"b".to_vec()).unwrap();
        s.kv_set("k", "y", b"b".to_vec()).unwrap();
        s.table_delete(T, "p", "a", Condition::Always).unwrap();
        put(s.as_mut(), "p", "b", json!({}));
        s.emit(emitted("b"));
        // B never finishes: beginning C drops it, and only it.
        s.begin_event("c");
        assert_eq!(s.kv_get("k", "x").unwrap(), Some(b"a".to_vec()));
        assert_eq!(s.kv_get("k", "y").unwrap(), None);
        assert!(s.table_get(T, "p", "a").unwrap().is_some());
        assert_eq!(s.table_get(T, "p", "b").unwrap(), None);
        s.kv_set("k", "z", b"c".to_vec()).unwrap();
        s.emit(emitted("c"));
        assert_eq!(s.finish_event(true), vec![emitted("c")]);

        s.commit().unwrap();
        let mut fresh = b.session();
        assert_eq!(fresh.kv_get("k", "x").unwrap(), Some(b"a".to_vec()));
        assert_eq!(fresh.kv_get("k", "y").unwrap(), None);
        assert_eq!(fresh.kv_get("k", "z").unwrap(), Some(b"c".to_vec()));
        assert!(fresh.table_get(T, "p", "a").unwrap().is_some());
        assert_eq!(fresh.table_get(T, "p", "b").unwrap(), None);
    }

    #[test]
    fn commit_with_an_open_event_applies_only_the_kept_events() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("kept");
        s.kv_set("k", "kept", b"1".to_vec()).unwrap();
        s.finish_event(true);
        s.begin_event("open");
        s.kv_set("k", "open", b"1".to_vec()).unwrap();
        s.kv_delete("k", "kept").unwrap();
        s.commit().unwrap();
        let mut fresh = b.session();
        assert_eq!(fresh.kv_get("k", "kept").unwrap(), Some(b"1".to_vec()));
        assert_eq!(fresh.kv_get("k", "open").unwrap(), None);
        // The open event is gone from the session too, not left for the next batch.
        assert_eq!(s.kv_get("k", "open").unwrap(), None);
        assert!(s.finish_event(true).is_empty());
        s.commit().unwrap();
        assert_eq!(b.session().kv_get("k", "open").unwrap(), None);
        assert_eq!(
            b.session().kv_get("k", "kept").unwrap(),
            Some(b"1".to_vec())
        );
    }

    #[test]
    fn finish_event_without_an_open_event_leaves_earlier_kept_events_alone() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("a");
        s.kv_set("k", "a", b"a".to_vec()).unwrap();
        s.emit(emitted("a"));
        assert_eq!(s.finish_event(true), vec![emitted("a")]);
        // A second finish closes the (empty) implicit event: A's emits are not returned again
        // and A's writes are not dropped.
        assert!(s.finish_event(true).is_empty());
        assert!(s.finish_event(false).is_empty());
        assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
        // Calls outside an event form the implicit event, which finish_event closes alone.
        s.kv_set("k", "dropped", b"1".to_vec()).unwrap();
        s.emit(emitted("dropped"));
        assert!(s.finish_event(false).is_empty());
        assert_eq!(s.kv_get("k", "dropped").unwrap(), None);
        assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
        s.kv_set("k", "implicit", b"1".to_vec()).unwrap();
        s.emit(emitted("implicit"));
        assert_eq!(s.finish_event(true), vec![emitted("implicit")]);
        s.commit().unwrap();
        let mut fresh = b.session();
        assert_eq!(fresh.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(fresh.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
        assert_eq!(fresh.kv_get("k", "dropped").unwrap(), None);
    }

    // ---- key-value ----

    #[test]
    fn kv_set_get_delete_and_bucket_independence() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        s.kv_set("one", "k", b"1".to_vec()).unwrap();
        s.kv_set("two", "k", b"2".to_vec()).unwrap();
        assert_eq!(s.kv_get("one", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.kv_get("two", "k").unwrap(), Some(b"2".to_vec()));
        s.kv_set("one", "k", b"11".to_vec()).unwrap();
        assert_eq!(s.kv_get("one", "k").unwrap(), Some(b"11".to_vec()));
        s.finish_event(true);
        s.commit().unwrap();

        s.begin_event("e2");
        // Deleting a committed key hides it (tombstone) until commit.
        s.kv_delete("one", "k").unwrap();
        s.kv_delete("one", "never-existed").unwrap();
        assert_eq!(s.kv_get("one", "k").unwrap(), None);
        assert_eq!(s.kv_get("two", "k").unwrap(), Some(b"2".to_vec()));
        assert_eq!(
            b.session().kv_get("one", "k").unwrap(),
            Some(b"11".to_vec())
        );
        s.finish_event(true);
        assert_eq!(
            b.session().kv_get("one", "k").unwrap(),
            Some(b"11".to_vec())
        );
        s.commit().unwrap();
        assert_eq!(b.session().kv_get("one", "k").unwrap(), None);
        // Set after delete in the same event wins.
        s.begin_event("e3");
        s.kv_delete("two", "k").unwrap();
        s.kv_set("two", "k", b"again".to_vec()).unwrap();
        s.finish_event(true);
        s.commit().unwrap();
        assert_eq!(
            b.session().kv_get("two", "k").unwrap(),
            Some(b"again".to_vec())
        );
    }

    #[test]
    fn kv_list_pages_with_exact_cursors() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        for k in ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1", "a", "0"] {
            s.kv_set("k", k, vec![]).unwrap();
        }
        s.kv_set("other", "a/9", vec![]).unwrap();
        let p1 = s.kv_list("k", "a/", None, 2).unwrap();
        assert_eq!(p1.keys, ["a/1", "a/2"]);
        assert_eq!(p1.cursor.as_deref(), Some("a/2"));
        let p2 = s.kv_list("k", "a/", p1.cursor.as_deref(), 2).unwrap();
        assert_eq!(p2.keys, ["a/3", "a/4"]);
        assert_eq!(p2.cursor.as_deref(), Some("a/4"));
        let p3 = s.kv_list("k", "a/", p2.cursor.as_deref(), 2).unwrap();
        assert_eq!(p3.keys, ["a/5"]);
        assert_eq!(p3.cursor, None);
        // Exactly `limit` keys left: no cursor, since no more keys exist.
        let exact = s.kv_list("k", "a/", Some("a/3"), 2).unwrap();
        assert_eq!(exact.keys, ["a/4", "a/5"]);
        assert_eq!(exact.cursor, None);
        // Empty prefix lists the whole bucket; a cursor before the prefix range is harmless.
        let all = s.kv_list("k", "", None, 100).unwrap();
        assert_eq!(
            all.keys,
            ["0", "a", "a/1", "a/2", "a/3", "a/4", "a/5", "b/1"]
        );
        let from_before = s.kv_list("k", "a/", Some("0"), 100).unwrap();
        assert_eq!(from_before.keys.len(), 5);
        // Limit 0 still makes progress.
        let zero = s.kv_list("k", "a/", None, 0).unwrap();
        assert_eq!(zero.keys, ["a/1"]);
        assert_eq!(zero.cursor.as_deref(), Some("a/1"));
        assert_eq!(
            s.kv_list("missing", "", None, 5).unwrap(),
            KeyPage::default()
        );
    }

    #[test]
    fn kv_list_merges_overlay_with_base() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("seed");
        for k in ["p1", "p3", "p5", "p7"] {
            s.kv_set("k", k, vec![]).unwrap();
        }
        s.finish_event(true);
        s.commit().unwrap();
        s.begin_event("e");
        s.kv_set("k", "p2", vec![]).unwrap();
        s.kv_set("k", "p3", b"overwritten".to_vec()).unwrap();
        s.kv_delete("k", "p5").unwrap();
        s.kv_set("k", "p6", vec![]).unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.kv_list("k", "p", cursor.as_deref(), 2).unwrap();
            seen.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ["p1", "p2", "p3", "p6", "p7"]);
    }

    #[test]
    fn kv_increment_and_compare_and_swap() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        assert_eq!(s.kv_increment("k", "n", 5).unwrap(), 5);
        assert_eq!(s.kv_increment("k", "n", -7).unwrap(), -2);
        assert_eq!(
            s.kv_get("k", "n").unwrap(),
            Some((-2i64).to_le_bytes().to_vec())
        );
        s.kv_set("k", "text", b"hello".to_vec()).unwrap();
        assert!(matches!(
            s.kv_increment("k", "text", 1),
            Err(KvError::InvalidValue(_))
        ));
        assert_eq!(s.kv_get("k", "text").unwrap(), Some(b"hello".to_vec()));
        s.kv_set("k", "max", i64::MAX.to_le_bytes().to_vec())
            .unwrap();
        assert!(matches!(
            s.kv_increment("k", "max", 1),
            Err(KvError::InvalidValue(_))
        ));

        assert!(
            s.kv_compare_and_swap("k", "c", None, b"a".to_vec())
                .unwrap()
        );
        assert!(
            !s.kv_compare_and_swap("k", "c", None, b"b".to_vec())
                .unwrap()
        );
        assert!(
            !s.kv_compare_and_swap("k", "c", Some(b"x"), b"b".to_vec())
                .unwrap()
        );
        assert!(
            s.kv_compare_and_swap("k", "c", Some(b"a"), b"b".to_vec())
                .unwrap()
        );
        assert_eq!(s.kv_get("k", "c").unwrap(), Some(b"b".to_vec()));
        s.finish_event(true);
        s.commit().unwrap();
        // Increments of committed values continue from the base.
        s.begin_event("e2");
        assert_eq!(s.kv_increment("k", "n", 2).unwrap(), 0);
        s.finish_event(true);
        s.commit().unwrap();
        assert_eq!(
            b.session().kv_get("k", "n").unwrap(),
            Some(0i64.to_le_bytes().to_vec())
        );
    }

    // ---- table writes ----

    #[test]
    fn versions_count_writes_and_restart_after_delete() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        assert_eq!(put(s.as_mut(), "p", "s", json!({"n": 1})), 1);
        assert_eq!(put(s.as_mut(), "p", "s", json!({"n": 2})), 2);
        s.finish_event(true);
        s.commit().unwrap();
        s.begin_event("e2");
        let updated = s
            .table_update(T, "p", "s", &json!({"m": 1}), Condition::Always)
            .unwrap();
        assert_eq!(updated.version, 3);
        assert_eq!(s.table_get(T, "p", "s").unwrap().unwrap().version, 3);
        assert!(s.table_delete(T, "p", "s", Condition::Always).unwrap());
        assert_eq!(put(s.as_mut(), "p", "s", json!({})), 1);
        s.finish_event(true);
        assert_eq!(
            b.session().table_get(T, "p", "s").unwrap().unwrap().version,
            2
        );
        s.commit().unwrap();
        assert_eq!(
            b.session().table_get(T, "p", "s").unwrap().unwrap().version,
            1
        );
    }

    #[test]
    fn documents_and_patches_must_be_objects() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        for bad in [json!([1]), json!("x"), json!(null), json!(3)] {
            assert!(matches!(
                s.table_put(T, "p", "s", bad.clone(), Condition::Always, None),
                Err(TableError::InvalidArgument(_))
            ));
            assert!(matches!(
                s.table_update(T, "p", "s", &bad, Condition::Always),
                Err(TableError::InvalidArgument(_))
            ));
        }
        // The argument check comes before the condition.
        put(s.as_mut(), "p", "s", json!({}));
        assert!(matches!(
            s.table_put(T, "p", "s", json!(1), Condition::MustNotExist, None),
            Err(TableError::InvalidArgument(_))
        ));
        assert_eq!(s.table_get(T, "p", "s").unwrap().unwrap().version, 1);
    }

    #[test]
    fn put_conditions() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        let doc = json!({});
        let failed = |r: Result<u64, TableError>| matches!(r, Err(TableError::ConditionFailed(_)));
        assert!(failed(s.table_put(
            T,
            "p",
            "s",
            doc.clone(),
            Condition::MustExist,
            None
        )));
        assert!(failed(s.table_put(
            T,
            "p",
            "s",
            doc.clone(),
            Condition::VersionIs(1),
            None
        )));
        assert_eq!(
            s.table_put(T, "p", "s", doc.clone(), Condition::MustNotExist, None),
            Ok(1)
        );
        let err = s
            .table_put(T, "p", "s", doc.clone(), Condition::MustNotExist, None)
            .unwrap_err();
        let TableError::ConditionFailed(msg) = err else {
            panic!("unexpected {err:?}")
        };
        assert!(msg.contains("orders") && msg.contains("\"p\"") && msg.contains("\"s\""));
        assert_eq!(
            s.table_put(T, "p", "s", doc.clone(), Condition::MustExist, None),
            Ok(2)
        );
        assert!(failed(s.table_put(
            T,
            "p",
            "s",
            doc.clone(),
            Condition::VersionIs(1),
            None
        )));
        assert_eq!(
            s.table_put(T, "p", "s", doc.clone(), Condition::VersionIs(2), None),
            Ok(3)
        );
        assert_eq!(
            s.table_put(T, "p", "s", doc, Condition::Always, None),
            Ok(4)
        );
        // Failed writes changed nothing.
        assert_eq!(s.table_get(T, "p", "s").unwrap().unwrap().version, 4);
    }

    #[test]
    fn update_conditions_and_merge() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        let failed = |r: Result<Item, TableError>| matches!(r, Err(TableError::ConditionFailed(_)));
        assert!(failed(s.table_update(
            T,
            "p",
            "s",
            &json!({"a": 1}),
            Condition::MustExist
        )));
        assert!(failed(s.table_update(
            T,
            "p",
            "s",
            &json!({"a": 1}),
            Condition::VersionIs(1)
        )));
        assert_eq!(s.table_get(T, "p", "s").unwrap(), None);
        // Absent + allowed: created from `{}`, without expiry.
        let created = s
            .table_update(
                T,
                "p",
                "s",
                &json!({"a": 1, "b": {"c": 2, "d": null}}),
                Condition::MustNotExist,
            )
            .unwrap();
        assert_eq!(
            created,
            Item {
                pk: "p".into(),
                sk: "s".into(),
                doc: json!({"a": 1, "b": {"c": 2}}),
                version: 1,
                expires_at: None,
            }
        );
        assert!(failed(s.table_update(
            T,
            "p",
            "s",
            &json!({}),
            Condition::MustNotExist
        )));
        assert!(failed(s.table_update(
            T,
            "p",
            "s",
            &json!({}),
            Condition::VersionIs(2)
        )));
        let merged = s
            .table_update(
                T,
                "p",
                "s",
                &json!({"a": null, "b": {"e": 3}, "f": [1]}),
                Condition::VersionIs(1),
            )
            .unwrap();
        assert_eq!(merged.doc, json!({"b": {"c": 2, "e": 3}, "f": [1]}));
        assert_eq!(merged.version, 2);
        let again = s
            .table_update(T, "q", "s", &json!({"x": 1}), Condition::Always)
            .unwrap();
        assert_eq!(again.version, 1);
        assert_eq!(
            s.table_update(T, "q", "s", &json!({}), Condition::MustExist)
                .unwrap()
                .version,
            2
        );
        assert_eq!(s.table_get(T, "p", "s").unwrap(), Some(merged));
    }

    #[test]
    fn delete_conditions_and_result() {
        let (b, _) = backend();
        commit_puts(&b, &[("p", "s", json!({})), ("p", "t", json!({}))]);
        let mut s = b.session();
        s.begin_event("e");
        let failed = |r: Result<bool, TableError>| matches!(r, Err(TableError::ConditionFailed(_)));
        assert!(failed(s.table_delete(T, "p", "s", Condition::MustNotExist)));
        assert!(failed(s.table_delete(T, "p", "s", Condition::VersionIs(2))));
        assert!(failed(s.table_delete(T, "p", "x", Condition::MustExist)));
        assert!(failed(s.table_delete(T, "p", "x", Condition::VersionIs(1))));
        assert_eq!(
            s.table_delete(T, "p", "x", Condition::MustNotExist),
            Ok(false)
        );
        assert_eq!(s.table_delete(T, "p", "x", Condition::Always), Ok(false));
        assert_eq!(
            s.table_delete(T, "p", "s", Condition::VersionIs(1)),
            Ok(true)
        );
        assert_eq!(s.table_delete(T, "p", "s", Condition::Always), Ok(false));
        assert_eq!(s.table_delete(T, "p", "t", Condition::MustExist), Ok(true));
        assert_eq!(s.table_get(T, "p", "s").unwrap(), None);
        // Others still see the committed items until the batch commits.
        assert!(b.session().table_get(T, "p", "s").unwrap().is_some());
        s.finish_event(true);
        assert!(b.session().table_get(T, "p", "s").unwrap().is_some());
        assert!(b.session().table_get(T, "p", "t").unwrap().is_some());
        s.commit().unwrap();
        assert!(b.session().table_get(T, "p", "s").unwrap().is_none());
        assert!(b.session().table_get(T, "p", "t").unwrap().is_none());
    }

    #[test]
    fn expired_items_are_absent_and_swept() {
        let (b, clock) = backend();
        let mut s = b.session();
        s.begin_event("e");
        s.table_put(
            T,
            "p",
            "a",
            json!({"customer": "c"}),
            Condition::Always,
            Some(2_000),
        )
        .unwrap();
        s.table_put(
            T,
            "p",
            "b",
            json!({"customer": "c"}),
            Condition::Always,
            Some(3_000),
        )
        .unwrap();
        put(s.as_mut(), "p", "c", json!({"customer": "c"}));
        // Update keeps the expiry.
        let updated = s
            .table_update(T, "p", "a", &json!({"n": 1}), Condition::Always)
            .unwrap();
        assert_eq!((updated.version, updated.expires_at), (2, Some(2_000)));
        s.finish_event(true);
        s.commit().unwrap();

        clock.set(1_999);
        let mut s = b.session();
        assert!(s.table_get(T, "p", "a").unwrap().is_some());
        // At exactly `expires_at` the item is gone.
        clock.set(2_000);
        assert_eq!(s.table_get(T, "p", "a").unwrap(), None);
        let page = s
            .table_query(T, &query("p", SortKeyCondition::Any))
            .unwrap();
        assert_eq!(sks(&page), ["b", "c"]);
        let page = s.table_query(T, &index_query("by_customer", "c")).unwrap();
        assert_eq!(sks(&page), ["b", "c"]);
        // Conditions treat it as absent; a put over it starts at version 1.
        assert!(matches!(
            s.table_update(T, "p", "a", &json!({}), Condition::MustExist),
            Err(TableError::ConditionFailed(_))
        ));
        assert_eq!(s.table_delete(T, "p", "a", Condition::Always), Ok(false));
        assert_eq!(
            s.table_put(T, "p", "a", json!({}), Condition::MustNotExist, None),
            Ok(1)
        );
        s.finish_event(false);

        // Sweep removes only expired committed items: "a" (expired), not "b" or "c".
        assert_eq!(b.sweep_expired(), 1);
        assert_eq!(b.sweep_expired(), 0);
        clock.set(5_000);
        assert_eq!(b.sweep_expired(), 1);
        let page = b
            .session()
            .table_query(T, &query("p", SortKeyCondition::Any))
            .unwrap();
        assert_eq!(sks(&page), ["c"]);
    }

    #[test]
    fn expired_items_in_the_overlay_are_invisible_too() {
        let (b, clock) = backend();
        let mut s = b.session();
        s.begin_event("e");
        s.table_put(T, "p", "s", json!({}), Condition::Always, Some(1_500))
            .unwrap();
        assert!(s.table_get(T, "p", "s").unwrap().is_some());
        clock.set(1_500);
        assert_eq!(s.table_get(T, "p", "s").unwrap(), None);
        assert_eq!(put(s.as_mut(), "p", "s", json!({})), 1);
    }

    #[test]
    fn unknown_tables_work_without_indexes() {
        let (b, _) = backend();
        let mut s = b.session();
        s.begin_event("e");
        s.table_put("adhoc", "p", "s", json!({"x": 1}), Condition::Always, None)
            .unwrap();
        assert!(s.table_get("adhoc", "p", "s").unwrap().is_some());
        assert!(s.table_get(T, "p", "s").unwrap().is_none());
        let page = s
            .table_query("adhoc", &query("p", SortKeyCondition::Any))
            .unwrap();
        assert_eq!(sks(&page), ["s"]);
        assert_eq!(
            s.table_query("adhoc", &index_query("by_status", "x")),
            Err(TableError::NoSuchIndex("by_status".into()))
        );
        assert_eq!(
            s.table_query(T, &index_query("nope", "x")),
            Err(TableError::NoSuchIndex("nope".into()))
        );
    }

    // ---- queries ----

    #[test]
    fn query_every_sort_key_condition_both_directions() {
        let (b, _) = backend();
        let rows: Vec<(&str, &str, Value)> = ["a", "b", "ba", "bb", "c", "d"]
            .into_iter()
            .map(|sk| ("p", sk, json!({})))
            .chain([("other", "b", json!({})), ("p2", "a", json!({}))])
            .collect();
        commit_puts(&b, &rows);
        let mut s = b.session();
        use SortKeyCondition as C;
        let cases: Vec<(C, Vec<&str>)> = vec![
            (C::Any, vec!["a", "b", "ba", "bb", "c", "d"]),
            (C::Equals("ba".into()), vec!["ba"]),
            (C::Equals("zz".into()), vec![]),
            (C::BeginsWith("b".into()), vec!["b", "ba", "bb"]),
            (
                C::Between("b".into(), "c".into()),
                vec!["b", "ba", "bb", "c"],
            ),
            (C::LessThan("b".into()), vec!["a"]),
            (C::LessOrEqual("b".into()), vec!["a", "b"]),
            (C::GreaterThan("bb".into()), vec!["c", "d"]),
            (C::GreaterOrEqual("bb".into()), vec!["bb", "c", "d"]),
        ];
        for (cond, expected) in cases {
            let q = query("p", cond.clone());
            let page = s.table_query(T, &q).unwrap();
            assert_eq!(sks(&page), expected, "{cond:?} forward");
            assert_eq!(page.cursor, None);
            let page = s
                .table_query(
                    T,
                    &Query {
                        forward: false,
                        ..q
                    },
                )
                .unwrap();
            let mut reversed = expected.clone();
            reversed.reverse();
            assert_eq!(sks(&page), reversed, "{cond:?} reverse");
        }
        assert!(
            s.table_query(T, &query("none", C::Any))
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[test]
    fn query_pages_over_overlay_and_base_without_gaps_or_repeats() {
        let (b, _) = backend();
        let base: Vec<(&str, &str, Value)> = ["01", "03", "05", "07", "09"]
            .into_iter()
            .map(|sk| ("p", sk, json!({"from": "base"})))
            .collect();
        commit_puts(&b, &base);
        let mut s = b.session();
        s.begin_event("e");
        for sk in ["02", "04", "10"] {
            put(s.as_mut(), "p", sk, json!({"from": "overlay"}));
        }
        put(s.as_mut(), "p", "05", json!({"from": "overlay"}));
        s.table_delete(T, "p", "07", Condition::Always).unwrap();
        let expected = ["01", "02", "03", "04", "05", "09", "10"];
        for limit in 1..=8 {
            for forward in [true, false] {
                let q = Query {
                    limit,
                    forward,
                    ..query("p", SortKeyCondition::Any)
                };
                let pages = all_pages(s.as_mut(), T, &q);
                let got: Vec<String> = pages.iter().flat_map(sks).collect();
                let mut want: Vec<&str> = expected.to_vec();
                if !forward {
                    want.reverse();
                }
                assert_eq!(got, want, "limit {limit} forward {forward}");
                assert!(pages.iter().all(|p| p.items.len() <= limit));
                // Cursors are exact: only the last page lacks one, and no page is empty
                // unless the whole result is.
                assert_eq!(pages.len(), expected.len().div_ceil(limit));
            }
        }
        let page = s
            .table_query(T, &query("p", SortKeyCondition::Equals("05".into())))
            .unwrap();
        assert_eq!(page.items[0].doc, json!({"from": "overlay"}));
        assert_eq!(page.items[0].version, 2);
        // Pages also continue correctly with a sort-key condition.
        let q = Query {
            limit: 2,
            ..query("p", SortKeyCondition::Between("02".into(), "09".into()))
        };
        let got: Vec<String> = all_pages(s.as_mut(), T, &q).iter().flat_map(sks).collect();
        assert_eq!(got, ["02", "03", "04", "05", "09"]);
    }

    #[test]
    fn query_cursor_format_and_malformed_cursors() {
        let (b, _) = backend();
        commit_puts(
            &b,
            &[
                ("p", "a", json!({"customer": "c"})),
                ("p", "b", json!({"customer": "c"})),
            ],
        );
        let mut s = b.session();
        let q = Query {
            limit: 1,
            ..query("p", SortKeyCondition::Any)
        };
        assert_eq!(
            s.table_query(T, &q).unwrap().cursor.as_deref(),
            Some(r#"["a"]"#)
        );
        let iq = Query {
            limit: 1,
            ..index_query("by_customer", "c")
        };
        assert_eq!(
            s.table_query(T, &iq).unwrap().cursor.as_deref(),
            Some(r#"["a","p","a"]"#)
        );
        for bad in ["", "nope", "[]", r#"["a","p","a"]"#, "[1]", r#"{"sk":"a"}"#] {
            let q = Query {
                cursor: Some(bad.into()),
                ..q.clone()
            };
            assert!(
                matches!(s.table_query(T, &q), Err(TableError::InvalidArgument(_))),
                "{bad:?}"
            );
        }
        for bad in [r#"["a"]"#, "null"] {
            let iq = Query {
                cursor: Some(bad.into()),
                ..iq.clone()
            };
            assert!(matches!(
                s.table_query(T, &iq),
                Err(TableError::InvalidArgument(_))
            ));
        }
    }

    #[test]
    fn index_with_sort_attribute() {
        let (b, _) = backend();
        commit_puts(
            &b,
            &[
                ("o1", "x", json!({"status": "open", "placed": "2026-03"})),
                ("o2", "x", json!({"status": "open", "placed": "2026-01"})),
                ("o3", "x", json!({"status": "done", "placed": "2026-02"})),
                // Ties on the index sort key are ordered by (pk, sk).
                ("o4", "y", json!({"status": "open", "placed": "2026-02"})),
                ("o4", "x", json!({"status": "open", "placed": "2026-02"})),
                // Sparse: missing or non-scalar attributes are not indexed.
                ("o5", "x", json!({"status": "open"})),
                ("o6", "x", json!({"placed": "2026-01"})),
                ("o7", "x", json!({"status": true, "placed": "2026-01"})),
                ("o8", "x", json!({"status": "open", "placed": {"y": 1}})),
            ],
        );
        let mut s = b.session();
        let page = s.table_query(T, &index_query("by_status", "open")).unwrap();
        assert_eq!(
            keys(&page.items),
            [("o2", "x"), ("o4", "x"), ("o4", "y"), ("o1", "x")]
                .map(|(p, s)| (p.to_owned(), s.to_owned()))
        );
        let reverse = Query {
            forward: false,
            ..index_query("by_status", "open")
        };
        let got: Vec<_> = keys(&s.table_query(T, &reverse).unwrap().items);
        assert_eq!(
            got,
            [("o1", "x"), ("o4", "y"), ("o4", "x"), ("o2", "x")]
                .map(|(p, s)| (p.to_owned(), s.to_owned()))
        );
        // The sort-key condition applies to the index sort key.
        let q = Query {
            sk: SortKeyCondition::GreaterOrEqual("2026-02".into()),
            ..index_query("by_status", "open")
        };
        let got: Vec<String> = s
            .table_query(T, &q)
            .unwrap()
            .items
            .iter()
            .map(|i| i.pk.clone())
            .collect();
        assert_eq!(got, ["o4", "o4", "o1"]);
        // Paging through the tie, one item at a time, in both directions.
        for forward in [true, false] {
            let q = Query {
                limit: 1,
                forward,
                ..index_query("by_status", "open")
            };
            let pages = all_pages(s.as_mut(), T, &q);
            assert_eq!(pages.len(), 4);
            let got: Vec<Item> = pages.into_iter().flat_map(|p| p.items).collect();
            let mut want = s
                .table_query(T, &index_query("by_status", "open"))
                .unwrap()
                .items;
            if !forward {
                want.reverse();
            }
            assert_eq!(got, want);
        }
        let done = s.table_query(T, &index_query("by_status", "done")).unwrap();
        assert_eq!(keys(&done.items), [("o3".to_owned(), "x".to_owned())]);
    }

    #[test]
    fn index_without_sort_attribute_and_number_values() {
        let (b, _) = backend();
        commit_puts(
            &b,
            &[
                ("o1", "b", json!({"customer": "alice"})),
                ("o2", "a", json!({"customer": "alice"})),
                ("o1", "a", json!({"customer": "alice"})),
                ("o3", "a", json!({"customer": 42})),
                ("o4", "a", json!({"customer": 4.5})),
                ("o5", "a", json!({"customer": null})),
            ],
        );
        let mut s = b.session();
        // Ordered by base sk, then base pk.
        let page = s
            .table_query(T, &index_query("by_customer", "alice"))
            .unwrap();
        assert_eq!(
            keys(&page.items),
            [("o1", "a"), ("o2", "a"), ("o1", "b")].map(|(p, s)| (p.to_owned(), s.to_owned()))
        );
        let q = Query {
            sk: SortKeyCondition::Equals("b".into()),
            ..index_query("by_customer", "alice")
        };
        assert_eq!(sks(&s.table_query(T, &q).unwrap()), ["b"]);
        // Numbers are indexed under their JSON text.
        let page = s.table_query(T, &index_query("by_customer", "42")).unwrap();
        assert_eq!(keys(&page.items), [("o3".to_owned(), "a".to_owned())]);
        let page = s
            .table_query(T, &index_query("by_customer", "4.5"))
            .unwrap();
        assert_eq!(keys(&page.items), [("o4".to_owned(), "a".to_owned())]);
        assert!(
            s.table_query(T, &index_query("by_customer", "null"))
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[test]
    fn index_queries_reflect_the_overlay() {
        let (b, _) = backend();
        commit_puts(
            &b,
            &[
                ("o1", "x", json!({"customer": "alice"})),
                ("o2", "x", json!({"customer": "alice"})),
                ("o3", "x", json!({"customer": "alice"})),
                ("o4", "x", json!({"customer": "bob"})),
            ],
        );
        let mut s = b.session();
        s.begin_event("e");
        // Moves out of the partition, is deleted, moves into it, is new, loses the attribute.
        s.table_update(T, "o1", "x", &json!({"customer": "bob"}), Condition::Always)
            .unwrap();
        s.table_delete(T, "o2", "x", Condition::Always).unwrap();
        s.table_update(
            T,
            "o4",
            "x",
            &json!({"customer": "alice"}),
            Condition::Always,
        )
        .unwrap();
        put(s.as_mut(), "o0", "x", json!({"customer": "alice"}));
        put(s.as_mut(), "o5", "x", json!({"customer": "alice"}));
        s.table_update(T, "o5", "x", &json!({"customer": null}), Condition::Always)
            .unwrap();
        let q = Query {
            limit: 1,
            ..index_query("by_customer", "alice")
        };
        let got: Vec<String> = all_pages(s.as_mut(), T, &q)
            .iter()
            .flat_map(|p| p.items.iter().map(|i| i.pk.clone()))
            .collect();
        assert_eq!(got, ["o0", "o3", "o4"]);
        let bob = s
            .table_query(T, &index_query("by_customer", "bob"))
            .unwrap();
        assert_eq!(bob.items.len(), 1);
        assert_eq!(bob.items[0].pk, "o1");
        assert_eq!(bob.items[0].version, 2);
        // Nobody else sees any of it yet.
        let others = b
            .session()
            .table_query(T, &index_query("by_customer", "alice"))
            .unwrap();
        assert_eq!(others.items.len(), 3);
        s.finish_event(true);
        // Kept, not committed: still nobody else's.
        let kept = b
            .session()
            .table_query(T, &index_query("by_customer", "alice"))
            .unwrap();
        assert_eq!(kept, others);
        s.commit().unwrap();
        let after = b
            .session()
            .table_query(T, &index_query("by_customer", "alice"))
            .unwrap();
        assert_eq!(after.items.len(), 3);
        assert_eq!(after.items[0].pk, "o0");
        assert_eq!(
            keys(&after.items),
            [("o0", "x"), ("o3", "x"), ("o4", "x")].map(|(p, s)| (p.to_owned(), s.to_owned()))
        );
    }

    /// A tiny deterministic generator, so this test needs no extra dependency.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn random_mixes_page_like_a_single_full_query() {
        let mut rng = Lcg(7);
        for round in 0..40 {
            let (b, _) = backend();
            let mut s = b.session();
            // Two layers of random writes: a committed one and an open one.
            for layer in 0..2 {
                s.begin_event("layer");
                for _ in 0..30 {
                    let pk = format!("p{}", rng.below(2));
                    let sk = format!("s{:02}", rng.below(20));
                    let k = format!("k{:02}", rng.below(30));
                    if rng.below(4) == 0 {
                        s.table_delete(T, &pk, &sk, Condition::Always).unwrap();
                        s.kv_delete("b", &k).unwrap();
                    } else {
                        let status = format!("st{}", rng.below(3));
                        let doc = if rng.below(5) == 0 {
                            json!({})
                        } else {
                            json!({"status": status, "placed": format!("d{}", rng.below(4))})
                        };
                        put(s.as_mut(), &pk, &sk, doc);
                        s.kv_set("b", &k, vec![]).unwrap();
                    }
                }
                if layer == 0 {
                    s.finish_event(true);
                    s.commit().unwrap();
                }
            }
            let limit = usize::try_from(rng.below(5) + 1).unwrap();
            for forward in [true, false] {
                for q in [
                    query("p0", SortKeyCondition::Any),
                    query("p1", SortKeyCondition::GreaterThan("s07".into())),
                    index_query("by_status", "st1"),
                    index_query("by_status", "st2"),
                ] {
                    let full = s
                        .table_query(
                            T,
                            &Query {
                                forward,
                                ..q.clone()
                            },
                        )
                        .unwrap();
                    assert_eq!(full.cursor, None);
                    let paged: Vec<Item> = all_pages(
                        s.as_mut(),
                        T,
                        &Query {
                            forward,
                            limit,
                            ..q
                        },
                    )
                    .into_iter()
                    .flat_map(|p| p.items)
                    .collect();
                    assert_eq!(paged, full.items, "round {round}");
                }
            }
            let full = s.kv_list("b", "k", None, usize::MAX).unwrap();
            let mut paged = Vec::new();
            let mut cursor = None;
            loop {
                let page = s.kv_list("b", "k", cursor.as_deref(), limit).unwrap();
                paged.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(paged, full.keys, "round {round}");
        }
    }
}
