//! Hostile guests: each fails alone with a named error while a well-behaved invocation on
//! another thread keeps succeeding, and the worker recovers for the next event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_model::names;
use sluice_runtime::{Limits, StageConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, err_name, event, ok_json, order};

fn limits(l: Limits) -> StageConfig {
    StageConfig {
        limits: l,
        ..StageConfig::default()
    }
}

/// Run the hostile guest at `path` on one thread while `process-order` runs on another;
/// return the hostile outcome's error after checking that the good stage kept serving.
fn fails_alone(
    path: &str,
    data: &Value,
    config: StageConfig,
    expected: &str,
    traps: bool,
) -> sluice_model::StageError {
    let h = Harness::new();
    let bad = h.deploy("hostile", path, config);
    let good = h.deploy(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let done = AtomicBool::new(false);
    let (outcome, again, stats, good_count) = std::thread::scope(|s| {
        let bad_thread = s.spawn(|| {
            let mut w = h.worker(bad.clone());
            let first = w.invoke(&event("hostile-1", data));
            // The worker recovers: the next event gets a fresh instance and fails the same way
            // on its own, rather than being poisoned by the first failure.
            let again = w.invoke(&event("hostile-2", data));
            done.store(true, Ordering::SeqCst);
            (first, again, w.stats())
        });
        let good_thread = s.spawn(|| {
            let mut w = h.worker(good.clone());
            let mut n = 0_u32;
            // At least one good call overlaps the hostile ones; stop once they are over.
            while n == 0 || !done.load(Ordering::SeqCst) {
                let out = ok_json(
                    &w.invoke(&event(&format!("good-{n}"), &order("o-1", "u-1")))
                        .outcome,
                );
                assert_eq!(out["totals"]["totalCents"], 8637);
                n += 1;
            }
            n
        });
        let (first, again, stats) = bad_thread.join().expect("hostile thread");
        (
            first,
            again,
            stats,
            good_thread.join().expect("good thread"),
        )
    });
    assert!(good_count > 0);
    assert_eq!(err_name(&outcome.outcome), expected, "{outcome:?}");
    assert_eq!(err_name(&again.outcome), expected, "{again:?}");
    assert!(outcome.emitted.is_empty());
    // A trap (deadline, memory, panic, stack) discards the instance; a refused output does not.
    assert_eq!(
        stats.recycled_on_trap,
        if traps { 2 } else { 0 },
        "{stats:?}"
    );
    outcome.outcome.unwrap_err()
}

#[test]
fn infinite_loop_times_out() {
    let e = fails_alone(
        guests::INFINITE_LOOP,
        &json!({}),
        limits(Limits {
            deadline: Duration::from_millis(200),
            ..Limits::default()
        }),
        names::SANDBOX_TIMEOUT,
        true,
    );
    assert!(e.retryable, "a timeout may pass on a retry");
}

#[test]
fn memory_hog_hits_the_memory_limit() {
    let e = fails_alone(
        guests::MEMORY_HOG,
        &json!({}),
        limits(Limits {
            memory_bytes: 32 << 20,
            ..Limits::default()
        }),
        names::SANDBOX_MEMORY_LIMIT,
        true,
    );
    assert!(
        e.cause.contains("33554432"),
        "cause names the limit: {}",
        e.cause
    );
}

#[test]
fn panic_traps_with_the_panic_message() {
    let e = fails_alone(
        guests::TRAP_PANIC,
        &json!({}),
        StageConfig::default(),
        names::SANDBOX_TRAP,
        true,
    );
    assert!(
        e.cause.contains("deliberate panic"),
        "cause quotes the panic: {}",
        e.cause
    );
    assert!(!e.retryable);
}

#[test]
fn huge_output_is_refused() {
    let e = fails_alone(
        guests::HUGE_OUTPUT,
        &json!({"bytes": 4 << 20}),
        StageConfig::default(),
        names::SANDBOX_OUTPUT_TOO_LARGE,
        false,
    );
    assert!(e.cause.contains("4194304"), "{}", e.cause);
}

#[test]
fn stack_overflow_is_named() {
    fails_alone(
        guests::STACK_OVERFLOW,
        &json!({}),
        StageConfig::default(),
        names::SANDBOX_STACK_OVERFLOW,
        true,
    );
}

#[test]
fn traps_recycle_the_instance_and_errors_do_not() {
    let h = Harness::new();
    let mut w = h.worker_for("trap-panic", guests::TRAP_PANIC, StageConfig::default());
    w.invoke(&event("t1", &json!({})));
    w.invoke(&event("t2", &json!({})));
    assert_eq!(w.stats().recycled_on_trap, 2);
    assert_eq!(w.stats().instantiations, 2);

    let mut v = h.worker_for(
        "validate-order",
        guests::VALIDATE_ORDER,
        StageConfig::default(),
    );
    for i in 0..5 {
        assert_eq!(
            err_name(&v.invoke(&event(&format!("v{i}"), &json!({}))).outcome),
            "Order.Invalid"
        );
    }
    assert_eq!(
        v.stats().instantiations,
        1,
        "a returned error keeps the warm instance"
    );
}

#[test]
fn instances_are_recycled_after_n_events_or_always_when_fresh() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "echo",
        guests::ECHO,
        limits(Limits {
            recycle_after_events: 3,
            ..Limits::default()
        }),
    );
    for i in 0..7 {
        ok_json(&w.invoke(&event(&format!("e{i}"), &json!({}))).outcome);
    }
    assert_eq!(w.stats().instantiations, 3, "events 1-3, 4-6, 7");
    assert_eq!(w.stats().recycled_after_events, 2);

    let mut f = h.worker_for(
        "echo-fresh",
        guests::ECHO,
        limits(Limits {
            fresh_instance_per_event: true,
            ..Limits::default()
        }),
    );
    for i in 0..4 {
        ok_json(&f.invoke(&event(&format!("f{i}"), &json!({}))).outcome);
    }
    assert_eq!(f.stats().instantiations, 4);
}

