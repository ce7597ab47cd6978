//! Storage faults: a store on a [`QuotaFile`] whose disk "fills up" mid-stream fails commits
//! cleanly, reports itself down, heals by itself once space is back, and — after the caller
//! re-runs the failed batches — holds every event's effects exactly once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_model::state::{
    CommitError, Emitted, Fault, KvError, RecordedOutcome, StateSession, SystemClock,
};
use sluice_store::{Health, QuotaFile, QuotaHandle, Store, StoreConfig, StoreSession};
use tempfile::TempDir;

const BATCH: usize = 20;
const BATCHES: usize = 100;
/// Large marker values, so that every batch grows the file.
const MARKER: usize = 4096;

fn config() -> StoreConfig {
    StoreConfig {
        tables: vec![],
        clock: Arc::new(SystemClock),
        dedupe_retention: Duration::from_secs(3600),
    }
}

fn open(quota: &QuotaHandle) -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faults.redb");
    let quota = quota.clone();
    let store =
        Store::open_with_backend(&path, config(), move |p| QuotaFile::open(p, quota.clone()))
            .unwrap();
    (dir, path, store)
}

fn id(n: usize) -> String {
    format!("evt-{n:06}")
}

/// Batch `b` as a worker runs it: events already recorded are skipped, each other event
/// increments the counter, writes its marker, emits one event and records its outcome.
fn run_batch(s: &mut StoreSession, b: usize) -> Result<(), CommitError> {
    for n in b * BATCH..(b + 1) * BATCH {
        let id = id(n);
        if s.recorded(&id)?.is_some() {
            continue;
        }
        s.begin_event(&id);
        let ok = s.kv_increment("c", "counter", 1).is_ok()
            && s.kv_set("m", &id, vec![7; MARKER]).is_ok();
        s.emit(Emitted {
            subject: "out".into(),
            data: id.clone().into_bytes(),
            headers: vec![],
        });
        s.finish_event(ok);
        if !ok {
            // The store failed under the event: the batch cannot commit.
            s.rollback();
            return Err(CommitError::Store(sluice_model::state::StoreError(
                "state call failed".into(),
            )));
        }
        s.record_outcome(
            &id,
            RecordedOutcome::Succeeded {
                output_digest: String::new(),
            },
        );
    }
    s.commit()
}

fn is_down(store: &Store) -> bool {
    matches!(store.health(), Health::Down { .. })
}

