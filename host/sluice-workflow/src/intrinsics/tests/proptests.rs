//! Property tests: no input makes the parser or a function panic, a parsed call prints back
//! to itself, and a function's own failures are always `States.IntrinsicFailure`.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::env::SplitMix;
use crate::error::names;
use crate::intrinsics::parse::escape;
use crate::intrinsics::*;

/// Any JSON value, with strings full of the characters the syntax cares about.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-5_i64..20).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        (-1e4_f64..1e4).prop_map(Value::from),
        "[a-z{}\\\\'\",=. \u{e9}\u{2713}]{0,12}".prop_map(Value::String),
        Just(Value::String("SHA-256".into())),
        Just(Value::String("eyJhIjoxfQ==".into())),
        Just(Value::String("{\"a\": [1, 2.5]}".into())),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Text made of the syntax's own pieces, to get past the first character more often than
/// random strings do.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = prop::sample::select(vec![
        "States.Format",
        "States.Array",
        "States.MathAdd",
        "States.JsonToString",
        "States.",
        "(",
        ")",
        ",",
        " ",
        "'",
        "'x'",
        "\\",
        "{",
        "}",
        "{}",
        "$",
        "$.a",
        "$$",
        "$v",
        "[",
        "]",
        "['a, b']",
        "?(@.a)",
        "\"",
        "1",
        "-",
        ".",
        "e",
        "0",
        "true",
        "null",
        "\u{2713}",
    ]);
    prop::collection::vec(tokens, 0..40).prop_map(|t| t.concat())
}

fn check_parse(text: &str) {
    if let Ok(call) = parse(text) {
        let printed = call.to_string();
        assert_eq!(
            parse(&printed).as_ref(),
            Ok(&call),
            "{text} printed as {printed}"
        );
    }
}

/// Evaluates `text` with `args` as `$.a0`, `$.a1`, ...: no panic, and a failure is the
/// function's own.
fn check_eval(text: &str, args: &[Value]) {
    let call = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let resolve = |path: &str| -> Result<Value, StatesError> {
        let i: usize = path.trim_start_matches("$.a").parse().unwrap_or(0);
        Ok(args.get(i).cloned().unwrap_or(Value::Null))
    };
    if let Err(e) = call.eval(&resolve, &SplitMix::new(3)) {
        assert_eq!(e.error, names::INTRINSIC_FAILURE, "{text}: {e}");
        assert!(!e.cause.is_empty());
    }
}

/// Equal, but for doubles within a relative 1e-15.
fn nearly_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| nearly_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| nearly_equal(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_any_string(text in any::<String>()) {
        check_parse(&text);
        check_parse(&format!("States.Array({text})"));
        check_parse(&format!("States.Format('{text}')"));
    }

    #[test]
    fn parse_never_panics_on_token_soup(text in token_soup()) {
        check_parse(&text);
        check_parse(&format!("States.Format({text}"));
    }

    #[test]
    fn every_function_takes_any_json(
        which in 0..Function::ALL.len(),
        extra in 0_usize..3,
        args in prop::collection::vec(json_value(), 0..6),
    ) {
        let f = Function::ALL[which];
        let (least, most) = f.arity();
        let n = (least + extra).min(most.unwrap_or(usize::MAX));
        let paths: Vec<String> = (0..n).map(|i| format!("$.a{i}")).collect();
        check_eval(&format!("{f}({})", paths.join(", ")), &args);
    }

    #[test]
    fn format_takes_any_literal_template(
        template in "[a-z{}\\\\' ]{0,16}",
        args in prop::collection::vec(json_value(), 0..4),
    ) {
        let paths: String = (0..args.len()).map(|i| format!(", $.a{i}")).collect();
        // Raw, so unknown escapes and unbalanced braces reach the parser and template too.
        if let Ok(call) = parse(&format!("States.Format('{template}'{paths})")) {
            check_parse(&call.to_string());
        }
        check_eval(&format!("States.Format('{}'{paths})", escape(&template)), &args);
        check_eval(&format!("States.Format($.a0{})", if args.len() > 1 { ", $.a1" } else { "" }), &args);
    }

    #[test]
    fn nested_calls_take_any_json(args in prop::collection::vec(json_value(), 0..4)) {
        for text in [
            "States.JsonToString(States.Array($.a0, $.a1))",
            "States.StringToJson(States.JsonToString($.a0))",
            "States.Format('{} {}', States.ArrayUnique($.a0), States.Hash($.a1, $.a2))",
            "States.ArrayGetItem(States.StringSplit($.a0, ','), States.MathAdd(States.ArrayLength($.a1), -1))",
        ] {
            check_eval(text, &args);
        }
    }

    #[test]
    fn json_to_string_then_string_to_json_is_identity(v in json_value()) {
        let resolve = |_: &str| Ok(v.clone());
        let back = parse("States.StringToJson(States.JsonToString($))")
            .unwrap()
            .eval(&resolve, &SplitMix::new(0))
            .unwrap();
        // Doubles printed Java's way read back as the same doubles, but for serde_json's
        // parser, which without its `float_roundtrip` feature may be an ulp off.
        prop_assert!(nearly_equal(&back, &v), "{} became {}", v, back);
    }
}
