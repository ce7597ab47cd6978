//! What a hostile guest can make the *host* spend is bounded: deadlines end calls blocked in
//! host calls, the host holds at most the per-event and per-batch byte caps for a guest, the
//! `log` import has a budget, and a stage stuck while holding state holds up only the stages
//! that share its grants.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_model::names;
use sluice_runtime::{Grants, Limits, StageConfig, Worker};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, err_name, event, ok_json, open_store, order};

fn config(buckets: &[&str], limits: Limits) -> StageConfig {
    StageConfig {
        limits,
        grants: Grants {
            kv_buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
            ..Grants::default()
        },
    }
}

fn deadline(ms: u64) -> Limits {
    Limits {
        deadline: Duration::from_millis(ms),
        ..Limits::default()
    }
}

/// How far past its deadline a call may end (the bound).
const SLACK: Duration = Duration::from_millis(100);

#[test]
fn a_guest_sleeping_in_a_host_call_times_out_at_its_deadline_while_another_worker_serves() {
    let h = Harness::new();
    let sleeper = h.deploy(
        "sleep-in-host",
        guests::SLEEP_IN_HOST,
        config(&[], deadline(500)),
    );
    let good = h.deploy(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let done = AtomicBool::new(false);
    let served = AtomicU32::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut w = h.worker(good.clone());
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                let out = ok_json(
                    &w.invoke(&event(&format!("good-{n}"), &order("o-1", "u-1")))
                        .outcome,
                );
                assert_eq!(out["totals"]["totalCents"], 8637);
                n += 1;
                served.store(n, Ordering::SeqCst);
            }
        });
        let mut w = h.worker(sleeper.clone());
        // Let the good worker get going, so its count below is what it did meanwhile.
        while served.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let before = served.load(Ordering::SeqCst);
        let start = Instant::now();
        let slept = w.invoke(&event("sleepy-1", &json!({"sleep_ms": 20_000})));
        let took = start.elapsed();
        let during = served.load(Ordering::SeqCst) - before;
        assert_eq!(
            err_name(&slept.outcome),
            names::SANDBOX_TIMEOUT,
            "{slept:?}"
        );
        let cause = &slept.outcome.as_ref().unwrap_err().cause;
        assert!(cause.contains("host call"), "{cause}");
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_millis(500) + SLACK,
            "timed out after {took:?}, deadline 500 ms"
        );
        assert!(during > 0, "the good worker served nothing meanwhile");
        // The worker is free at once for the next event.
        let next = w.invoke(&event("sleepy-2", &json!({"sleep_ms": 1})));
        assert_eq!(ok_json(&next.outcome)["slept"], true);
        assert_eq!(w.stats().recycled_on_trap, 1);
        done.store(true, Ordering::SeqCst);
    });
}

