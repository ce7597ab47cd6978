//! Opening the database, and the maintenance that is not part of a batch: TTL sweeps,
//! dedupe retention, and draining the outbox.
//!
//! Every access goes through the current database handle (see `health.rs`): a storage
//! failure takes the store down, these methods then fail at once with "store unavailable",
//! and the store heals by itself once the storage works again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redb::{Builder, Database, Durability, ReadableDatabase, ReadableTable, StorageBackend};
use sluice_model::state::{
    Clock, IndexDef, Recorded, StateBackend, StateSession, StoreError, TableDef,
};

use crate::health::{Handle, Health, Opener};
use crate::locks::StateLocks;
use crate::outbox::{self, OutboxRow};
use crate::schema::{
    DEDUPE, DEDUPE_BATCHES, DEDUPE_BY_TIME_V1, FAILURES, FORMAT_VERSION, INDEX, INVOKE_RESULTS,
    ITEMS, KV, META, OUTBOX, POSITIONS, TTL,
};
use crate::session::StoreSession;
use crate::{codec, session};

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// redb could not open or create the file.
    #[error("opening the database: {0}")]
    Database(#[from] redb::DatabaseError),
    /// The file was written by a newer Sluice with a layout this build does not know.
    #[error("the database has format version {found}; this build reads up to {FORMAT_VERSION}")]
    TooNew {
        /// Version found in the file.
        found: u64,
    },
    /// Creating the tables failed.
    #[error("initialising the database: {0}")]
    Init(String),
}

/// How a store is opened.
pub struct StoreConfig {
    /// Tables and their secondary indexes.
    pub tables: Vec<TableDef>,
    /// Clock for TTL and dedupe retention.
    pub clock: Arc<dyn Clock>,
    /// How long dedupe records are kept. A redelivery or republish of an event older than this
    /// runs again, so it must exceed the longest time an event can be redelivered or
    /// republished (JetStream's `max_age` for redeliveries, the publishers' retry horizon).
    pub dedupe_retention: Duration,
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired table items removed (with their index entries).
    pub expired_items: usize,
    /// Dedupe records older than the retention removed.
    pub dedupe_records: usize,
    /// Retryable-failure counts older than the retention removed (events that stopped
    /// coming back without a final outcome, e.g. their stream was purged).
    pub failure_counts: usize,
    /// Kept invocation outcomes removed with their dedupe records.
    pub invoke_results: usize,
}

pub(crate) struct Inner {
    /// The current database handle and the store's health.
    pub(crate) handle: Arc<Handle>,
    pub(crate) indexes: HashMap<String, Vec<IndexDef>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retention_ms: u64,
    /// Held by a session from its first state access until commit or rollback; see
    /// `session.rs` for why batches that touch the same state are serialized.
    pub(crate) locks: StateLocks,
    pub(crate) next_outbox_seq: AtomicU64,
}

/// The redb-backed state store. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn storage(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Format 1 → 2: the per-event retention index becomes one entry per record (format 1 kept
/// no batches), and the old table goes.
fn migrate_v1(txn: &redb::WriteTransaction) -> Result<(), redb::Error> {
    let old: Vec<(u64, String)> = {
        let table = txn.open_table(DEDUPE_BY_TIME_V1)?;
        table
            .iter()?
            .filter_map(Result::ok)
            .map(|(k, _)| (k.value().0, k.value().1.to_owned()))
            .collect()
    };
    let mut batches = txn.open_table(DEDUPE_BATCHES)?;
    for (at, id) in &old {
        batches.insert(
            (*at, id.as_str()),
            codec::encode_ids(std::iter::once(id.as_str())).as_slice(),
        )?;
    }
    drop(batches);
    txn.delete_table(DEDUPE_BY_TIME_V1)?;
    Ok(())
}

