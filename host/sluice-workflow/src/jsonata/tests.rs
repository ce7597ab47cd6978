//! Unit tests: template detection, AWS's functions, error texts, bounds, bindings, numbers.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::*;
use crate::env::SplitMix;

/// `$states` holding `input`, plus the variables `vars` and a seeded generator.
#[expect(
    clippy::needless_pass_by_value,
    reason = "tests read best with owned json! arguments"
)]
pub(super) fn run(template: Value, input: Value, vars: Value) -> Result<Value, StatesError> {
    run_states(template, json!({ "input": input }), vars)
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "tests read best with owned json! arguments"
)]
pub(super) fn run_states(
    template: Value,
    states: Value,
    vars: Value,
) -> Result<Value, StatesError> {
    let t = Template::compile(&template).expect("compiles");
    let variables: Map<String, Value> = match vars {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let random = SplitMix::new(42);
    let b = Bindings {
        states: &states,
        variables: &variables,
        random: &random,
    };
    t.eval("Output", &b)
}

/// Evaluates one `{% text %}` as the field `Output`, with `input` as `$states.input`.
fn out(text: &str, input: Value) -> Result<Value, StatesError> {
    run(json!(format!("{{% {text} %}}")), input, json!({}))
}

fn ok(text: &str) -> Value {
    out(text, json!({})).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn cause(text: &str) -> String {
    let e = out(text, json!({})).expect_err(text);
    assert_eq!(e.error, names::QUERY_EVALUATION_ERROR, "{text}");
    e.cause
}

fn undefined_cause(text: &str, field: &str) -> String {
    format!(
        "The JSONata expression '{text}' specified for the field '{field}' returned nothing (undefined)."
    )
}

#[test]
fn template_detection() {
    for s in ["{% x %}", "{%x%}", "{%%}", "{% a %} b %}", "{%  %}"] {
        assert!(is_template(s), "{s:?}");
    }
    for s in [
        " {% x %}",
        "{% x %} ",
        " {% states.input %} ",
        "{%}",
        "{%",
        "%}",
        "",
        "{ % x % }",
        "$states.input",
    ] {
        assert!(!is_template(s), "{s:?}");
    }
}

#[test]
fn syntax_errors_are_reported_with_their_path() {
    assert!(compile("").is_err());
    assert!(compile("   ").is_err());
    assert!(compile("$sum(").is_err());
    assert!(compile("1 +").is_err());
    let (path, _) = Template::compile(&json!({"a": [1, "{% ( %}"]})).unwrap_err();
    assert_eq!(path, "/a[1]");
    let (path, _) = Template::compile(&json!("{%%}")).unwrap_err();
    assert_eq!(path, "");
    // Not templates, so never parsed.
    assert!(
        Template::compile(&json!({"a": " {% ( %} "}))
            .unwrap()
            .is_literal()
    );
}

#[test]
fn partition() {
    assert_eq!(
        ok("$partition([1,2,3,4,5], 2)"),
        json!([[1, 2], [3, 4], [5]])
    );
    assert_eq!(ok("$partition([1,2,3], 2.9)"), json!([[1, 2], [3]]));
    assert_eq!(ok("$partition([0], 4)"), json!([[0]]));
    assert_eq!(ok("$partition(7, 1)"), json!([[7]]));
    for text in [
        "$partition([], 2)",
        "$partition([1], 0)",
        "$partition([1], -1)",
    ] {
        assert_eq!(cause(text), undefined_cause(text, "Output"));
    }
    assert_eq!(
        cause("$partition([1], 'x')"),
        "The JSONata expression '$partition([1], 'x')' specified for the field 'Output' threw an error during evaluation. T0410: Argument 2 of function \"partition\" does not match function signature"
    );
}

#[test]
fn range_and_its_one_element_quirk() {
    assert_eq!(ok("$range(0, 9, 3)"), json!([0, 3, 6, 9]));
    assert_eq!(ok("$range(0, 10, 3)"), json!([0, 3, 6, 9]));
    assert_eq!(ok("$range(9, 1, -2)"), json!([9, 7, 5, 3, 1]));
    assert_eq!(ok("$range(-1.7, 2, 1)"), json!([-1, 0, 1, 2]));
    // One element: the number itself, not [1].
    assert_eq!(ok("$range(1, 9, 9)"), json!(1));
    assert_eq!(ok("$range(3, 3, -1)"), json!(3));
    // Composes like any undefined: $append drops it.
    assert_eq!(ok("$append([], $range(3, 1, 1))"), json!([]));
    for text in [
        "$range(3, 1, 1)",
        "$range(1, 3, -1)",
        "$range(0, 4, 0)",
        "$range(0, 4)",
    ] {
        assert_eq!(cause(text), undefined_cause(text, "Output"));
    }
    assert_eq!(
        cause("$range('0',4,1)"),
        "The JSONata expression '$range('0',4,1)' specified for the field 'Output' threw an error during evaluation. T0410: Argument 1 of function \"range\" does not match function signature"
    );
    assert!(
        cause("$range(0,4,1,2)")
            .ends_with("T0410: Argument 4 of function \"range\" does not match function signature")
    );
    assert!(cause("$range(0, 1e12, 1)").contains("more than the 1000000 allowed"));
}

#[test]
fn hash() {
    let digests = [
        ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
        ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        (
            "SHA-256",
            "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
        ),
        (
            "SHA-384",
            "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562",
        ),
        (
            "SHA-512",
            "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4",
        ),
    ];
    for (alg, hex) in digests {
        assert_eq!(
            ok(&format!("$hash('input data', '{alg}')")),
            json!(hex),
            "{alg}"
        );
    }
    assert!(cause("$hash('x', 'sha-256')").contains("is not supported"));
    assert!(cause("$hash(1, 'MD5')").contains("T0410: Argument 1 of function \"hash\""));
    let text = "$hash('x')";
    assert_eq!(cause(text), undefined_cause(text, "Output"));
}

#[test]
fn random_is_in_unit_interval_and_repeats_under_a_seed() {
    for text in ["$random()", "$random(7)", "$random(-3.5)"] {
        let v = ok(text).as_f64().unwrap();
        assert!((0.0..1.0).contains(&v), "{text}: {v}");
    }
    assert_eq!(ok("$random(7)"), ok("$random(7)"));
    assert_ne!(ok("$random(7)"), ok("$random(8)"));
    // Unseeded draws come from `Bindings::random`: the same generator state, the same value;
    // two calls in one evaluation differ.
    assert_eq!(ok("$random()"), ok("$random()"));
    let pair = ok("[$random(), $random()]");
    assert_ne!(pair[0], pair[1]);
    assert!(cause("$random('x')").contains("T0410"));
}

#[test]
fn uuid_is_v4_from_the_bindings_randomness() {
    let a = ok("$uuid()");
    let s = a.as_str().unwrap();
    assert_eq!(s.len(), 36);
    assert_eq!(&s[14..15], "4");
    assert_eq!(a, ok("$uuid()"), "same seed, same uuid");
    let two = ok("[$uuid(), $uuid()]");
    assert_ne!(two[0], two[1]);
    assert!(cause("$uuid(1)").contains("T0410: Argument 1 of function \"uuid\""));
}

#[test]
fn shuffle_is_deterministic_and_keeps_the_items() {
    let v = ok("$shuffle([1,2,3,4,5,6,7,8])");
    assert_eq!(v, ok("$shuffle([1,2,3,4,5,6,7,8])"));
    let mut items: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    items.sort_unstable();
    assert_eq!(items, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn pad_is_jsonatas_but_bounded() {
    assert_eq!(ok("$pad('ab', 5)"), json!("ab   "));
    assert_eq!(ok("$pad('ab', -5, '#-')"), json!("#-#ab"));
    assert_eq!(ok("$pad('abcdef', 3)"), json!("abcdef"));
    assert_eq!(ok("'ab' ~> $pad(4, 'x')"), json!("abxx"));
    assert_eq!(ok("$pad('ab')"), json!("ab"));
    assert!(cause("$pad('x', 1e15)").contains("wider than"));
    assert!(cause("$pad('x', -1e15)").contains("wider than"));
}

#[test]
fn parse_and_no_eval() {
    assert_eq!(
        ok("$parse('{\"a\": [1, 2.5, \"x\"]}')"),
        json!({"a": [1, 2.5, "x"]})
    );
    assert_eq!(ok("$parse('-0')"), json!(0));
    assert!(cause("$parse('{')").contains("could not parse the string as JSON"));
    assert!(cause("$parse(1)").contains("T0410"));
    assert_eq!(
        cause("$eval('1 + 1')"),
        "The JSONata expression '$eval('1 + 1')' specified for the field 'Output' threw an error during evaluation. T1006: Attempted to invoke a non-function"
    );
}

#[test]
fn undefined_names_the_field_path() {
    let e = run(json!("{% $doesNotExist %}"), json!({}), json!({})).unwrap_err();
    assert_eq!(e.error, "States.QueryEvaluationError");
    assert_eq!(
        e.cause,
        "The JSONata expression '$doesNotExist' specified for the field 'Output' returned nothing (undefined)."
    );
    let e = run(
        json!({"result": "{% $doesNotExist %}"}),
        json!({}),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(
        e.cause,
        "The JSONata expression '$doesNotExist' specified for the field 'Output/result' returned nothing (undefined)."
    );
    let e = run(
        json!({"a": {"b": [1, "{%$states.input.x%}"]}}),
        json!({}),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(e.cause, undefined_cause("$states.input.x", "Output/a/b[1]"));
    // A JSON null is a value, not undefined.
    assert_eq!(
        run(
            json!({"v": "{% $states.input.n %}"}),
            json!({"n": null}),
            json!({})
        )
        .unwrap(),
        json!({"v": null})
    );
    // `$` has no context item in Step Functions.
    assert_eq!(cause("$"), undefined_cause("$", "Output"));
}

#[test]
fn expr_api_without_template() {
    let e = compile(" $states.input.a + 1 ").unwrap();
    assert_eq!(e.source(), "$states.input.a + 1");
    let states = json!({"input": {"a": 1}});
    let vars = Map::new();
    let random = SplitMix::new(1);
    let b = Bindings {
        states: &states,
        variables: &vars,
        random: &random,
    };
    assert_eq!(e.eval(&b).unwrap(), Some(json!(2)));
    assert_eq!(e.eval_field("Seconds", &b).unwrap(), json!(2));
    let missing = compile("$states.input.b").unwrap();
    assert_eq!(missing.eval(&b).unwrap(), None);
    assert_eq!(
        missing
            .eval_field("Choices[0]/Condition", &b)
            .unwrap_err()
            .cause,
        undefined_cause("$states.input.b", "Choices[0]/Condition")
    );
    assert_eq!(
        compile("'a' + 1").unwrap().eval(&b).unwrap_err().cause,
        "The JSONata expression ''a' + 1' threw an error during evaluation. T2001: The left side of the + operator must evaluate to a number"
    );
}

#[test]
fn engine_errors_keep_jsonatas_code() {
    assert_eq!(
        cause("'a' + 1"),
        "The JSONata expression ''a' + 1' specified for the field 'Output' threw an error during evaluation. T2001: The left side of the + operator must evaluate to a number"
    );
    assert_eq!(
        cause("$number('x')"),
        "The JSONata expression '$number('x')' specified for the field 'Output' threw an error during evaluation. D3030: Cannot convert 'x' to number"
    );
    assert!(cause("$error('boom')").ends_with("D3137: boom"));
}

#[test]
fn recursion_and_time_are_bounded() {
    // Non-tail recursion without a base case: the depth bound stops it.
    let start = Instant::now();
    let c = cause("($f := function($n){ 1 + $f($n + 1) }; $f(0))");
    assert!(c.contains("D1011") || c.contains("U1001"), "{c}");
    // A tail call loops without growing the stack: only the clock stops it.
    let c = cause("($inf := function(){ $inf() }; $inf())");
    assert!(c.contains("D1012"), "{c}");
    let c = cause("$reduce([1..1000000], function($a, $x){ $a + $x })");
    assert!(!c.is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // Over-long sequences.
    assert!(cause("[1..10000000]").contains("D"), "sequence bound");
}

#[test]
fn deep_values_fail_instead_of_overflowing() {
    // A value nested ~2,000 levels deep: more than the conversion walks.
    let c = cause("$reduce([1..2000], function($a, $x){ {'a': $a} }, {})");
    assert!(c.contains("nested too deep"), "{c}");
    // A deeply nested expression is a syntax error, not a stack overflow.
    let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(compile(&deep).is_err());
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(compile(&deep).is_err());
}

#[test]
fn a_panic_in_the_engine_is_a_states_error() {
    // jsonata-core 2.2.13 panics here (functions.rs:327, a huge substring start); the catch
    // turns it into an error of this state instead of a dead worker.
    assert_eq!(
        cause("$substring('abc', 1e300)"),
        "The JSONata expression '$substring('abc', 1e300)' specified for the field 'Output' threw an error during evaluation: internal error of the JSONata engine"
    );
}

#[test]
fn states_and_variables_resolve() {
    let states = json!({
        "input": {"a": 1},
        "result": {"r": [1, 2]},
        "errorOutput": {"Error": "E", "Cause": "C"},
        "context": {"Execution": {"Name": "n"}, "Map": {"Item": {"Value": "Item1"}}}
    });
    let t = json!({
        "input": "{% $states.input.a %}",
        "result": "{% $states.result.r[1] %}",
        "error": "{% $states.errorOutput.Error & ':' & $states.errorOutput.Cause %}",
        "name": "{% $states.context.Execution.Name %}",
        "item": "{% $states.context.Map.Item.Value %}",
        "var": "{% $myVar.deep[0] %}"
    });
    let v = run_states(t, states.clone(), json!({"myVar": {"deep": ["d"]}})).unwrap();
    assert_eq!(
        v,
        json!({"input": 1, "result": 2, "error": "E:C", "name": "n", "item": "Item1", "var": "d"})
    );
    // A variable named like a function does not break calls of the function.
    let v = run(json!("{% $sum([1, 2]) %}"), json!({}), json!({"sum": 5})).unwrap();
    assert_eq!(v, json!(3));
    // A variable named `states` does not shadow `$states`.
    let v = run_states(json!("{% $states.input.a %}"), states, json!({"states": 5})).unwrap();
    assert_eq!(v, json!(1));
}

#[test]
fn local_bindings_do_not_leak_between_expressions() {
    let v = run(
        json!({"a": "{% ($x := 5; $x) %}", "b": "{% $x %}"}),
        json!({}),
        json!({}),
    );
    assert_eq!(v.unwrap_err().cause, undefined_cause("$x", "Output/b"));
    // …but a user variable of that name is seen.
    let v = run(
        json!({"a": "{% ($x := 5; $x) %}", "b": "{% $x %}"}),
        json!({}),
        json!({"x": 1}),
    );
    assert_eq!(v.unwrap(), json!({"a": 5, "b": 1}));
}

#[test]
fn numbers_keep_their_form() {
    assert_eq!(ok("1"), json!(1));
    assert!(ok("1").is_i64());
    assert_eq!(ok("0.1"), json!(0.1));
    assert_eq!(ok("3 / 2"), json!(1.5));
    // An integral computed number is an integer, as AWS prints it.
    assert!(ok("2 * 0.5").is_i64());
    assert!(ok("$sum([1, 2, 3]) + 1").is_i64());
    assert_eq!(ok("-0"), json!(0));
    assert_eq!(ok("1e20"), json!(100_000_000_000_000_000_000_u128 as f64));
    assert_eq!(ok("1e18"), json!(1_000_000_000_000_000_000_i64));
    // Containers passed through unchanged come back byte for byte, floats and big integers
    // included (an f64 could hold neither).
    let input =
        serde_json::from_str::<Value>(r#"{"a": 1.0, "big": 12345678901234567891, "l": [2.0]}"#)
            .unwrap();
    let v = out("$states.input", input.clone()).unwrap();
    assert_eq!(v.to_string(), input.to_string());
    assert_eq!(out("$states.input.l", input).unwrap().to_string(), "[2.0]");
    // Literal parts of a template are never converted.
    let v = run(
        serde_json::from_str(r#"{"f": 1.0, "e": "{% 1 %}"}"#).unwrap(),
        json!({}),
        json!({}),
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"{"f":1.0,"e":1}"#);
}

#[test]
fn object_key_order_is_kept() {
    let v = ok("{'z': 1, 'a': 2, 'm': 3}");
    assert_eq!(v.to_string(), r#"{"z":1,"a":2,"m":3}"#);
    let input: Value = serde_json::from_str(r#"{"z": 1, "a": 2}"#).unwrap();
    assert_eq!(
        out("$merge([$states.input, {'b': 3}])", input)
            .unwrap()
            .to_string(),
        r#"{"z":1,"a":2,"b":3}"#
    );
}

#[test]
fn a_function_is_not_a_result() {
    assert_eq!(
        cause("function($x){ $x }"),
        "The JSONata expression 'function($x){ $x }' specified for the field 'Output' returned an unsupported result type."
    );
}

#[test]
fn referenced_variables_best_effort() {
    let t = Template::compile(&json!({
        "a": "{% $a + $states.input.x %}",
        "b": ["{% ($x := 1; $x + $b) %}", "{% $map([1], function($p){ $p + $c }) %}"],
        "c": "{% $sum([1]) & '$notvar' & $a %}",
        "d": "$literal"
    }))
    .unwrap();
    assert_eq!(t.referenced_variables(), ["a", "b", "c"]);
    assert_eq!(
        compile("$v.w[$u = 1]").unwrap().referenced_variables(),
        ["v", "u"]
    );
}

#[test]
fn literal_templates_need_no_engine() {
    let t = Template::compile(&json!({"a": [1, {"b": null}], "c": " {% x %} "})).unwrap();
    assert!(t.is_literal());
    assert_eq!(
        run(json!({"a": [1, {"b": null}]}), json!({}), json!({})).unwrap(),
        json!({"a": [1, {"b": null}]})
    );
}

/// Cost of one evaluation of a small template; run with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn cost_of_one_evaluation() {
    let t = Template::compile(&json!("{% $states.input.a + 1 %}")).unwrap();
    let states = json!({"input": {"a": 1, "b": "x"}, "context": {"Execution": {"Name": "n"}}});
    let vars = Map::new();
    let random = SplitMix::new(1);
    let b = Bindings {
        states: &states,
        variables: &vars,
        random: &random,
    };
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        assert_eq!(t.eval("Output", &b).unwrap(), json!(2));
    }
    println!("one evaluation: {:?}", start.elapsed() / n);
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const FUNCTIONS: &[&str] = &[
        "string",
        "length",
        "substring",
        "substringBefore",
        "substringAfter",
        "uppercase",
        "lowercase",
        "trim",
        "pad",
        "contains",
        "split",
        "join",
        "match",
        "replace",
        "base64encode",
        "base64decode",
        "encodeUrlComponent",
        "decodeUrl",
        "number",
        "abs",
        "floor",
        "ceil",
        "round",
        "power",
        "sqrt",
        "formatNumber",
        "formatBase",
        "formatInteger",
        "parseInteger",
        "sum",
        "max",
        "min",
        "average",
        "boolean",
        "not",
        "exists",
        "count",
        "append",
        "sort",
        "reverse",
        "shuffle",
        "distinct",
        "zip",
        "keys",
        "lookup",
        "spread",
        "merge",
        "sift",
        "each",
        "type",
        "map",
        "filter",
        "reduce",
        "single",
        "fromMillis",
        "toMillis",
        "partition",
        "range",
        "hash",
        "random",
        "uuid",
        "parse",
    ];
    const EXTREMES: &[&str] = &[
        "1e300",
        "-1e300",
        "0",
        "-1",
        "2147483648",
        "-2147483649",
        "1.5",
        "'abc'",
        "''",
        "'é😀'",
        "[]",
        "[1, 'a', null]",
        "{}",
        "{'k': [1]}",
        "null",
        "true",
        "$nothing",
        "function($x){$x}",
        "/a*/",
        "'#,##0.00'",
        "'[Y0001]-[M01]'",
        "$states.input.a",
    ];

    fn json_value() -> impl Strategy<Value = Value> {
        let expr = prop_oneof![
            Just("{% $states.input %}".to_owned()),
            Just("{% $states.input.a %}".to_owned()),
            Just("{% $v %}".to_owned()),
            Just("{% $range(0, 3, 1) %}".to_owned()),
            Just("{% $partition([1,2,3], 2) %}".to_owned()),
            Just("{% $nope %}".to_owned()),
            Just("{% ( %}".to_owned()),
            "[ -~]{0,12}".prop_map(|s| format!("{{%{s}%}}")),
            "[ -~]{0,12}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            expr.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-z]{1,3}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn compile_never_panics(s in "\\PC{0,40}") {
            let _ = compile(&s);
        }

        #[test]
        fn jsonata_looking_strings_never_panic(s in "[-$a-z0-9 .,:;()\\[\\]{}'\"<>=!?&*/+%~^|#@`λ]{0,30}") {
            if let Ok(e) = compile(&s) {
                let states = json!({"input": {"a": [1, {"b": "c"}]}});
                let vars = Map::new();
                let random = SplitMix::new(3);
                let b = Bindings { states: &states, variables: &vars, random: &random };
                let _ = e.eval(&b);
            }
        }

        /// Built-ins and AWS's functions on extreme arguments, where a panic is likeliest.
        #[test]
        fn hostile_calls_never_escape(
            f in prop::sample::select(FUNCTIONS),
            args in prop::collection::vec(prop::sample::select(EXTREMES), 0..4),
        ) {
            let text = format!("${f}({})", args.join(", "));
            let _ = out(&text, json!({"a": [1, 2]}));
        }

        #[test]
        fn templates_never_panic(v in json_value(), input in json_value()) {
            if let Ok(t) = Template::compile(&v) {
                let states = json!({"input": input});
                let vars: Map<String, Value> = [("v".to_owned(), json!([1.5, {"k": 2}]))].into_iter().collect();
                let random = SplitMix::new(3);
                let b = Bindings { states: &states, variables: &vars, random: &random };
                let _ = t.eval("Output", &b);
                let _ = t.referenced_variables();
            }
        }
    }
}

#[test]
fn compiled_definitions_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Expr>();
    send_sync::<Template>();
}