/// A stage that writes to bucket `a` and then blocks past its deadline holds `a` for the rest
/// of its batch, and nothing else: a stage granted only `b` commits meanwhile at its usual
/// speed, a stage sharing `a` waits (serializability requires it) but only until the blocked
/// call's deadline ends it, and one whose own deadline comes first times out waiting.
#[test]
fn a_stage_stuck_holding_state_does_not_hold_up_stages_with_disjoint_grants() {
    let h = Harness::new();
    let store = open_store(h.dir.path(), Vec::new());
    let session = || Box::new(store.open_session());
    let stuck = h.deploy(
        "stuck",
        guests::SLEEP_IN_HOST,
        config(&["a"], deadline(1000)),
    );
    let counter = |name: &str, bucket: &str, ms: u64| {
        h.deploy(name, guests::KV_COUNTER, config(&[bucket], deadline(ms)))
    };
    let other = counter("other", "b", 5000);
    let sharing = counter("sharing", "a", 5000);
    let impatient = counter("impatient", "a", 200);
    let increment =
        |w: &mut Worker, id: &str, bucket: &str| -> (sluice_runtime::Invocation, Duration) {
            let start = Instant::now();
            let inv = w.invoke(&event(
                id,
                &json!({"bucket": bucket, "key": "n", "delta": 1}),
            ));
            (inv, start.elapsed())
        };
    // Warm the workers (first instantiation) before anything is held.
    let mut other_w = Worker::new(other, session());
    let mut sharing_w = Worker::new(sharing, session());
    let mut impatient_w = Worker::new(impatient, session());
    increment(&mut other_w, "warm-b", "b");
    increment(&mut sharing_w, "warm-a", "a");
    let holding = AtomicBool::new(false);
    std::thread::scope(|s| {
        let stuck_thread = s.spawn(|| {
            let mut w = Worker::new(stuck.clone(), session());
            holding.store(true, Ordering::SeqCst);
            let start = Instant::now();
            let inv = w.invoke(&event(
                "stuck-1",
                &json!({"bucket": "a", "sleep_ms": 20_000}),
            ));
            (inv, start.elapsed())
        });
        while !holding.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // Give the stuck guest time to take bucket a's lock and fall asleep.
        std::thread::sleep(Duration::from_millis(150));
        let (inv, took) = increment(&mut other_w, "b-1", "b");
        assert_eq!(ok_json(&inv.outcome)["value"], 2);
        assert!(
            took < Duration::from_millis(300),
            "a stage with disjoint grants waited {took:?} for the stuck one"
        );
        let (inv, took) = increment(&mut impatient_w, "impatient-1", "a");
        assert_eq!(err_name(&inv.outcome), names::SANDBOX_TIMEOUT, "{inv:?}");
        assert!(
            took < Duration::from_millis(200) + SLACK,
            "the impatient stage's lock wait ended after {took:?}, deadline 200 ms"
        );
        let (inv, took) = increment(&mut sharing_w, "a-1", "a");
        assert_eq!(ok_json(&inv.outcome)["value"], 2, "{inv:?}");
        assert!(
            took > Duration::from_millis(300),
            "a stage sharing the bucket did not wait for the stuck one ({took:?})"
        );
        let (stuck_inv, stuck_took) = stuck_thread.join().expect("stuck thread");
        assert_eq!(err_name(&stuck_inv.outcome), names::SANDBOX_TIMEOUT);
        assert!(
            stuck_took < Duration::from_millis(1000) + SLACK,
            "{stuck_took:?}"
        );
    });
    // The stuck event's write vanished with it; the counters hold exactly their increments.
    let mut check = Worker::new(
        h.deploy(
            "check",
            guests::KV_COUNTER,
            config(&["a", "b"], deadline(5000)),
        ),
        session(),
    );
    assert_eq!(
        ok_json(&increment(&mut check, "check-a", "a").0.outcome)["value"],
        3
    );
    assert_eq!(
        ok_json(&increment(&mut check, "check-b", "b").0.outcome)["value"],
        3
    );
}

#[test]
fn a_write_flood_is_refused_at_the_event_cap_with_the_write_set_bounded() {
    let h = Harness::new();
    let mut flood = config(&["flood"], deadline(30_000));
    flood.grants.emit_subjects = vec!["flood.".into()];
    let mut w = h.worker_for("write-flood", guests::WRITE_FLOOD, flood);
    // 1 MiB values, 300 attempts: 300 MiB offered; the default cap keeps 4 MiB.
    let inv = w.invoke(&event(
        "flood-1",
        &json!({"bucket": "flood", "value_bytes": 1 << 20, "attempts": 300}),
    ));
    let err = inv.outcome.as_ref().unwrap_err();
    assert_eq!(err.name, "Flood.Refused", "{err:?}");
    assert!(err.cause.starts_with("3 of 300 accepted"), "{}", err.cause);
    assert!(
        err.cause.contains("max_write_bytes_per_event"),
        "{}",
        err.cause
    );
    // Emits have a cap of their own.
    let inv = w.invoke(&event(
        "flood-2",
        &json!({"emit": true, "value_bytes": 1 << 20, "attempts": 300}),
    ));
    let err = inv.outcome.as_ref().unwrap_err();
    assert_eq!(err.name, "Flood.Refused", "{err:?}");
    assert!(err.cause.starts_with("3 of 300 accepted"), "{}", err.cause);
    assert!(
        err.cause.contains("max_emit_bytes_per_event"),
        "{}",
        err.cause
    );
    // A stage configured for more gets more.
    let mut roomy = h.worker_for(
        "write-flood-roomy",
        guests::WRITE_FLOOD,
        config(
            &["flood"],
            Limits {
                max_write_bytes_per_event: 16 << 20,
                max_batch_bytes: 32 << 20,
                ..deadline(30_000)
            },
        ),
    );
    let inv = roomy.invoke(&event(
        "flood-3",
        &json!({"bucket": "flood", "value_bytes": 1 << 20, "attempts": 12}),
    ));
    assert_eq!(ok_json(&inv.outcome)["accepted"], 12);
}