/// Check the format version (migrating format 1) and create every table; the next outbox
/// sequence number.
fn init(db: &Database) -> Result<u64, OpenError> {
    let err = |e: &dyn std::fmt::Display| OpenError::Init(e.to_string());
    let txn = db.begin_write().map_err(|e| err(&e))?;
    let next_seq;
    {
        let mut meta = txn.open_table(META).map_err(|e| err(&e))?;
        let found = meta
            .get("format_version")
            .map_err(|e| err(&e))?
            .map(|v| v.value());
        match found {
            Some(v) if v > FORMAT_VERSION => return Err(OpenError::TooNew { found: v }),
            Some(1) => {
                migrate_v1(&txn).map_err(|e| err(&e))?;
                meta.insert("format_version", FORMAT_VERSION)
                    .map_err(|e| err(&e))?;
            }
            // Format 2 → 3 adds the workflow engine's tables (created below) and changes no
            // existing encoding: the version moves on so an older build refuses the file
            // rather than ignore executions it cannot see.
            Some(2) => {
                meta.insert("format_version", FORMAT_VERSION)
                    .map_err(|e| err(&e))?;
            }
            Some(_) => {}
            None => {
                meta.insert("format_version", FORMAT_VERSION)
                    .map_err(|e| err(&e))?;
            }
        }
        // Create every table now, so read transactions never meet a missing table.
        txn.open_table(KV).map_err(|e| err(&e))?;
        txn.open_table(ITEMS).map_err(|e| err(&e))?;
        txn.open_table(INDEX).map_err(|e| err(&e))?;
        txn.open_table(TTL).map_err(|e| err(&e))?;
        txn.open_table(DEDUPE).map_err(|e| err(&e))?;
        txn.open_table(DEDUPE_BATCHES).map_err(|e| err(&e))?;
        txn.open_table(POSITIONS).map_err(|e| err(&e))?;
        txn.open_table(FAILURES).map_err(|e| err(&e))?;
        for t in sluice_model::records::RecordTable::ALL {
            txn.open_table(crate::schema::record_table(t))
                .map_err(|e| err(&e))?;
        }
        let outbox = txn.open_table(OUTBOX).map_err(|e| err(&e))?;
        next_seq = outbox
            .last()
            .map_err(|e| err(&e))?
            .map_or(0, |(k, _)| k.value() + 1);
    }
    txn.commit().map_err(|e| err(&e))?;
    Ok(next_seq)
}

