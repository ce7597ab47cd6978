//! Choice: every operator family (literal and `Path` forms), And/Or/Not, Default,
//! no match, the Choice's own InputPath/OutputPath.

use serde_json::{Value, json};

use crate::support::{exec, failed, output};

/// Whether `rule` (without Next) matches `input`.
fn choose(rule: Value, input: Value) -> bool {
    let mut r = rule;
    r["Next"] = json!("Yes");
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [r], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": true, "End": true},
        "No": {"Type": "Pass", "Result": false, "End": true}
    }});
    output(&def, input) == json!(true)
}

fn on(var: &str, op: &str, v: Value) -> Value {
    json!({"Variable": var, op: v})
}

#[test]
fn string_operators() {
    let i = json!({"s": "banana", "t": "banana", "u": "cherry"});
    assert!(choose(
        on("$.s", "StringEquals", json!("banana")),
        i.clone()
    ));
    assert!(!choose(
        on("$.s", "StringEquals", json!("Banana")),
        i.clone()
    ));
    assert!(choose(
        on("$.s", "StringLessThan", json!("cherry")),
        i.clone()
    ));
    assert!(!choose(
        on("$.s", "StringLessThan", json!("banana")),
        i.clone()
    ));
    assert!(choose(
        on("$.s", "StringLessThanEquals", json!("banana")),
        i.clone()
    ));
    assert!(choose(
        on("$.s", "StringGreaterThan", json!("apple")),
        i.clone()
    ));
    assert!(choose(
        on("$.s", "StringGreaterThanEquals", json!("banana")),
        i.clone()
    ));
    assert!(!choose(
        on("$.s", "StringGreaterThanEquals", json!("c")),
        i.clone()
    ));
    assert!(choose(
        on("$.s", "StringMatches", json!("b*n*a")),
        i.clone()
    ));
    assert!(!choose(on("$.s", "StringMatches", json!("c*")), i.clone()));
    assert!(choose(
        on("$.s", "StringMatches", json!("banana")),
        i.clone()
    ));
    // A string operator on a non-string is simply false.
    assert!(!choose(
        on("$.n", "StringEquals", json!("1")),
        json!({"n": 1})
    ));
}

#[test]
fn string_matches_escapes() {
    assert!(choose(
        on("$.s", "StringMatches", json!("a\\*b")),
        json!({"s": "a*b"})
    ));
    assert!(!choose(
        on("$.s", "StringMatches", json!("a\\*b")),
        json!({"s": "axb"})
    ));
}

#[test]
fn string_path_operators() {
    let i = json!({"s": "banana", "t": "banana", "u": "cherry"});
    assert!(choose(
        on("$.s", "StringEqualsPath", json!("$.t")),
        i.clone()
    ));
    assert!(!choose(
        on("$.s", "StringEqualsPath", json!("$.u")),
        i.clone()
    ));
    assert!(choose(
        on("$.s", "StringLessThanPath", json!("$.u")),
        i.clone()
    ));
    assert!(choose(
        on("$.s", "StringLessThanEqualsPath", json!("$.t")),
        i.clone()
    ));
    assert!(choose(
        on("$.u", "StringGreaterThanPath", json!("$.s")),
        i.clone()
    ));
    assert!(choose(
        on("$.u", "StringGreaterThanEqualsPath", json!("$.u")),
        i.clone()
    ));
}

#[test]
fn numeric_operators() {
    let i = json!({"n": 5, "f": 2.5});
    assert!(choose(on("$.n", "NumericEquals", json!(5)), i.clone()));
    assert!(choose(on("$.n", "NumericEquals", json!(5.0)), i.clone()));
    assert!(!choose(on("$.n", "NumericEquals", json!(6)), i.clone()));
    assert!(choose(on("$.n", "NumericLessThan", json!(6)), i.clone()));
    assert!(!choose(on("$.n", "NumericLessThan", json!(5)), i.clone()));
    assert!(choose(
        on("$.n", "NumericLessThanEquals", json!(5)),
        i.clone()
    ));
    assert!(choose(on("$.f", "NumericGreaterThan", json!(2)), i.clone()));
    assert!(choose(
        on("$.f", "NumericGreaterThanEquals", json!(2.5)),
        i.clone()
    ));
    assert!(!choose(
        on("$.f", "NumericGreaterThanEquals", json!(2.6)),
        i.clone()
    ));
    assert!(!choose(
        on("$.s", "NumericEquals", json!(1)),
        json!({"s": "1"})
    ));
}

