//! Succeed and Fail: Error, Cause, ErrorPath, CausePath.

use serde_json::json;
use sluice_workflow::machine::Status;

use crate::support::{event_types, exec, failed, output};

#[test]
fn succeed_ends_with_its_input_and_output_path() {
    let def = json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}}});
    assert_eq!(output(&def, json!({"a": {"b": 2}})), json!(2));
}

#[test]
fn fail_reports_error_and_cause() {
    let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Order.Bad", "Cause": "because"}}});
    let e = exec(&def, json!({}));
    assert_eq!(failed(&e), ("Order.Bad".to_owned(), "because".to_owned()));
    assert_eq!(
        event_types(&e),
        ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    );
    assert_eq!(
        e.history.last().unwrap().details,
        json!({"error": "Order.Bad", "cause": "because"})
    );
}

#[test]
fn fail_without_error_or_cause_reports_neither() {
    let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail"}}});
    let e = exec(&def, json!({}));
    assert_eq!(e.status, Status::Failed);
    assert_eq!(failed(&e), (String::new(), String::new()));
    assert_eq!(e.history.last().unwrap().details, json!({}));
}

#[test]
fn error_path_and_cause_path_read_the_input() {
    let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c.text"}}});
    let e = exec(&def, json!({"e": "Dyn.Error", "c": {"text": "dyn cause"}}));
    assert_eq!(failed(&e), ("Dyn.Error".to_owned(), "dyn cause".to_owned()));
}

#[test]
fn error_path_and_cause_path_take_intrinsics_and_the_context() {
    // As recorded in base.test_base.TestSnfBase.test_state_fail_intrinsic.
    let def = json!({"StartAt": "F", "States": {"F": {
        "Type": "Fail",
        "ErrorPath": "States.Format('{} string', $.kind)",
        "CausePath": "States.Format('This is a custom error message for {}, caused by {}.', $.a, $.b)"
    }}});
    let e = exec(
        &def,
        json!({"kind": "error", "a": "error string", "b": "cause string"}),
    );
    assert_eq!(
        failed(&e),
        (
            "error string".to_owned(),
            "This is a custom error message for error string, caused by cause string.".to_owned()
        )
    );
    let def = json!({"StartAt": "StartState", "States": {"StartState": {"Type": "Fail", "ErrorPath": "$$.State.Name", "CausePath": "$$.Execution.Name"}}});
    let e = exec(&def, json!({}));
    assert_eq!(failed(&e), ("StartState".to_owned(), "exec".to_owned()));
}

#[test]
fn a_fail_in_a_choice_branch() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "S"}], "Default": "F"},
        "S": {"Type": "Succeed"},
        "F": {"Type": "Fail", "Error": "NotOk"}
    }});
    assert_eq!(failed(&exec(&def, json!({"ok": false}))).0, "NotOk");
    assert_eq!(output(&def, json!({"ok": true})), json!({"ok": true}));
}
