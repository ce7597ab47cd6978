//! Crash test: a child process commits batches in a loop and is killed with SIGKILL at random
//! moments, many times; after each kill the database is reopened and every event must be
//! either fully applied exactly once (its dedupe record, its counter increment, its marker
//! key, its table item with index entry, its outbox row) or not applied at all.
//!
//! The child is this same test binary, re-run with `SLUICE_CRASH_DB` set (see
//! [`crash_child`]), so the test needs no extra binary.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_model::state::{
    Condition, Emitted, IndexDef, Query, RecordedOutcome, SortKeyCondition, StateSession,
    SystemClock, TableDef,
};
use sluice_store::{Store, StoreConfig};

const BATCH: usize = 50;
const EVENTS: usize = 20_000;

fn config() -> StoreConfig {
    StoreConfig {
        tables: vec![TableDef {
            name: "t".into(),
            indexes: vec![IndexDef {
                name: "by-batch".into(),
                pk_attr: "batch".into(),
                sk_attr: None,
            }],
        }],
        clock: Arc::new(SystemClock),
        dedupe_retention: Duration::from_secs(3600),
    }
}

fn id(n: usize) -> String {
    format!("evt-{n:06}")
}

/// The child: apply events 0..EVENTS in batches, skipping the recorded ones, until killed.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os("SLUICE_CRASH_DB") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&path), config()).unwrap();
    let mut s = store.open_session();
    s.set_position("p", 0); // exercised from the first batch on
    s.rollback();
    for batch in 0..EVENTS / BATCH {
        for n in batch * BATCH..(batch + 1) * BATCH {
            let id = id(n);
            if s.recorded(&id).unwrap().is_some() {
                continue;
            }
            s.begin_event(&id);
            s.kv_increment("c", "counter", 1).unwrap();
            s.kv_set("m", &id, vec![1]).unwrap();
            s.table_put(
                "t",
                &id,
                "item",
                json!({"batch": batch.to_string()}),
                Condition::MustNotExist,
                None,
            )
            .unwrap();
            s.emit(Emitted {
                subject: "out".into(),
                data: id.clone().into_bytes(),
                headers: vec![],
            });
            s.finish_event(true);
            s.record_outcome(
                &id,
                RecordedOutcome::Succeeded {
                    output_digest: String::new(),
                },
            );
        }
        // The batch's position commits with it: after a crash it names the last event applied.
        s.set_position("p", u64::try_from((batch + 1) * BATCH - 1).unwrap());
        s.commit().unwrap();
    }
}

/// Every event all-or-nothing, nothing twice.
fn check(path: &std::path::Path) -> usize {
    let store = Store::open(path, config()).unwrap();
    let mut s = store.open_session();
    let mut applied = 0;
    for n in 0..EVENTS {
        let id = id(n);
        let recorded = store.recorded(&id).unwrap().is_some();
        let marker = s.kv_get("m", &id).unwrap().is_some();
        let item = s.table_get("t", &id, "item").unwrap();
        assert_eq!(
            marker, recorded,
            "{id}: marker key and dedupe record disagree"
        );
        assert_eq!(
            item.is_some(),
            recorded,
            "{id}: table item and dedupe record disagree"
        );
        if let Some(item) = item {
            assert_eq!(item.version, 1, "{id} written twice");
        }
        applied += usize::from(recorded);
    }
    let counter = s
        .kv_get("c", "counter")
        .unwrap()
        .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()));
    assert_eq!(
        counter,
        i64::try_from(applied).unwrap(),
        "counter counts each applied event once"
    );
    // Index entries match the items: a whole committed batch is findable through the index.
    if applied >= BATCH {
        let q = Query {
            index: Some("by-batch".into()),
            pk: "0".into(),
            sk: SortKeyCondition::Any,
            forward: true,
            limit: 1000,
            cursor: None,
        };
        assert_eq!(s.table_query("t", &q).unwrap().items.len(), BATCH);
    }
    // Batches apply in order, so the applied events are a prefix, and the committed position
    // is its last event.
    for n in 0..applied {
        assert!(
            store.recorded(&id(n)).unwrap().is_some(),
            "{} missing below the applied prefix",
            id(n)
        );
    }
    let expected = applied
        .checked_sub(1)
        .map(|last| u64::try_from(last).unwrap());
    assert_eq!(
        store.position("p").unwrap(),
        expected,
        "position matches the applied prefix"
    );
    let outbox = store.outbox(EVENTS + 1).unwrap();
    assert_eq!(outbox.len(), applied, "one outbox row per applied event");
    let mut ids: Vec<&str> = outbox.iter().map(|r| r.msg_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), applied, "outbox message ids are unique");
    s.rollback();
    applied
}

#[test]
fn sigkill_mid_commit_never_applies_an_event_partially_or_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let exe = std::env::current_exe().unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut last = 0;
    let mut progressed = 0;
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("SLUICE_CRASH_DB", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(150 + rng % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let applied = check(&path);
        assert!(
            applied >= last,
            "round {round}: committed events disappeared ({last} -> {applied})"
        );
        if applied > last {
            progressed += 1;
        }
        last = applied;
    }
    assert!(
        progressed >= 6,
        "the child made progress in only {progressed} of 12 rounds"
    );
    eprintln!("after 12 kills: {last} of {EVENTS} events applied, each exactly once");
}
