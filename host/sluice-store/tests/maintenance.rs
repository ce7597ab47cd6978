//! Store maintenance and bookkeeping: TTL sweeps, dedupe retention, partition positions.

use sluice_model::records::RecordTable;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use sluice_model::state::{
    Clock, Condition, IndexDef, Query, RecordedOutcome, SortKeyCondition, StateSession, TableDef,
};
use sluice_store::{Store, StoreConfig, SweepReport};

struct ManualClock(AtomicU64);
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn open(dir: &std::path::Path, clock: Arc<ManualClock>) -> Store {
    Store::open(
        &dir.join("m.redb"),
        StoreConfig {
            tables: vec![TableDef {
                name: "t".into(),
                indexes: vec![IndexDef {
                    name: "by-kind".into(),
                    pk_attr: "kind".into(),
                    sk_attr: None,
                }],
            }],
            clock,
            dedupe_retention: Duration::from_secs(1),
        },
    )
    .unwrap()
}

#[test]
fn expired_items_vanish_at_once_and_the_sweep_reclaims_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(10_000)));
    let store = open(dir.path(), clock.clone());
    let mut s = store.open_session();
    s.begin_event("e1");
    for i in 0..5 {
        let ttl = (i < 3).then_some(10_500);
        s.table_put(
            "t",
            "p",
            &format!("s{i}"),
            json!({"kind": "k"}),
            Condition::Always,
            ttl,
        )
        .unwrap();
    }
    s.finish_event(true);
    s.commit().unwrap();

    let by_kind = Query {
        index: Some("by-kind".into()),
        pk: "k".into(),
        sk: SortKeyCondition::Any,
        forward: true,
        limit: 100,
        cursor: None,
    };
    let visible = |s: &mut dyn StateSession| s.table_query("t", &by_kind).unwrap().items.len();
    assert_eq!(visible(&mut s), 5);
    clock.0.store(10_500, Ordering::SeqCst);
    assert_eq!(
        visible(&mut s),
        2,
        "expired items are invisible at once, before any sweep"
    );
    assert!(s.table_get("t", "p", "s0").unwrap().is_none());
    s.rollback();

    assert_eq!(
        store.sweep().unwrap(),
        SweepReport {
            expired_items: 3,
            ..SweepReport::default()
        }
    );
    // Turn the clock back: swept items are physically gone, not merely hidden.
    clock.0.store(10_000, Ordering::SeqCst);
    let mut s = store.open_session();
    assert_eq!(visible(&mut s), 2);
    s.rollback();
    assert_eq!(store.sweep().unwrap(), SweepReport::default());
}

#[test]
fn a_newer_ttl_survives_the_sweep_of_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000)));
    let store = open(dir.path(), clock.clone());
    let mut s = store.open_session();
    s.begin_event("e1");
    s.table_put("t", "p", "s", json!({}), Condition::Always, Some(1_100))
        .unwrap();
    s.finish_event(true);
    s.commit().unwrap();
    s.begin_event("e2");
    s.table_put(
        "t",
        "p",
        "s",
        json!({"v": 2}),
        Condition::Always,
        Some(5_000),
    )
    .unwrap();
    s.finish_event(true);
    s.commit().unwrap();
    clock.0.store(2_000, Ordering::SeqCst);
    assert_eq!(store.sweep().unwrap().expired_items, 0);
    let mut s = store.open_session();
    assert_eq!(
        s.table_get("t", "p", "s").unwrap().unwrap().doc,
        json!({"v": 2})
    );
    s.rollback();
}

#[test]
fn dedupe_records_expire_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000)));
    let store = open(dir.path(), clock.clone());
    let mut s = store.open_session();
    for id in ["old-1", "old-2"] {
        s.record_outcome(
            id,
            RecordedOutcome::Succeeded {
                output_digest: "d".into(),
            },
        );
    }
    // An invocation's kept outcome lives as long as its event's dedupe record.
    s.put_record(RecordTable::InvokeResults, "old-1", Some(b"kept".to_vec()))
        .unwrap();
    s.commit().unwrap();
    clock.0.store(1_800, Ordering::SeqCst);
    s.record_outcome(
        "new",
        RecordedOutcome::Failed {
            name: "X.Y".into(),
            cause: "c".into(),
        },
    );
    s.put_record(RecordTable::InvokeResults, "new", Some(b"kept".to_vec()))
        .unwrap();
    s.commit().unwrap();
    clock.0.store(2_500, Ordering::SeqCst); // old ones are 1.5 s old, the new one 0.7 s
    assert_eq!(
        store.sweep().unwrap(),
        SweepReport {
            dedupe_records: 2,
            invoke_results: 1,
            ..SweepReport::default()
        }
    );
    assert!(store.recorded("old-1").unwrap().is_none());
    assert!(store.recorded("new").unwrap().is_some());
    let mut s = store.open_session();
    assert!(
        s.get_record(RecordTable::InvokeResults, "old-1")
            .unwrap()
            .is_none()
    );
    assert!(
        s.get_record(RecordTable::InvokeResults, "new")
            .unwrap()
            .is_some()
    );
    s.rollback();
}

