//! The context object `$$` and the history of a simple execution.

use serde_json::json;

use crate::support::{Fake, T0, event_types, exec, output, run_on, succeeded};

#[test]
fn the_context_object_names_the_execution_state_and_machine() {
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 2, "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {
            "ctx.$": "$$",
            "input.$": "$$.Execution.Input"
        }, "End": true}
    }});
    let out = output(&def, json!({"k": "v"}));
    let ctx = &out["ctx"];
    assert_eq!(out["input"], json!({"k": "v"}));
    assert_eq!(ctx["Execution"]["Name"], "exec");
    assert_eq!(ctx["Execution"]["Input"], json!({"k": "v"}));
    assert_eq!(ctx["Execution"]["StartTime"], "2023-11-14T22:13:20.000Z");
    assert_eq!(
        ctx["Execution"]["Id"],
        "arn:aws:states:local:000000000000:execution:wf:exec"
    );
    assert_eq!(ctx["StateMachine"]["Name"], "wf");
    assert_eq!(
        ctx["StateMachine"]["Id"],
        "arn:aws:states:local:000000000000:stateMachine:wf"
    );
    assert_eq!(ctx["State"]["Name"], "P");
    assert_eq!(ctx["State"]["EnteredTime"], "2023-11-14T22:13:22.000Z");
}

#[test]
fn the_context_inside_a_map_iteration() {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": true,
        "ItemSelector": {"idx.$": "$$.Map.Item.Index", "name.$": "$$.Execution.Name"},
        "ItemProcessor": {"StartAt": "In", "States": {"In": {"Type": "Pass", "Parameters": {
            "state.$": "$$.State.Name", "from.$": "$"
        }, "End": true}}}
    }}});
    assert_eq!(
        output(&def, json!(["a"])),
        json!([{"state": "In", "from": {"idx": 0, "name": "exec"}}])
    );
}

#[test]
fn history_of_a_simple_execution() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Next": "T"},
        "T": {"Type": "Task", "Resource": "s", "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 1, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": true, "Next": "S"}]},
        "S": {"Type": "Succeed"}
    }});
    let (e, _) = run_on(&def, json!({"a": 1}), &Fake::new());
    succeeded(&e);
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "WaitStateEntered",
            "WaitStateExited",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    for (i, h) in e.history.iter().enumerate() {
        assert_eq!(h.id, i as u64 + 1);
        assert_eq!(h.previous_event_id, i as u64, "{}", h.kind);
    }
    let times: Vec<i64> = e.history.iter().map(|h| h.timestamp_ms - T0).collect();
    assert_eq!(
        times,
        [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 1000, 1000, 1000, 1000, 1000, 1000
        ]
    );
    assert_eq!(e.history[0].details["input"], json!({"a": 1}));
    assert_eq!(e.history[1].details["name"], "P");
    assert_eq!(e.history.last().unwrap().details["output"], json!({"a": 1}));
}

#[test]
fn history_of_a_pass_only_execution_as_aws_records_it() {
    let e = exec(
        &json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        json!({}),
    );
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
}