#[test]
fn numeric_path_operators() {
    let i = json!({"a": 1, "b": 2, "c": 2});
    assert!(choose(
        on("$.b", "NumericEqualsPath", json!("$.c")),
        i.clone()
    ));
    assert!(choose(
        on("$.a", "NumericLessThanPath", json!("$.b")),
        i.clone()
    ));
    assert!(choose(
        on("$.b", "NumericLessThanEqualsPath", json!("$.c")),
        i.clone()
    ));
    assert!(choose(
        on("$.b", "NumericGreaterThanPath", json!("$.a")),
        i.clone()
    ));
    assert!(!choose(
        on("$.a", "NumericGreaterThanEqualsPath", json!("$.b")),
        i.clone()
    ));
}

#[test]
fn boolean_operators() {
    let i = json!({"t": true, "f": false, "t2": true});
    assert!(choose(on("$.t", "BooleanEquals", json!(true)), i.clone()));
    assert!(!choose(on("$.f", "BooleanEquals", json!(true)), i.clone()));
    assert!(choose(
        on("$.t", "BooleanEqualsPath", json!("$.t2")),
        i.clone()
    ));
    assert!(!choose(
        on("$.t", "BooleanEqualsPath", json!("$.f")),
        i.clone()
    ));
    assert!(!choose(
        on("$.s", "BooleanEquals", json!(true)),
        json!({"s": "true"})
    ));
}

#[test]
fn timestamp_operators() {
    let i = json!({"t": "2024-01-02T03:04:05Z", "later": "2024-01-02T03:04:06Z", "same": "2024-01-02T03:04:05Z"});
    let at = json!("2024-01-02T03:04:05Z");
    assert!(choose(on("$.t", "TimestampEquals", at.clone()), i.clone()));
    assert!(choose(
        on("$.t", "TimestampLessThan", json!("2024-01-02T03:04:06Z")),
        i.clone()
    ));
    assert!(!choose(
        on("$.t", "TimestampLessThan", at.clone()),
        i.clone()
    ));
    assert!(choose(
        on("$.t", "TimestampLessThanEquals", at.clone()),
        i.clone()
    ));
    assert!(choose(
        on("$.t", "TimestampGreaterThan", json!("2023-12-31T00:00:00Z")),
        i.clone()
    ));
    assert!(choose(
        on("$.t", "TimestampGreaterThanEquals", at.clone()),
        i.clone()
    ));
    assert!(choose(
        on("$.t", "TimestampEqualsPath", json!("$.same")),
        i.clone()
    ));
    assert!(choose(
        on("$.t", "TimestampLessThanPath", json!("$.later")),
        i.clone()
    ));
    assert!(choose(
        on("$.t", "TimestampLessThanEqualsPath", json!("$.same")),
        i.clone()
    ));
    assert!(choose(
        on("$.later", "TimestampGreaterThanPath", json!("$.t")),
        i.clone()
    ));
    assert!(choose(
        on("$.later", "TimestampGreaterThanEqualsPath", json!("$.t")),
        i.clone()
    ));
    // A string that is not a timestamp compares false.
    assert!(!choose(
        on("$.s", "TimestampEquals", at),
        json!({"s": "yesterday"})
    ));
}

