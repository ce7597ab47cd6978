//! The state locks: one per resource (`kv:<bucket>`, `table:<name>`) plus one store-wide
//! reader-writer lock, so batches of stages that touch disjoint state never wait for each other.
//!
//! A session with a [`LockScope`] takes the store lock shared and then the lock of every
//! resource of its scope; a session without one takes the store lock exclusively. Everything
//! is taken in one global order — the store lock first, then resources by sorted name — so two
//! sessions can never each hold a lock the other waits for. parking_lot's reader-writer lock
//! is task-fair: once an exclusive session waits, new shared sessions queue behind it, so an
//! unscoped session is not starved by a stream of scoped ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{
    ArcMutexGuard, ArcRwLockReadGuard, ArcRwLockWriteGuard, Mutex, RawMutex, RawRwLock, RwLock,
};
use sluice_model::state::LockScope;

/// The lock names of `scope`, in the order they are taken: sorted, each once.
pub(crate) fn resource_names(scope: &LockScope) -> Vec<String> {
    let mut names: Vec<String> = scope
        .buckets
        .iter()
        .map(|b| format!("kv:{b}"))
        .chain(scope.tables.iter().map(|t| format!("table:{t}")))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Every state lock of a store.
#[derive(Default)]
pub(crate) struct StateLocks {
    store: Arc<RwLock<()>>,
    /// Created on first use and kept: there is one per declared bucket or table a stage is
    /// granted, a small and fixed set, so nothing needs to be reclaimed.
    resources: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// The locks a session holds from its first state access to its commit or rollback; dropping
/// it releases them.
pub(crate) enum Held {
    /// The store lock, exclusively: an unscoped session.
    Store(#[allow(dead_code, reason = "held for its drop")] ArcRwLockWriteGuard<RawRwLock, ()>),
    /// The store lock shared, and one lock per resource of the scope.
    Scoped {
        #[allow(dead_code, reason = "held for their drop")]
        resources: Vec<ArcMutexGuard<RawMutex, ()>>,
        #[allow(dead_code, reason = "held for its drop")]
        store: ArcRwLockReadGuard<RawRwLock, ()>,
    },
}

impl StateLocks {
    fn resource(&self, name: &str) -> Arc<Mutex<()>> {
        self.resources
            .lock()
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Take the store lock exclusively (`names` is `None`) or shared plus the lock of each
    /// name (sorted, as [`resource_names`] returns them), waiting at most until `deadline`.
    /// `None` when the deadline passed first; then nothing is held (what was taken is
    /// released on return).
    pub(crate) fn acquire(
        &self,
        names: Option<&[String]>,
        deadline: Option<Instant>,
    ) -> Option<Held> {
        let Some(names) = names else {
            let guard = match deadline {
                None => self.store.write_arc(),
                Some(d) => self.store.try_write_arc_until(d)?,
            };
            return Some(Held::Store(guard));
        };
        let store = match deadline {
            None => self.store.read_arc(),
            Some(d) => self.store.try_read_arc_until(d)?,
        };
        let mut resources = Vec::with_capacity(names.len());
        for name in names {
            let lock = self.resource(name);
            resources.push(match deadline {
                None => lock.lock_arc(),
                Some(d) => lock.try_lock_arc_until(d)?,
            });
        }
        Some(Held::Scoped { resources, store })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scope(buckets: &[&str], tables: &[&str]) -> Vec<String> {
        resource_names(&LockScope {
            buckets: buckets.iter().map(|s| (*s).to_owned()).collect(),
            tables: tables.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    #[test]
    fn names_are_sorted_and_unique() {
        assert_eq!(
            scope(&["b", "a", "b"], &["t"]),
            ["kv:a", "kv:b", "table:t"].map(String::from)
        );
    }

    #[test]
    fn a_timed_out_acquisition_holds_nothing() {
        let locks = StateLocks::default();
        let first = locks.acquire(Some(&scope(&["b"], &[])), None);
        assert!(first.is_some());
        let soon = Instant::now() + Duration::from_millis(20);
        // "kv:a" is free and taken first, then "kv:b" times out: "kv:a" must be free again.
        assert!(
            locks
                .acquire(Some(&scope(&["a", "b"], &[])), Some(soon))
                .is_none()
        );
        let now = Some(Instant::now());
        assert!(locks.acquire(Some(&scope(&["a"], &[])), now).is_some());
        assert!(
            locks.acquire(None, now).is_none(),
            "the scoped holder excludes"
        );
        drop(first);
        assert!(locks.acquire(None, now).is_some());
    }
}