impl Store {
    /// Open or create the database file at `path`. The file is locked: a second process
    /// opening it is refused.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Self, OpenError> {
        let path = path.to_owned();
        Self::open_with(Box::new(move || Builder::new().create(&path)), config)
    }

    /// Open or create the database at `path` on storage backends made by `factory`: one for
    /// the first open and a fresh one for each reopen after a storage failure. For fault
    /// tests and capped databases, see [`crate::QuotaFile`].
    pub fn open_with_backend<B, F>(
        path: &Path,
        config: StoreConfig,
        factory: F,
    ) -> Result<Self, OpenError>
    where
        B: StorageBackend,
        F: Fn(&Path) -> std::io::Result<B> + Send + Sync + 'static,
    {
        let path: PathBuf = path.to_owned();
        Self::open_with(
            Box::new(move || Builder::new().create_with_backend(factory(&path)?)),
            config,
        )
    }

    fn open_with(open: Opener, config: StoreConfig) -> Result<Self, OpenError> {
        let db = open()?;
        let next_seq = init(&db)?;
        let mut indexes = HashMap::new();
        for t in config.tables {
            indexes.insert(t.name, t.indexes);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                handle: Handle::new(open, db),
                indexes,
                clock: config.clock,
                retention_ms: u64::try_from(config.dedupe_retention.as_millis())
                    .unwrap_or(u64::MAX),
                locks: StateLocks::default(),
                next_outbox_seq: AtomicU64::new(next_seq),
            }),
        })
    }

    /// Whether the store can commit; `Down` from a storage failure until the database has
    /// been reopened.
    pub fn health(&self) -> Health {
        self.inner.handle.health()
    }

    /// A session for one worker.
    pub fn open_session(&self) -> StoreSession {
        StoreSession::new(self.inner.clone())
    }

    /// The committed dedupe record of `event_id`.
    pub fn recorded(&self, event_id: &str) -> Result<Option<Recorded>, StoreError> {
        self.inner
            .handle
            .with(|db| session::read_record(&db.begin_read().map_err(storage)?, event_id))
    }

    /// The committed position of `partition` (see [`StoreSession::set_position`]).
    pub fn position(&self, partition: &str) -> Result<Option<u64>, StoreError> {
        self.inner.handle.with(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(POSITIONS).map_err(storage)?;
            Ok(table.get(partition).map_err(storage)?.map(|v| v.value()))
        })
    }

    /// How many times the stage has failed `event_id` retryably, by the committed count (see
    /// `StateSession::failures`); 0 when it has no count.
    pub fn failures(&self, event_id: &str) -> Result<u32, StoreError> {
        self.inner
            .handle
            .with(|db| session::read_failures(&db.begin_read().map_err(storage)?, event_id))
    }

    /// Forget the retryable-failure counts of `event_ids`: an event source calls it once it
    /// has dead-lettered them, so an event republished from the dead letters (after a fix)
    /// starts with a clean count. Losing it in a crash is harmless: the sweeper removes the
    /// rows after the dedupe retention.
    pub fn forget_failures(&self, event_ids: &[&str]) -> Result<(), StoreError> {
        if event_ids.is_empty() {
            return Ok(());
        }
        self.inner.handle.with(|db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::None).map_err(storage)?;
            {
                let mut table = txn.open_table(FAILURES).map_err(storage)?;
                for id in event_ids {
                    table.remove(*id).map_err(storage)?;
                }
            }
            txn.commit().map_err(storage)
        })
    }

    /// Run [`Store::sweep`] every `every` on a background thread until the last clone of this
    /// store is dropped. Expired items are invisible from the moment they expire; the sweep
    /// only reclaims their space.
    pub fn spawn_sweeper(&self, every: Duration) {
        let weak = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("sluice-sweeper".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(inner) = weak.upgrade() else { return };
                    // While the store is down the healer has said so once; a sweep would only
                    // fail the same way every time.
                    if inner.handle.is_down() {
                        tracing::debug!("store down: sweep skipped");
                        continue;
                    }
                    match (Store { inner }).sweep() {
                        Ok(r) if r != SweepReport::default() => tracing::debug!(?r, "swept"),
                        Ok(_) => {}
                        // A storage failure, already reported by the store going down.
                        Err(e) => tracing::debug!("sweep failed: {e}"),
                    }
                }
            })
            .expect("spawning the sweeper thread");
    }

    /// Remove expired items (and their index entries) and dedupe records past the retention.
    pub fn sweep(&self) -> Result<SweepReport, StoreError> {
        self.inner.handle.with(|db| self.sweep_on(db))
    }

    fn sweep_on(&self, db: &Database) -> Result<SweepReport, StoreError> {
        let now = self.inner.clock.now_ms();
        let mut report = SweepReport::default();
        let txn = db.begin_write().map_err(storage)?;
        {
            let mut ttl = txn.open_table(TTL).map_err(storage)?;
            let mut items = txn.open_table(ITEMS).map_err(storage)?;
            let mut index = txn.open_table(INDEX).map_err(storage)?;
            let due: Vec<(u64, String, String, String)> = ttl
                .range(..=(now, "\u{10FFFF}", "", ""))
                .map_err(storage)?
                .filter_map(Result::ok)
                .map(|(k, _)| {
                    let (at, t, pk, sk) = k.value();
                    (at, t.to_owned(), pk.to_owned(), sk.to_owned())
                })
                .filter(|(at, ..)| *at <= now)
                .collect();
            for (at, t, pk, sk) in due {
                ttl.remove((at, t.as_str(), pk.as_str(), sk.as_str()))
                    .map_err(storage)?;
                let stored = items
                    .get((t.as_str(), pk.as_str(), sk.as_str()))
                    .map_err(storage)?
                    .map(|v| v.value().to_vec());
                // Only remove the item if it is still the one that expired at `at` (a later
                // put may have given it a new TTL or none).
                let Some(bytes) = stored else { continue };
                if codec::header(&bytes).and_then(|(_, e)| e) != Some(at) {
                    continue;
                }
                if let Some(old) = codec::decode(&pk, &sk, &bytes) {
                    session::remove_index_entries(&mut index, &self.inner.indexes, &t, &old)?;
                }
                items
                    .remove((t.as_str(), pk.as_str(), sk.as_str()))
                    .map_err(storage)?;
                report.expired_items += 1;
            }
            let horizon = now.saturating_sub(self.inner.retention_ms);
            let mut batches = txn.open_table(DEDUPE_BATCHES).map_err(storage)?;
            let mut dedupe = txn.open_table(DEDUPE).map_err(storage)?;
            let mut invoked = txn.open_table(INVOKE_RESULTS).map_err(storage)?;
            let old: Vec<(u64, String, Vec<String>)> = batches
                .range(..(horizon, ""))
                .map_err(storage)?
                .filter_map(Result::ok)
                .map(|(k, v)| {
                    let (at, first) = k.value();
                    (at, first.to_owned(), codec::decode_ids(v.value()))
                })
                .collect();
            for (at, first, ids) in old {
                batches.remove((at, first.as_str())).map_err(storage)?;
                for id in ids {
                    if dedupe.remove(id.as_str()).map_err(storage)?.is_some() {
                        report.dedupe_records += 1;
                    }
                    // An invocation's kept outcome goes with its dedupe record: past the
                    // retention, its key is a new event.
                    if invoked.remove(id.as_str()).map_err(storage)?.is_some() {
                        report.invoke_results += 1;
                    }
                }
            }
            // Rows exist only for events failing right now, so a full scan stays small.
            let mut failures = txn.open_table(FAILURES).map_err(storage)?;
            let stale: Vec<String> = failures
                .iter()
                .map_err(storage)?
                .filter_map(Result::ok)
                .filter(|(_, v)| v.value().1 < horizon)
                .map(|(k, _)| k.value().to_owned())
                .collect();
            for id in stale {
                failures.remove(id.as_str()).map_err(storage)?;
                report.failure_counts += 1;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(report)
    }

    /// How many rows wait in the outbox (committed, not yet published).
    pub fn outbox_depth(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        self.inner.handle.with(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(OUTBOX).map_err(storage)?;
            table.len().map_err(storage)
        })
    }

    /// Up to `limit` outbox rows, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_after(None, limit)
    }

    /// Up to `limit` outbox rows after the row `after` (from the oldest when `None`), oldest
    /// first: a relay that leaves a row in place (nothing can take it yet) reads on past it.
    pub fn outbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let from = match after {
            None => 0,
            Some(seq) => match seq.checked_add(1) {
                Some(f) => f,
                None => return Ok(Vec::new()),
            },
        };
        self.inner.handle.with(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(OUTBOX).map_err(storage)?;
            let mut rows = Vec::new();
            for entry in table.range(from..).map_err(storage)?.take(limit) {
                let (k, v) = entry.map_err(storage)?;
                rows.push(
                    outbox::decode(k.value(), v.value())
                        .ok_or_else(|| storage("corrupt outbox row"))?,
                );
            }
            Ok(rows)
        })
    }

    /// Delete published outbox rows.
    pub fn remove_outbox(&self, seqs: &[u64]) -> Result<(), StoreError> {
        self.inner.handle.with(|db| {
            let mut txn = db.begin_write().map_err(storage)?;
            // Losing a deletion in a crash only republishes a row, which downstream dedupe
            // drops.
            txn.set_durability(Durability::None).map_err(storage)?;
            {
                let mut table = txn.open_table(OUTBOX).map_err(storage)?;
                for seq in seqs {
                    table.remove(*seq).map_err(storage)?;
                }
            }
            txn.commit().map_err(storage)
        })
    }

    pub(crate) fn next_outbox_seq(inner: &Inner) -> u64 {
        inner.next_outbox_seq.fetch_add(1, Ordering::Relaxed)
    }
}

impl StateBackend for Store {
    fn session(&self) -> Box<dyn StateSession> {
        Box::new(self.open_session())
    }
}
