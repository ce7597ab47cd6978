//! Per-resource state locks: sessions with disjoint scopes hold state at the same time,
//! overlapping scopes serialize (and stay serializable), an unscoped session excludes every
//! other, and lock waits end at the invocation's deadline holding nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use sluice_model::state::{Fault, KvError, LockScope, StateSession, SystemClock, TableDef};
use sluice_store::{Store, StoreConfig, StoreSession};
use tempfile::TempDir;

fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("locks.redb"),
        StoreConfig {
            tables: vec![TableDef {
                name: "t".into(),
                indexes: vec![],
            }],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(3600),
        },
    )
    .unwrap();
    (dir, store)
}

fn scoped(store: &Store, buckets: &[&str], tables: &[&str]) -> StoreSession {
    let mut s = store.open_session();
    s.set_lock_scope(Some(LockScope {
        buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
        tables: tables.iter().map(|t| (*t).to_owned()).collect(),
    }));
    s
}

fn in_a_while() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(10))
}

fn counter(s: &mut StoreSession, bucket: &str) -> i64 {
    s.kv_get(bucket, "n")
        .unwrap()
        .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()))
}

#[test]
fn disjoint_scopes_hold_state_at_the_same_time() {
    let (_dir, store) = open();
    // Both sessions take their locks, then meet at the barrier while holding them: with a
    // store-wide lock the second would wait for the first's commit, which comes only after
    // the barrier, and fail at its deadline.
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [(["a"], ["t"]), (["b"], ["u"])]
        .into_iter()
        .map(|(buckets, tables)| {
            let mut s = scoped(&store, &buckets, &tables);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                s.set_deadline(in_a_while());
                s.begin_event(buckets[0]);
                s.kv_increment(buckets[0], "n", 1).unwrap();
                s.table_get(tables[0], "pk", "sk").unwrap();
                s.finish_event(true);
                barrier.wait();
                s.commit().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut s = store.open_session();
    assert_eq!((counter(&mut s, "a"), counter(&mut s, "b")), (1, 1));
}

#[test]
fn overlapping_scopes_serialize_and_the_second_reads_the_first_commit() {
    let (_dir, store) = open();
    let mut first = scoped(&store, &["a", "shared"], &[]);
    first.begin_event("first");
    first
        .kv_set("shared", "n", 41_i64.to_le_bytes().to_vec())
        .unwrap();
    first.finish_event(true);

    let done = Arc::new(AtomicBool::new(false));
    let mut second = scoped(&store, &["shared", "z"], &[]);
    let waiter = {
        let done = done.clone();
        std::thread::spawn(move || {
            second.set_deadline(in_a_while());
            let seen = second.kv_increment("shared", "n", 1).unwrap();
            done.store(true, Ordering::SeqCst);
            second.commit().unwrap();
            seen
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !done.load(Ordering::SeqCst),
        "the second session waits for the first's lock on \"shared\""
    );
    first.commit().unwrap();
    assert_eq!(
        waiter.join().unwrap(),
        42,
        "its snapshot, opened under the lock, holds the first session's commit"
    );
}

#[test]
fn concurrent_read_modify_write_increments_leave_exactly_n() {
    const WORKERS: usize = 4;
    const BATCHES: usize = 25;
    const PER_BATCH: usize = 4;
    let (_dir, store) = open();
    let threads: Vec<_> = (0..WORKERS)
        .map(|w| {
            // Every scope holds "counter" plus a bucket of the worker's own.
            let own = format!("own-{w}");
            let mut s = scoped(&store, &["counter", &own], &[]);
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    for e in 0..PER_BATCH {
                        s.begin_event(&format!("w{w}-b{b}-e{e}"));
                        s.kv_increment("counter", "n", 1).unwrap();
                        s.kv_increment(&own, "n", 1).unwrap();
                        s.finish_event(true);
                    }
                    s.commit().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut s = store.open_session();
    let n = i64::try_from(WORKERS * BATCHES * PER_BATCH).unwrap();
    assert_eq!(counter(&mut s, "counter"), n);
    for w in 0..WORKERS {
        assert_eq!(
            counter(&mut s, &format!("own-{w}")),
            n / i64::try_from(WORKERS).unwrap()
        );
    }
}

#[test]
fn an_unscoped_session_excludes_scoped_ones_and_the_other_way_round() {
    let (_dir, store) = open();
    let mut everything = store.open_session();
    everything.kv_get("x", "k").unwrap();

    let mut scoped_one = scoped(&store, &["a"], &[]);
    scoped_one.set_deadline(Some(Instant::now() + Duration::from_millis(50)));
    assert!(scoped_one.kv_get("a", "k").is_err());
    assert_eq!(scoped_one.take_fault(), Some(Fault::Deadline));
    everything.commit().unwrap();
    scoped_one.set_deadline(in_a_while());
    scoped_one.kv_get("a", "k").unwrap();

    let mut unscoped = store.open_session();
    unscoped.set_deadline(Some(Instant::now() + Duration::from_millis(50)));
    assert!(unscoped.kv_get("b", "k").is_err());
    assert_eq!(unscoped.take_fault(), Some(Fault::Deadline));
    scoped_one.rollback();
    unscoped.set_deadline(in_a_while());
    unscoped.kv_get("b", "k").unwrap();
    unscoped.rollback();
}

#[test]
fn a_lock_wait_fails_at_the_deadline_and_holds_nothing_afterwards() {
    let (_dir, store) = open();
    let mut holder = scoped(&store, &["b"], &[]);
    holder.kv_get("b", "k").unwrap();

    // "kv:a" sorts before "kv:b": the waiter takes it (and the store lock, shared), then waits
    // for "kv:b" until its deadline.
    let mut waiter = scoped(&store, &["a", "b"], &[]);
    let deadline = Instant::now() + Duration::from_millis(200);
    waiter.set_deadline(Some(deadline));
    waiter.begin_event("e");
    let err = waiter.kv_set("a", "k", vec![1]).unwrap_err();
    let late = Instant::now().saturating_duration_since(deadline);
    assert!(Instant::now() >= deadline);
    // parking_lot's timed wait wakes at the deadline; the margin is for a loaded machine.
    assert!(
        late < Duration::from_millis(150),
        "failed {late:?} after the deadline"
    );
    let KvError::Store(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("deadline passed"), "{msg}");
    assert_eq!(waiter.take_fault(), Some(Fault::Deadline));
    assert_eq!(waiter.take_fault(), None, "taken");

    // Nothing of the failed acquisition is held: "kv:a" is free, and once the holder is done
    // so is the store lock.
    let mut other = scoped(&store, &["a"], &[]);
    other.set_deadline(Some(Instant::now()));
    other.begin_event("other");
    other.kv_set("a", "k", vec![2]).unwrap();
    other.finish_event(true);
    other.commit().unwrap();
    holder.rollback();
    let mut unscoped = store.open_session();
    unscoped.set_deadline(Some(Instant::now()));
    assert_eq!(unscoped.kv_get("a", "k").unwrap(), Some(vec![2]));
    unscoped.rollback();

    // The waiter itself can go on once the lock is free (with a new deadline).
    waiter.set_deadline(in_a_while());
    waiter.kv_set("a", "k", vec![3]).unwrap();
    waiter.finish_event(true);
    waiter.commit().unwrap();
}

#[test]
fn a_scoped_session_refuses_state_outside_its_scope() {
    let (_dir, store) = open();
    let mut s = scoped(&store, &["a"], &[]);
    assert!(s.kv_get("b", "k").is_err());
    assert!(s.table_get("t", "pk", "sk").is_err());
    assert_eq!(
        s.take_fault(),
        None,
        "a platform bug, not a fault of the store"
    );
    s.kv_get("a", "k").unwrap();
    s.rollback();
}
