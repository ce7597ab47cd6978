//! The database handle every access goes through, the store's health, and the healer that
//! replaces a failed handle.
//!
//! # Why a handle that can be replaced
//! redb latches the first I/O error of a `Database` (a full disk, a failed fsync): every later
//! transaction fails with "Previous I/O error occurred. Please close and re-open the
//! database." until the handle is dropped and the file opened again. Nothing is lost — a
//! failed commit applied nothing, and reopening recovers the last committed state — but
//! without a reopen the process stays down until restarted. So the current handle lives in a
//! slot ([`Handle::db`] clones it for each use), and the first storage failure
//! ([`Handle::fail`]) empties the slot, logs one error, and starts the healer:
//!
//! 1. it waits until every user of the failed handle is gone. Sessions keep the
//!    `Arc<Database>` their snapshot came from until commit or rollback, so its strong count
//!    reaching one (the healer's own) means no snapshot or transaction is alive. This is also
//!    what makes the reopen possible: the old handle still holds redb's file lock, which would
//!    refuse the new open even within one process;
//! 2. it drops the handle, reopens the file (the same opener as the first open, so the same
//!    backend and file-lock semantics), and runs a probe commit, durable like a batch's;
//! 3. on failure it retries with exponential backoff (50 ms doubling to 5 s); on success it
//!    puts the new handle in the slot, marks the store healthy and wakes
//!    [`Handle::await_healthy`].
//!
//! While the slot is empty every access fails at once with `store unavailable: <cause>`, so
//! callers neither queue up behind a broken disk nor log a failure each: the one error says
//! what happened, the recovery says how long it took.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};
use redb::{Database, DatabaseError, Durability};
use sluice_model::state::StoreError;

use crate::schema::META;

/// Whether the store can commit, for a readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Commits go through.
    Healthy,
    /// A storage failure took the database handle down; commits fail until the healer has
    /// reopened it.
    Down {
        /// When the failure was seen.
        since: Instant,
        /// The storage error that took it down.
        cause: String,
    },
}

/// Makes a fresh `Database` for the first open and for every reopen.
pub(crate) type Opener = Box<dyn Fn() -> Result<Database, DatabaseError> + Send + Sync>;

/// First and longest pause between reopen attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the healer re-checks whether the failed handle's users are gone, and after how
/// long it says that it is still waiting for them (a session holding a batch open).
const USERS_POLL: Duration = Duration::from_millis(5);
const USERS_PATIENCE: Duration = Duration::from_secs(10);

/// The current database handle and the store's health.
pub(crate) struct Handle {
    /// `None` while the store is down.
    current: RwLock<Option<Arc<Database>>>,
    open: Opener,
    /// `Some((since, cause))` while down. Lock order: `status`, then `current`.
    status: Mutex<Option<(Instant, String)>>,
    changed: Condvar,
    /// Mirrors `status.is_some()` for the checks on every state call.
    down: AtomicBool,
}

