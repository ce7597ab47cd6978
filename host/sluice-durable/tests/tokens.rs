//! Task tokens and publishing Tasks on the durable engine, over a real redb file: a
//! `.waitForTaskToken` Task hands its token out through the outbox and waits across a
//! restart; SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat return once committed and
//! are refused by name when nothing waits; heartbeat and timeout fire as durable timers, also
//! when they passed while the host was down; each publication goes out exactly once.

#![allow(
    clippy::needless_pass_by_value,
    reason = "tests build JSON values inline and pass them by value for readability"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};
use sluice_durable::{Config, Engine, EngineError, ExecutionType};
use sluice_store::Store;
use sluice_workflow::definition::{Machine, parse};
use sluice_workflow::env::SplitMix;
use sluice_workflow::machine::Status;

mod common;

use common::{Manual, Stages, T0, counter, ended, engine, eventually, store};

/// Ask for approval on `approvals` (the token in the message), then count; `more` states
/// beside them.
fn approval_with(extra: Value, more: Value) -> Machine {
    let mut ask = json!({
        "Type": "Task",
        "Resource": "arn:sluice:states:::nats:publish.waitForTaskToken",
        "Parameters": {"Subject": "approvals", "Message": {"order.$": "$.order", "token.$": "$$.Task.Token"}},
        "ResultPath": "$.approval",
        "Next": "Count"
    });
    for (k, v) in extra.as_object().unwrap() {
        ask[k] = v.clone();
    }
    let mut states = json!({
        "Ask": ask,
        "Count": {"Type": "Task", "Resource": "count", "ResultPath": "$.count", "End": true},
    });
    for (k, v) in more.as_object().unwrap() {
        states[k] = v.clone();
    }
    parse(&json!({"StartAt": "Ask", "States": states})).unwrap()
}

fn approval(extra: Value) -> Machine {
    approval_with(extra, json!({}))
}

/// The approval requests in the outbox: (order, token, message id), by order.
fn requests(store: &Store) -> Vec<(i64, String, String)> {
    let mut out: Vec<_> = store
        .outbox(10_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.subject == "approvals")
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.event.data).unwrap();
            (
                v["order"].as_i64().unwrap(),
                v["token"].as_str().unwrap().to_owned(),
                r.msg_id,
            )
        })
        .collect();
    out.sort();
    out
}

fn waiting(e: &Engine, id: &str) -> bool {
    e.history(id, true, 1, None).unwrap().events[0].kind == "TaskSubmitted"
}

#[test]
fn a_token_waits_across_a_restart_and_success_or_failure_resume_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let n = 6_i64;
    let with_rejected = || {
        approval_with(
            json!({"Catch": [{"ErrorEquals": ["Order.Rejected"], "ResultPath": "$.why", "Next": "Rejected"}]}),
            json!({"Rejected": {"Type": "Fail", "Error": "Rejected", "Cause": "no"}}),
        )
    };
    let tokens = {
        let store = store(&path);
        let stages = Arc::new(Stages::default());
        let e = engine(&store, &stages, &clock, Config::default());
        e.register("orders", with_rejected(), ExecutionType::Standard)
            .unwrap();
        for i in 0..n {
            e.start("orders", &format!("o-{i}"), json!({"order": i}))
                .unwrap();
        }
        eventually("every request in the outbox", || {
            requests(&store).len() == n as usize
        });
        eventually("every Task waiting", || {
            (0..n).all(|i| waiting(&e, &format!("orders/o-{i}")))
        });
        e.shutdown();
        assert_eq!(stages.runs.load(Ordering::SeqCst), 0, "nothing counted yet");
        requests(&store)
    };
    // One message per execution, its id the Task's event id, its token naming it.
    for (i, (order, token, msg_id)) in tokens.iter().enumerate() {
        assert_eq!(*order, i as i64);
        assert_eq!(msg_id, &format!("orders/o-{i}/Ask/1/0"));
        assert_eq!(
            sluice_workflow::token::execution_of(token),
            Some(("orders".into(), format!("o-{i}")))
        );
    }
    let store = store(&path);
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    e.register("orders", with_rejected(), ExecutionType::Standard)
        .unwrap();
    // The restart published nothing again and nothing moved on by itself.
    assert_eq!(requests(&store), tokens);
    for (order, token, _) in &tokens {
        if order % 2 == 0 {
            e.send_task_success(token, json!({"by": "ops", "order": order}))
                .unwrap();
        } else {
            e.send_task_failure(token, Some("Order.Rejected"), Some("too big"))
                .unwrap();
        }
    }
    for i in 0..n {
        let d = ended(&e, &format!("orders/o-{i}"));
        if i % 2 == 0 {
            assert_eq!(d.status, Status::Succeeded, "{d:?}");
            let out = d.output.unwrap();
            assert_eq!(out["approval"], json!({"by": "ops", "order": i}));
            assert_eq!(out["count"]["in"]["order"], i);
        } else {
            assert_eq!(d.status, Status::Failed, "{d:?}");
            assert_eq!(d.error.unwrap().error, "Rejected");
        }
    }
    assert_eq!(
        counter(&store),
        n / 2,
        "the successes went on to count, once each"
    );
    // Spent tokens, tokens of nothing, and strings that are no tokens are refused by name.
    assert_eq!(
        e.send_task_success(&tokens[0].1, json!(1)),
        Err(EngineError::TaskTimedOut)
    );
    assert_eq!(
        e.send_task_heartbeat(&tokens[1].1),
        Err(EngineError::TaskTimedOut)
    );
    let ghost = sluice_workflow::token::new("orders", "ghost", &SplitMix::new(3));
    assert!(matches!(
        e.send_task_success(&ghost, json!(1)),
        Err(EngineError::TaskDoesNotExist(_))
    ));
    assert!(matches!(
        e.send_task_success("not a token", json!(1)),
        Err(EngineError::InvalidToken(_))
    ));
    assert!(matches!(
        e.send_task_failure(&tokens[2].1, Some(&"E".repeat(300)), None),
        Err(EngineError::Invalid(_))
    ));
}

