//! The batch export: used when present, equal to per-event calls, and falling back to
//! per-event calls when an event in the batch fails.

use serde_json::json;
use sluice_runtime::StageConfig;
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, event, order};

#[test]
fn batch_export_matches_per_event_calls() {
    let h = Harness::new();
    let stage = h.deploy(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    assert!(stage.has_batch_export());
    let events: Vec<_> = (0..50)
        .map(|i| event(&format!("e{i}"), &order(&format!("o-{i}"), "u-1")))
        .collect();

    let mut batched = h.worker(stage.clone());
    let batch_results = batched.invoke_batch(&events);
    assert_eq!(batched.stats().batch_calls, 1);
    assert_eq!(batched.stats().batch_fallbacks, 0);

    // Other ids: the same ids would be answered from the first worker's dedupe records.
    let mut single = h.worker(stage);
    let single_results: Vec<_> = events
        .iter()
        .map(|e| {
            single.invoke(&sluice_model::Event {
                id: format!("single-{}", e.id),
                ..e.clone()
            })
        })
        .collect();
    assert_eq!(single.stats().batch_calls, 0);
    assert_eq!(batch_results, single_results);
    assert!(batch_results.iter().all(|r| r.outcome.is_ok()));
}

#[test]
fn a_failing_event_falls_back_to_per_event_calls() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let mut events: Vec<_> = (0..5)
        .map(|i| event(&format!("e{i}"), &order(&format!("o-{i}"), "u-1")))
        .collect();
    events[2] = event(
        "e2",
        &json!({"orderId": "o-2", "userId": "u-1", "items": []}),
    );
    let results = w.invoke_batch(&events);
    assert_eq!(w.stats().batch_calls, 1);
    assert_eq!(w.stats().batch_fallbacks, 1);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.outcome.is_ok(), i != 2, "event {i}: {:?}", r.outcome);
    }
    assert_eq!(
        results[2].outcome.as_ref().unwrap_err().name,
        "Order.Invalid"
    );
}

#[test]
fn stages_without_the_export_run_batches_per_event() {
    let h = Harness::new();
    let stage = h.deploy(
        "validate-order",
        guests::VALIDATE_ORDER,
        StageConfig::default(),
    );
    assert!(!stage.has_batch_export());
    let mut w = h.worker(stage);
    let events: Vec<_> = (0..4)
        .map(|i| event(&format!("e{i}"), &order(&format!("o-{i}"), "u-1")))
        .collect();
    let results = w.invoke_batch(&events);
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    assert_eq!(w.stats().batch_calls, 0);
    assert_eq!(w.stats().events, 4);
}
