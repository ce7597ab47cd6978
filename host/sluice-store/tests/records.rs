//! The workflow engine's rows in a real redb file: staged in a batch, visible to the session
//! that staged them, durable with the batch's state writes and dedupe records (or dropped with
//! them), paged by prefix in both directions, kept across a reopen; a format 2 file migrates.

use std::sync::Arc;

use sluice_model::records::{RecordTable, Scan};
use sluice_model::state::{RecordedOutcome, StateSession, SystemClock};
use sluice_store::{Store, StoreConfig};

fn open(path: &std::path::Path) -> Store {
    Store::open(
        path,
        StoreConfig {
            tables: vec![],
            clock: Arc::new(SystemClock),
            dedupe_retention: std::time::Duration::from_secs(3600),
        },
    )
    .unwrap()
}

fn scan<'a>(prefix: &'a str, after: Option<&'a str>, limit: usize, reverse: bool) -> Scan<'a> {
    Scan {
        prefix,
        after,
        limit,
        reverse,
    }
}

fn keys(rows: &[(String, Vec<u8>)]) -> Vec<&str> {
    rows.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn rows_commit_with_the_batch_and_a_rollback_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = open(&path);
    let mut s = store.open_session();
    // One step: the Task's state write, its dedupe record and the transition, together.
    s.begin_event("exec-1/T/1");
    s.kv_set("counts", "orders", b"1".to_vec()).unwrap();
    s.finish_event(true);
    s.record_outcome(
        "exec-1/T/1",
        RecordedOutcome::Succeeded {
            output_digest: "d".into(),
        },
    );
    s.put_record(
        RecordTable::TaskResults,
        "exec-1/T/1",
        Some(b"{\"ok\":1}".to_vec()),
    )
    .unwrap();
    s.put_record(RecordTable::Executions, "exec-1", Some(b"step 1".to_vec()))
        .unwrap();
    s.put_record(
        RecordTable::History,
        "exec-1/00000001",
        Some(b"e1".to_vec()),
    )
    .unwrap();
    // Staged rows are visible to their own session before the commit, not to others.
    assert_eq!(
        s.get_record(RecordTable::Executions, "exec-1").unwrap(),
        Some(b"step 1".to_vec())
    );
    let mut other = store.open_session();
    assert_eq!(
        other.get_record(RecordTable::Executions, "exec-1").unwrap(),
        None
    );
    s.commit().unwrap();
    assert_eq!(
        other.get_record(RecordTable::Executions, "exec-1").unwrap(),
        Some(b"step 1".to_vec())
    );

    // A batch rolled back leaves neither its state nor its rows.
    s.begin_event("exec-1/T2/1");
    s.kv_set("counts", "orders", b"2".to_vec()).unwrap();
    s.finish_event(true);
    s.put_record(RecordTable::Executions, "exec-1", Some(b"step 2".to_vec()))
        .unwrap();
    s.put_record(RecordTable::History, "exec-1/00000001", None)
        .unwrap();
    s.rollback();
    drop((s, other, store));

    // Reopened from the file: exactly the first step.
    let store = open(&path);
    let mut s = store.open_session();
    assert_eq!(s.kv_get("counts", "orders").unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        s.get_record(RecordTable::Executions, "exec-1").unwrap(),
        Some(b"step 1".to_vec())
    );
    assert_eq!(
        s.get_record(RecordTable::TaskResults, "exec-1/T/1")
            .unwrap(),
        Some(b"{\"ok\":1}".to_vec())
    );
    assert!(store.recorded("exec-1/T/1").unwrap().is_some());
    assert_eq!(
        keys(
            &s.scan_records(RecordTable::History, &scan("exec-1/", None, 10, false))
                .unwrap()
        ),
        ["exec-1/00000001"]
    );
}

