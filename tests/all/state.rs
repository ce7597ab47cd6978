//! Guests on the redb store: serializable read-modify-write across workers, indexes queried
//! through the guest API, dedupe records that survive a restart, and the outbox.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_model::state::SystemClock;
use sluice_runtime::{Grants, StageConfig, Worker};
use sluice_store::{Store, StoreConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, event, hits, ok_json, order, orders_table};

fn open_store(h: &Harness) -> Store {
    Store::open(
        &h.dir.path().join("state.redb"),
        StoreConfig {
            tables: vec![orders_table()],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(24 * 3600),
        },
    )
    .expect("open store")
}

fn grants(g: Grants) -> StageConfig {
    StageConfig {
        grants: g,
        ..StageConfig::default()
    }
}

/// N events, each a read-modify-write of one counter, spread over 4 workers in batches: the
/// counter ends at exactly N and every event saw a distinct value (serializable execution).
#[test]
fn concurrent_read_modify_writes_leave_exactly_n() {
    let h = Harness::new();
    let store = open_store(&h);
    let stage = h.kv_counter();
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 60;
    let mut seen: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (stage, store) = (stage.clone(), store.clone());
                s.spawn(move || {
                    let mut worker = Worker::new(stage, Box::new(store.open_session()));
                    let mut values = Vec::new();
                    for batch in 0..PER_WORKER / 10 {
                        let events: Vec<_> = (0..10)
                            .map(|i| {
                                event(
                                    &format!("w{w}-b{batch}-e{i}"),
                                    &json!({"bucket": "counters", "key": "hits", "delta": 1}),
                                )
                            })
                            .collect();
                        for inv in worker.invoke_batch(&events) {
                            values.push(ok_json(&inv.outcome)["value"].as_i64().unwrap());
                        }
                    }
                    values
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let n = i64::try_from(WORKERS * PER_WORKER).unwrap();
    assert_eq!(hits(&store), n);
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=n).collect::<Vec<_>>(),
        "each increment saw a distinct predecessor"
    );
}

#[test]
fn store_order_on_redb_returns_orders_through_both_indexes_in_order() {
    let h = Harness::new();
    let store = open_store(&h);
    let stage = h.deploy(
        "store-order",
        guests::STORE_ORDER,
        grants(Grants {
            tables: vec![orders_table()],
            ..Grants::default()
        }),
    );
    let mut w = Worker::new(stage, Box::new(store.open_session()));
    let events: Vec<_> = [
        ("o-3", "u-a", 30),
        ("o-1", "u-a", 10),
        ("o-2", "u-b", 20),
        ("o-4", "u-a", 20),
    ]
    .iter()
    .map(|(id, user, minute)| {
        let mut o = order(id, user);
        o["createdAt"] = json!(format!("2026-11-26T10:{minute}:00Z"));
        o["totals"] = json!({"itemCount": 1, "totalCents": 100});
        event(&format!("store-{id}"), &o)
    })
    .collect();
    // One batch, one commit.
    for inv in w.invoke_batch(&events) {
        assert_eq!(ok_json(&inv.outcome)["stored"]["version"], 1);
    }
    let mut query = |id: &str, q: Value| -> Vec<String> {
        let out = ok_json(&w.invoke(&event(id, &json!({"query": q}))).outcome);
        out["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["orderId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        query(
            "q1",
            json!({"index": "by-user", "pk": "u-a", "forward": true, "limit": 10})
        ),
        ["o-1", "o-4", "o-3"]
    );
    assert_eq!(
        query(
            "q2",
            json!({"index": "by-user", "pk": "u-a", "forward": false, "limit": 2})
        ),
        ["o-3", "o-4"]
    );
    assert_eq!(
        query(
            "q3",
            json!({"index": "by-status", "pk": "stored", "forward": true, "limit": 10})
        ),
        ["o-1", "o-2", "o-4", "o-3"]
    );
}

#[test]
fn dedupe_records_survive_a_restart() {
    let h = Harness::new();
    let stage = h.kv_counter();
    let e = event(
        "evt-1",
        &json!({"bucket": "counters", "key": "hits", "delta": 1}),
    );
    {
        let store = open_store(&h);
        let mut w = Worker::new(stage.clone(), Box::new(store.open_session()));
        assert!(w.invoke(&e).replayed.is_none());
    }
    let store = open_store(&h);
    assert!(store.recorded("evt-1").unwrap().is_some());
    let mut w = Worker::new(stage, Box::new(store.open_session()));
    let again = w.invoke(&e);
    assert!(
        again.replayed.is_some(),
        "a redelivery after a restart is answered from the record"
    );
    assert_eq!(hits(&store), 1);
}

#[test]
fn emitted_events_land_in_the_outbox_with_deterministic_ids() {
    let h = Harness::new();
    let store = open_store(&h);
    let config = grants(Grants {
        emit_subjects: vec!["notifications.".into()],
        ..Grants::default()
    });
    let mut w = Worker::new(
        h.deploy("notify", guests::NOTIFY, config),
        Box::new(store.open_session()),
    );
    let mut o = order("o-9", "u-1");
    o["totals"] = json!({"itemCount": 6, "totalCents": 8637});
    assert!(w.invoke(&event("evt-notify", &o)).outcome.is_ok());
    let rows = store.outbox(10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].msg_id, "evt-notify/0");
    assert_eq!(rows[0].event.subject, "notifications.order");
    assert_eq!(
        rows[0].event.headers,
        vec![("order-id".to_owned(), "o-9".to_owned())]
    );

    // A failed event leaves nothing in the outbox.
    let mut denied = Worker::new(
        h.deploy("notify-denied", guests::NOTIFY, StageConfig::default()),
        Box::new(store.open_session()),
    );
    assert!(denied.invoke(&event("evt-denied", &o)).outcome.is_err());
    assert_eq!(store.outbox(10).unwrap().len(), 1);

    store.remove_outbox(&[rows[0].seq]).unwrap();
    assert!(store.outbox(10).unwrap().is_empty());
}

