//! JSONPath input and output processing: errors of paths that select nothing, ResultPath
//! that cannot be applied, ResultSelector.

use serde_json::json;

use crate::support::{Fake, exec, failed, output, run_on, succeeded};

#[test]
fn a_parameters_path_that_selects_nothing_fails_with_states_runtime() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"a.$": "$.missing"}, "End": true}}});
    let e = exec(&def, json!({"b": 1}));
    assert_eq!(
        failed(&e),
        (
            "States.Runtime".to_owned(),
            "An error occurred while executing the state 'P' (entered at the event id #2). The JSONPath '$.missing' specified for the field 'a.$' could not be found in the input '{\"b\":1}'".to_owned()
        )
    );
}

#[test]
fn an_input_path_that_selects_nothing_fails_with_states_runtime() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.a.b", "End": true}}});
    let (error, cause) = failed(&exec(&def, json!({"a": {}})));
    assert_eq!(error, "States.Runtime");
    assert_eq!(
        cause,
        "An error occurred while executing the state 'P' (entered at the event id #2). Invalid path '$.a.b' : No results for path: $['a']['b']"
    );
}

#[test]
fn an_output_path_that_selects_nothing_fails_with_states_runtime() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "OutputPath": "$.no.such", "End": true}}});
    let (error, cause) = failed(&exec(&def, json!({})));
    assert_eq!(error, "States.Runtime");
    assert_eq!(
        cause,
        "An error occurred while executing the state 'P' (entered at the event id #2). Invalid path '$.no.such' : Missing property in path $['no']"
    );
}

#[test]
fn result_path_into_a_non_object_fails_with_result_path_match_failure() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "ResultPath": "$.a.b", "End": true}}});
    let (error, _) = failed(&exec(&def, json!({"a": "text"})));
    assert_eq!(error, "States.ResultPathMatchFailure");
}

#[test]
fn result_path_creates_missing_objects() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "ResultPath": "$.a.b.c", "End": true}}});
    assert_eq!(
        output(&def, json!({"x": 0})),
        json!({"x": 0, "a": {"b": {"c": 1}}})
    );
}

#[test]
fn result_path_overwrites_an_existing_field() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "new", "ResultPath": "$.a", "End": true}}});
    assert_eq!(
        output(&def, json!({"a": "old", "b": 1})),
        json!({"a": "new", "b": 1})
    );
}

#[test]
fn paths_with_filters_slices_and_wildcards() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
        "cheap.$": "$.items[?(@.price < 10)].name",
        "first2.$": "$.items[0:2].price",
        "all.$": "$.items[*].name",
        "last.$": "$.items[-1:].name",
        "deep.$": "$..price"
    }, "End": true}}});
    let input = json!({"items": [
        {"name": "a", "price": 5}, {"name": "b", "price": 15}, {"name": "c", "price": 8}
    ]});
    assert_eq!(
        output(&def, input),
        json!({"cheap": ["a", "c"], "first2": [5, 15], "all": ["a", "b", "c"], "last": ["c"], "deep": [5, 15, 8]})
    );
}

#[test]
fn result_selector_applies_to_the_result_before_result_path() {
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "s", "ResultSelector": {"k.$": "$.v"}, "ResultPath": "$.r", "OutputPath": "$.r.k", "End": true
    }}});
    let fake = Fake::new().fixed("s", json!({"v": [1, 2]}));
    let (e, _) = run_on(&def, json!({"in": true}), &fake);
    assert_eq!(succeeded(&e), json!([1, 2]));
}
