//! The conformance corpus's intrinsic cases (real AWS results, recorded by LocalStack's
//! AWS-validated tests), copied here as literals so the tests never read the corpus. Each
//! case is named after its file in `conformance/asl/cases/`. Most run one expression on
//! `{"FunctionInput": ...}` and expect `{"FunctionResult": ...}`; we check the result.

use serde_json::{Value, json};

use super::{ok, run_with};

/// `expr` on `{"FunctionInput": {"fst": fst, "snd": snd}}` must give `expected`.
fn pair(expr: &str, cases: &[(Value, Value, Value)]) {
    for (fst, snd, expected) in cases {
        let input = json!({"FunctionInput": {"fst": fst, "snd": snd}});
        assert_eq!(&ok(expr, input), expected, "{expr} on {fst}, {snd}");
    }
}

/// `expr` on `{"FunctionInput": input}` must give `expected`.
fn single(expr: &str, cases: &[(Value, Value)]) {
    for (input, expected) in cases {
        let got = ok(expr, json!({ "FunctionInput": input }));
        assert_eq!(&got, expected, "{expr} on {input}");
    }
}

const PAIR_ARRAY: &str = "States.Array($.FunctionInput.fst, $.FunctionInput.snd)";

#[test]
fn test_array() {
    // intrinsic_functions.test_array.TestArray.test_array_0_0 and _2_0 .. _2_7
    assert_eq!(
        ok("States.Array()", json!({"FunctionInput": "HelloWorld"})),
        json!([])
    );
    let obj = json!({"Arg1": 1, "Arg2": []});
    pair(
        PAIR_ARRAY,
        &[
            (json!(""), json!(""), json!(["", ""])),
            (json!(" "), json!(" "), json!([" ", " "])),
            (json!(null), json!(null), json!([null, null])),
            (json!(1.1), json!(1.1), json!([1.1, 1.1])),
            (obj.clone(), obj.clone(), json!([obj, obj])),
        ],
    );
}

#[test]
fn test_array_contains() {
    // test_array_contains_1 .. _8
    pair(
        "States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)",
        &[
            (json!([]), json!([]), json!(false)),
            (json!([]), json!(1), json!(false)),
            (json!([[1, 2, 3], 2]), json!(null), json!(false)),
            (json!([[1, 2, 3], 2]), json!([1, 2, 3]), json!(true)),
            (
                json!([{"1": 2, "2": []}]),
                json!({"1": 2, "2": []}),
                json!(true),
            ),
            (json!([true, false]), json!(true), json!(true)),
            (json!([true, false]), json!(false), json!(true)),
        ],
    );
}

#[test]
fn test_array_length() {
    // test_array_length_0, and test_array_unique_0 (which, as recorded, calls ArrayLength)
    single(
        "States.ArrayLength($.FunctionInput)",
        &[
            (json!([1, 2, 3, 4, 5, 6, 7, 8, 9]), json!(9)),
            (
                json!([null, null, true, true, false, false, 1, 1, 1.1, 0, 0, "HelloWorld",
                    "HelloWorld", [], [], [null], [null], {"a": 1, "b": 2}, {"a": 1, "b": 2},
                    {"a": 1, "b": 1}]),
                json!(20),
            ),
        ],
    );
}

#[test]
fn test_array_partition() {
    // test_array_partition_0 .. _24
    let cases: Vec<(Value, Value, Value)> = [
        (json!([]), 1, json!([])),
        (json!([]), 3, json!([])),
        (json!([]), 4, json!([])),
        (json!([]), 5, json!([])),
        (json!([0]), 1, json!([[0]])),
        (json!([0]), 3, json!([[0]])),
        (json!([0]), 4, json!([[0]])),
        (json!([0]), 5, json!([[0]])),
        (json!([0, 1]), 2, json!([[0, 1]])),
        (json!([0, 1]), 3, json!([[0, 1]])),
        (json!([0, 1]), 4, json!([[0, 1]])),
        (json!([0, 1]), 5, json!([[0, 1]])),
        (json!([0, 1, 2]), 1, json!([[0], [1], [2]])),
        (json!([0, 1, 2]), 2, json!([[0, 1], [2]])),
        (json!([0, 1, 2]), 3, json!([[0, 1, 2]])),
        (json!([0, 1, 2]), 4, json!([[0, 1, 2]])),
        (json!([0, 1, 2]), 5, json!([[0, 1, 2]])),
        (json!([0, 1, 2, 3]), 1, json!([[0], [1], [2], [3]])),
        (json!([0, 1, 2, 3]), 2, json!([[0, 1], [2, 3]])),
        (json!([0, 1, 2, 3]), 4, json!([[0, 1, 2, 3]])),
        (json!([0, 1, 2, 3]), 5, json!([[0, 1, 2, 3]])),
    ]
    .into_iter()
    .map(|(a, n, e)| (a, json!(n), e))
    .collect();
    pair(
        "States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)",
        &cases,
    );
}