/// A pipelined worker commits batch N on another thread while batch N+1 runs. When N's
/// commit finds a redelivered event, N+1 has read state without N's effects: it is rolled
/// back, N runs again with look-ups, and N+1 runs again on top of it.
#[test]
fn a_pipelined_batch_reruns_when_the_batch_before_it_held_a_redelivery() {
    let h = Harness::new();
    let store = open_store(&h);
    let stage = h.kv_counter();
    let inc = |id: &str, delta: i64| {
        event(
            id,
            &json!({"bucket": "counters", "key": "hits", "delta": delta}),
        )
    };
    let mut w = Worker::new(stage, Box::new(store.open_session()))
        .with_spare_session(Box::new(store.open_session()));
    assert!(w.invoke(&inc("evt-1", 5)).replayed.is_none());

    // Batch N redelivers evt-1 beside a new event; it runs optimistically and its commit,
    // on another thread, will find evt-1's record.
    let batch_n = vec![inc("evt-1", 5), inc("evt-2", 1)];
    let ran_n = w.run_pending(&batch_n);
    let mut detached = w.detach(ran_n);
    let committing = std::thread::spawn(move || {
        detached.commit();
        detached
    });
    // Batch N+1 runs meanwhile, in the spare session: it waits for the store lock batch N
    // holds, then reads the counter without N's effects (N's commit is refused).
    let batch_next = vec![inc("evt-3", 1)];
    let mut ran_next = w.run_pending(&batch_next);
    let results_n = w.complete(
        committing.join().unwrap(),
        &batch_n,
        Some((&batch_next, &mut ran_next)),
    );
    assert!(
        results_n[0].replayed.is_some(),
        "evt-1 is answered from its record"
    );
    assert_eq!(ok_json(&results_n[1].outcome)["value"], 6);
    assert_eq!(w.stats().dedupe_reruns, 1);
    assert_eq!(
        ok_json(&ran_next[0].outcome)["value"],
        7,
        "batch N+1 ran again on top of batch N"
    );
    let detached = w.detach(ran_next);
    let results_next = w.complete(detached, &batch_next, None);
    assert_eq!(ok_json(&results_next[0].outcome)["value"], 7);
    assert_eq!(hits(&store), 7);
    for id in ["evt-1", "evt-2", "evt-3"] {
        assert!(store.recorded(id).unwrap().is_some(), "{id} is recorded");
    }
}
