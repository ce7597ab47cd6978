//! The durable engine on a real redb file: executions run to their end with their Tasks'
//! effects exactly once, start is idempotent, history pages in both orders, stop aborts, the
//! limits hold, and an engine reopened on the file resumes every open execution from its last
//! committed step (timers included) without running a committed Task again.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_durable::{Config, EngineError, ExecutionType};
use sluice_model::state::StateSession;
use sluice_workflow::definition::parse;
use sluice_workflow::machine::Status;

mod common;

use common::{Manual, Stages, T0, counter, ended, engine, eventually, store};

fn pipeline() -> sluice_workflow::definition::Machine {
    parse(&json!({"StartAt": "Count", "States": {
        "Count": {"Type": "Task", "Resource": "count", "ResultPath": "$.first", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 60, "Next": "Again"},
        "Again": {"Type": "Task", "Resource": "count", "ResultPath": "$.second", "End": true}
    }}))
    .unwrap()
}

#[test]
fn executions_run_to_their_end_and_their_history_pages_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let (stages, clock) = (
        Arc::new(Stages::default()),
        Arc::new(Manual(AtomicI64::new(T0))),
    );
    let e = engine(&store, &stages, &clock, Config::default());
    let def = parse(&json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.p", "Next": "T"},
        "T": {"Type": "Task", "Resource": "count", "End": true}
    }}))
    .unwrap();
    e.register("simple", def, ExecutionType::Standard).unwrap();
    let s = e.start("simple", "one", json!({"k": "v"})).unwrap();
    assert!(s.created);
    assert_eq!(s.id, "simple/one");
    let d = ended(&e, &s.id);
    assert_eq!(d.status, Status::Succeeded);
    assert_eq!(
        d.output,
        Some(json!({"n": 1, "in": {"k": "v", "p": {"x": 1}}}))
    );
    assert!(d.stopped_ms.is_some());
    let all = e.history(&s.id, false, 100, None).unwrap();
    let kinds: Vec<&str> = all.events.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert!(
        all.events
            .iter()
            .enumerate()
            .all(|(i, h)| h.id == i as u64 + 1)
    );
    assert_eq!(all.next, None);
    // Pages of 4, forwards then backwards, meet every event once in order.
    let mut forward = Vec::new();
    let mut next = None;
    loop {
        let p = e.history(&s.id, false, 4, next.as_deref()).unwrap();
        forward.extend(p.events.iter().map(|h| h.id));
        match p.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    assert_eq!(forward, (1..=9).collect::<Vec<_>>());
    let first = e.history(&s.id, true, 4, None).unwrap();
    assert_eq!(
        first.events.iter().map(|h| h.id).collect::<Vec<_>>(),
        [9, 8, 7, 6]
    );
    let second = e.history(&s.id, true, 4, first.next.as_deref()).unwrap();
    assert_eq!(
        second.events.iter().map(|h| h.id).collect::<Vec<_>>(),
        [5, 4, 3, 2]
    );
    assert!(matches!(
        e.history("simple/none", false, 4, None),
        Err(EngineError::ExecutionDoesNotExist(_))
    ));
    assert_eq!(counter(&store), 1);
    let listed = e.list("simple", Status::Succeeded, 10, None).unwrap();
    assert_eq!(listed.executions.len(), 1);
    assert!(
        e.list("simple", Status::Running, 10, None)
            .unwrap()
            .executions
            .is_empty()
    );
}