#[test]
fn heartbeat_and_timeout_fire_as_durable_timers_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let def = || approval(json!({"HeartbeatSeconds": 30, "TimeoutSeconds": 100}));
    let tokens = {
        let store = store(&path);
        let stages = Arc::new(Stages::default());
        let e = engine(&store, &stages, &clock, Config::default());
        e.register("orders", def(), ExecutionType::Standard)
            .unwrap();
        for i in 0..3 {
            e.start("orders", &format!("o-{i}"), json!({"order": i}))
                .unwrap();
        }
        eventually("every Task waiting", || {
            (0..3).all(|i| waiting(&e, &format!("orders/o-{i}")))
        });
        let tokens = requests(&store);
        // o-1 beats at 20 s (due again at 50 s); o-2 keeps beating until its timeout.
        clock.0.store(T0 + 20_000, Ordering::SeqCst);
        e.send_task_heartbeat(&tokens[1].1).unwrap();
        e.send_task_heartbeat(&tokens[2].1).unwrap();
        e.shutdown();
        tokens
    };
    // Down past o-0's heartbeat: it times out as soon as the engine is back.
    clock.0.store(T0 + 35_000, Ordering::SeqCst);
    let store = store(&path);
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    e.register("orders", def(), ExecutionType::Standard)
        .unwrap();
    let d = ended(&e, "orders/o-0");
    assert_eq!(d.status, Status::Failed);
    assert_eq!(d.error.unwrap().error, "States.HeartbeatTimeout");
    assert_eq!(e.describe("orders/o-1").unwrap().status, Status::Running);
    e.send_task_heartbeat(&tokens[2].1).unwrap();
    for at in [60_000, 85_000] {
        clock.0.store(T0 + at, Ordering::SeqCst);
        e.send_task_heartbeat(&tokens[2].1).unwrap();
    }
    // o-1's last beat was at 20 s: gone at 50 s.
    assert_eq!(
        ended(&e, "orders/o-1").error.unwrap().error,
        "States.HeartbeatTimeout"
    );
    assert_eq!(e.describe("orders/o-2").unwrap().status, Status::Running);
    clock.0.store(T0 + 100_000, Ordering::SeqCst);
    e.wake();
    let d = ended(&e, "orders/o-2");
    assert_eq!(
        d.error.unwrap().error,
        "States.Timeout",
        "heartbeats do not extend TimeoutSeconds"
    );
    let kinds: Vec<String> = e
        .history("orders/o-2", false, 100, None)
        .unwrap()
        .events
        .into_iter()
        .map(|h| h.kind)
        .collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["TaskTimedOut".to_owned(), "ExecutionFailed".to_owned()]
    );
    assert_eq!(counter(&store), 0);
}

