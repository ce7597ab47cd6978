//! The order pipeline's stages: outputs, named errors, and their state effects.

use serde_json::{Value, json};
use sluice_model::Event;
use sluice_model::state::StateBackend;
use sluice_runtime::{Grants, StageConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, err_name, event, ok_json, order, orders_table};

fn grants(g: Grants) -> StageConfig {
    StageConfig {
        grants: g,
        ..StageConfig::default()
    }
}

fn kv(buckets: &[&str]) -> StageConfig {
    grants(Grants {
        kv_buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
        ..Grants::default()
    })
}

#[test]
fn validate_order_accepts_valid_and_names_each_problem() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "validate-order",
        guests::VALIDATE_ORDER,
        StageConfig::default(),
    );
    let out = ok_json(&w.invoke(&event("e1", &order("o-1", "u-1"))).outcome);
    assert_eq!(out["status"], "validated");
    assert_eq!(out["orderId"], "o-1");

    let mut bad_qty = order("o-2", "u-1");
    bad_qty["items"][1]["qty"] = json!(0);
    let inv = w.invoke(&event("e2", &bad_qty));
    assert_eq!(err_name(&inv.outcome), "Order.Invalid");
    let e = inv.outcome.unwrap_err();
    assert!(
        e.cause.contains("items[1].qty"),
        "cause names the field: {}",
        e.cause
    );
    assert!(!e.retryable);

    let mut no_user = order("o-3", "u-1");
    no_user["userId"] = json!("");
    assert_eq!(
        err_name(&w.invoke(&event("e3", &no_user)).outcome),
        "Order.Invalid"
    );

    let mut malformed = event("e4", &Value::Null);
    malformed.data = b"{not json".to_vec();
    assert_eq!(
        err_name(&w.invoke(&malformed).outcome),
        "Order.MalformedJson"
    );
    // The same warm instance served all four: errors are values, not traps.
    assert_eq!(w.stats().instantiations, 1);
}

#[test]
fn process_order_computes_totals_in_cents() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let out = ok_json(&w.invoke(&event("e1", &order("o-1", "u-1"))).outcome);
    // 2 x 12.50 + 3 x 1.99 + 1 x 49.00 = 79.97; tax 8% = 6.40 (6.3976 rounded).
    assert_eq!(out["totals"]["subtotalCents"], 7997);
    assert_eq!(out["totals"]["taxCents"], 640);
    assert_eq!(out["totals"]["totalCents"], 8637);
    assert_eq!(out["totals"]["itemCount"], 6);
    assert_eq!(out["status"], "priced");
}

/// The benchmark's `order-logic-loop` guest computes what `process-order` computes however
/// many times it repeats, and names a bad `repeat` header: the floor row of the `stage_call`
/// benchmark measures the real logic.
#[test]
fn order_logic_loop_repeats_the_process_order_logic() {
    let h = Harness::new();
    let mut looped = h.worker_for(
        "order-logic-loop",
        guests::ORDER_LOGIC_LOOP,
        StageConfig::default(),
    );
    let mut single = h.worker_for(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let expected = single.invoke(&event("e0", &order("o-1", "u-1"))).outcome;
    assert!(expected.is_ok());
    let with_repeat = |id: &str, repeat: &str| Event {
        headers: vec![("repeat".to_owned(), repeat.to_owned())],
        ..event(id, &order("o-1", "u-1"))
    };
    assert_eq!(looped.invoke(&with_repeat("e1", "50")).outcome, expected);
    assert_eq!(
        looped.invoke(&event("e2", &order("o-1", "u-1"))).outcome,
        expected
    );
    for (i, bad) in ["0", "-1", "many"].into_iter().enumerate() {
        let out = looped
            .invoke(&with_repeat(&format!("bad-{i}"), bad))
            .outcome;
        assert_eq!(err_name(&out), "Bench.BadRepeat", "repeat = {bad:?}");
    }
    let invalid = looped
        .invoke(&event("e3", &json!({"orderId": "o-1"})))
        .outcome;
    assert_eq!(err_name(&invalid), "Order.Invalid");
}

fn priced(id: &str, card: &str) -> Value {
    let mut o = order(id, "u-1");
    o["payment"] = json!({"method": "card", "card": card});
    o["totals"] =
        json!({"itemCount": 6, "subtotalCents": 7997, "taxCents": 640, "totalCents": 8637});
    o
}

#[test]
fn process_payment_captures_or_declines() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "process-payment",
        guests::PROCESS_PAYMENT,
        StageConfig::default(),
    );
    let out = ok_json(
        &w.invoke(&event("e1", &priced("o-1", "4242424242424242")))
            .outcome,
    );
    assert_eq!(out["payment"]["status"], "captured");
    assert_eq!(out["payment"]["amountCents"], 8637);
    assert_eq!(out["payment"]["last4"], "4242");
    assert!(
        !out.to_string().contains("4242424242424242"),
        "full card number leaked: {out}"
    );

    assert_eq!(
        err_name(
            &w.invoke(&event("e2", &priced("o-2", "4000000000000000")))
                .outcome
        ),
        "Payment.Declined"
    );

    let mut flaky = priced("o-3", "x");
    flaky["payment"] = json!({"method": "flaky"});
    let e = w.invoke(&event("e3", &flaky)).outcome.unwrap_err();
    assert_eq!(e.name, "Payment.Unavailable");
    assert!(e.retryable, "a provider outage is retryable");

    let mut unpriced = order("o-4", "u-1");
    unpriced["payment"] = json!({"method": "card", "card": "4242424242424242"});
    assert_eq!(
        err_name(&w.invoke(&event("e4", &unpriced)).outcome),
        "Order.Invalid"
    );
}