#[test]
fn start_is_idempotent_as_aws_defines_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let (stages, clock) = (
        Arc::new(Stages::default()),
        Arc::new(Manual(AtomicI64::new(T0))),
    );
    let e = engine(&store, &stages, &clock, Config::default());
    e.register("orders", pipeline(), ExecutionType::Standard)
        .unwrap();
    let first = e.start("orders", "o-1", json!({"id": 1})).unwrap();
    assert!(first.created);
    // Running with the same input: the same execution, nothing new.
    let again = e.start("orders", "o-1", json!({"id": 1})).unwrap();
    assert_eq!((again.created, &again.id), (false, &first.id));
    // Another input under a running name: refused.
    assert!(matches!(
        e.start("orders", "o-1", json!({"id": 2})),
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
    assert!(matches!(
        e.start("nope", "o-1", json!({})),
        Err(EngineError::WorkflowDoesNotExist(_))
    ));
    assert!(matches!(
        e.start("orders", "a/b", json!({})),
        Err(EngineError::Invalid(_))
    ));
    // Closed: refused even with the same input.
    eventually("the Wait", || counter(&store) == 1);
    clock.0.fetch_add(61_000, Ordering::SeqCst);
    e.wake();
    assert_eq!(ended(&e, &first.id).status, Status::Succeeded);
    assert!(matches!(
        e.start("orders", "o-1", json!({"id": 1})),
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
    assert_eq!(counter(&store), 2);
}

#[test]
fn a_reopened_engine_resumes_every_execution_with_its_timers_and_no_task_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let n = 40;
    {
        let store = store(&path);
        let stages = Arc::new(Stages::default());
        let e = engine(&store, &stages, &clock, Config::default());
        e.register("orders", pipeline(), ExecutionType::Standard)
            .unwrap();
        for i in 0..n {
            e.start("orders", &format!("o-{i}"), json!({"i": i}))
                .unwrap();
        }
        // Every execution ran its first Task and waits on its 60 s timer; then the host goes.
        eventually("every first Task", || counter(&store) == n);
        eventually("every step committed", || {
            (0..n).all(|i| {
                e.history(&format!("orders/o-{i}"), true, 1, None)
                    .unwrap()
                    .events[0]
                    .kind
                    == "WaitStateEntered"
            })
        });
        e.shutdown();
        assert_eq!(stages.runs.load(Ordering::SeqCst), n as u32);
    }
    // The timers passed while the host was down: they fire at once on reopen.
    clock.0.fetch_add(120_000, Ordering::SeqCst);
    let store = store(&path);
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    assert_eq!(e.open_executions(), n as usize);
    e.register("orders", pipeline(), ExecutionType::Standard)
        .unwrap();
    for i in 0..n {
        let d = ended(&e, &format!("orders/o-{i}"));
        assert_eq!(d.status, Status::Succeeded, "{d:?}");
        let out = d.output.unwrap();
        assert_eq!(out["i"], json!(i));
    }
    assert_eq!(counter(&store), 2 * n);
    assert_eq!(
        stages.runs.load(Ordering::SeqCst),
        n as u32,
        "only the second Tasks ran"
    );
    assert_eq!(e.open_executions(), 0);
}

#[test]
fn a_platform_fault_drops_the_batch_and_it_steps_again_without_doubling() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let stages = Arc::new(Stages::default());
    stages.faults.store(3, Ordering::SeqCst);
    let e = engine(&store, &stages, &clock, Config::default());
    let def = parse(&json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "count", "Next": "B"},
        "B": {"Type": "Task", "Resource": "count", "End": true}
    }}))
    .unwrap();
    e.register("two", def, ExecutionType::Standard).unwrap();
    let s = e.start("two", "x", json!({})).unwrap();
    assert_eq!(ended(&e, &s.id).status, Status::Succeeded);
    assert_eq!(counter(&store), 2);
}

#[test]
fn retries_catch_and_failures_are_durable_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    let def = parse(&json!({"StartAt": "F", "States": {
        "F": {"Type": "Task", "Resource": "flaky", "Next": "B",
              "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 5, "MaxAttempts": 3}]},
        "B": {"Type": "Task", "Resource": "boom", "End": true,
              "Catch": [{"ErrorEquals": ["Nope"], "Next": "Never"}]},
        "Never": {"Type": "Succeed"}
    }}))
    .unwrap();
    e.register("retry", def, ExecutionType::Standard).unwrap();
    let s = e.start("retry", "r", json!({})).unwrap();
    // Each retry waits on a durable timer.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(30));
        clock.0.fetch_add(20_000, Ordering::SeqCst);
        e.wake();
    }
    let d = ended(&e, &s.id);
    assert_eq!(d.status, Status::Failed);
    let err = d.error.unwrap();
    assert_eq!(
        (err.error.as_str(), err.cause.as_str()),
        ("Boom", "it blew")
    );
    assert_eq!(stages.runs.load(Ordering::SeqCst), 4);
}

#[test]
fn stop_aborts_a_running_execution_with_its_error_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    e.register("orders", pipeline(), ExecutionType::Standard)
        .unwrap();
    let s = e.start("orders", "o", json!({})).unwrap();
    eventually("the Wait", || counter(&store) == 1);
    let d = e
        .stop(&s.id, Some("Operator.Stop"), Some("by hand"))
        .unwrap();
    assert_eq!(d.status, Status::Aborted);
    let last = e.history(&s.id, true, 1, None).unwrap().events.remove(0);
    assert_eq!(last.kind, "ExecutionAborted");
    assert_eq!(
        last.details,
        json!({"error": "Operator.Stop", "cause": "by hand"})
    );
    assert_eq!(
        e.list("orders", Status::Aborted, 5, None)
            .unwrap()
            .executions
            .len(),
        1
    );
    // Its timer fires into nothing.
    clock.0.fetch_add(61_000, Ordering::SeqCst);
    e.wake();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(counter(&store), 1);
    assert_eq!(e.stop(&s.id, None, None).unwrap().status, Status::Aborted);
}

