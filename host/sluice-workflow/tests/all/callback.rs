//! `.waitForTaskToken`: the token in `$$.Task.Token`, the Task waiting for SendTaskSuccess
//! / SendTaskFailure, heartbeats, and the time-outs, stepped by hand as a host steps them.

use serde_json::{Value, json};
use sluice_workflow::definition::Machine;
use sluice_workflow::env::{Clock, NoObjects, SplitMix};
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::{Env, Execution, Status, TaskTokenError};
use sluice_workflow::run::ManualClock;
use sluice_workflow::token;

use crate::support::{Fake, T0, event_types, machine, succeeded};

struct Host {
    clock: ManualClock,
    random: SplitMix,
    fake: Fake,
    m: Machine,
}

impl Host {
    fn new(def: Value, fake: Fake) -> Self {
        Self {
            clock: ManualClock::new(T0),
            random: SplitMix::new(9),
            fake,
            m: machine(&def),
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            clock: &self.clock,
            random: &self.random,
            objects: &NoObjects,
        }
    }

    fn start(&self, input: Value) -> Execution {
        let mut e = Execution::start(&self.m, "approvals", "e-1", input, &self.env());
        self.drive(&mut e);
        e
    }

    /// Advance, running every Task requested, until nothing moves.
    fn drive(&self, e: &mut Execution) {
        use sluice_workflow::env::TaskRunner;
        loop {
            let reqs = e.advance(&self.m, &self.env());
            if reqs.is_empty() {
                return;
            }
            for r in reqs {
                let out = self.fake.run(&r);
                e.deliver(&r.id, out);
            }
        }
    }

    fn at(&self, ms_after_t0: i64) {
        use sluice_workflow::run::Timer;
        self.clock.wait_until(T0 + ms_after_t0);
    }
}

fn def(extra: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "notify", "Payload": {"order.$": "$.order", "token.$": "$$.Task.Token"}},
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        task[k] = v.clone();
    }
    json!({"StartAt": "Approve", "States": {"Approve": task}})
}

/// The token the stage was handed.
fn token_of(h: &Host) -> String {
    let calls = h.fake.calls();
    let last = calls.last().expect("the stage ran");
    last.input["token"].as_str().expect("a token").to_owned()
}

#[test]
fn the_stage_gets_the_token_and_the_task_waits_for_success() {
    let h = Host::new(def(json!({})), Fake::new());
    let mut e = h.start(json!({"order": 7}));
    assert_eq!(e.status, Status::Running);
    let t = token_of(&h);
    assert_eq!(
        h.fake.calls()[0].token.as_deref(),
        Some(t.as_str()),
        "the request carries the token the Parameters passed on"
    );
    assert_eq!(
        token::execution_of(&t),
        Some(("approvals".into(), "e-1".into()))
    );
    assert!(e.waits_for(&t));
    assert_eq!(
        e.next_due_ms(),
        None,
        "no TimeoutSeconds: it waits for ever"
    );
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted"
        ]
    );
    // The submitted output is the integration's (lambda:invoke wraps it); it is not the result.
    let submitted = &e.history[4].details["output"];
    assert_eq!(submitted["StatusCode"], 200);
    // A wrong token changes nothing.
    let other = token::new("approvals", "e-1", &SplitMix::new(1));
    assert_eq!(
        e.send_task_result(&other, Ok(json!(1))),
        Err(TaskTokenError::TaskTimedOut)
    );
    e.send_task_result(&t, Ok(json!({"approved": true})))
        .unwrap();
    h.drive(&mut e);
    assert_eq!(succeeded(&e), json!({"approved": true}));
    assert_eq!(
        event_types(&e)[5..],
        ["TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]
    );
    // Once used, the token is spent.
    assert_eq!(
        e.send_task_result(&t, Ok(json!(2))),
        Err(TaskTokenError::TaskTimedOut)
    );
}

#[test]
fn a_failure_is_the_tasks_error_and_meets_catch() {
    let extra = json!({"Catch": [{"ErrorEquals": ["Order.Rejected"], "Next": "Rejected", "ResultPath": "$.why"}], "End": null});
    let mut d = def(extra);
    d["States"]["Approve"]
        .as_object_mut()
        .unwrap()
        .remove("End");
    d["States"]["Approve"]["Next"] = json!("Done");
    d["States"]["Done"] = json!({"Type": "Succeed"});
    d["States"]["Rejected"] = json!({"Type": "Pass", "End": true});
    let h = Host::new(d, Fake::new());
    let mut e = h.start(json!({"order": 1}));
    let t = token_of(&h);
    e.send_task_result(&t, Err(StatesError::new("Order.Rejected", "too big")))
        .unwrap();
    h.drive(&mut e);
    assert_eq!(
        succeeded(&e),
        json!({"order": 1, "why": {"Error": "Order.Rejected", "Cause": "too big"}})
    );
    assert!(event_types(&e).contains(&"TaskFailed"));
}

