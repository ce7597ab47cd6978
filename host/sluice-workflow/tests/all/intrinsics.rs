//! The `States.*` intrinsic functions, called from Parameters.

use serde_json::{Value, json};

use crate::support::{exec, failed, output};

fn eval(expr: &str, input: Value) -> Value {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": expr}, "End": true}}});
    output(&def, input)["v"].clone()
}

#[test]
fn format_and_strings() {
    let i = json!({"name": "Ann", "n": 3, "csv": "a,b,,c"});
    assert_eq!(
        eval(
            "States.Format('Hi {}, you have {} items', $.name, $.n)",
            i.clone()
        ),
        json!("Hi Ann, you have 3 items")
    );
    assert_eq!(
        eval("States.StringSplit($.csv, ',')", i.clone()),
        json!(["a", "b", "c"])
    );
    assert_eq!(eval("States.Format('a\\{b\\}c')", i), json!("a{b}c"));
}

#[test]
fn json_conversions() {
    let i = json!({"s": "{\"a\":[1,2]}", "o": {"b": true}});
    assert_eq!(
        eval("States.StringToJson($.s)", i.clone()),
        json!({"a": [1, 2]})
    );
    assert_eq!(
        eval("States.JsonToString($.o)", i.clone()),
        json!("{\"b\":true}")
    );
    assert_eq!(
        eval(
            "States.JsonMerge($.o, States.StringToJson('{\"c\":1}'), false)",
            i
        ),
        json!({"b": true, "c": 1})
    );
}

#[test]
fn arrays() {
    let i = json!({"xs": [1, 2, 2, 3, 4], "one": 1});
    assert_eq!(
        eval("States.Array($.one, 'two', $.xs[0])", i.clone()),
        json!([1, "two", 1])
    );
    assert_eq!(
        eval("States.ArrayPartition($.xs, 2)", i.clone()),
        json!([[1, 2], [2, 3], [4]])
    );
    assert_eq!(
        eval("States.ArrayContains($.xs, 3)", i.clone()),
        json!(true)
    );
    assert_eq!(
        eval("States.ArrayContains($.xs, 9)", i.clone()),
        json!(false)
    );
    assert_eq!(
        eval("States.ArrayRange(1, 9, 3)", i.clone()),
        json!([1, 4, 7])
    );
    assert_eq!(eval("States.ArrayGetItem($.xs, 3)", i.clone()), json!(3));
    assert_eq!(eval("States.ArrayLength($.xs)", i.clone()), json!(5));
    assert_eq!(eval("States.ArrayUnique($.xs)", i), json!([1, 2, 3, 4]));
}

#[test]
fn encodings_and_hashes() {
    let i = json!({"s": "hello"});
    assert_eq!(
        eval("States.Base64Encode($.s)", i.clone()),
        json!("aGVsbG8=")
    );
    assert_eq!(
        eval("States.Base64Decode('aGVsbG8=')", i.clone()),
        json!("hello")
    );
    assert_eq!(
        eval("States.Hash($.s, 'SHA-256')", i.clone()),
        json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
    assert_eq!(
        eval("States.Hash($.s, 'MD5')", i),
        json!("5d41402abc4b2a76b9719d911017c592")
    );
}

#[test]
fn math() {
    let i = json!({"a": 5});
    assert_eq!(eval("States.MathAdd($.a, -7)", i.clone()), json!(-2));
    for _ in 0..3 {
        let r = eval("States.MathRandom(10, 20)", i.clone())
            .as_i64()
            .unwrap();
        assert!((10..20).contains(&r), "{r}");
    }
}

#[test]
fn uuid_is_a_version_4_uuid() {
    let u = eval("States.UUID()", json!({}));
    let u = u.as_str().unwrap();
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "4");
}

#[test]
fn nested_calls_and_the_context() {
    assert_eq!(
        eval(
            "States.Format('{}-{}', $$.Execution.Name, States.ArrayLength(States.Array(1, 2)))",
            json!({})
        ),
        json!("exec-2")
    );
}

#[test]
fn an_intrinsic_failure_fails_with_states_intrinsic_failure() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "States.ArrayGetItem($.xs, 5)"}, "End": true}}});
    assert_eq!(
        failed(&exec(&def, json!({"xs": [1]}))).0,
        "States.IntrinsicFailure"
    );
}