#[test]
fn test_array_range() {
    // test_array_range_0 .. _3
    for ((a, b, c), expected) in [
        ((0, 9, 3), json!([0, 3, 6, 9])),
        ((0, 10, 3), json!([0, 3, 6, 9])),
        ((1, 9, 9), json!([1])),
        ((1, 9, 2), json!([1, 3, 5, 7, 9])),
    ] {
        let input = json!({"FunctionInput": {"fst": a, "snd": b, "trd": c}});
        let expr =
            "States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)";
        assert_eq!(ok(expr, input), expected);
    }
}

#[test]
fn test_encode_decode() {
    // test_base_64_decode_0, test_base_64_encode_1
    single(
        "States.Base64Decode($.FunctionInput)",
        &[(json!(""), json!(""))],
    );
    single(
        "States.Base64Encode($.FunctionInput)",
        &[(json!("Data to encode"), json!("RGF0YSB0byBlbmNvZGU="))],
    );
}

#[test]
fn test_format() {
    // test_format_1_2, _1_3, _1_5
    single(
        "States.Format('Formatting argument {}.', $.FunctionInput)",
        &[
            (
                json!("HelloWorld"),
                json!("Formatting argument HelloWorld."),
            ),
            (json!(null), json!("Formatting argument null.")),
            (json!(1.1), json!("Formatting argument 1.1.")),
        ],
    );
    // test_format_2_0, _2_2, _2_5, _2_6
    let s = json!("{\"Arg1\": 1, \"Arg2\": []}");
    pair(
        "States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)",
        &[
            (
                json!(""),
                json!(""),
                json!("Formatting arguments fst= and snd=."),
            ),
            (
                json!("HelloWorld"),
                json!("HelloWorld"),
                json!("Formatting arguments fst=HelloWorld and snd=HelloWorld."),
            ),
            (
                json!(1.1),
                json!(1.1),
                json!("Formatting arguments fst=1.1 and snd=1.1."),
            ),
            (
                s.clone(),
                s,
                json!(
                    "Formatting arguments fst={\"Arg1\": 1, \"Arg2\": []} and snd={\"Arg1\": 1, \"Arg2\": []}."
                ),
            ),
        ],
    );
}

#[test]
fn test_context_json_path() {
    // test_generic.TestGeneric.test_context_json_path_0: an object prints as Java's Map
    // (the recorded ARN parts are placeholders; ours are literal).
    let arn = "arn:aws:states:us-east-1:111111111111:stateMachine:sm-1";
    let context =
        json!({"Execution": {"Name": "exec-1"}, "StateMachine": {"Id": arn, "Name": "sm-1"}});
    let got = run_with(
        "States.Format('Formatting arguments fst={} and snd={}.', $$.Execution.Name, $$.StateMachine)",
        &json!({"FunctionInput": null}),
        &context,
        &Value::Null,
    )
    .unwrap();
    assert_eq!(
        got,
        json!(format!(
            "Formatting arguments fst=exec-1 and snd={{Id={arn}, Name=sm-1}}."
        ))
    );
}

#[test]
fn test_nested_calls() {
    // test_generic.TestGeneric.test_nested_calls_2_0: the last '-' part of the machine's name.
    let got = run_with(
        "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
        &json!({"FunctionInput": null}),
        &json!({"StateMachine": {"Name": "test-sm-abc123"}}),
        &Value::Null,
    )
    .unwrap();
    assert_eq!(got, json!("abc123"));
}

#[test]
fn test_hash() {
    // test_hash_calculations.TestHashCalculations.test_hash_0, _2
    pair(
        "States.Hash($.FunctionInput.fst, $.FunctionInput.snd)",
        &[
            (
                json!("input data"),
                json!("MD5"),
                json!("812f45842bc6d66ee14572ce20db8e86"),
            ),
            (
                json!("input data"),
                json!("SHA-256"),
                json!("b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"),
            ),
        ],
    );
}