/// Retryable-failure counts commit with the batch (a rolled-back batch counts nothing), a
/// batch can forget one, the event source can forget dead-lettered ones, and the sweeper
/// removes the ones left past the retention.
#[test]
fn failure_counts_commit_with_the_batch_and_are_forgotten_or_swept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000)));
    let store = open(dir.path(), clock.clone());
    let mut s = store.open_session();
    assert_eq!(s.failures("e"), Some(0));
    s.record_failures("e", 1);
    assert_eq!(s.failures("e"), Some(1), "the batch's own count is seen");
    s.rollback();
    assert_eq!(
        store.failures("e").unwrap(),
        0,
        "a rolled-back batch counts nothing"
    );
    assert_eq!(s.failures("e"), Some(0));
    for id in ["e", "dead", "stale"] {
        s.record_failures(id, 1);
    }
    s.commit().unwrap();
    assert_eq!(s.failures("e"), Some(1), "read back from the committed row");
    s.record_failures("e", 2);
    s.commit().unwrap();
    assert_eq!(store.failures("e").unwrap(), 2);
    // A final outcome forgets the count in its own batch.
    s.record_failures("e", 0);
    s.record_outcome(
        "e",
        RecordedOutcome::Succeeded {
            output_digest: "d".into(),
        },
    );
    s.commit().unwrap();
    assert_eq!(store.failures("e").unwrap(), 0);
    store.forget_failures(&["dead"]).unwrap();
    assert_eq!(store.failures("dead").unwrap(), 0);
    assert_eq!(store.failures("stale").unwrap(), 1);
    clock.0.store(1_500, Ordering::SeqCst);
    assert_eq!(
        store.sweep().unwrap(),
        SweepReport::default(),
        "still within the retention"
    );
    clock.0.store(2_100, Ordering::SeqCst);
    assert_eq!(
        store.sweep().unwrap(),
        SweepReport {
            failure_counts: 1,
            dedupe_records: 1, // the success of "e"
            ..SweepReport::default()
        }
    );
    assert_eq!(store.failures("stale").unwrap(), 0);
}

#[test]
fn positions_commit_with_the_batch_and_only_move_forward() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Arc::new(ManualClock(AtomicU64::new(1))));
    let mut s = store.open_session();
    s.set_position("orders.0", 10);
    s.rollback();
    assert_eq!(
        store.position("orders.0").unwrap(),
        None,
        "a rolled-back batch moves nothing"
    );
    s.set_position("orders.0", 10);
    s.commit().unwrap();
    s.set_position("orders.0", 7);
    s.commit().unwrap();
    assert_eq!(store.position("orders.0").unwrap(), Some(10));
    s.set_position("orders.0", 12);
    s.set_position("orders.1", 3);
    s.commit().unwrap();
    assert_eq!(store.position("orders.0").unwrap(), Some(12));
    assert_eq!(store.position("orders.1").unwrap(), Some(3));
}

/// A format 1 file (per-event retention index) opens as format 2 with its records still
/// swept on time.
#[test]
fn a_format_1_file_migrates_and_its_records_still_expire() {
    use redb::{Database, ReadableDatabase, TableDefinition};
    const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
    const BY_TIME_V1: TableDefinition<'_, (u64, &str), ()> = TableDefinition::new("dedupe_by_time");
    const BATCHES: TableDefinition<'_, (u64, &str), &[u8]> = TableDefinition::new("dedupe_batches");
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000)));
    {
        let store = open(dir.path(), clock.clone());
        let mut s = store.open_session();
        for id in ["old-1", "old-2"] {
            s.record_outcome(
                id,
                RecordedOutcome::Succeeded {
                    output_digest: "d".into(),
                },
            );
        }
        s.commit().unwrap();
    }
    // Rewrite the file into format 1's layout: the same records, indexed one by one.
    {
        let db = Database::create(dir.path().join("m.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(BATCHES).unwrap();
        {
            let mut by_time = txn.open_table(BY_TIME_V1).unwrap();
            by_time.insert((1_000, "old-1"), ()).unwrap();
            by_time.insert((1_000, "old-2"), ()).unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("format_version", 1)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    clock.0.store(1_800, Ordering::SeqCst);
    {
        let store = open(dir.path(), clock.clone());
        let mut s = store.open_session();
        s.record_outcome(
            "new",
            RecordedOutcome::Succeeded {
                output_digest: "d".into(),
            },
        );
        s.commit().unwrap();
        assert!(store.recorded("old-1").unwrap().is_some());
        clock.0.store(2_500, Ordering::SeqCst);
        assert_eq!(store.sweep().unwrap().dedupe_records, 2);
        assert!(store.recorded("old-2").unwrap().is_none());
        assert!(store.recorded("new").unwrap().is_some());
    }
    let db = Database::create(dir.path().join("m.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let version = txn
        .open_table(META)
        .unwrap()
        .get("format_version")
        .unwrap()
        .unwrap()
        .value();
    assert_eq!(version, sluice_store::FORMAT_VERSION);
    assert!(
        txn.open_table(BY_TIME_V1).is_err(),
        "the format 1 index is gone"
    );
}
