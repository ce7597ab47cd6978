//! Task: stages by name, Lambda ARNs and `lambda:invoke`, Parameters and ResultSelector,
//! Task ids, TimeoutSeconds handed to the runner, the payload limit.

use serde_json::{Value, json};
use sluice_workflow::machine::Status;

use crate::support::{Fake, event_types, failed, run_on, succeeded};

fn task(resource: &str, extra: Value) -> Value {
    let mut s = json!({"Type": "Task", "Resource": resource, "End": true});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"StartAt": "T", "States": {"T": s}})
}

#[test]
fn a_stage_gets_the_input_and_its_result_is_the_output() {
    let fake = Fake::new().fixed("price", json!({"total": 12}));
    let (e, _) = run_on(&task("price", json!({})), json!({"order": 1}), &fake);
    assert_eq!(succeeded(&e), json!({"total": 12}));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].stage(), Some("price"));
    assert_eq!(calls[0].input, json!({"order": 1}));
    assert_eq!(calls[0].id, "exec/T/1");
    assert_eq!(calls[0].timeout_seconds, None);
}

#[test]
fn parameters_are_the_task_input_and_result_selector_shapes_the_result() {
    let fake = Fake::new().fixed("s", json!({"body": {"n": 5}, "noise": 1}));
    let def = task(
        "s",
        json!({
            "Parameters": {"id.$": "$.id", "fixed": true},
            "ResultSelector": {"n.$": "$.body.n"},
            "ResultPath": "$.res"
        }),
    );
    let (e, _) = run_on(&def, json!({"id": "a", "other": 2}), &fake);
    assert_eq!(fake.calls()[0].input, json!({"id": "a", "fixed": true}));
    assert_eq!(
        succeeded(&e),
        json!({"id": "a", "other": 2, "res": {"n": 5}})
    );
}

#[test]
fn a_lambda_function_arn_runs_the_stage_of_that_name() {
    let fake = Fake::new().fixed("pay", json!({"paid": true}));
    let def = task(
        "arn:aws:lambda:us-east-1:111111111111:function:pay:live",
        json!({}),
    );
    let (e, _) = run_on(&def, json!({"x": 1}), &fake);
    assert_eq!(succeeded(&e), json!({"paid": true}));
    assert_eq!(fake.calls()[0].stage(), Some("pay"));
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn lambda_invoke_sends_the_payload_to_function_name_and_wraps_the_result() {
    let fake = Fake::new().fixed("pay", json!({"paid": true}));
    let def = task(
        "arn:aws:states:::lambda:invoke",
        json!({"Parameters": {
            "FunctionName": "arn:aws:lambda:us-east-1:111111111111:function:pay",
            "Payload": {"amount.$": "$.amount"}
        }}),
    );
    let (e, _) = run_on(&def, json!({"amount": 3}), &fake);
    let out = succeeded(&e);
    assert_eq!(fake.calls()[0].stage(), Some("pay"));
    assert_eq!(fake.calls()[0].input, json!({"amount": 3}));
    assert_eq!(out["Payload"], json!({"paid": true}));
    assert_eq!(out["StatusCode"], json!(200));
    assert_eq!(out["ExecutedVersion"], json!("$LATEST"));
    assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], json!(200));
    assert!(out["SdkResponseMetadata"]["RequestId"].is_string(), "{out}");
    let mut keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "ExecutedVersion",
            "Payload",
            "SdkHttpMetadata",
            "SdkResponseMetadata",
            "StatusCode"
        ]
    );
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn lambda_invoke_with_a_plain_function_name_and_result_selector_on_payload() {
    let fake = Fake::new().fixed("pay", json!({"paid": true}));
    let def = task(
        "arn:aws:states:::lambda:invoke",
        json!({
            "Parameters": {"FunctionName": "pay", "Payload.$": "$"},
            "ResultSelector": {"p.$": "$.Payload.paid"}
        }),
    );
    let (e, _) = run_on(&def, json!({"a": 1}), &fake);
    assert_eq!(succeeded(&e), json!({"p": true}));
    assert_eq!(fake.calls()[0].input, json!({"a": 1}));
}

#[test]
fn a_stage_error_fails_the_execution_with_its_name_and_cause() {
    let fake = Fake::new().failing("s", "Order.Invalid", "no items");
    let (e, _) = run_on(&task("s", json!({})), json!({}), &fake);
    assert_eq!(
        failed(&e),
        ("Order.Invalid".to_owned(), "no items".to_owned())
    );
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "ExecutionFailed"
        ]
    );
}

#[test]
fn a_lambda_arn_error_has_a_lambda_shaped_cause() {
    let fake = Fake::new().failing("s", "Order.Invalid", "no items");
    let def = task(
        "arn:aws:lambda:us-east-1:111111111111:function:s",
        json!({}),
    );
    let (e, _) = run_on(&def, json!({}), &fake);
    let (error, cause) = failed(&e);
    assert_eq!(error, "Order.Invalid");
    let cause: Value = serde_json::from_str(&cause).expect("a JSON cause");
    assert_eq!(
        cause,
        json!({"errorMessage": "no items", "errorType": "Order.Invalid"})
    );
    assert!(event_types(&e).contains(&"LambdaFunctionFailed"));
}

