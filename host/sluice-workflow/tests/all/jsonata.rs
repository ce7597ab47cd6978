//! JSONata states: Arguments, Output, Assign, Condition, Items, ItemSelector, Catch Output,
//! Fail and Wait expressions, `$states.input/result/errorOutput/context`.

use serde_json::{Value, json};

use crate::support::{Fake, T0, exec, failed, output, run_on, succeeded};

fn jsonata(start: &str, states: Value) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": start, "States": states})
}

#[test]
fn output_over_states_input() {
    let def = jsonata(
        "P",
        json!({"P": {"Type": "Pass", "Output": {"sum": "{% $states.input.a + $states.input.b %}", "lit": [1]}, "End": true}}),
    );
    assert_eq!(
        output(&def, json!({"a": 1, "b": 2})),
        json!({"sum": 3, "lit": [1]})
    );
}

#[test]
fn a_pass_without_output_passes_its_input() {
    let def = jsonata("P", json!({"P": {"Type": "Pass", "End": true}}));
    assert_eq!(output(&def, json!({"a": 1})), json!({"a": 1}));
}

#[test]
fn arguments_are_the_task_input_and_output_sees_the_result() {
    let def = jsonata(
        "T",
        json!({"T": {
            "Type": "Task", "Resource": "s",
            "Arguments": {"id": "{% $states.input.id %}", "twice": "{% $states.input.n * 2 %}"},
            "Output": {"got": "{% $states.result.v %}", "was": "{% $states.input.id %}"},
            "End": true
        }}),
    );
    let fake = Fake::new().fixed("s", json!({"v": "result"}));
    let (e, _) = run_on(&def, json!({"id": "x", "n": 4}), &fake);
    assert_eq!(fake.calls()[0].input, json!({"id": "x", "twice": 8}));
    assert_eq!(succeeded(&e), json!({"got": "result", "was": "x"}));
}

#[test]
fn a_task_without_output_outputs_its_result() {
    let def = jsonata(
        "T",
        json!({"T": {"Type": "Task", "Resource": "s", "End": true}}),
    );
    let fake = Fake::new().fixed("s", json!([1, 2]));
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(succeeded(&e), json!([1, 2]));
}

#[test]
fn assign_and_reference_a_variable() {
    let def = jsonata(
        "A",
        json!({
            "A": {"Type": "Pass", "Assign": {"total": "{% $states.input.n + 1 %}", "name": "fixed"}, "Next": "B"},
            "B": {"Type": "Pass", "Output": "{% $name & ':' & $string($total) %}", "End": true}
        }),
    );
    assert_eq!(output(&def, json!({"n": 41})), json!("fixed:42"));
}

#[test]
fn assign_evaluates_against_the_variables_before_the_state() {
    let def = jsonata(
        "A",
        json!({
            "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "B"},
            "B": {"Type": "Pass", "Assign": {"x": 2, "y": "{% $x %}"}, "Next": "C"},
            "C": {"Type": "Pass", "Output": {"x": "{% $x %}", "y": "{% $y %}"}, "End": true}
        }),
    );
    assert_eq!(output(&def, json!({})), json!({"x": 2, "y": 1}));
}

#[test]
fn choice_condition_output_and_assign() {
    let def = jsonata(
        "C",
        json!({
            "C": {"Type": "Choice", "Choices": [
                {"Condition": "{% $states.input.n > 10 %}", "Next": "Big", "Output": {"size": "big"}, "Assign": {"seen": "{% $states.input.n %}"}}
            ], "Default": "Small", "Output": {"size": "small"}},
            "Big": {"Type": "Pass", "Output": {"size": "{% $states.input.size %}", "seen": "{% $seen %}"}, "End": true},
            "Small": {"Type": "Pass", "End": true}
        }),
    );
    assert_eq!(
        output(&def, json!({"n": 11})),
        json!({"size": "big", "seen": 11})
    );
    assert_eq!(output(&def, json!({"n": 1})), json!({"size": "small"}));
}

#[test]
fn a_condition_that_is_not_boolean_fails_with_query_evaluation_error() {
    let def = jsonata(
        "C",
        json!({
            "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "S"}]},
            "S": {"Type": "Succeed"}
        }),
    );
    assert_eq!(
        failed(&exec(&def, json!({"n": 1}))).0,
        "States.QueryEvaluationError"
    );
}

#[test]
fn an_expression_giving_nothing_fails_as_aws_reports() {
    // Recorded: assign.test_assign_reference_variables...test_undefined_reference[BASE_UNDEFINED_OUTPUT].
    let def = jsonata(
        "State0",
        json!({"State0": {"Type": "Pass", "Output": "{% $doesNotExist %}", "End": true}}),
    );
    assert_eq!(
        failed(&exec(&def, json!({}))),
        (
            "States.QueryEvaluationError".to_owned(),
            "An error occurred while executing the state 'State0' (entered at the event id #2). The JSONata expression '$doesNotExist' specified for the field 'Output' returned nothing (undefined).".to_owned()
        )
    );
}