impl Handle {
    pub(crate) fn new(open: Opener, db: Database) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Some(Arc::new(db))),
            open,
            status: Mutex::new(None),
            changed: Condvar::new(),
            down: AtomicBool::new(false),
        })
    }

    /// The current handle, or at once the reason there is none.
    pub(crate) fn db(&self) -> Result<Arc<Database>, StoreError> {
        // Not under the slot's lock: `unavailable` takes `status`, which comes first.
        let current = self.current.read().clone();
        current.ok_or_else(|| self.unavailable())
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    pub(crate) fn unavailable(&self) -> StoreError {
        let cause = match &*self.status.lock() {
            Some((_, cause)) => cause.clone(),
            None => "the database handle is being replaced".to_owned(),
        };
        StoreError(format!(
            "store unavailable: {cause}; commits are paused while the database is reopened"
        ))
    }

    pub(crate) fn health(&self) -> Health {
        match &*self.status.lock() {
            None => Health::Healthy,
            Some((since, cause)) => Health::Down {
                since: *since,
                cause: cause.clone(),
            },
        }
    }

    /// Wait until the store is healthy, at most `timeout`; whether it is.
    pub(crate) fn await_healthy(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut status = self.status.lock();
        while status.is_some() {
            if self.changed.wait_until(&mut status, deadline).timed_out() {
                return status.is_none();
            }
        }
        true
    }

    /// Run `f` on the current handle; any error it returns is a storage failure of that
    /// handle (see [`Handle::fail`]).
    pub(crate) fn with<T>(
        self: &Arc<Self>,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.db()?;
        f(&db).inspect_err(|e| self.fail(&db, &e.0))
    }

    /// `db` failed with `cause`: take it out of service and start healing, unless that
    /// already happened (only the first failure of a handle is logged and healed).
    pub(crate) fn fail(self: &Arc<Self>, db: &Arc<Database>, cause: &str) {
        if is_corruption(cause) {
            return;
        }
        let mut status = self.status.lock();
        if status.is_some() {
            return;
        }
        let old = {
            let mut current = self.current.write();
            // A handle that is no longer current failed late: it was replaced already.
            if !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, db)) {
                return;
            }
            current.take()
        };
        let Some(old) = old else { return };
        *status = Some((Instant::now(), cause.to_owned()));
        self.down.store(true, Ordering::Release);
        drop(status);
        tracing::error!(
            cause,
            "the store is down: a storage operation failed; commits are paused and the \
             database is being reopened with backoff"
        );
        let handle = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("sluice-store-healer".into())
            .spawn(move || heal(&handle, old));
        if let Err(e) = spawned {
            tracing::error!("could not start the store's healer thread, it stays down: {e}");
        }
    }

    fn reopen(&self) -> Result<Database, String> {
        let db = (self.open)().map_err(|e| format!("reopening: {e}"))?;
        probe(&db).map_err(|e| format!("probe commit: {e}"))?;
        Ok(db)
    }

    fn recovered(&self, db: Database, down_for: Duration, attempts: u32) {
        let mut status = self.status.lock();
        *self.current.write() = Some(Arc::new(db));
        *status = None;
        self.down.store(false, Ordering::Release);
        self.changed.notify_all();
        drop(status);
        tracing::warn!(
            attempts,
            "store recovered after {down_for:.1?}: the database was reopened and commits resume"
        );
    }
}

/// A durable write, as a batch's commit makes, to know the reopened handle can commit.
fn probe(db: &Database) -> Result<(), String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let mut txn = db.begin_write().map_err(|e| s(&e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| s(&e))?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    txn.open_table(META)
        .map_err(|e| s(&e))?
        .insert("reopened_at_ms", now_ms)
        .map_err(|e| s(&e))?;
    txn.commit().map_err(|e| s(&e))
}

/// The healer thread; see the module docs. It ends when the store is healthy again or when
/// the store itself is gone.
fn heal(handle: &Weak<Handle>, old: Arc<Database>) {
    let started = Instant::now();
    let mut warned = false;
    while Arc::strong_count(&old) > 1 {
        if handle.strong_count() == 0 {
            return;
        }
        if !warned && started.elapsed() >= USERS_PATIENCE {
            warned = true;
            tracing::warn!(
                users = Arc::strong_count(&old) - 1,
                "the store is still waiting for sessions of the failed database handle to \
                 commit or roll back before it can reopen the file"
            );
        }
        std::thread::sleep(USERS_POLL);
    }
    // The last user: this closes the backend and releases its file lock.
    drop(old);
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        let Some(h) = handle.upgrade() else { return };
        attempts += 1;
        match h.reopen() {
            Ok(db) => {
                h.recovered(db, started.elapsed(), attempts);
                return;
            }
            Err(e) => {
                tracing::debug!(
                    attempts,
                    "the store is still down: {e}; next try in {backoff:?}"
                );
            }
        }
        drop(h);
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Whether `cause` says that stored bytes did not decode (a dedupe record or outbox row of an
/// unknown shape) rather than that the storage failed. Reopening cannot fix that, so it does
/// not take the store down (which would only flap: down, healed, down at the next read); the
/// operation fails on its own and its caller decides.
pub(crate) fn is_corruption(cause: &str) -> bool {
    cause.starts_with("corrupt ")
}
