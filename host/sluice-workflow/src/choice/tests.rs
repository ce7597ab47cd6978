use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::jsonpath::Scope;

fn eval_on(rule: &Value, input: &Value) -> Result<bool, StatesError> {
    let r = parse_rule(rule, "/States/C/Choices/0", true).expect("rule parses");
    let vars = Map::new();
    let ctx = json!({});
    r.eval(&Scope {
        input,
        context: &ctx,
        variables: &vars,
    })
}

fn invalid_at(rule: &Value, top_level: bool) -> Invalid {
    parse_rule(rule, "/R", top_level).expect_err("rule must not validate")
}

#[test]
fn corpus_choice_operators_match_aws() {
    let mut failures = Vec::new();
    for (name, rule, input, want) in corpus_cases::CASES {
        let rule: Value = serde_json::from_str(rule).unwrap();
        let input: Value = serde_json::from_str(input).unwrap();
        match eval_on(&rule, &input) {
            Ok(got) if got == *want => {}
            other => failures.push(format!("{name}: {other:?}, want {want}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(corpus_cases::CASES.len(), 304);
}

#[test]
fn corpus_scenarios() {
    // choice_aws_docs_scenario: {"type": "Private", "value": 22} goes to ValueInTwenties.
    let input = json!({"type": "Private", "value": 22});
    let not_private =
        json!({"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"});
    let zero = json!({"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"});
    let twenties = json!({"And": [
        {"Variable": "$.value", "NumericGreaterThanEquals": 20},
        {"Variable": "$.value", "NumericLessThan": 30}], "Next": "ValueInTwenties"});
    assert!(!eval_on(&not_private, &input).unwrap());
    assert!(!eval_on(&zero, &input).unwrap());
    assert!(eval_on(&twenties, &input).unwrap());
    // choice_singleton_composite: an And of one rule.
    let single =
        json!({"And": [{"Variable": "$.type", "StringEquals": "Public"}], "Next": "Public"});
    assert!(eval_on(&single, &json!({"type": "Public", "value": 22})).unwrap());
    // choice_unsorted_parameters: the operator before Variable.
    let done = json!({"BooleanEquals": false, "Next": "FinishFalse", "Variable": "$.result.done"});
    assert!(eval_on(&done, &json!({"result": {"done": false}})).unwrap());
    // assign_in_choice_state[INCORRECT]: "0" is present and not the number 42; Assign is the
    // caller's business.
    let input = json!({"input_value": "0"});
    let absent = json!({"Variable": "$.input_value", "IsPresent": false, "Assign": {"status": "UNKNOWN"}, "Next": "F"});
    let is42 = json!({"Variable": "$.input_value", "NumericEquals": 42, "Assign": {"status": "CORRECT"}, "Next": "F"});
    assert!(!eval_on(&absent, &input).unwrap());
    assert!(!eval_on(&is42, &input).unwrap());
}

#[test]
fn variables_and_context_as_roots() {
    // reference_assign[BASE_REFERENCE_IN_CHOICE]: $guess StringEqualsPath $answer.
    let rule = json!({"Variable": "$guess", "StringEqualsPath": "$answer", "Next": "Correct"});
    let r = parse_rule(&rule, "/p", true).unwrap();
    let mut vars = Map::new();
    vars.insert("guess".into(), json!("42"));
    vars.insert("answer".into(), json!("42"));
    let ctx = json!({"State": {"Name": "S", "RetryCount": 2}});
    let scope = Scope {
        input: &json!({}),
        context: &ctx,
        variables: &vars,
    };
    assert!(r.eval(&scope).unwrap());
    let retry = parse_rule(
        &json!({"Variable": "$$.State.RetryCount", "NumericGreaterThanEquals": 2}),
        "/p",
        false,
    )
    .unwrap();
    assert!(retry.eval(&scope).unwrap());
    // An undefined variable: IsPresent false, anything else an error.
    let missing = parse_rule(
        &json!({"Variable": "$nope", "IsPresent": false}),
        "/p",
        false,
    )
    .unwrap();
    assert!(missing.eval(&scope).unwrap());
    let missing = parse_rule(&json!({"Variable": "$nope", "IsNull": true}), "/p", false).unwrap();
    let e = missing.eval(&scope).unwrap_err();
    assert_eq!(e.error, "States.Runtime");
    assert_eq!(
        e.cause,
        "Invalid path '$nope': The choice state's condition path references an invalid value."
    );
}

#[test]
fn a_missing_variable_is_an_error_except_for_is_present() {
    let input = json!({"a": 1});
    for rule in [
        json!({"Variable": "$.missing", "NumericEquals": 1}),
        json!({"Variable": "$.missing", "IsNull": false}),
        json!({"Variable": "$.missing", "StringMatches": "*"}),
        json!({"Variable": "$.a.b", "IsString": false}),
        json!({"Variable": "$.a", "NumericEqualsPath": "$.missing"}),
    ] {
        let e = eval_on(&rule, &input).unwrap_err();
        assert_eq!(e.error, names::RUNTIME);
        assert!(
            e.cause.starts_with("Invalid path '$.missing'")
                || e.cause.starts_with("Invalid path '$.a.b'"),
            "{}",
            e.cause
        );
        assert!(
            e.cause
                .ends_with("The choice state's condition path references an invalid value.")
        );
    }
    assert!(
        eval_on(
            &json!({"Variable": "$.missing", "IsPresent": false}),
            &input
        )
        .unwrap()
    );
    assert!(!eval_on(&json!({"Variable": "$.missing", "IsPresent": true}), &input).unwrap());
    assert!(!eval_on(&json!({"Variable": "$.a.b", "IsPresent": true}), &input).unwrap());
    assert!(eval_on(&json!({"Variable": "$.a", "IsPresent": true}), &input).unwrap());
    // And stops at the first false, so a later missing path is never looked at.
    let and = json!({"And": [{"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.missing", "NumericEquals": 1}]});
    assert!(!eval_on(&and, &input).unwrap());
    let or = json!({"Or": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.missing", "NumericEquals": 1}]});
    assert!(eval_on(&or, &input).unwrap());
    let not = json!({"Not": {"Variable": "$.missing", "IsPresent": true}});
    assert!(eval_on(&not, &input).unwrap());
}

#[test]
fn every_operator() {
    let input = json!({
        "s": "abc", "n": 5, "f": 2.5, "b": true, "t": "2016-08-18T17:33:00Z",
        "s2": "abd", "n2": 5.0, "t2": "2016-08-18T18:33:00+01:00", "b2": true
    });
    let cases = [
        (json!({"Variable": "$.s", "StringEquals": "abc"}), true),
        (json!({"Variable": "$.s", "StringLessThan": "abd"}), true),
        (
            json!({"Variable": "$.s", "StringGreaterThan": "abd"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanEquals": "abc"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEquals": "abc"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringEqualsPath": "$.s2"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanPath": "$.s2"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanPath": "$.s2"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanEqualsPath": "$.s2"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEqualsPath": "$.s2"}),
            false,
        ),
        (json!({"Variable": "$.s", "StringMatches": "a*"}), true),
        (json!({"Variable": "$.n", "NumericEquals": 5}), true),
        (json!({"Variable": "$.n", "NumericLessThan": 5.5}), true),
        (json!({"Variable": "$.n", "NumericGreaterThan": 5}), false),
        (
            json!({"Variable": "$.f", "NumericLessThanEquals": 2.5}),
            true,
        ),
        (
            json!({"Variable": "$.f", "NumericGreaterThanEquals": 3}),
            false,
        ),
        (
            json!({"Variable": "$.n", "NumericEqualsPath": "$.n2"}),
            true,
        ),
        (
            json!({"Variable": "$.f", "NumericLessThanPath": "$.n"}),
            true,
        ),
        (
            json!({"Variable": "$.f", "NumericGreaterThanPath": "$.n"}),
            false,
        ),
        (
            json!({"Variable": "$.n", "NumericLessThanEqualsPath": "$.n2"}),
            true,
        ),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.f"}),
            true,
        ),
        (json!({"Variable": "$.b", "BooleanEquals": true}), true),
        (
            json!({"Variable": "$.b", "BooleanEqualsPath": "$.b2"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampEquals": "2016-08-18T17:33:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThan": "2016-08-18T17:33:00.001Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThan": "2016-08-18T17:32:59Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThanEquals": "2016-08-18T17:33:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThanEquals": "2017-01-01T00:00:00Z"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampEqualsPath": "$.t2"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThanPath": "$.t2"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThanPath": "$.t2"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThanEqualsPath": "$.t2"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThanEqualsPath": "$.t2"}),
            true,
        ),
        // A string that is not a timestamp compares false, it does not fail.
        (
            json!({"Variable": "$.s", "TimestampEquals": "2016-08-18T17:33:00Z"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampEqualsPath": "$.s"}),
            false,
        ),
        (json!({"Variable": "$.s", "IsPresent": true}), true),
        (json!({"Variable": "$.s", "IsNull": false}), true),
        (json!({"Variable": "$.n", "IsNumeric": true}), true),
        (json!({"Variable": "$.s", "IsString": true}), true),
        (json!({"Variable": "$.b", "IsBoolean": true}), true),
        (json!({"Variable": "$.t", "IsTimestamp": true}), true),
        (json!({"Variable": "$.s", "IsTimestamp": false}), true),
        (json!({"Variable": "$.n", "IsTimestamp": true}), false),
        // Wrong types are false.
        (json!({"Variable": "$.n", "StringEquals": "5"}), false),
        (json!({"Variable": "$.s", "NumericEquals": 5}), false),
        (
            json!({"Variable": "$.n", "BooleanEqualsPath": "$.b"}),
            false,
        ),
        (json!({"Variable": "$.s", "StringEqualsPath": "$.n"}), false),
    ];
    for (rule, want) in cases {
        assert_eq!(eval_on(&rule, &input).unwrap(), want, "{rule}");
    }
}

#[test]
fn string_matches_wildcards_and_escapes() {
    for (s, p, want) in [
        ("log-2023.txt", "log-*.txt", true),
        ("log-.txt", "log-*.txt", true),
        ("log-2023.csv", "log-*.txt", false),
        ("abc", "*", true),
        ("", "*", true),
        ("", "", true),
        ("a", "", false),
        ("abc", "a*c", true),
        ("abc", "a*b*c", true),
        ("abbbc", "a*bc", true),
        ("acb", "a*bc", false),
        ("a*c", "a\\*c", true),
        ("abc", "a\\*c", false),
        ("a\\c", "a\\\\c", true),
        ("a\\c", "a\\c", true),
        ("aaa", "*a", true),
        ("xyz", "*a*", false),
        ("héllo wörld", "h*w*d", true),
    ] {
        assert_eq!(matches_pattern(s, p), want, "{s:?} ~ {p:?}");
    }
}

#[test]
fn strings_compare_as_java_does() {
    // U+FFFD sorts after U+1F600 by UTF-16 unit (0xFFFD > 0xD83D), before it by code point.
    let input = json!({"v": "\u{FFFD}"});
    assert!(
        eval_on(
            &json!({"Variable": "$.v", "StringGreaterThan": "\u{1F600}"}),
            &input
        )
        .unwrap()
    );
}

#[test]
fn numbers_compare_by_value() {
    let input = json!({"big": 9007199254740993_i64, "neg": -1, "u": 18446744073709551615_u64});
    assert!(
        eval_on(
            &json!({"Variable": "$.big", "NumericGreaterThan": 9007199254740992_i64}),
            &input
        )
        .unwrap()
    );
    assert!(
        eval_on(
            &json!({"Variable": "$.neg", "NumericLessThan": 0.0}),
            &input
        )
        .unwrap()
    );
    assert!(
        eval_on(
            &json!({"Variable": "$.u", "NumericGreaterThan": -1}),
            &input
        )
        .unwrap()
    );
}

#[test]
fn validation_points_at_the_offending_field() {
    let cases = [
        (
            json!({"Variable": "$.x", "NumericEquals": "1"}),
            "/R/NumericEquals",
            true,
        ),
        (
            json!({"Variable": "$.x", "StringEquals": 1}),
            "/R/StringEquals",
            true,
        ),
        (
            json!({"Variable": "$.x", "BooleanEquals": "true"}),
            "/R/BooleanEquals",
            true,
        ),
        (
            json!({"Variable": "$.x", "TimestampEquals": "2016-08-18"}),
            "/R/TimestampEquals",
            true,
        ),
        (
            json!({"Variable": "$.x", "IsNull": "yes"}),
            "/R/IsNull",
            true,
        ),
        (
            json!({"Variable": "$.x", "StringEquals": "a", "StringLessThan": "b"}),
            "/R/StringLessThan",
            true,
        ),
        (
            json!({"Variable": "$.x", "NoSuchOperator": 1}),
            "/R/NoSuchOperator",
            true,
        ),
        (
            json!({"Variable": "$.x", "StringMatchesPath": "$.y"}),
            "/R/StringMatchesPath",
            true,
        ),
        (
            json!({"Variable": "$.x", "NumericEqualsPath": "$.y[*]"}),
            "/R/NumericEqualsPath",
            true,
        ),
        (
            json!({"Variable": "$.x", "NumericEqualsPath": 3}),
            "/R/NumericEqualsPath",
            true,
        ),
        (
            json!({"Variable": "x", "IsNull": true}),
            "/R/Variable",
            true,
        ),
        (
            json!({"Variable": "$..x", "IsNull": true}),
            "/R/Variable",
            true,
        ),
        (
            json!({"Variable": "$.a[0,1]", "IsNull": true}),
            "/R/Variable",
            true,
        ),
        (json!({"Variable": 7, "IsNull": true}), "/R/Variable", true),
        (json!({"Variable": "$.x"}), "/R", true),
        (json!({"StringEquals": "a"}), "/R", true),
        (json!({}), "/R", true),
        (json!("rule"), "/R", true),
        (json!({"And": []}), "/R/And", true),
        (json!({"And": {}}), "/R/And", true),
        (
            json!({"And": [{"Variable": "$.x", "IsNull": true}], "Or": []}),
            "/R/Or",
            true,
        ),
        (
            json!({"And": [{"Variable": "$.x", "IsNull": true}], "Variable": "$.x"}),
            "/R",
            true,
        ),
        (
            json!({"Or": [{"Variable": "$.x", "IsNull": true}, {"Variable": "$.x", "IsNull": 1}]}),
            "/R/Or/1/IsNull",
            true,
        ),
        (
            json!({"Not": {"Variable": "$.x", "IsNull": true, "Next": "S"}}),
            "/R/Not/Next",
            true,
        ),
        (
            json!({"Variable": "$.x", "IsNull": true, "Next": "S"}),
            "/R/Next",
            false,
        ),
        (
            json!({"Variable": "$.x", "IsNull": true, "Condition": "{% true %}"}),
            "/R/Condition",
            true,
        ),
        (json!({"Variable": "$.x", "a/b~c": 1}), "/R/a~1b~0c", true),
    ];
    for (rule, pointer, top) in cases {
        let e = invalid_at(&rule, top);
        assert_eq!(e.pointer, pointer, "{rule}: {}", e.message);
    }
    let e = invalid_at(&json!({"Variable": "$.x", "NumericEquals": "1"}), true);
    assert_eq!(e.message, "NumericEquals must be a number");
    assert_eq!(
        e.to_string(),
        "NumericEquals must be a number at /R/NumericEquals"
    );
}

#[test]
fn parsing_keeps_the_structure() {
    let r = parse_rule(
        &json!({"Comment": "c", "Not": {"Or": [
            {"Variable": "$.a", "StringEquals": "x"},
            {"Variable": "$$.Map.Item.Index", "NumericLessThanPath": "$.max"}]}, "Next": "N"}),
        "/p",
        true,
    )
    .unwrap();
    let Rule::Not(inner) = r else { panic!("{r:?}") };
    let Rule::Or(rules) = *inner else { panic!() };
    assert_eq!(
        rules[0],
        Rule::Compare {
            variable: Path::parse("$.a").unwrap(),
            op: Op::StringEquals,
            operand: Operand::Value(json!("x")),
        }
    );
    assert_eq!(
        rules[1],
        Rule::Compare {
            variable: Path::parse("$$.Map.Item.Index").unwrap(),
            op: Op::NumericLessThan,
            operand: Operand::Path(Path::parse("$.max").unwrap()),
        }
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6..1e6_f64).prop_map(Value::from),
        prop_oneof![
            Just("$.a".to_string()),
            Just("$.a.b".to_string()),
            Just("$$.x".to_string()),
            Just("2016-08-18T17:33:00Z".to_string()),
            "[a-z*\\\\]{0,6}",
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("Variable".to_string()),
        Just("And".to_string()),
        Just("Or".to_string()),
        Just("Not".to_string()),
        Just("Next".to_string()),
        Just("a".to_string()),
        Just("b".to_string()),
        Just("StringMatches".to_string()),
        Just("IsPresent".to_string()),
        Just("NumericEqualsPath".to_string()),
        Just("TimestampLessThan".to_string()),
        Just("BooleanEquals".to_string()),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn no_panic_on_any_rule_or_input(rule in arb_json(), input in arb_json(), top in any::<bool>()) {
        if let Ok(r) = parse_rule(&rule, "/r", top) {
            let vars = Map::new();
            let _ = r.eval(&Scope { input: &input, context: &input, variables: &vars });
        }
    }

    #[test]
    fn no_panic_on_any_pattern(s in ".{0,12}", p in "[a*\\\\]{0,8}") {
        let _ = matches_pattern(&s, &p);
    }
}