#[test]
fn a_dropped_event_keeps_the_batch_rows_and_a_duplicate_commit_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.redb"));
    let mut s = store.open_session();
    s.put_record(RecordTable::Executions, "e", Some(b"kept".to_vec()))
        .unwrap();
    s.begin_event("ev");
    s.kv_set("b", "k", b"v".to_vec()).unwrap();
    s.finish_event(false);
    s.commit().unwrap();
    let mut r = store.open_session();
    assert_eq!(
        r.get_record(RecordTable::Executions, "e").unwrap(),
        Some(b"kept".to_vec())
    );
    assert_eq!(r.kv_get("b", "k").unwrap(), None);

    // A batch holding an already recorded event commits nothing, its rows included.
    let outcome = || RecordedOutcome::Succeeded {
        output_digest: "d".into(),
    };
    s.record_outcome("once", outcome());
    s.commit().unwrap();
    s.record_outcome("once", outcome());
    s.put_record(RecordTable::Executions, "e", Some(b"second".to_vec()))
        .unwrap();
    assert!(s.commit().is_err());
    assert_eq!(
        r.get_record(RecordTable::Executions, "e").unwrap(),
        Some(b"kept".to_vec())
    );
}

#[test]
fn scans_page_by_prefix_in_both_directions_over_committed_and_staged_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.redb"));
    let mut s = store.open_session();
    for i in 1..=5 {
        s.put_record(RecordTable::History, &format!("x/{i:08}"), Some(vec![i]))
            .unwrap();
    }
    s.put_record(RecordTable::History, "y/00000001", Some(vec![9]))
        .unwrap();
    // A prefix whose last byte is the largest ASCII one still bounds the range.
    s.put_record(RecordTable::History, "x~", Some(vec![7]))
        .unwrap();
    s.commit().unwrap();
    let page = s
        .scan_records(RecordTable::History, &scan("x/", None, 2, false))
        .unwrap();
    assert_eq!(keys(&page), ["x/00000001", "x/00000002"]);
    let page = s
        .scan_records(
            RecordTable::History,
            &scan("x/", Some("x/00000002"), 10, false),
        )
        .unwrap();
    assert_eq!(keys(&page), ["x/00000003", "x/00000004", "x/00000005"]);
    let page = s
        .scan_records(RecordTable::History, &scan("x/", None, 2, true))
        .unwrap();
    assert_eq!(keys(&page), ["x/00000005", "x/00000004"]);
    let page = s
        .scan_records(
            RecordTable::History,
            &scan("x/", Some("x/00000002"), 5, true),
        )
        .unwrap();
    assert_eq!(keys(&page), ["x/00000001"]);
    // Staged: a deletion and an addition show before the commit.
    s.put_record(RecordTable::History, "x/00000002", None)
        .unwrap();
    s.put_record(RecordTable::History, "x/00000006", Some(vec![6]))
        .unwrap();
    let page = s
        .scan_records(RecordTable::History, &scan("x/", None, 10, false))
        .unwrap();
    assert_eq!(
        keys(&page),
        [
            "x/00000001",
            "x/00000003",
            "x/00000004",
            "x/00000005",
            "x/00000006"
        ]
    );
    let page = s
        .scan_records(RecordTable::History, &scan("x", None, 10, true))
        .unwrap();
    assert_eq!(keys(&page)[0], "x~");
}

#[test]
fn a_format_2_file_opens_as_format_3_with_its_data() {
    use redb::{Database, ReadableDatabase, TableDefinition};
    const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let store = open(&path);
        let mut s = store.open_session();
        s.begin_event("ev");
        s.kv_set("b", "k", b"v".to_vec()).unwrap();
        s.finish_event(true);
        s.commit().unwrap();
    }
    // Back to format 2's layout: its version, and none of the engine's tables.
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        for t in [
            "executions",
            "history",
            "timers",
            "task_results",
            "execution_index",
        ] {
            txn.delete_table(TableDefinition::<&str, &[u8]>::new(t))
                .unwrap();
        }
        txn.open_table(META)
            .unwrap()
            .insert("format_version", 2)
            .unwrap();
        txn.commit().unwrap();
    }
    {
        let store = open(&path);
        let mut s = store.open_session();
        assert_eq!(s.kv_get("b", "k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(s.get_record(RecordTable::Executions, "none").unwrap(), None);
        s.put_record(RecordTable::Executions, "e", Some(vec![1]))
            .unwrap();
        s.commit().unwrap();
    }
    let db = Database::create(&path).unwrap();
    let version = db
        .begin_read()
        .unwrap()
        .open_table(META)
        .unwrap()
        .get("format_version")
        .unwrap()
        .unwrap()
        .value();
    assert_eq!(version, 3);
}
