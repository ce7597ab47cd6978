//! The call syntax: arguments, white space, paths, escapes, arity, nesting.

use serde_json::{Value, json};

use super::*;

#[test]
fn is_call_is_the_states_prefix() {
    assert!(is_call("States.Format('x')"));
    assert!(is_call("States.Nope()"));
    assert!(!is_call("$.States.Format"));
    assert!(!is_call(" States.Format('x')"));
    assert!(!is_call("$$"));
}

#[test]
fn parses_every_kind_of_argument() {
    let call = parse("States.Array('a b', -1, 2.5e3, true, false, null, $.x, $$.Execution.Id, $var.y, States.UUID())").unwrap();
    assert_eq!(call.function(), Function::Array);
    assert_eq!(
        call.args(),
        &[
            Arg::Literal(json!("a b")),
            Arg::Literal(json!(-1)),
            Arg::Literal(json!(2500.0)),
            Arg::Literal(json!(true)),
            Arg::Literal(json!(false)),
            Arg::Literal(Value::Null),
            Arg::Path("$.x".into()),
            Arg::Path("$$.Execution.Id".into()),
            Arg::Path("$var.y".into()),
            Arg::Call(parse("States.UUID()").unwrap()),
        ]
    );
    // Integers stay integers, floats floats.
    assert!(matches!(&call.args()[1], Arg::Literal(Value::Number(n)) if n.is_i64()));
    assert!(matches!(&call.args()[2], Arg::Literal(Value::Number(n)) if n.is_f64()));
}

#[test]
fn white_space_is_allowed_between_tokens() {
    let a = parse("States.MathAdd(\n\t$.a ,  1 )  ").unwrap();
    let b = parse("States.MathAdd($.a,1)").unwrap();
    assert_eq!(a, b);
    assert_eq!(parse("States.UUID( )").unwrap().args(), &[]);
}

#[test]
fn paths_keep_brackets_quotes_and_parentheses_whole() {
    let call = parse(
        "States.Array($['a, b'], $.abc.['def ghi'], $[?(@.x == 1)].y, $.a.length(), $[0], $, $$)",
    )
    .unwrap();
    assert_eq!(
        call.paths(),
        vec![
            "$['a, b']",
            "$.abc.['def ghi']",
            "$[?(@.x == 1)].y",
            "$.a.length()",
            "$[0]",
            "$",
            "$$"
        ]
    );
}

#[test]
fn paths_lists_nested_paths_in_order() {
    let call = parse(
        "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), States.MathAdd(States.ArrayLength(States.StringSplit($.b, '-')), -1))",
    )
    .unwrap();
    assert_eq!(call.paths(), vec!["$$.StateMachine.Name", "$.b"]);
}

#[test]
fn string_escapes() {
    let call = parse(r"States.Array('it\'s', '\{\}', 'back\\slash', '{}')").unwrap();
    assert_eq!(
        call.args(),
        &[
            Arg::Literal(json!("it's")),
            Arg::Literal(json!("{}")),
            Arg::Literal(json!(r"back\slash")),
            Arg::Literal(json!("{}")),
        ]
    );
    assert!(parse_fails(r"States.Array('a\nb')").contains("backslash"));
    assert!(parse_fails(r"States.Array('a\')").contains("unterminated"));
    assert!(parse_fails(r"States.Array('a\").contains("backslash"));
}

#[test]
fn unknown_functions_and_wrong_arities_are_refused() {
    assert!(parse_fails("States.Nope(1)").contains("unknown intrinsic function 'States.Nope'"));
    assert!(parse_fails("States.format('x')").contains("unknown"));
    assert!(parse_fails("States.Format()").contains("takes at least 1 argument"));
    assert!(parse_fails("States.UUID(1)").contains("takes 0 arguments, but got 1"));
    assert!(parse_fails("States.MathRandom(1)").contains("takes 2 to 3 arguments"));
    assert!(parse_fails("States.MathRandom(1, 2, 3, 4)").contains("2 to 3"));
    assert!(parse_fails("States.JsonMerge($.a, $.b)").contains("takes 3 arguments"));
    assert!(parse_fails("States.ArrayLength()").contains("takes 1 argument,"));
    for f in Function::ALL {
        let (least, most) = f.arity();
        let args = |n: usize| vec!["1"; n].join(", ");
        assert!(parse(&format!("{f}({})", args(least))).is_ok(), "{f}");
        if least > 0 {
            assert!(parse(&format!("{f}({})", args(least - 1))).is_err(), "{f}");
        }
        if let Some(m) = most {
            assert!(parse(&format!("{f}({})", args(m + 1))).is_err(), "{f}");
        }
        assert_eq!(Function::from_name(f.name()), Some(f));
    }
}

#[test]
fn bad_syntax_is_refused() {
    for text in [
        "",
        "States.",
        "States.Format",
        "States.Format('x'",
        "States.Format('x',)",
        "States.Format(,'x')",
        "States.Format('x') extra",
        "States.Format('x'))",
        "States.Array(01)",
        "States.Array(1.)",
        "States.Array(.5)",
        "States.Array(+1)",
        "States.Array(1e)",
        "States.Array(1e999)",
        "States.Array(12abc)",
        "States.Array(True)",
        "States.Array(\"x\")",
        "States.Array($['a)",
        "States.Array($[0)",
        "States.Array($.a(()",
        "States.Array(States.Nope())",
        "States.Array(1 2)",
        "$.a",
    ] {
        assert!(parse(text).is_err(), "{text:?} parsed");
    }
    assert!(parse_fails("States.Format('x') extra").contains("at character 19"));
}

#[test]
fn nesting_is_limited_to_ten() {
    let nest = |n: usize| {
        let mut s = "1".to_string();
        for _ in 0..n {
            s = format!("States.Array({s})");
        }
        s
    };
    assert!(parse(&nest(MAX_NESTING)).is_ok());
    assert!(parse_fails(&nest(MAX_NESTING + 1)).contains("more than 10 nested"));
    // Far deeper text fails the same way, without exhausting the stack.
    assert!(parse(&nest(100_000)).is_err());
}

#[test]
fn display_round_trips() {
    for text in [
        r"States.Format('a \{ \} \' \\ {}', $.x)",
        "States.Array('it\\'s', 1, -2.5, true, null, $$.Map.Item.Value, States.UUID())",
        "States.JsonToString(States.Array(1, $.a))",
    ] {
        let call = parse(text).unwrap();
        assert_eq!(parse(&call.to_string()).unwrap(), call, "{call}");
    }
}