#[test]
fn limits_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let stages = Arc::new(Stages::default());
    let config = Config {
        max_open: 2,
        max_history: 50,
        ..Config::default()
    };
    let e = engine(&store, &stages, &clock, config);
    e.register("orders", pipeline(), ExecutionType::Standard)
        .unwrap();
    e.start("orders", "a", json!({})).unwrap();
    e.start("orders", "b", json!({})).unwrap();
    assert!(matches!(
        e.start("orders", "c", json!({})),
        Err(EngineError::ExecutionLimitExceeded(2))
    ));
    e.stop("orders/a", None, None).unwrap();
    // A loop of Pass states, which would run forever, fails at the history limit.
    let looping = parse(&json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Next": "P2"}, "P2": {"Type": "Pass", "Next": "P"}
    }}))
    .unwrap();
    e.register("loop", looping, ExecutionType::Standard)
        .unwrap();
    let s = e.start("loop", "l", json!({})).unwrap();
    let d = ended(&e, &s.id);
    assert_eq!(d.status, Status::Failed);
    let err = d.error.unwrap();
    assert_eq!(err.error, sluice_durable::HISTORY_LIMIT);
    assert!(err.cause.contains("past the limit of 50"), "{}", err.cause);
    // The other execution was not held up by the loop.
    assert_eq!(e.describe("orders/b").unwrap().status, Status::Running);
}

#[test]
fn express_keeps_start_and_end_and_reruns_from_its_input_without_rerunning_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    {
        let store = store(&path);
        let stages = Arc::new(Stages::default());
        let e = engine(&store, &stages, &clock, Config::default());
        e.register("fast", pipeline(), ExecutionType::Express)
            .unwrap();
        e.start("fast", "x", json!({"v": 1})).unwrap();
        eventually("the first Task", || counter(&store) == 1);
        std::thread::sleep(Duration::from_millis(50));
        e.shutdown();
        // Only its start is stored: no history rows, still RUNNING.
        let d = e.describe("fast/x").unwrap();
        assert_eq!(d.status, Status::Running);
        assert!(
            e.history("fast/x", false, 10, None)
                .unwrap()
                .events
                .is_empty()
        );
    }
    let store = store(&path);
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    e.register("fast", pipeline(), ExecutionType::Express)
        .unwrap();
    // It runs again from its input: the first Task is answered from its stored result, and
    // its Wait starts again (its state was never stored); move the clock until it ends.
    eventually("the rerun to end", || {
        clock.0.fetch_add(61_000, Ordering::SeqCst);
        e.wake();
        std::thread::sleep(Duration::from_millis(10));
        e.describe("fast/x").unwrap().status != Status::Running
    });
    let d = e.describe("fast/x").unwrap();
    assert_eq!(d.status, Status::Succeeded);
    let out = d.output.unwrap();
    assert_eq!(
        out["first"]["n"],
        json!(1),
        "the first Task's stored result"
    );
    assert_eq!(out["second"]["n"], json!(2));
    assert_eq!(counter(&store), 2);
    assert_eq!(
        stages.runs.load(Ordering::SeqCst),
        1,
        "only the second Task ran again"
    );
}

