//! Whole flows from `workflows/tests/*.asl.json`.

use serde_json::{Value, json};

use crate::support::{Fake, Stage, T0, failed, run_on, succeeded};

fn order_flow() -> Value {
    serde_json::from_str(include_str!(
        "../../../../workflows/tests/order-flow.asl.json"
    ))
    .expect("order-flow.asl.json is JSON")
}

fn stages(total: i64) -> Fake {
    Fake::new()
        .fixed("price", json!({"total": total, "currency": "EUR"}))
        .fixed("reserve", json!("reserved"))
}

#[test]
fn a_small_order_runs_through() {
    let fake = stages(30);
    let input = json!({"lines": ["a", "b", "c"]});
    let (e, now) = run_on(&order_flow(), input, &fake);
    let out = succeeded(&e);
    assert_eq!(
        out,
        json!({
            "lines": ["a", "b", "c"],
            "price": {"total": 30},
            "reservations": ["reserved", "reserved", "reserved"],
            "notified": ["emailed", {"total": 30}]
        })
    );
    // No retries, no approval wait.
    assert_eq!(now, T0);
    let reserve: Vec<Value> = fake
        .calls()
        .into_iter()
        .filter(|c| c.stage() == Some("reserve"))
        .map(|c| c.input)
        .collect();
    assert_eq!(reserve[0], json!({"line": "a", "index": 0}));
}

#[test]
fn a_big_order_waits_for_approval_after_retried_pricing() {
    let fake = Fake::new()
        .stage(
            "price",
            Stage::FlakyFixed(
                "Price.Unavailable".into(),
                "later".into(),
                2,
                json!({"total": 500}),
            ),
        )
        .fixed("reserve", json!("r"));
    let input = json!({"lines": ["a"]});
    let (e, now) = run_on(&order_flow(), input, &fake);
    let out = succeeded(&e);
    assert_eq!(out["price"], json!({"total": 500}));
    assert_eq!(out["notified"], json!(["emailed", {"total": 500}]));
    // Retries after 2 s and 4 s, then the 60 s approval wait.
    assert_eq!(now - T0, 66_000);
}

#[test]
fn an_invalid_order_is_rejected_with_the_validation_cause() {
    let fake = stages(1).failing("validate", "Order.Invalid", "no lines");
    let (e, _) = run_on(&order_flow(), json!({"lines": []}), &fake);
    let (error, cause) = failed(&e);
    assert_eq!(error, "Order.Rejected");
    assert_eq!(
        serde_json::from_str::<Value>(&cause).unwrap(),
        json!({"errorMessage": "no lines", "errorType": "Order.Invalid"})
    );
}