#[test]
fn test_json_manipulation() {
    // test_json_to_string_2 .. _5
    single(
        "States.JsonToString($.FunctionInput)",
        &[
            (json!(1), json!("1")),
            (json!(1.1), json!("1.1")),
            (json!(true), json!("true")),
            (json!("HelloWorld"), json!("\"HelloWorld\"")),
        ],
    );
    // test_string_to_json_2, _5, _7, _8
    single(
        "States.StringToJson($.FunctionInput)",
        &[
            (json!("null"), json!(null)),
            (json!("1.1"), json!(1.1)),
            (json!("\"HelloWorld\""), json!("HelloWorld")),
            (json!("[1, 2, \"HelloWorld\"]"), json!([1, 2, "HelloWorld"])),
        ],
    );
}

#[test]
fn test_math_add() {
    // test_math_operations.TestMathOperations.test_math_add_1 .. _19: Java's rounding.
    let cases: Vec<(Value, Value, Value)> = [
        (1.49, 1.5, 3),
        (-1.5, 0.0, -1),
        (0.5, 0.0, 1),
        (1.5, 0.0, 2),
        (-0.5, 0.5, 1),
        (-2.5, 0.0, -2),
        (1.5, 1.51, 4),
        (-1.49, -1.5, -2),
        (-1.5, -1.51, -3),
        (1.49, -1.49, 0),
        (1.51, 0.0, 2),
        (-1.49, 0.0, -1),
    ]
    .into_iter()
    // The recorded inputs write 0 as the integer 0.
    .map(|(a, b, e)| {
        (
            json!(a),
            if b == 0.0 { json!(0) } else { json!(b) },
            json!(e),
        )
    })
    .collect();
    pair(
        "States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)",
        &cases,
    );
    // Integers stay integers (an i64, not 3.0).
    let sum = ok(
        "States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)",
        json!({"FunctionInput": {"fst": 1.49, "snd": 1.5}}),
    );
    assert!(sum.is_i64());
}

#[test]
fn test_string_split() {
    // test_string_operations.TestStringOperations.test_string_split_0 .. _6
    pair(
        "States.StringSplit($.FunctionInput.fst, $.FunctionInput.snd)",
        &[
            (json!(" "), json!(","), json!([" "])),
            (json!(" , "), json!(","), json!([" ", " "])),
            (json!(", , ,"), json!(","), json!([" ", " "])),
            (json!(",,,,"), json!(","), json!([])),
            (
                json!("1,2,3,4,5"),
                json!(","),
                json!(["1", "2", "3", "4", "5"]),
            ),
            (
                json!("This.is+a,test=string"),
                json!(".+,="),
                json!(["This", "is", "a", "test", "string"]),
            ),
            (
                json!("split on T and \nnew line"),
                json!("T\n"),
                json!(["split on ", " and ", "new line"]),
            ),
        ],
    );
    // test_string_split_context_object_0
    let input = json!({"FunctionInput": "Value1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n"});
    let got = run_with(
        "States.StringSplit($$.Execution.Input.FunctionInput, ',')",
        &Value::Null,
        &json!({"Execution": {"Input": input}}),
        &Value::Null,
    )
    .unwrap();
    assert_eq!(
        got,
        json!([
            "Value1",
            "Value2",
            "Value3\nValue4",
            "Value5",
            "Value6\n",
            "\ntrue",
            "1",
            "'HelloWorld'\nNull",
            "None",
            "\n   \n"
        ])
    );
}

#[test]
fn base_test_state_fail_intrinsic() {
    // base.test_base.TestSnfBase.test_state_fail_intrinsic: ErrorPath and CausePath.
    let input = json!({"Error": "error string", "Cause": "cause string"});
    assert_eq!(
        ok("States.Format('{}', $.Error)", input.clone()),
        json!("error string")
    );
    assert_eq!(
        ok(
            "States.Format('This is a custom error message for {}, caused by {}.', $.Error, $.Cause)",
            input
        ),
        json!("This is a custom error message for error string, caused by cause string.")
    );
}