#[test]
fn an_express_workflow_may_not_wait_for_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("s.redb"));
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let e = engine(
        &store,
        &Arc::new(Stages::default()),
        &clock,
        Config::default(),
    );
    let r = e.register("fast", approval(json!({})), ExecutionType::Express);
    assert!(
        matches!(&r, Err(EngineError::Invalid(m)) if m.contains("only STANDARD workflows wait for task tokens")),
        "{r:?}"
    );
}

#[test]
fn publications_go_out_exactly_once_through_faults_and_express_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let clock = Arc::new(Manual(AtomicI64::new(T0)));
    let def = parse(&json!({"StartAt": "Sns", "States": {
        "Sns": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:1:shipped", "Message.$": "$"},
                "ResultPath": "$.sns", "Next": "Events"},
        "Events": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"Source": "shop", "DetailType": "Shipped", "Detail": {"i.$": "$.i"}}]},
                "ResultPath": "$.events", "Next": "Count"},
        "Count": {"Type": "Task", "Resource": "count", "ResultPath": "$.count", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 60, "End": true}
    }}))
    .unwrap();
    let n = 20;
    {
        let store = store(&path);
        let stages = Arc::new(Stages::default());
        // Two platform faults: their batches (with the staged messages) are dropped and step again.
        stages.faults.store(2, Ordering::SeqCst);
        let e = engine(&store, &stages, &clock, Config::default());
        e.register("std", def.clone(), ExecutionType::Standard)
            .unwrap();
        e.register("exp", def.clone(), ExecutionType::Express)
            .unwrap();
        for i in 0..n {
            e.start("std", &format!("s-{i}"), json!({"i": i})).unwrap();
            e.start("exp", &format!("x-{i}"), json!({"i": i})).unwrap();
        }
        eventually("every count", || counter(&store) == 2 * n);
        e.shutdown();
    }
    // Express executions run again from their input after the restart; their publications
    // and their count are answered from the stored results.
    clock.0.fetch_add(61_000, Ordering::SeqCst);
    let store = store(&path);
    let stages = Arc::new(Stages::default());
    let e = engine(&store, &stages, &clock, Config::default());
    e.register("std", def.clone(), ExecutionType::Standard)
        .unwrap();
    e.register("exp", def, ExecutionType::Express).unwrap();
    // A re-run Express execution waits its Wait again (its timer was not persisted).
    eventually("the Standard executions' end", || {
        (0..n).all(|i| e.describe(&format!("std/s-{i}")).unwrap().status != Status::Running)
    });
    eventually("the Express re-runs at their Wait", || {
        store.outbox(10_000).unwrap().len() == 4 * n as usize && e.open_executions() == n as usize
    });
    clock.0.fetch_add(61_000, Ordering::SeqCst);
    e.wake();
    for i in 0..n {
        for id in [format!("std/s-{i}"), format!("exp/x-{i}")] {
            let d = ended(&e, &id);
            assert_eq!(d.status, Status::Succeeded, "{d:?}");
            let out = d.output.unwrap();
            let event_id = out["events"]["Entries"][0]["EventId"].clone();
            assert_eq!(out["sns"]["MessageId"], format!("{id}/Sns/1/0"));
            let row = store
                .outbox(10_000)
                .unwrap()
                .into_iter()
                .find(|r| r.msg_id == format!("{id}/Events/1/0"))
                .expect("the event is in the outbox");
            let body: Value = serde_json::from_slice(&row.event.data).unwrap();
            assert_eq!(
                body["id"], event_id,
                "the result names the event that went out"
            );
            assert_eq!(body["detail"], json!({"i": i}));
        }
    }
    assert_eq!(counter(&store), 2 * n);
    let rows = store.outbox(10_000).unwrap();
    let mut ids: Vec<&str> = rows.iter().map(|r| r.msg_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        4 * n as usize,
        "two messages per execution, none twice"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4 * n as usize);
    let sns = rows
        .iter()
        .filter(|r| r.event.subject == "sns.shipped")
        .count();
    let events = rows
        .iter()
        .filter(|r| r.event.subject == "events.default.shop")
        .count();
    assert_eq!((sns, events), (2 * n as usize, 2 * n as usize));
}
