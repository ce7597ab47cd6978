//! The functions that make or read text: Format, JsonToString, StringToJson, JsonMerge.

use serde_json::json;

use super::*;

#[test]
fn format_fills_placeholders_in_order() {
    let input = json!({"name": "John", "place": "LocalStack"});
    assert_eq!(
        ok(
            "States.Format('Hello {}, welcome to {}!', $.name, $.place)",
            input
        ),
        json!("Hello John, welcome to LocalStack!")
    );
    assert_eq!(
        ok("States.Format('no placeholders')", json!({})),
        json!("no placeholders")
    );
    assert_eq!(ok("States.Format('{}{}', 1, 'x')", json!({})), json!("1x"));
}

#[test]
fn format_prints_values_the_java_way() {
    let input = json!({"o": {"Arg1": 1, "Arg2": [], "s": "t", "n": null}, "f": 1e20, "g": 100.0});
    assert_eq!(
        ok("States.Format('{} {} {}', $.o, $.f, $.g)", input),
        json!("{Arg1=1, Arg2=[], s=t, n=null} 1.0E20 100.0")
    );
    assert_eq!(
        ok(
            "States.Format('{}', States.Array('a', 1, true, null, States.Array()))",
            json!({})
        ),
        json!("[a, 1, true, null, []]")
    );
}

#[test]
fn format_escapes() {
    // `\{` and `\}` are braces, not a placeholder; `\'` a quote; `\\` a backslash.
    assert_eq!(
        ok(
            r#"States.Format('\{"key":"{}"\}', $.value)"#,
            json!({"value": "test123"})
        ),
        json!(r#"{"key":"test123"}"#)
    );
    assert_eq!(
        ok(r"States.Format('It\'s \\ {} \{\}', 'x')", json!({})),
        json!(r"It's \ x {}")
    );
    // An escaped backslash before a brace leaves the brace unescaped (AWS's cause, from a
    // definition doubly escaped by the CDK).
    assert_eq!(
        fails(
            r#"States.Format('Hello {}, as JSON: \\{ "name": "Bob" \\}', $.n)"#,
            json!({"n": "x"})
        ),
        "Invalid template in States.Format: matching '}' not found for '{'."
    );
    assert_eq!(
        fails("States.Format('a } b')", json!({})),
        "Invalid template in States.Format: matching '{' not found for '}'."
    );
}

#[test]
fn format_templates_from_paths_and_variables() {
    let vars = json!({"AnswerTemplate": "It's {}!"});
    assert_eq!(
        run_with(
            "States.Format($AnswerTemplate, $$.Map.Item.Value)",
            &json!({}),
            &json!({"Map": {"Item": {"Value": "Pikachu"}}}),
            &vars
        )
        .unwrap(),
        json!("It's Pikachu!")
    );
    assert_eq!(
        ok(
            "States.Format($.t, $.n)",
            json!({"t": "Hello, my name is {}.", "n": "Arnav"})
        ),
        json!("Hello, my name is Arnav.")
    );
}

#[test]
fn format_failures() {
    let c = fails("States.Format('{} {}', 1)", json!({}));
    assert!(
        c.contains("2 placeholders '{}' but 1 argument was given"),
        "{c}"
    );
    let c = fails("States.Format('x', 1)", json!({}));
    assert!(c.contains("0 placeholders"), "{c}");
    let c = fails("States.Format($.t)", json!({"t": 5}));
    assert_eq!(
        c,
        "Invalid arguments in States.Format: argument 1 must be a string (the template), but got 5."
    );
    assert_eq!(
        fails("States.Format('{x}', 1)", json!({})),
        "Invalid template in States.Format: matching '}' not found for '{'."
    );
}

// ---- JSON -------------------------------------------------------------------------------

#[test]
fn json_to_string_is_compact_and_keeps_key_order() {
    let input = json!({"o": {"z": 1, "a": [1.5, "x\"y\n", null, true, {}], "m": 1e-7}});
    assert_eq!(
        ok("States.JsonToString($.o)", input),
        json!(r#"{"z":1,"a":[1.5,"x\"y\n",null,true,{}],"m":1.0E-7}"#)
    );
    assert_eq!(
        ok("States.JsonToString($.c)", json!({"c": "\u{1}"})),
        json!("\"\\u0001\"")
    );
    assert_eq!(
        ok(
            "States.JsonToString(States.Array(1, $.a))",
            json!({"a": "b"})
        ),
        json!("[1,\"b\"]")
    );
}

#[test]
fn string_to_json_parses_and_refuses() {
    assert_eq!(
        ok(
            "States.StringToJson($.s)",
            json!({"s": "{\"foo\": \"bar\", \"n\": [1, 2.0]}"})
        ),
        json!({"foo": "bar", "n": [1, 2.0]})
    );
    let c = fails("States.StringToJson($.s)", json!({"s": "{nope"}));
    assert!(
        c.starts_with("Invalid arguments in States.StringToJson: the argument is not JSON text"),
        "{c}"
    );
    let c = fails("States.StringToJson($.s)", json!({"s": ""}));
    assert!(c.contains("not JSON text"), "{c}");
    let c = fails("States.StringToJson($.s)", json!({"s": {"a": 1}}));
    assert_eq!(
        c,
        "Invalid arguments in States.StringToJson: argument 1 must be a string, but got {\"a\":1}."
    );
}

#[test]
fn json_merge_is_shallow_and_second_wins() {
    let input = json!({
        "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
        "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}
    });
    let merged = ok("States.JsonMerge($.json1, $.json2, false)", input.clone());
    assert_eq!(merged, json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}));
    let keys: Vec<_> = merged.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert!(
        fails("States.JsonMerge($.json1, $.json2, true)", input.clone())
            .contains("deep merging is not supported")
    );
    assert!(
        fails("States.JsonMerge($.json1, $.json2, 'false')", input.clone())
            .contains("argument 3 must be the boolean false")
    );
    assert!(
        fails("States.JsonMerge($.json1, 1, false)", input.clone())
            .contains("argument 2 must be an object")
    );
    assert!(
        fails("States.JsonMerge(States.Array(), $.json2, false)", input)
            .contains("argument 1 must be an object")
    );
}