fn stock(h: &Harness, sku: &str) -> Option<i64> {
    let mut s = h.backend.session();
    s.begin_event("read");
    let v = s.kv_get("inventory", &format!("stock/{sku}")).unwrap();
    s.finish_event(false);
    v.map(|b| i64::from_le_bytes(b.try_into().unwrap()))
}

#[test]
fn process_inventory_reserves_stock_and_fails_without_partial_effects() {
    let h = Harness::new();
    {
        let mut s = h.backend.session();
        s.begin_event("seed");
        s.kv_set("inventory", "stock/BOOK-1", 5_i64.to_le_bytes().to_vec())
            .unwrap();
        s.kv_set("inventory", "stock/LAMP-7", 1_i64.to_le_bytes().to_vec())
            .unwrap();
        s.finish_event(true);
        s.commit().unwrap();
    }
    let mut w = h.worker_for(
        "process-inventory",
        guests::PROCESS_INVENTORY,
        kv(&["inventory"]),
    );
    let out = ok_json(&w.invoke(&event("e1", &order("o-1", "u-1"))).outcome);
    assert_eq!(out["status"], "reserved");
    let reserved = out["inventory"]["reserved"].as_array().unwrap();
    assert_eq!(reserved.len(), 3);
    assert_eq!(
        reserved[0],
        json!({"sku": "BOOK-1", "qty": 2, "remaining": 3})
    );
    assert_eq!(reserved[1]["remaining"], Value::Null, "PEN-3 is untracked");
    assert_eq!(stock(&h, "BOOK-1"), Some(3));
    assert_eq!(stock(&h, "LAMP-7"), Some(0));

    // The second order reserves BOOK-1 first, then runs out of LAMP-7: the whole event fails
    // and its BOOK-1 decrement must not survive.
    let e = w
        .invoke(&event("e2", &order("o-2", "u-1")))
        .outcome
        .unwrap_err();
    assert_eq!(e.name, "Inventory.OutOfStock");
    assert!(e.cause.contains("LAMP-7"), "{}", e.cause);
    assert_eq!(
        stock(&h, "BOOK-1"),
        Some(3),
        "a failed event commits nothing"
    );
    assert_eq!(stock(&h, "PEN-3"), None);

    // Without the grant, the bucket is denied with a named error.
    let mut denied = h.worker_for(
        "process-inventory-2",
        guests::PROCESS_INVENTORY,
        StageConfig::default(),
    );
    let e = denied
        .invoke(&event("e3", &order("o-3", "u-1")))
        .outcome
        .unwrap_err();
    assert_eq!(e.name, "State.Error");
    assert!(e.cause.contains("not granted"), "{}", e.cause);
}

