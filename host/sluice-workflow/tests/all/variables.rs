//! Variables: Assign in JSONPath, scoping across Map and Parallel (inner sees outer, outer
//! does not see inner assignments).

use serde_json::json;

use crate::support::{exec, failed, output};

#[test]
fn jsonpath_assign_reads_input_and_context() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"lit": 1, "fromIn.$": "$.a", "st.$": "$$.State.Name", "len.$": "States.ArrayLength($.xs)"}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"lit.$": "$lit", "fromIn.$": "$fromIn", "st.$": "$st", "len.$": "$len"}, "End": true}
    }});
    assert_eq!(
        output(&def, json!({"a": "A", "xs": [1, 2]})),
        json!({"lit": 1, "fromIn": "A", "st": "A", "len": 2})
    );
}

#[test]
fn jsonpath_assign_on_a_pass_with_result_reads_the_result() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": {"r": 5}, "Assign": {"v.$": "$.r"}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"v.$": "$v"}, "End": true}
    }});
    assert_eq!(output(&def, json!({"r": 0})), json!({"v": 5}));
}

#[test]
fn variables_are_usable_in_paths_and_choice() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"obj": {"k": [10, 20]}}, "Next": "B"},
        "B": {"Type": "Pass", "InputPath": "$obj.k[1]", "End": true}
    }});
    assert_eq!(output(&def, json!({})), json!(20));
}

#[test]
fn a_map_iteration_sees_outer_variables_and_its_assignments_stay_inside() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"outer": "O", "shared": "before"}, "Next": "M"},
        "M": {"Type": "Map", "Next": "After", "ItemProcessor": {"StartAt": "I", "States": {
            "I": {"Type": "Pass", "Assign": {"inner": "in"}, "Next": "J"},
            "J": {"Type": "Pass", "Parameters": {"o.$": "$outer", "i.$": "$inner", "v.$": "$"}, "End": true}
        }}},
        "After": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {
            "r": "{% $states.input %}", "outer": "{% $outer %}", "innerSeen": "{% $exists($inner) %}"
        }, "End": true}
    }});
    assert_eq!(
        output(&def, json!([1, 2])),
        json!({"r": [{"o": "O", "i": "in", "v": 1}, {"o": "O", "i": "in", "v": 2}], "outer": "O", "innerSeen": false})
    );
}

#[test]
fn parallel_branches_see_outer_variables_only() {
    // Recorded: assign.test_assign_base.TestAssignBase.test_base_parallel_cases[BASE_SCOPE_PARALLEL].
    let def = json!({"StartAt": "State0", "States": {
        "State0": {"Type": "Pass", "Assign": {"x": 42}, "Next": "State1"},
        "State1": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "Branch1", "States": {"Branch1": {"Type": "Pass", "Assign": {"innerX.$": "$x", "value.$": "$"}, "End": true}}},
            {"StartAt": "Branch21", "States": {"Branch21": {"Type": "Pass", "Assign": {"innerX.$": "$x", "value.$": "$"}, "End": true}}},
            {"StartAt": "Branch31", "States": {"Branch31": {"Type": "Pass", "Assign": {"innerX.$": "$x", "value.$": "$"}, "End": true}}}
        ]}
    }});
    assert_eq!(output(&def, json!({})), json!([{}, {}, {}]));

    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "P"},
        "P": {"Type": "Parallel", "Next": "After", "Branches": [
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Assign": {"y": 2}, "Next": "C"},
                                          "C": {"Type": "Pass", "Parameters": {"x.$": "$x", "y.$": "$y"}, "End": true}}}
        ]},
        "After": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"r": "{% $states.input %}", "ySeen": "{% $exists($y) %}"}, "End": true}
    }});
    assert_eq!(
        output(&def, json!({})),
        json!({"r": [{"x": 1, "y": 2}], "ySeen": false})
    );
}

#[test]
fn an_undefined_variable_in_jsonpath_fails_at_run_time() {
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"v.$": "$nope"}, "End": true}}});
    assert_eq!(failed(&exec(&def, json!({}))).0, "States.Runtime");
}

#[test]
fn map_and_parallel_assign_from_their_result() {
    let def = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "Assign": {"count.$": "States.ArrayLength($)"}, "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"c.$": "$count"}, "End": true}
    }});
    assert_eq!(output(&def, json!([1, 2, 3])), json!({"c": 3}));
}