#[test]
fn timeout_seconds_is_handed_to_the_runner() {
    let fake = Fake::new();
    let (e, _) = run_on(&task("s", json!({"TimeoutSeconds": 30})), json!({}), &fake);
    succeeded(&e);
    assert_eq!(fake.calls()[0].timeout_seconds, Some(30));
}

#[test]
fn timeout_seconds_path_is_read_from_the_input() {
    let fake = Fake::new();
    let def = task("s", json!({"TimeoutSecondsPath": "$.t"}));
    let (e, _) = run_on(&def, json!({"t": 12}), &fake);
    succeeded(&e);
    assert_eq!(fake.calls()[0].timeout_seconds, Some(12));
}

#[test]
fn heartbeat_seconds_in_each_form_is_handed_to_the_runner() {
    for (fields, input, want) in [
        (json!({"HeartbeatSeconds": 5}), json!({}), 5),
        (json!({"HeartbeatSecondsPath": "$.h"}), json!({"h": "7"}), 7),
    ] {
        let fake = Fake::new();
        let (e, _) = run_on(&task("s", fields), input, &fake);
        succeeded(&e);
        assert_eq!(fake.calls()[0].heartbeat_seconds, Some(want));
    }
    let fake = Fake::new();
    let mut def = task(
        "s",
        json!({"HeartbeatSeconds": "{% $states.input.h * 2 %}"}),
    );
    def["QueryLanguage"] = json!("JSONata");
    let (e, _) = run_on(&def, json!({"h": 4}), &fake);
    succeeded(&e);
    assert_eq!(fake.calls()[0].heartbeat_seconds, Some(8));
    let fake = Fake::new();
    let (e, _) = run_on(
        &task("s", json!({"HeartbeatSecondsPath": "$.h"})),
        json!({"h": -1}),
        &fake,
    );
    assert_eq!(
        failed(&e).1,
        "An error occurred while executing the state 'T' (entered at the event id #2). The HeartbeatSecondsPath field refers to value \"-1\" which is not a valid integer: $.h"
    );
}

#[test]
fn a_heartbeat_timeout_is_retried_and_caught_by_its_name() {
    let fake = Fake::new().failing("stuck", "States.HeartbeatTimeout", "");
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "stuck", "HeartbeatSeconds": 1, "Next": "Done",
            "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 2, "IntervalSeconds": 1}],
            "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Wrong"},
                      {"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Stalled"}]},
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Stalled": {"Type": "Pass", "End": true},
        "Done": {"Type": "Succeed"}
    }});
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(
        succeeded(&e),
        json!({"Error": "States.HeartbeatTimeout", "Cause": ""})
    );
    assert_eq!(fake.calls().len(), 3, "the first attempt and two retries");
}

#[test]
fn a_runner_timeout_fails_the_task_with_states_timeout() {
    let fake = Fake::new().failing("slow", "States.Timeout", "");
    let def = task("slow", json!({"TimeoutSeconds": 1}));
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(failed(&e).0, "States.Timeout");
}

#[test]
fn task_ids_name_execution_path_state_and_attempt() {
    let fake = Fake::new().flaky("s", "E", "c", 1);
    let def = json!({"StartAt": "Par", "States": {
        "Par": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
            {"StartAt": "M", "States": {"M": {
                "Type": "Map", "End": true, "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "T", "States": {"T": {
                    "Type": "Task", "Resource": "s", "End": true,
                    "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 1}]
                }}}
            }}}
        ]}
    }});
    let (e, _) = run_on(&def, json!({"items": [1]}), &fake);
    succeeded(&e);
    assert_eq!(fake.ids(), ["exec/Par/1/M/0/T/1", "exec/Par/1/M/0/T/2"]);
}

#[test]
fn task_ids_of_map_iterations_carry_the_index() {
    let fake = Fake::new();
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": true, "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "s", "End": true}}}
    }}});
    let (e, _) = run_on(&def, json!([1, 2, 3]), &fake);
    assert_eq!(succeeded(&e), json!([1, 2, 3]));
    assert_eq!(fake.ids(), ["exec/M/0/T/1", "exec/M/1/T/1", "exec/M/2/T/1"]);
}

fn big() -> Value {
    json!("x".repeat(256 * 1024 + 1))
}

#[test]
fn a_task_input_over_256_kib_fails_with_data_limit_exceeded() {
    let fake = Fake::new();
    let (e, _) = run_on(&task("s", json!({})), json!({"big": big()}), &fake);
    assert_eq!(failed(&e).0, "States.DataLimitExceeded");
    assert!(fake.calls().is_empty(), "the stage must not run");
}

#[test]
fn a_task_result_over_256_kib_fails_with_data_limit_exceeded() {
    let fake = Fake::new().fixed("s", big());
    let (e, _) = run_on(&task("s", json!({})), json!({}), &fake);
    let (error, cause) = failed(&e);
    assert_eq!(error, "States.DataLimitExceeded");
    assert!(
        cause.ends_with(
            "The state/task 'T' returned a result with a size exceeding the maximum number of bytes service limit."
        ),
        "{cause}"
    );
}

#[test]
fn data_limit_exceeded_is_not_caught_by_states_all() {
    let fake = Fake::new().fixed("s", big());
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "s", "End": true,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(e.status, Status::Failed);
    assert_eq!(failed(&e).0, "States.DataLimitExceeded");
}