#[test]
fn map_items_and_item_selector() {
    let def = jsonata(
        "M",
        json!({"M": {
            "Type": "Map", "End": true,
            "Items": "{% $states.input.xs %}",
            "ItemSelector": {"i": "{% $states.context.Map.Item.Index %}", "v": "{% $states.context.Map.Item.Value * 10 %}"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": "{% $states.input.i + $states.input.v %}", "End": true}}}
        }}),
    );
    assert_eq!(output(&def, json!({"xs": [1, 2]})), json!([10, 21]));
}

#[test]
fn map_items_as_a_literal_array() {
    let def = jsonata(
        "M",
        json!({"M": {
            "Type": "Map", "End": true, "Items": [3, 4],
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
        }}),
    );
    assert_eq!(output(&def, json!({})), json!([3, 4]));
}

#[test]
fn catch_output_sees_the_error_output() {
    let def = jsonata(
        "T",
        json!({
            "T": {"Type": "Task", "Resource": "boom", "Next": "Ok", "Catch": [{
                "ErrorEquals": ["States.ALL"], "Next": "Caught",
                "Output": {"err": "{% $states.errorOutput.Error %}", "cause": "{% $states.errorOutput.Cause %}", "in": "{% $states.input.k %}"},
                "Assign": {"failedWith": "{% $states.errorOutput.Error %}"}
            }]},
            "Ok": {"Type": "Succeed"},
            "Caught": {"Type": "Pass", "Output": {"o": "{% $states.input %}", "v": "{% $failedWith %}"}, "End": true}
        }),
    );
    let fake = Fake::new().failing("boom", "Bad", "oops");
    let (e, _) = run_on(&def, json!({"k": 1}), &fake);
    assert_eq!(
        succeeded(&e),
        json!({"o": {"err": "Bad", "cause": "oops", "in": 1}, "v": "Bad"})
    );
}

#[test]
fn catch_without_output_outputs_the_error() {
    let def = jsonata(
        "T",
        json!({
            "T": {"Type": "Task", "Resource": "boom", "Next": "Ok", "Catch": [{"ErrorEquals": ["Bad"], "Next": "Ok"}]},
            "Ok": {"Type": "Succeed"}
        }),
    );
    let fake = Fake::new().failing("boom", "Bad", "oops");
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(succeeded(&e), json!({"Error": "Bad", "Cause": "oops"}));
}

#[test]
fn the_context_is_states_context() {
    let def = jsonata(
        "P",
        json!({"P": {"Type": "Pass", "Output": {
        "name": "{% $states.context.Execution.Name %}",
        "state": "{% $states.context.State.Name %}",
        "input": "{% $states.context.Execution.Input %}"
    }, "End": true}}),
    );
    assert_eq!(
        output(&def, json!({"z": 0})),
        json!({"name": "exec", "state": "P", "input": {"z": 0}})
    );
}

#[test]
fn fail_error_and_cause_expressions() {
    let def = jsonata(
        "F",
        json!({"F": {"Type": "Fail", "Error": "{% 'E.' & $states.input.kind %}", "Cause": "{% $string($states.input.n) %}"}}),
    );
    assert_eq!(
        failed(&exec(&def, json!({"kind": "x", "n": 3}))),
        ("E.x".to_owned(), "3".to_owned())
    );
}

#[test]
fn wait_seconds_and_timestamp_expressions() {
    let def = jsonata(
        "W",
        json!({
            "W": {"Type": "Wait", "Seconds": "{% $states.input.s %}", "Next": "X"},
            "X": {"Type": "Wait", "Timestamp": "{% $states.input.at %}", "End": true}
        }),
    );
    let (e, now) = run_on(
        &def,
        json!({"s": 5, "at": "2023-11-14T22:13:30Z"}),
        &Fake::new(),
    );
    succeeded(&e);
    assert_eq!(now - T0, 10_000);
}

#[test]
fn parallel_arguments_and_output() {
    let def = jsonata(
        "P",
        json!({"P": {
            "Type": "Parallel", "End": true,
            "Arguments": {"v": "{% $states.input.v %}"},
            "Output": "{% $states.result[0] + $states.result[1] %}",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% $states.input.v %}", "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": "{% $states.input.v * 10 %}", "End": true}}}
            ]
        }}),
    );
    assert_eq!(output(&def, json!({"v": 2})), json!(22));
}

#[test]
fn a_state_may_use_jsonata_in_a_jsonpath_machine() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Parameters": {"x.$": "$.x"}, "Next": "B"},
        "B": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input.x + 1 %}", "End": true}
    }});
    assert_eq!(output(&def, json!({"x": 1})), json!(2));
}

#[test]
fn aws_jsonata_functions() {
    let def = jsonata(
        "P",
        json!({"P": {"Type": "Pass", "Output": {
        "parts": "{% $partition([1,2,3], 2) %}",
        "range": "{% $range(0, 6, 2) %}",
        "hash": "{% $hash('hello', 'SHA-256') %}",
        "parsed": "{% $parse('{\"a\":1}') %}"
    }, "End": true}}),
    );
    assert_eq!(
        output(&def, json!({})),
        json!({
            "parts": [[1, 2], [3]],
            "range": [0, 2, 4, 6],
            "hash": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "parsed": {"a": 1}
        })
    );
}