#[test]
fn a_batch_holds_at_most_its_byte_cap_and_the_first_event_always_fits() {
    let h = Harness::new();
    let limits = Limits {
        max_batch_bytes: 10 << 20,
        ..deadline(30_000)
    };
    let mut w = h.worker_for(
        "write-flood",
        guests::WRITE_FLOOD,
        config(&["flood"], limits),
    );
    // Each event writes 3 MiB: three fit in 10 MiB, the fourth does not.
    let events: Vec<_> = (0..6)
        .map(|i| {
            event(
                &format!("batch-{i}"),
                &json!({"bucket": "flood", "value_bytes": 1 << 20, "attempts": 3}),
            )
        })
        .collect();
    let results = w.invoke_batch(&events);
    let names: Vec<&str> = results
        .iter()
        .map(|r| match &r.outcome {
            Ok(_) => "ok",
            Err(e) => e.name.as_str(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "ok",
            "ok",
            "ok",
            names::SANDBOX_BATCH_LIMIT,
            names::SANDBOX_BATCH_LIMIT,
            names::SANDBOX_BATCH_LIMIT
        ]
    );
    let err = results[3].outcome.as_ref().unwrap_err();
    assert!(
        err.retryable && err.cause.contains("max_batch_bytes"),
        "{err:?}"
    );
    // Retried in batches of their own (as an event source does), they fit.
    let again = w.invoke_batch(&events[3..]);
    assert!(again.iter().all(|r| r.outcome.is_ok()), "{again:?}");
}

#[test]
fn a_log_flood_reaches_the_host_log_within_its_budget() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "log-flood",
        guests::LOG_FLOOD,
        config(&[], deadline(60_000)),
    );
    // 20,000 calls of 64 KiB: 1.3 GB offered to the host's log for one event. Lines are cut at
    // 4 KiB first, so 16 calls fill the 64 KiB budget and 20,000 x 4096 - 65,536 bytes drop.
    let inv = w.invoke(&event("log-1", &json!({"calls": 20_000, "bytes": 65_536})));
    assert_eq!(ok_json(&inv.outcome)["calls"], 20_000);
    let lines = h.logs.0.lock();
    let mine: Vec<_> = lines
        .iter()
        .filter(|l| l.event_id == "log-1" && l.stream == "log")
        .collect();
    let bytes: usize = mine.iter().map(|l| l.message.len()).sum();
    let budget = Limits::default().max_log_bytes_per_event;
    assert!(
        bytes <= budget + 200,
        "{bytes} bytes of log, budget {budget}"
    );
    assert!(
        bytes >= budget,
        "the budget itself reached the log ({bytes} bytes)"
    );
    let last = mine.last().expect("log lines");
    assert!(
        last.message.contains("dropped 81854464 bytes"),
        "{}",
        last.message
    );
}

#[test]
fn limits_that_cannot_work_are_refused_at_deploy() {
    let h = Harness::new();
    let err = h
        .runtime
        .deploy(
            "bad-limits",
            &guests::read(guests::PASSTHROUGH),
            StageConfig {
                limits: Limits {
                    max_batch_bytes: 1 << 20,
                    ..Limits::default()
                },
                ..StageConfig::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, sluice_runtime::DeployError::InvalidConfig(ref m) if m.contains("max_batch_bytes")),
        "{err}"
    );
}