#[test]
fn type_test_operators() {
    let i = json!({"n": null, "num": 1.5, "s": "x", "b": false, "ts": "2024-01-02T03:04:05Z"});
    assert!(choose(on("$.n", "IsNull", json!(true)), i.clone()));
    assert!(!choose(on("$.s", "IsNull", json!(true)), i.clone()));
    assert!(choose(on("$.s", "IsNull", json!(false)), i.clone()));
    assert!(choose(on("$.n", "IsPresent", json!(true)), i.clone()));
    assert!(choose(
        on("$.missing", "IsPresent", json!(false)),
        i.clone()
    ));
    assert!(!choose(
        on("$.missing", "IsPresent", json!(true)),
        i.clone()
    ));
    assert!(choose(on("$.num", "IsNumeric", json!(true)), i.clone()));
    assert!(!choose(on("$.s", "IsNumeric", json!(true)), i.clone()));
    assert!(choose(on("$.s", "IsString", json!(true)), i.clone()));
    assert!(choose(on("$.num", "IsString", json!(false)), i.clone()));
    assert!(choose(on("$.b", "IsBoolean", json!(true)), i.clone()));
    assert!(!choose(on("$.s", "IsBoolean", json!(true)), i.clone()));
    assert!(choose(on("$.ts", "IsTimestamp", json!(true)), i.clone()));
    assert!(choose(on("$.s", "IsTimestamp", json!(false)), i.clone()));
}

#[test]
fn and_or_not() {
    let i = json!({"a": 1, "b": "x"});
    let a1 = on("$.a", "NumericEquals", json!(1));
    let a2 = on("$.a", "NumericEquals", json!(2));
    let bx = on("$.b", "StringEquals", json!("x"));
    assert!(choose(json!({"And": [a1, bx]}), i.clone()));
    assert!(!choose(json!({"And": [a1, a2]}), i.clone()));
    assert!(choose(json!({"Or": [a2, bx]}), i.clone()));
    assert!(!choose(json!({"Or": [a2, {"Not": bx}]}), i.clone()));
    assert!(choose(json!({"Not": a2}), i.clone()));
    assert!(choose(
        json!({"And": [{"Not": a2}, {"Or": [a2, {"And": [a1, bx]}]}]}),
        i
    ));
}

#[test]
fn the_first_matching_rule_wins() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
            {"Variable": "$.n", "NumericGreaterThan": 0, "Next": "Small"},
            {"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}
        ], "Default": "Zero"},
        "Big": {"Type": "Pass", "Result": "big", "End": true},
        "Small": {"Type": "Pass", "Result": "small", "End": true},
        "Zero": {"Type": "Pass", "Result": "zero", "End": true}
    }});
    assert_eq!(output(&def, json!({"n": 50})), json!("big"));
    assert_eq!(output(&def, json!({"n": 5})), json!("small"));
    assert_eq!(output(&def, json!({"n": 0})), json!("zero"));
}

#[test]
fn no_match_without_default_fails_with_no_choice_matched() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericEquals": 1, "Next": "One"}
        ]},
        "One": {"Type": "Succeed"}
    }});
    let (error, _) = failed(&exec(&def, json!({"n": 2})));
    assert_eq!(error, "States.NoChoiceMatched");
}

#[test]
fn a_choice_passes_its_input_on_through_input_and_output_path() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "InputPath": "$.in", "OutputPath": "$.keep", "Choices": [
            {"Variable": "$.go", "BooleanEquals": true, "Next": "Done"}
        ]},
        "Done": {"Type": "Succeed"}
    }});
    assert_eq!(
        output(&def, json!({"in": {"go": true, "keep": [1]}})),
        json!([1])
    );
}

#[test]
fn a_choice_rule_may_read_a_variable_and_the_context() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Assign": {"limit": 3}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [
            {"And": [
                {"Variable": "$limit", "NumericEquals": 3},
                {"Variable": "$$.Execution.Name", "StringEquals": "exec"}
            ], "Next": "Yes"}
        ], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": true},
        "No": {"Type": "Pass", "Result": "no", "End": true}
    }});
    assert_eq!(output(&def, json!({})), json!("yes"));
}
