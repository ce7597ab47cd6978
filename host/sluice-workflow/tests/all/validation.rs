//! Broken definitions: every problem the validator reports, word for word (the Display of
//! each `Invalid`, `CODE: message at /pointer`), in document order.

use serde_json::{Value, json};
use sluice_workflow::definition::parse;

use crate::support::problems;

#[track_caller]
fn check(def: Value, want: &[&str]) {
    assert_eq!(problems(&def), want, "for {def}");
}

#[test]
fn missing_start_at() {
    check(
        json!({"States": {"A": {"Type": "Pass", "End": true}}}),
        &["SCHEMA_VALIDATION_FAILED: These fields are required: [StartAt] at /"],
    );
}

#[test]
fn missing_states() {
    check(
        json!({"StartAt": "A"}),
        &["SCHEMA_VALIDATION_FAILED: These fields are required: [States] at /"],
    );
}

#[test]
fn a_definition_that_is_not_an_object() {
    check(
        json!([1, 2]),
        &["SCHEMA_VALIDATION_FAILED: A state machine must be an object at /"],
    );
}

#[test]
fn start_at_an_unknown_state() {
    check(
        json!({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": true}}}),
        &[
            "MISSING_TRANSITION_TARGET: Missing 'Next' target: Nope at /StartAt",
            "UNREACHABLE_STATE: State \"A\" is not reachable at /States/A",
        ],
    );
}

#[test]
fn next_to_an_unknown_state() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Gone"}}}),
        &["MISSING_TRANSITION_TARGET: Missing 'Next' target: Gone at /States/A/Next"],
    );
}

#[test]
fn an_unreachable_state() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "B": {"Type": "Pass", "End": true}}}),
        &["UNREACHABLE_STATE: State \"B\" is not reachable at /States/B"],
    );
}

#[test]
fn an_unknown_state_type() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The value for the field 'Type' must be one of [Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map], not \"Sleep\" at /States/A/Type",
        ],
    );
}

#[test]
fn a_missing_type() {
    check(
        json!({"StartAt": "A", "States": {"A": {"End": true}}}),
        &["SCHEMA_VALIDATION_FAILED: These fields are required: [Type] at /States/A"],
    );
}

#[test]
fn an_unknown_field() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Colour": "red"}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The field \"Colour\" is not supported by Step Functions at /States/A/Colour",
        ],
    );
}

#[test]
fn a_field_of_another_state_type() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed", "Next": "A"}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The field \"Next\" is not supported by Step Functions at /States/A/Next",
        ],
    );
}

#[test]
fn missing_next_and_end() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}),
        &["SCHEMA_VALIDATION_FAILED: These fields are required: [Next or End] at /States/A"],
    );
}

#[test]
fn both_next_and_end() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": true}, "B": {"Type": "Succeed"}}}),
        &["SCHEMA_VALIDATION_FAILED: Only one of Next and End may be given at /States/A"],
    );
}

#[test]
fn a_bad_jsonpath() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.a[", "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The value for the field 'InputPath' must be a valid JSONPath: Invalid path '$.a[': Could not parse token. Expected ?, ', 0-9, * at position 4 at /States/A/InputPath",
        ],
    );
}

#[test]
fn a_bad_path_in_parameters() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "not a path"}, "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The value for the field 'x.$' must be a valid JSONPath or a valid intrinsic function call at /States/A/Parameters/x.$",
        ],
    );
}

#[test]
fn an_unknown_intrinsic() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "States.Nope($.a)"}, "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The value for the field 'x.$' must be a valid JSONPath or a valid intrinsic function call (Invalid intrinsic function call 'States.Nope($.a)': unknown intrinsic function 'States.Nope' at character 11) at /States/A/Parameters/x.$",
        ],
    );
}

#[test]
fn a_malformed_intrinsic_call() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "States.Format('a', "}, "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The value for the field 'x.$' must be a valid JSONPath or a valid intrinsic function call (Invalid intrinsic function call 'States.Format('a', ': unexpected end, expected an argument at character 19) at /States/A/Parameters/x.$",
        ],
    );
}

#[test]
fn a_jsonata_syntax_error() {
    check(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% 1 + %}", "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The JSONata expression is invalid: S0207: Unexpected end of expression at /States/A/Output",
        ],
    );
}

#[test]
fn a_jsonpath_field_in_a_jsonata_state() {
    check(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.a", "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The field \"InputPath\" is not supported with the JSONata query language at /States/A/InputPath",
        ],
    );
}

#[test]
fn a_jsonata_field_in_a_jsonpath_state() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": 1, "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The field \"Output\" is not supported with the JSONPath query language at /States/A/Output",
        ],
    );
}

#[test]
fn a_jsonpath_state_in_a_jsonata_machine() {
    check(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "QueryLanguage": "JSONPath"}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: A state cannot use JSONPath when its state machine uses JSONata at /States/A/QueryLanguage",
        ],
    );
}

#[test]
fn a_bad_choice_operator() {
    check(
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEqualz": "x", "Next": "S"}]},
            "S": {"Type": "Succeed"}
        }}),
        &[
            "SCHEMA_VALIDATION_FAILED: Field 'StringEqualz' is not supported in a Choice Rule at /States/C/Choices/0/StringEqualz",
        ],
    );
}