#[test]
fn aggregate_counts_orders_and_revenue() {
    let h = Harness::new();
    let mut w = h.worker_for("aggregate", guests::AGGREGATE, kv(&["stats"]));
    let o = priced("o-1", "4242424242424242");
    let first = ok_json(&w.invoke(&event("e1", &o)).outcome);
    assert_eq!(
        first["stats"],
        json!({"orderCount": 1, "revenueCents": 8637, "userOrders": 1})
    );
    let second = ok_json(
        &w.invoke(&event("e2", &priced("o-2", "4242424242424242")))
            .outcome,
    );
    assert_eq!(
        second["stats"],
        json!({"orderCount": 2, "revenueCents": 17274, "userOrders": 2})
    );
}

#[test]
fn store_order_writes_items_queryable_through_both_indexes() {
    let h = Harness::new();
    let config = grants(Grants {
        tables: vec![orders_table()],
        ..Grants::default()
    });
    let mut w = h.worker_for("store-order", guests::STORE_ORDER, config);
    // Stored out of time order on purpose: the index must order by createdAt.
    for (id, user, minute) in [
        ("o-3", "u-a", 30),
        ("o-1", "u-a", 10),
        ("o-2", "u-b", 20),
        ("o-4", "u-a", 20),
    ] {
        let mut o = priced(id, "4242424242424242");
        o["userId"] = json!(user);
        o["createdAt"] = json!(format!("2026-11-26T10:{minute}:00Z"));
        let out = ok_json(&w.invoke(&event(&format!("store-{id}"), &o)).outcome);
        assert_eq!(out["stored"]["pk"], format!("ORDER#{id}"));
        assert_eq!(out["stored"]["version"], 1);
    }
    let query = |w: &mut sluice_runtime::Worker, q: Value| -> Vec<String> {
        // Every query is its own event: a repeated id would be answered from its dedupe record.
        let id = format!("q-{q}");
        let out = ok_json(&w.invoke(&event(&id, &json!({"query": q}))).outcome);
        out["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["orderId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        query(
            &mut w,
            json!({"index": "by-user", "pk": "u-a", "forward": true, "limit": 10})
        ),
        ["o-1", "o-4", "o-3"]
    );
    assert_eq!(
        query(
            &mut w,
            json!({"index": "by-user", "pk": "u-a", "forward": false, "limit": 10})
        ),
        ["o-3", "o-4", "o-1"]
    );
    assert_eq!(
        query(
            &mut w,
            json!({"index": "by-status", "pk": "stored", "forward": true, "limit": 10})
        ),
        ["o-1", "o-2", "o-4", "o-3"]
    );
    assert_eq!(
        query(
            &mut w,
            json!({"index": "by-user", "pk": "u-b", "forward": true, "limit": 10})
        ),
        ["o-2"]
    );

    // Storing the same order again (a different event) is refused by the conditional put.
    let e = w
        .invoke(&event(
            "store-o-1-again",
            &priced("o-1", "4242424242424242"),
        ))
        .outcome
        .unwrap_err();
    assert_eq!(e.name, "Order.Duplicate");
}

#[test]
fn notify_emits_one_event_with_headers() {
    let h = Harness::new();
    let config = grants(Grants {
        emit_subjects: vec!["notifications.".into()],
        ..Grants::default()
    });
    let mut w = h.worker_for("notify", guests::NOTIFY, config);
    let inv = w.invoke(&event("e1", &priced("o-1", "4242424242424242")));
    let out = ok_json(&inv.outcome);
    assert_eq!(out["notified"], true);
    assert_eq!(inv.emitted.len(), 1);
    let n = &inv.emitted[0];
    assert_eq!(n.subject, "notifications.order");
    assert_eq!(n.headers, vec![("order-id".to_owned(), "o-1".to_owned())]);
    let data: Value = serde_json::from_slice(&n.data).unwrap();
    assert_eq!(data["message"], "Order o-1 confirmed: $86.37");
    // The `log` import reached the host log, tagged with the stage and the event.
    let logs = h.logs.0.lock();
    assert!(
        logs.iter()
            .any(|l| l.stage == "notify" && l.event_id == "e1" && l.stream == "log"),
        "{logs:?}"
    );
    drop(logs);

    // Without the grant the emit is refused and, as the stage fails, nothing is emitted.
    let mut denied = h.worker_for("notify-2", guests::NOTIFY, StageConfig::default());
    let inv = denied.invoke(&event("e2", &priced("o-2", "4242424242424242")));
    assert!(
        inv.outcome.is_err(),
        "emit without a grant must fail the stage"
    );
    assert!(inv.emitted.is_empty());
}

#[test]
fn kv_counter_counts_and_reports_access_errors() {
    let h = Harness::new();
    let mut w = h.worker_for("kv-counter", guests::KV_COUNTER, kv(&["counters"]));
    for expected in 1..=3 {
        let out = ok_json(
            &w.invoke(&event(
                &format!("c{expected}"),
                &json!({"bucket": "counters", "key": "k", "delta": 1}),
            ))
            .outcome,
        );
        assert_eq!(out["value"], expected);
    }
    let e = w
        .invoke(&event(
            "c4",
            &json!({"bucket": "secret", "key": "k", "delta": 1}),
        ))
        .outcome
        .unwrap_err();
    assert_eq!(e.name, "State.AccessDenied");
    let long_key = "k".repeat(2000);
    let e = w
        .invoke(&event(
            "c5",
            &json!({"bucket": "counters", "key": long_key, "delta": 1}),
        ))
        .outcome
        .unwrap_err();
    assert_eq!(e.name, "State.TooLarge");
}

#[test]
fn a_recorded_event_is_not_run_again() {
    let h = Harness::new();
    let mut w = h.worker_for("kv-counter", guests::KV_COUNTER, kv(&["counters"]));
    let e = event(
        "evt-once",
        &json!({"bucket": "counters", "key": "k", "delta": 5}),
    );
    let first = w.invoke(&e);
    assert_eq!(ok_json(&first.outcome)["value"], 5);
    assert!(first.replayed.is_none());
    let again = w.invoke(&e);
    let record = again
        .replayed
        .expect("the second delivery is answered from the dedupe record");
    match record.outcome {
        sluice_model::state::RecordedOutcome::Succeeded { output_digest } => {
            let first_output = first.outcome.as_ref().expect("succeeded");
            assert_eq!(output_digest, sluice_runtime::fingerprint(first_output));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Not run again: the counter moved once. A new event id runs normally.
    let next = w.invoke(&event(
        "evt-next",
        &json!({"bucket": "counters", "key": "k", "delta": 1}),
    ));
    assert_eq!(ok_json(&next.outcome)["value"], 6);

    // The same id twice in one batch: the second is answered from the first's record.
    let batch = w.invoke_batch(&[
        event(
            "evt-b",
            &json!({"bucket": "counters", "key": "k", "delta": 10}),
        ),
        event(
            "evt-b",
            &json!({"bucket": "counters", "key": "k", "delta": 10}),
        ),
    ]);
    assert!(batch[0].replayed.is_none() && batch[1].replayed.is_some());
    let last = w.invoke(&event(
        "evt-last",
        &json!({"bucket": "counters", "key": "k", "delta": 0}),
    ));
    assert_eq!(ok_json(&last.outcome)["value"], 16);
}

#[test]
fn permanent_failures_are_recorded_and_retryable_ones_are_not() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "process-payment",
        guests::PROCESS_PAYMENT,
        StageConfig::default(),
    );
    let declined = event("evt-declined", &priced("o-1", "4000000000000000"));
    assert_eq!(err_name(&w.invoke(&declined).outcome), "Payment.Declined");
    let replay = w.invoke(&declined);
    assert!(replay.replayed.is_some(), "a permanent failure is final");
    assert_eq!(err_name(&replay.outcome), "Payment.Declined");

    let mut flaky = priced("o-2", "x");
    flaky["payment"] = json!({"method": "flaky"});
    let flaky = event("evt-flaky", &flaky);
    assert_eq!(err_name(&w.invoke(&flaky).outcome), "Payment.Unavailable");
    let retry = w.invoke(&flaky);
    assert!(
        retry.replayed.is_none(),
        "a retryable failure runs again on redelivery"
    );
    assert_eq!(err_name(&retry.outcome), "Payment.Unavailable");
}