/// Every event of batches `..batches` applied exactly once.
fn check_exactly_once(store: &Store, batches: usize) {
    let events = batches * BATCH;
    let mut s = store.open_session();
    let counter = s
        .kv_get("c", "counter")
        .unwrap()
        .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()));
    assert_eq!(
        counter,
        i64::try_from(events).unwrap(),
        "one increment each"
    );
    for n in 0..events {
        assert!(
            store.recorded(&id(n)).unwrap().is_some(),
            "{} recorded",
            id(n)
        );
        assert!(s.kv_get("m", &id(n)).unwrap().is_some(), "{} marker", id(n));
    }
    s.rollback();
    let outbox = store.outbox(events + 1).unwrap();
    assert_eq!(outbox.len(), events, "one outbox row each");
    let mut ids: Vec<&str> = outbox.iter().map(|r| r.msg_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events, "outbox message ids are unique");
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_full_disk_loses_nothing_and_the_store_heals_by_itself() {
    let quota = QuotaHandle::unlimited();
    let (_dir, path, store) = open(&quota);
    let mut s = store.open_session();
    for b in 0..5 {
        run_batch(&mut s, b).unwrap();
    }

    // The disk fills up: the database may use its free pages, and fails when it must grow.
    quota.set(file_len(&path));
    let mut failed_at = None;
    for b in 5..BATCHES {
        match run_batch(&mut s, b) {
            Ok(()) => {}
            Err(CommitError::Store(e)) => {
                failed_at = Some(b);
                assert!(is_down(&store), "a failed commit takes the store down: {e}");
                break;
            }
            Err(e) => panic!("batch {b}: {e}"),
        }
    }
    let failed_at = failed_at.expect("a commit failed once the disk was full");
    assert!(
        failed_at > 5,
        "batches kept committing into free pages first"
    );

    // Nothing can be written at all now, so the healer's reopen and probe keep failing. (Had
    // it already healed on the free pages left, the next commit takes the store down again.)
    quota.set(0);
    if !is_down(&store) {
        assert!(matches!(
            run_batch(&mut s, failed_at),
            Err(CommitError::Store(_))
        ));
    }
    let Health::Down { cause, .. } = store.health() else {
        panic!("down")
    };
    eprintln!("down: {cause}");

    // While down, every access fails at once, and a failing state call reports the fault.
    let mut reader = store.open_session();
    reader.begin_event("probe");
    let err = reader.kv_get("c", "counter").unwrap_err();
    let KvError::Store(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("store unavailable"), "{msg}");
    assert!(matches!(reader.take_fault(), Some(Fault::Store(m)) if m.contains("unavailable")));
    reader.finish_event(false);
    reader.rollback();
    let err = store.recorded(&id(0)).unwrap_err();
    assert!(err.0.contains("store unavailable"), "{err}");
    let started = Instant::now();
    assert!(matches!(
        run_batch(&mut s, failed_at),
        Err(CommitError::Store(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(1), "fails at once");
    assert!(
        !s.await_healthy(Duration::from_millis(300)),
        "no space, no recovery"
    );

    // Space comes back: the store heals with no call from here.
    quota.set(u64::MAX);
    let started = Instant::now();
    assert!(s.await_healthy(Duration::from_secs(10)), "healed");
    eprintln!("healed {:?} after space came back", started.elapsed());
    assert_eq!(store.health(), Health::Healthy);

    // The caller re-runs the batches that failed, on the same Store value and session.
    for b in failed_at..BATCHES {
        run_batch(&mut s, b).unwrap();
    }
    check_exactly_once(&store, BATCHES);
}

#[test]
fn a_session_holding_the_failed_handle_delays_the_reopen_until_it_ends() {
    let quota = QuotaHandle::unlimited();
    let (_dir, _path, store) = open(&quota);
    let mut s = store.open_session();
    run_batch(&mut s, 0).unwrap();

    // A batch of another stage holds a snapshot of the handle that is about to fail.
    let mut holder = store.open_session();
    holder.set_lock_scope(Some(sluice_model::state::LockScope {
        buckets: vec!["other".into()],
        tables: vec![],
    }));
    holder.kv_get("other", "k").unwrap();

    s.set_lock_scope(Some(sluice_model::state::LockScope {
        buckets: vec!["c".into(), "m".into()],
        tables: vec![],
    }));
    quota.set(0);
    assert!(matches!(run_batch(&mut s, 1), Err(CommitError::Store(_))));
    quota.set(u64::MAX);
    assert!(
        !s.await_healthy(Duration::from_millis(500)),
        "the healer waits for the holder's snapshot"
    );
    // The holder's next call fails (its batch can no longer commit), then it rolls back.
    assert!(holder.kv_get("other", "k2").is_err());
    assert!(matches!(holder.take_fault(), Some(Fault::Store(_))));
    holder.rollback();
    assert!(s.await_healthy(Duration::from_secs(10)));

    run_batch(&mut s, 1).unwrap();
    check_exactly_once(&store, 2);
}

#[test]
fn store_methods_fail_fast_while_down_and_work_after_recovery() {
    let quota = QuotaHandle::unlimited();
    let (_dir, _path, store) = open(&quota);
    let mut s = store.open_session();
    run_batch(&mut s, 0).unwrap();
    store.spawn_sweeper(Duration::from_millis(10));

    quota.set(0);
    assert!(store.sweep().is_err());
    assert!(is_down(&store));
    let err = store.outbox(10).unwrap_err();
    assert!(err.0.contains("store unavailable"), "{err}");
    assert!(store.position("p").is_err());
    assert!(store.remove_outbox(&[0]).is_err());
    std::thread::sleep(Duration::from_millis(100)); // the sweeper skips meanwhile
    assert!(is_down(&store));

    quota.set(u64::MAX);
    assert!(s.await_healthy(Duration::from_secs(10)));
    assert_eq!(store.outbox(100).unwrap().len(), BATCH);
    store.sweep().unwrap();
    run_batch(&mut s, 1).unwrap();
    check_exactly_once(&store, 2);
}

#[test]
fn a_second_open_of_the_file_is_still_refused() {
    let quota = QuotaHandle::unlimited();
    let (_dir, path, _store) = open(&quota);
    assert!(Store::open(&path, config()).is_err(), "the file is locked");
    assert!(
        Store::open_with_backend(&path, config(), move |p| QuotaFile::open(p, quota.clone()))
            .is_err(),
        "also through a QuotaFile, which keeps redb's file locks"
    );
}

/// A dedupe record whose bytes do not decode is not a storage failure: reopening could not fix
/// it, so the store stays up (instead of flapping down and up at every look-up) and the
/// look-up fails on its own, with no platform fault for the caller to wait out.
#[test]
fn an_undecodable_dedupe_record_fails_its_look_up_without_taking_the_store_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.redb");
    drop(Store::open(&path, config()).unwrap());
    {
        // Written behind the store's back, as a bug or a foreign tool might.
        const DEDUPE: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("dedupe");
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(DEDUPE)
            .unwrap()
            .insert("evt-bad", [0xff_u8, 0xfe, 0xfd].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path, config()).unwrap();
    let mut s = store.open_session();
    let err = s.recorded("evt-bad").unwrap_err();
    assert!(err.0.contains("corrupt dedupe record"), "{err}");
    assert_eq!(s.take_fault(), None);
    assert!(!is_down(&store), "{:?}", store.health());
    // Everything else goes on: another event commits.
    s.begin_event("evt-good");
    s.kv_set("c", "k", vec![1]).unwrap();
    s.finish_event(true);
    s.record_outcome(
        "evt-good",
        RecordedOutcome::Succeeded {
            output_digest: String::new(),
        },
    );
    s.commit().unwrap();
    assert!(store.recorded("evt-good").unwrap().is_some());
}