#[test]
fn a_choice_operand_of_the_wrong_type() {
    check(
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": 3, "Next": "S"}], "Default": "S"},
            "S": {"Type": "Succeed"}
        }}),
        &[
            "SCHEMA_VALIDATION_FAILED: StringEquals must be a string at /States/C/Choices/0/StringEquals",
        ],
    );
}

#[test]
fn a_choice_variable_that_is_not_a_path() {
    check(
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "a", "StringEquals": "3", "Next": "S"}], "Default": "S"},
            "S": {"Type": "Succeed"}
        }}),
        &[
            "SCHEMA_VALIDATION_FAILED: Invalid path 'a': A path must start with '$' at /States/C/Choices/0/Variable",
        ],
    );
}

#[test]
fn empty_choices() {
    check(
        json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": []}}}),
        &["SCHEMA_VALIDATION_FAILED: Choices must not be empty at /States/C/Choices"],
    );
}

#[test]
fn empty_branches() {
    check(
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": true}}}),
        &["SCHEMA_VALIDATION_FAILED: Branches must not be empty at /States/P/Branches"],
    );
}

#[test]
fn an_unsupported_resource() {
    check(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The resource 'arn:aws:states:::sqs:sendMessage' is not supported: a Task runs a Sluice stage (named directly, by a Lambda function ARN, or through arn:aws:states:::lambda:invoke), or publishes through arn:sluice:states:::nats:publish, arn:aws:states:::sns:publish or arn:aws:states:::events:putEvents at /States/T/Resource",
        ],
    );
    check(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "has space", "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The resource 'has space' is not a stage name (letters, digits, '-' and '_', at most 64) nor a supported ARN at /States/T/Resource",
        ],
    );
}

#[test]
fn a_wait_without_a_duration() {
    check(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: Exactly one of Seconds, SecondsPath, Timestamp and TimestampPath is required at /States/W",
        ],
    );
}

#[test]
fn bad_retriers_and_catchers() {
    check(
        json!({"StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": "s", "End": true,
            "Retry": [{"ErrorEquals": [], "BackoffRate": 0.5}],
            "Catch": [{"ErrorEquals": ["States.ALL", "X"], "Next": "Nowhere"}]
        }}}),
        &[
            "SCHEMA_VALIDATION_FAILED: ErrorEquals must name at least one error at /States/T/Retry/0/ErrorEquals",
            "SCHEMA_VALIDATION_FAILED: BackoffRate must be at least 1.0 at /States/T/Retry/0/BackoffRate",
            "SCHEMA_VALIDATION_FAILED: States.ALL must appear alone in ErrorEquals at /States/T/Catch/0/ErrorEquals",
            "MISSING_TRANSITION_TARGET: Missing 'Next' target: Nowhere at /States/T/Catch/0/Next",
        ],
    );
}

#[test]
fn a_bad_variable_name() {
    check(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"1bad": 1}, "End": true}}}),
        &[
            "SCHEMA_VALIDATION_FAILED: The variable name \"1bad\" is invalid at /States/A/Assign/1bad",
        ],
    );
}

#[test]
fn a_map_without_a_processor() {
    check(
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}}),
        &["SCHEMA_VALIDATION_FAILED: These fields are required: [ItemProcessor] at /States/M"],
    );
}

#[test]
fn problems_inside_branches_and_processors_carry_their_full_pointer() {
    check(
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Next": "M", "Branches": [
            {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}
        ]}, "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "I", "States": {
            "I": {"Type": "Pass", "End": true}, "J": {"Type": "Pass", "End": true}
        }}}}}),
        &[
            "MISSING_TRANSITION_TARGET: Missing 'Next' target: Y at /States/P/Branches/0/States/X/Next",
            "UNREACHABLE_STATE: State \"J\" is not reachable at /States/M/ItemProcessor/States/J",
        ],
    );
}

#[test]
fn several_problems_are_all_reported_in_document_order() {
    check(
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Colour": 1, "Next": "Gone"},
            "B": {"Type": "Pass", "InputPath": 3, "End": true}
        }}),
        &[
            "SCHEMA_VALIDATION_FAILED: The field \"Colour\" is not supported by Step Functions at /States/A/Colour",
            "SCHEMA_VALIDATION_FAILED: The value for the field 'InputPath' must be a STRING at /States/B/InputPath",
            "MISSING_TRANSITION_TARGET: Missing 'Next' target: Gone at /States/A/Next",
            "UNREACHABLE_STATE: State \"B\" is not reachable at /States/B",
        ],
    );
}

#[test]
fn the_definition_error_lists_every_problem_as_aws_does() {
    let e = parse(&json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "X"}, "B": {"Type": "Succeed"}}}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: X at /States/A/Next, UNREACHABLE_STATE: State \"B\" is not reachable at /States/B'"
    );
}

#[test]
fn a_next_to_a_broken_state_reports_only_that_states_problem() {
    check(
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Wait", "End": true}
        }}),
        &[
            "SCHEMA_VALIDATION_FAILED: Exactly one of Seconds, SecondsPath, Timestamp and TimestampPath is required at /States/B",
        ],
    );
}

#[test]
fn an_unreachable_broken_state_is_reported_unreachable() {
    check(
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "End": true},
            "B": {"Type": "Wait", "Seconds": -1, "End": true}
        }}),
        &[
            "SCHEMA_VALIDATION_FAILED: The value for the field 'Seconds' must be a non-negative INTEGER at /States/B/Seconds",
            "UNREACHABLE_STATE: State \"B\" is not reachable at /States/B",
        ],
    );
}