#[test]
fn heartbeats_keep_it_alive_until_they_stop() {
    let h = Host::new(
        def(json!({"HeartbeatSeconds": 10, "TimeoutSeconds": 100})),
        Fake::new(),
    );
    let mut e = h.start(json!({"order": 1}));
    let t = token_of(&h);
    assert_eq!(e.next_due_ms(), Some(T0 + 10_000));
    h.at(8_000);
    e.send_task_heartbeat(&t, h.clock.now_ms()).unwrap();
    assert_eq!(
        e.next_due_ms(),
        Some(T0 + 18_000),
        "the heartbeat moved the deadline"
    );
    h.at(17_999);
    h.drive(&mut e);
    assert_eq!(e.status, Status::Running);
    h.at(18_000);
    h.drive(&mut e);
    assert_eq!(e.status, Status::Failed);
    assert_eq!(e.error.as_ref().unwrap().error, "States.HeartbeatTimeout");
    assert_eq!(event_types(&e)[5..], ["TaskTimedOut", "ExecutionFailed"]);
    assert_eq!(
        e.send_task_result(&t, Ok(json!(1))),
        Err(TaskTokenError::TaskTimedOut),
        "a late callback finds nothing waiting"
    );
}

#[test]
fn timeout_seconds_bounds_the_wait_despite_heartbeats_and_is_retried() {
    let extra = json!({
        "HeartbeatSeconds": 5, "TimeoutSeconds": 12,
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    });
    let h = Host::new(def(extra), Fake::new());
    let mut e = h.start(json!({"order": 1}));
    let first = token_of(&h);
    for at in [4_000, 8_000, 11_000] {
        h.at(at);
        e.send_task_heartbeat(&first, h.clock.now_ms()).unwrap();
        h.drive(&mut e);
    }
    h.at(12_000);
    h.drive(&mut e);
    assert_eq!(e.status, Status::Running, "retried");
    h.at(13_000);
    h.drive(&mut e);
    let second = token_of(&h);
    assert_ne!(first, second, "a retry gets a token of its own");
    assert_eq!(h.fake.calls().len(), 2);
    assert_eq!(
        e.send_task_result(&first, Ok(json!(1))),
        Err(TaskTokenError::TaskTimedOut)
    );
    e.send_task_result(&second, Ok(json!("ok"))).unwrap();
    h.drive(&mut e);
    assert_eq!(succeeded(&e), json!("ok"));
    let timed_out: Vec<_> = e
        .history
        .iter()
        .filter(|h| h.kind == "TaskTimedOut")
        .map(|h| h.details["error"].clone())
        .collect();
    assert_eq!(timed_out, [json!("States.Timeout")]);
}

#[test]
fn a_failing_integration_fails_the_task_without_waiting() {
    let fake = Fake::new().failing("notify", "Notify.Down", "unreachable");
    let h = Host::new(def(json!({})), fake);
    let e = h.start(json!({"order": 1}));
    assert_eq!(e.status, Status::Failed);
    assert_eq!(e.error.as_ref().unwrap().error, "Notify.Down");
    assert!(!event_types(&e).contains(&"TaskSubmitted"));
}

#[test]
fn tokens_in_a_map_are_one_per_iteration_and_an_oversized_output_is_refused() {
    let d = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": true,
        "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {
            "Type": "Task", "Resource": "ask.waitForTaskToken",
            "Parameters": {"item.$": "$", "token.$": "$$.Task.Token"}, "End": true}}}}}});
    let h = Host::new(d, Fake::new());
    let mut e = h.start(json!({"items": [1, 2, 3]}));
    let tokens: Vec<(Value, String)> = h
        .fake
        .calls()
        .iter()
        .map(|c| {
            (
                c.input["item"].clone(),
                c.input["token"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(tokens.len(), 3);
    let big = json!("x".repeat(300 * 1024));
    assert!(matches!(
        e.send_task_result(&tokens[0].1, Ok(big)),
        Err(TaskTokenError::InvalidOutput(_))
    ));
    for (item, t) in tokens.iter().rev() {
        e.send_task_result(t, Ok(json!({"answer": item}))).unwrap();
    }
    h.drive(&mut e);
    assert_eq!(
        succeeded(&e),
        json!([{"answer": 1}, {"answer": 2}, {"answer": 3}])
    );
}

#[test]
fn a_jsonata_task_reads_the_token_from_states_context() {
    let d = json!({"QueryLanguage": "JSONata", "StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "ask.waitForTaskToken",
        "Arguments": {"token": "{% $states.context.Task.Token %}"}, "End": true}}});
    let h = Host::new(d, Fake::new());
    let mut e = h.start(json!({}));
    let t = token_of(&h);
    assert!(t.starts_with("sl1."), "{t}");
    e.send_task_result(&t, Ok(json!(42))).unwrap();
    h.drive(&mut e);
    assert_eq!(succeeded(&e), json!(42));
}