#[test]
fn memory_mark_recycles_a_grown_instance() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "huge-output",
        guests::HUGE_OUTPUT,
        limits(Limits {
            recycle_memory_mark: 4 << 20,
            max_output_bytes: 16 << 20,
            ..Limits::default()
        }),
    );
    let inv = w.invoke(&event("big", &json!({"bytes": 8 << 20})));
    assert_eq!(inv.outcome.as_ref().map(Vec::len).unwrap(), 8 << 20);
    assert_eq!(w.stats().recycled_on_memory, 1);
    let small = w.invoke(&event("small", &json!({"bytes": 10})));
    assert_eq!(small.outcome.unwrap(), b"xxxxxxxxxx");
    assert_eq!(
        w.stats().recycled_on_memory,
        1,
        "a small instance stays warm"
    );
}

#[test]
fn contract_violations_are_malformed_output() {
    let h = Harness::new();
    let mut w = h.worker_for("bad-batch", guests::BAD_BATCH, StageConfig::default());
    // `handle` returns an error named `Sandbox.Fake`: stages may not use reserved names.
    let e = w.invoke(&event("b0", &json!({}))).outcome.unwrap_err();
    assert_eq!(e.name, names::SANDBOX_MALFORMED_OUTPUT);
    assert!(e.cause.contains("Sandbox.Fake"), "{}", e.cause);
    // `handle-batch` returns one result too few.
    let events: Vec<_> = (0..3)
        .map(|i| event(&format!("batch-{i}"), &json!({})))
        .collect();
    let results = w.invoke_batch(&events);
    assert_eq!(results.len(), 3);
    for r in &results {
        let e = r.outcome.as_ref().unwrap_err();
        assert_eq!(e.name, names::SANDBOX_MALFORMED_OUTPUT);
        assert!(e.cause.contains("2 results for 3 events"), "{}", e.cause);
    }
}
