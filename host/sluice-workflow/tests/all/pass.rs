//! Pass: Result, Parameters, InputPath, ResultPath, OutputPath.

use serde_json::json;

use crate::support::output;

#[test]
fn without_fields_the_input_passes_through() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    assert_eq!(output(&def, json!({"a": 1})), json!({"a": 1}));
}

#[test]
fn result_replaces_the_input() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"x": [1, 2]}, "End": true}}});
    assert_eq!(output(&def, json!({"a": 1})), json!({"x": [1, 2]}));
}

#[test]
fn result_is_not_evaluated_as_a_template() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"x.$": "$.a"}, "End": true}}});
    assert_eq!(output(&def, json!({"a": 1})), json!({"x.$": "$.a"}));
}

#[test]
fn parameters_build_the_result_from_paths_and_literals() {
    let def = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass",
        "Parameters": {"lit": "v", "from.$": "$.a.b", "nested": {"n.$": "$.c[1]"}, "name.$": "$$.State.Name"},
        "End": true
    }}});
    assert_eq!(
        output(&def, json!({"a": {"b": true}, "c": [10, 20]})),
        json!({"lit": "v", "from": true, "nested": {"n": 20}, "name": "P"})
    );
}

#[test]
fn result_path_places_the_result_into_the_input() {
    let def = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Result": "r", "ResultPath": "$.out.deep", "End": true
    }}});
    assert_eq!(
        output(&def, json!({"a": 1})),
        json!({"a": 1, "out": {"deep": "r"}})
    );
}

#[test]
fn result_path_dollar_replaces_and_null_discards() {
    let replace = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 7, "ResultPath": "$", "End": true}}});
    assert_eq!(output(&replace, json!({"a": 1})), json!(7));
    let discard = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 7, "ResultPath": null, "End": true}}});
    assert_eq!(output(&discard, json!({"a": 1})), json!({"a": 1}));
}

#[test]
fn input_path_selects_before_parameters() {
    let def = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "InputPath": "$.inner", "Parameters": {"v.$": "$.v"}, "End": true
    }}});
    assert_eq!(
        output(&def, json!({"inner": {"v": 3}, "v": 9})),
        json!({"v": 3})
    );
}

#[test]
fn output_path_selects_after_result_path() {
    let def = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Result": {"k": 1}, "ResultPath": "$.r", "OutputPath": "$.r", "End": true
    }}});
    assert_eq!(output(&def, json!({"a": 1})), json!({"k": 1}));
}

#[test]
fn null_input_and_output_paths_give_an_empty_object() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "InputPath": null, "Next": "Q"},
        "Q": {"Type": "Pass", "Result": 1, "ResultPath": "$.q", "OutputPath": null, "End": true}
    }});
    assert_eq!(output(&def, json!({"a": 1})), json!({}));
}

#[test]
fn states_chain_through_next() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
        "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.b", "Next": "C"},
        "C": {"Type": "Succeed"}
    }});
    assert_eq!(output(&def, json!({})), json!({"a": 1, "b": 2}));
}