#[test]
fn start_many_commits_once_and_completions_reach_the_outbox_exactly_once() {
    use sluice_durable::{Completion, Start};
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    let closed = Arc::new(AtomicU32::new(0));
    let c = closed.clone();
    e.on_outbox(Arc::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
    }));
    let def = parse(&json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "T"}], "Default": "B"},
        "T": {"Type": "Task", "Resource": "count", "End": true},
        "B": {"Type": "Task", "Resource": "boom", "End": true}
    }}))
    .unwrap();
    e.register("routed", def, ExecutionType::Standard).unwrap();
    let completion = Completion {
        output_subject: Some("orders.done".into()),
        dead_letter_subject: Some("orders.dlq".into()),
        headers: vec![("Sluice-Original-Subject".into(), "orders.new".into())],
    };
    let starts = vec![
        Start {
            name: "good".into(),
            input: json!({"ok": true}),
            completion: Some(completion.clone()),
        },
        Start {
            name: "bad".into(),
            input: json!({"ok": false}),
            completion: Some(completion),
        },
        Start {
            name: "bad/name".into(),
            input: json!({}),
            completion: None,
        },
    ];
    let r = e.start_many("routed", starts).unwrap();
    assert!(r[0].as_ref().unwrap().created && r[1].as_ref().unwrap().created);
    assert!(matches!(r[2], Err(EngineError::Invalid(_))));
    assert_eq!(ended(&e, "routed/good").status, Status::Succeeded);
    assert_eq!(ended(&e, "routed/bad").status, Status::Failed);
    eventually("the close hook", || closed.load(Ordering::SeqCst) >= 1);
    let mut rows = store.outbox(10).unwrap();
    rows.sort_by(|a, b| a.event.subject.cmp(&b.event.subject));
    assert_eq!(rows.len(), 2);
    let (dlq, done) = (&rows[0], &rows[1]);
    assert_eq!(done.event.subject, "orders.done");
    assert_eq!(done.msg_id, "routed/good/completion/0");
    assert_eq!(
        serde_json::from_slice::<Value>(&done.event.data).unwrap(),
        json!({"n": 1, "in": {"ok": true}})
    );
    assert_eq!(dlq.event.subject, "orders.dlq");
    assert_eq!(
        serde_json::from_slice::<Value>(&dlq.event.data).unwrap(),
        json!({"ok": false})
    );
    let h: std::collections::HashMap<_, _> = dlq.event.headers.iter().cloned().collect();
    assert_eq!(h["Sluice-Error-Name"], "Boom");
    assert_eq!(h["Sluice-Error-Cause"], "it blew");
    assert_eq!(h[sluice_durable::STATUS_HEADER], "FAILED");
    assert_eq!(h["Sluice-Original-Subject"], "orders.new");
}

#[test]
fn closed_executions_are_swept_after_their_retention_and_their_names_free_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let stages = Arc::new(Stages::default());
    let config = Config {
        retention: Some(Duration::from_secs(3600)),
        ..Config::default()
    };
    let e = engine(&store, &stages, &clock, config);
    let def = |v: Value| parse(&v).unwrap();
    e.register(
        "quick",
        def(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "count", "End": true}}})),
        ExecutionType::Standard,
    )
    .unwrap();
    e.register(
        "pass",
        def(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}})),
        ExecutionType::Standard,
    )
    .unwrap();
    e.register(
        "long",
        def(json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 864_000, "End": true}}})),
        ExecutionType::Standard,
    )
    .unwrap();
    let done = e.start("quick", "a", json!({})).unwrap();
    assert_eq!(ended(&e, &done.id).status, Status::Succeeded);
    let p = e.start("pass", "p", json!({})).unwrap();
    assert_eq!(ended(&e, &p.id).status, Status::Succeeded);
    let running = e.start("long", "r", json!({})).unwrap();
    // Not yet past their retention.
    clock.0.fetch_add(1_800_000, Ordering::SeqCst);
    assert_eq!(e.sweep(100).unwrap(), 0);
    assert!(e.describe(&done.id).is_ok());
    // Past it: the closed executions, their history and Task results go; the running one
    // stays.
    clock.0.fetch_add(1_900_000, Ordering::SeqCst);
    assert_eq!(e.sweep(100).unwrap(), 2);
    assert!(matches!(
        e.describe(&done.id),
        Err(EngineError::ExecutionDoesNotExist(_))
    ));
    assert!(matches!(
        e.history(&done.id, false, 10, None),
        Err(EngineError::ExecutionDoesNotExist(_))
    ));
    let mut s = store.open_session();
    let left = s
        .scan_records(
            sluice_model::records::RecordTable::TaskResults,
            &sluice_model::records::Scan {
                prefix: "quick/",
                after: None,
                limit: 10,
                reverse: false,
            },
        )
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        e.list("quick", Status::Succeeded, 10, None)
            .unwrap()
            .executions
            .is_empty()
    );
    assert_eq!(e.describe(&running.id).unwrap().status, Status::Running);
    // The name is free again.
    assert!(
        e.start("pass", "p", json!({"again": true}))
            .unwrap()
            .created
    );
    assert_eq!(ended(&e, &p.id).output, Some(json!({"again": true})));
    // A Task of a reused name whose predecessor's dedupe record the store still keeps (its
    // dedupe retention is longer than the engine's here) is not run again: the execution
    // fails, saying why, rather than retry for ever.
    assert!(
        e.start("quick", "a", json!({"again": true}))
            .unwrap()
            .created
    );
    let d = ended(&e, &done.id);
    assert_eq!(d.status, Status::Failed);
    assert_eq!(
        d.error.unwrap().error,
        sluice_durable::TASK_ALREADY_COMMITTED
    );
    assert_eq!(counter(&store), 1, "the Task ran once");
}
