//! Parallel: branch results in branch order, inputs, a failing branch, Catch on it.

use serde_json::{Value, json};

use crate::support::{Fake, event_types, exec, failed, output, run_on, succeeded};

fn branch(states: Value, start: &str) -> Value {
    json!({"StartAt": start, "States": states})
}

#[test]
fn results_come_in_branch_order_whatever_finishes_first() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        branch(json!({"W": {"Type": "Wait", "Seconds": 5, "Next": "A"}, "A": {"Type": "Pass", "Result": "slow", "End": true}}), "W"),
        branch(json!({"B": {"Type": "Pass", "Result": "fast", "End": true}}), "B"),
        branch(json!({"T": {"Type": "Task", "Resource": "s", "End": true}}), "T")
    ]}}});
    let fake = Fake::new().fixed("s", json!("task"));
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(succeeded(&e), json!(["slow", "fast", "task"]));
}

#[test]
fn every_branch_gets_the_effective_input() {
    let def = json!({"StartAt": "P", "States": {"P": {
        "Type": "Parallel", "InputPath": "$.in", "Parameters": {"v.$": "$.v", "b": 1},
        "ResultPath": "$.out", "End": true, "Branches": [
            branch(json!({"A": {"Type": "Pass", "End": true}}), "A"),
            branch(json!({"B": {"Type": "Pass", "InputPath": "$.v", "End": true}}), "B")
        ]
    }}});
    assert_eq!(
        output(&def, json!({"in": {"v": 7}})),
        json!({"in": {"v": 7}, "out": [{"v": 7, "b": 1}, 7]})
    );
}

#[test]
fn history_of_a_parallel_state() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        branch(json!({"A": {"Type": "Pass", "End": true}}), "A")
    ]}}});
    let e = exec(&def, json!({}));
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "ParallelStateEntered",
            "ParallelStateStarted",
            "PassStateEntered",
            "PassStateExited",
            "ParallelStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn a_failing_branch_fails_the_state_with_its_error() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        branch(json!({"A": {"Type": "Pass", "End": true}}), "A"),
        branch(json!({"F": {"Type": "Fail", "Error": "Branch.Broke", "Cause": "b2"}}), "F")
    ]}}});
    let e = exec(&def, json!({}));
    assert_eq!(failed(&e), ("Branch.Broke".to_owned(), "b2".to_owned()));
    assert!(event_types(&e).contains(&"ParallelStateFailed"));
}

#[test]
fn catch_on_a_parallel_state_takes_the_branch_error() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "Ok", "Branches": [
            branch(json!({"T": {"Type": "Task", "Resource": "boom", "End": true}}), "T"),
            branch(json!({"A": {"Type": "Pass", "End": true}}), "A")
        ], "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.err", "Next": "Caught"}]},
        "Ok": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let fake = Fake::new().failing("boom", "Boom", "it blew");
    let (e, _) = run_on(&def, json!({"x": 1}), &fake);
    assert_eq!(
        succeeded(&e),
        json!({"x": 1, "err": {"Error": "Boom", "Cause": "it blew"}})
    );
}

/// `States.BranchFailed` is a reserved name AWS documents but does not raise for a Parallel:
/// the branch's own error reaches the state (as every recorded Parallel case shows), so a
/// catcher of `States.BranchFailed` alone does not see it and `States.ALL` does.
#[test]
fn a_branch_failure_is_not_renamed_states_branch_failed() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "Ok", "Branches": [
            branch(json!({"F": {"Type": "Fail", "Error": "Branch.Broke", "Cause": "b"}}), "F")
        ], "Catch": [
            {"ErrorEquals": ["States.BranchFailed"], "Next": "Renamed"},
            {"ErrorEquals": ["States.ALL"], "Next": "Caught"}
        ]},
        "Ok": {"Type": "Succeed"},
        "Renamed": {"Type": "Fail", "Error": "Renamed"},
        "Caught": {"Type": "Pass", "End": true}
    }});
    assert_eq!(
        output(&def, json!({})),
        json!({"Error": "Branch.Broke", "Cause": "b"})
    );
}

#[test]
fn retry_on_a_parallel_state_reruns_every_branch() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        branch(json!({"T": {"Type": "Task", "Resource": "flaky", "End": true}}), "T"),
        branch(json!({"U": {"Type": "Task", "Resource": "steady", "End": true}}), "U")
    ], "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1}]}}});
    let fake = Fake::new()
        .flaky("flaky", "Flaky", "once", 1)
        .fixed("steady", json!("s"));
    let (e, _) = run_on(&def, json!("in"), &fake);
    assert_eq!(succeeded(&e), json!(["in", "s"]));
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| c.stage() == Some("flaky"))
            .count(),
        2
    );
}

#[test]
fn nested_parallel() {
    let inner = json!({"Type": "Parallel", "End": true, "Branches": [
        branch(json!({"X": {"Type": "Pass", "Result": 1, "End": true}}), "X"),
        branch(json!({"Y": {"Type": "Pass", "Result": 2, "End": true}}), "Y")
    ]});
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        branch(json!({"I": inner}), "I"),
        branch(json!({"Z": {"Type": "Pass", "Result": 3, "End": true}}), "Z")
    ]}}});
    assert_eq!(output(&def, json!({})), json!([[1, 2], 3]));
}