#[test]
fn assign_map_state_reference_in_intrinsic_function() {
    // assign...test_reference_in_map_state[MAP_STATE_REFERENCE_IN_INTRINSIC_FUNCTION]
    let vars = json!({"AnswerTemplate": "It's {}!"});
    for name in ["Charizard", "Pikachu", "Squirtle"] {
        let got = run_with(
            "States.Format($AnswerTemplate, $$.Map.Item.Value)",
            &json!({}),
            &json!({"Map": {"Item": {"Value": name}}}),
            &vars,
        )
        .unwrap();
        assert_eq!(got, json!(format!("It's {name}!")));
    }
}

#[test]
fn assign_from_intrinsic_function() {
    // assign...test_assign_from_value[BASE_ASSIGN_FROM_INTRINSIC_FUNCTION]: AWS ran every
    // one of these without failing (the values land in variables, not in the recorded
    // output; the expectations here are AWS's documented semantics).
    let input = json!({
        "inputArray": [1, 2, 3, 4, 5, 6], "duplicateArray": [1, 2, 2, 3, 3, 4],
        "rawString": "Hello World", "encodedString": "SGVsbG8gV29ybGQ=",
        "inputString": "Hash this string", "json1": {"a": 1, "b": 2}, "json2": {"c": 3, "d": 4},
        "jsonString": "{\"key\":\"value\"}", "jsonObject": {"test": "object"},
        "value1": 5, "value2": 3, "csvString": "a,b,c,d,e", "name": "John", "place": "LocalStack"
    });
    for (expr, expected) in [
        ("States.Array('a', 'b', 'c')", json!(["a", "b", "c"])),
        (
            "States.ArrayPartition($.inputArray, 2)",
            json!([[1, 2], [3, 4], [5, 6]]),
        ),
        ("States.ArrayContains($.inputArray, 5)", json!(true)),
        ("States.ArrayRange(1, 10, 2)", json!([1, 3, 5, 7, 9])),
        ("States.ArrayGetItem($.inputArray, 2)", json!(3)),
        ("States.ArrayLength($.inputArray)", json!(6)),
        ("States.ArrayUnique($.duplicateArray)", json!([1, 2, 3, 4])),
        (
            "States.Base64Encode($.rawString)",
            json!("SGVsbG8gV29ybGQ="),
        ),
        ("States.Base64Decode($.encodedString)", json!("Hello World")),
        (
            "States.Hash($.inputString, 'SHA-256')",
            json!("1cac63f39fd68d8c531f27b807610fb3d50f0fc3f186995767fb6316e7200a3e"),
        ),
        (
            "States.JsonMerge($.json1, $.json2, false)",
            json!({"a": 1, "b": 2, "c": 3, "d": 4}),
        ),
        ("States.StringToJson($.jsonString)", json!({"key": "value"})),
        (
            "States.JsonToString($.jsonObject)",
            json!("{\"test\":\"object\"}"),
        ),
        ("States.MathAdd($.value1, $.value2)", json!(8)),
        (
            "States.StringSplit($.csvString, ',')",
            json!(["a", "b", "c", "d", "e"]),
        ),
        (
            "States.Format('Hello {}, welcome to {}!', $.name, $.place)",
            json!("Hello John, welcome to LocalStack!"),
        ),
    ] {
        assert_eq!(ok(expr, input.clone()), expected, "{expr}");
    }
    assert!(ok("States.UUID()", input).is_string());
}

#[test]
fn scenarios_reentrant_map() {
    // scenarios.test_base_scenarios...test_map_state_config_distributed_reentrant and
    // test_map_state_legacy_reentrant
    assert_eq!(
        ok("States.ArrayRange(0, 3, 1)", json!({})),
        json!([0, 1, 2, 3])
    );
    assert_eq!(
        ok("States.MathAdd($.Iterations, -1)", json!({"Iterations": 1})),
        json!(0)
    );
}

#[test]
fn assign_reference_in_iterator_outer_scope() {
    // assign...test_reference_assign[BASE_REFERENCE_IN_ITERATOR_OUTER_SCOPE]: $bias is 4.3.
    let vars = json!({"xCurrent": 9, "yCurrent": 44, "zCurrent": 6, "bias": 4.3});
    let got = run_with(
        "States.MathAdd(States.MathAdd(States.MathAdd($yCurrent, $xCurrent), $zCurrent), $bias)",
        &json!({}),
        &Value::Null,
        &vars,
    )
    .unwrap();
    assert_eq!(got, json!(63));
}
