//! The JSONata expressions of the conformance corpus (cases recorded against AWS, see
//! `shared/conformance/asl`), copied here with their inputs and AWS's results so the tests do
//! not read the corpus at run time. The case each comes from is named in the comment.

use serde_json::{Value, json};

use super::tests::{run, run_states};

/// (template, `$states.input`, variables, AWS's value).
fn cases() -> Vec<(Value, Value, Value, Value)> {
    let fi = |v: Value| json!({ "FunctionInput": v });
    let partition =
        "{% $partition($states.input.FunctionInput.fst, $states.input.FunctionInput.snd) %}";
    let range = "{% $range($states.input.FunctionInput.fst, $states.input.FunctionInput.snd, $states.input.FunctionInput.trd) %}";
    let parse = "{% $parse($states.input.FunctionInput) %}";
    let mut v = vec![
        // test_array_partition_{1,3,6..10,12..16,18,19}
        (
            json!(partition),
            fi(json!({"fst": [0], "snd": 2})),
            json!({}),
            json!([[0]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0], "snd": 4})),
            json!({}),
            json!([[0]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1], "snd": 2})),
            json!({}),
            json!([[0, 1]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1], "snd": 3})),
            json!({}),
            json!([[0, 1]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1], "snd": 4})),
            json!({}),
            json!([[0, 1]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1], "snd": 5})),
            json!({}),
            json!([[0, 1]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2], "snd": 1})),
            json!({}),
            json!([[0], [1], [2]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2], "snd": 3})),
            json!({}),
            json!([[0, 1, 2]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2], "snd": 4})),
            json!({}),
            json!([[0, 1, 2]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2], "snd": 5})),
            json!({}),
            json!([[0, 1, 2]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2, 3], "snd": 1})),
            json!({}),
            json!([[0], [1], [2], [3]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2, 3], "snd": 2})),
            json!({}),
            json!([[0, 1], [2, 3]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2, 3], "snd": 4})),
            json!({}),
            json!([[0, 1, 2, 3]]),
        ),
        (
            json!(partition),
            fi(json!({"fst": [0, 1, 2, 3], "snd": 5})),
            json!({}),
            json!([[0, 1, 2, 3]]),
        ),
        // test_array_range_0, test_array_range_2 (one element: the number itself)
        (
            json!(range),
            fi(json!({"fst": 0, "snd": 9, "trd": 3})),
            json!({}),
            json!([0, 3, 6, 9]),
        ),
        (
            json!(range),
            fi(json!({"fst": 1, "snd": 9, "trd": 9})),
            json!({}),
            json!(1),
        ),
        // test_parse_{0,1,3,5}
        (json!(parse), fi(json!("-0")), json!({}), json!(0)),
        (json!(parse), fi(json!("1")), json!({}), json!(1)),
        (json!(parse), fi(json!("true")), json!({}), json!(true)),
        (
            json!(parse),
            fi(json!("[1, 2, \"HelloWorld\"]")),
            json!({}),
            json!([1, 2, "HelloWorld"]),
        ),
        // test_base_jsonata_regular_expressions[BASE, BASE_FALSE, BASE_SINGLE_QUOTE_FALSE]
        (
            json!(r#"{% $contains("hello$world", /^hello\$/) %}"#),
            json!({}),
            json!({}),
            json!(true),
        ),
        (
            json!(r#"{% $contains("hello$world", /^hello\ /) %}"#),
            json!({}),
            json!({}),
            json!(false),
        ),
        (
            json!(r"{% $contains('hello$world', /^hello\ /) %}"),
            json!({}),
            json!({}),
            json!(false),
        ),
        // test_escape_sequence_parsing[ESCAPE_SEQUENCES_JSONATA_COMPARISON_ASSIGN]
        (
            json!(r#"{% $var = '"' %}"#),
            json!({"Test\\\"\"Name\"": "Value\"\\"}),
            json!({"var": "\""}),
            json!(true),
        ),
        // test_map_state_item_selector[MAP_STATE_ITEM_SELECTOR_JSONATA]: Items
        (
            json!("{% $ItemsVar %}"),
            json!({}),
            json!({"ItemsVar": ["Item1", "Item2"]}),
            json!(["Item1", "Item2"]),
        ),
        // test_map_state_items_input_array[empty, singleton], test_map_state_items_input_types
        (
            json!("{% $states.input.items %}"),
            json!({"items": []}),
            json!({}),
            json!([]),
        ),
        (
            json!("{% $states.input.items %}"),
            json!({"items": [0]}),
            json!({}),
            json!([0]),
        ),
        (
            json!("{% $states.input.items %}"),
            json!({"items": true}),
            json!({}),
            json!(true),
        ),
        (
            json!("{% $states.input.items %}"),
            json!({"items": {"foo": "bar"}}),
            json!({}),
            json!({"foo": "bar"}),
        ),
        (
            json!("{% $states.input.items %}"),
            json!({"items": "string"}),
            json!({}),
            json!("string"),
        ),
        // test_fail_cause_jsonata, test_fail_error_jsonata
        (
            json!("{% $states.input.cause %}"),
            json!({"cause": "This failed to due an Exception."}),
            json!({}),
            json!("This failed to due an Exception."),
        ),
        (
            json!("{% $states.input.error %}"),
            json!({"error": "Exception"}),
            json!({}),
            json!("Exception"),
        ),
        // test_wait_timestamp_jsonata[*]: the expression's value (the Wait state parses it)
        (
            json!("{% $states.input.TimestampValue %}"),
            json!({"TimestampValue": "2016-03-14T01:59:00Z"}),
            json!({}),
            json!("2016-03-14T01:59:00Z"),
        ),
        (
            json!("{% $states.input.TimestampValue %}"),
            json!({"TimestampValue": "05-12-2016T21:29:29Z"}),
            json!({}),
            json!("05-12-2016T21:29:29Z"),
        ),
        // test_map_item_reader_base_json_max_items_jsonata: MaxItems, Arguments
        (
            json!("{% $maxItems := 2 %}"),
            json!({}),
            json!({}),
            json!(2),
        ),
        (
            json!({"Bucket": "{% $states.input.Bucket %}", "Key": "{% $states.input.Key %}"}),
            json!({"Bucket": "bucket-name", "Key": "file.json", "MaxItems": 2}),
            json!({}),
            json!({"Bucket": "bucket-name", "Key": "file.json"}),
        ),
        // test_output_to_state[JSONATA_OUTPUT_TO_JSONPATH]
        (
            json!({"foo": "foobar", "bar": "{% $states.input %}"}),
            json!({"input_data": "test"}),
            json!({}),
            json!({"foo": "foobar", "bar": {"input_data": "test"}}),
        ),
        // test_base_output_any_non_dict[JSONATA_EXPR, INT, FLOAT, BOOL, NULL, LIST_EMPY] and BASE_EMPTY
        (
            json!("{% $states.input %}"),
            json!({"input_value": "stringliteral"}),
            json!({}),
            json!({"input_value": "stringliteral"}),
        ),
        (json!(0), json!({}), json!({}), json!(0)),
        (json!(0.1), json!({}), json!({}), json!(0.1)),
        (json!(true), json!({}), json!({}), json!(true)),
        (json!(null), json!({}), json!({}), json!(null)),
        (json!([]), json!({}), json!({}), json!([])),
        (json!({}), json!({}), json!({}), json!({})),
    ];
    // Choice conditions: test_choice_aws_docs_scenario, test_choice_singleton_composite[*],
    // test_choice_unsorted_parameters_*, test_assign_in_choice / test_output_in_choice.
    let choice = [
        (
            "{% $not($states.input.type = 'Private') %}",
            json!({"type": "Private", "value": 22}),
            false,
        ),
        (
            "{% $states.input.value = 0 %}",
            json!({"type": "Private", "value": 22}),
            false,
        ),
        (
            "{% $states.input.value >= 20 and $states.input.value < 30 %}",
            json!({"type": "Private", "value": 22}),
            true,
        ),
        (
            "{% $states.input.type = 'Public' %}",
            json!({"type": "Public", "value": 22}),
            true,
        ),
        (
            r#"{% $states.input.str_value = "string literal" %}"#,
            json!({"str_value": "string literal"}),
            true,
        ),
        (
            "{% $states.input.result.done %}",
            json!({"result": {"done": false}}),
            false,
        ),
        (
            "{% $not($states.input.result.done) %}",
            json!({"result": {"done": false}}),
            true,
        ),
        (
            "{% $states.input.result.done %}",
            json!({"result": {"done": true}}),
            true,
        ),
        (
            "{% $states.input.condition %}",
            json!({"condition": false}),
            false,
        ),
        (
            "{% $states.input.condition %}",
            json!({"condition": true}),
            true,
        ),
    ];
    for (text, input, expected) in choice {
        v.push((json!(text), input, json!({}), json!(expected)));
    }
    v
}

#[test]
fn corpus_expressions_give_awss_values() {
    for (template, input, vars, expected) in cases() {
        let got = run(template.clone(), input, vars).unwrap_or_else(|e| panic!("{template}: {e}"));
        // Compared as JSON text, so 1 and 1.0 differ.
        assert_eq!(got.to_string(), expected.to_string(), "{template}");
    }
}

/// test_base_cases[BASE_EXPR] (Output), test_base_lambda[BASE_LAMBDA] (Arguments, Output),
/// test_map_state_item_selector (ItemSelector): `$states.context`, `$states.result`, variables.
#[test]
fn corpus_templates_with_context_result_and_variables() {
    let input = json!({"input_value": "string literal", "input_values": [1, 2, 3]});
    let vars = json!({"var_input_value": "string literal", "var_constant_1": 1});
    let context = json!({"Execution": {"Id": "arn:aws:states:us-east-1:111111111111:execution:sm:e", "Input": input, "Name": "e", "RedriveCount": 0}, "State": {"Name": "State0"}});
    let arguments = json!({
        "ja_states_input": "{% $states.input %}",
        "ja_var_access": "{% $var_input_value %}",
        "ja_expr": "{% $sum($states.input.input_values) + $var_constant_1 %}"
    });
    let result = run(arguments, input.clone(), vars.clone()).unwrap();
    assert_eq!(
        result.to_string(),
        json!({"ja_states_input": input, "ja_var_access": "string literal", "ja_expr": 7})
            .to_string()
    );
    let output = json!({
        "ja_var_access": "{% $var_input_value %}",
        "ja_expr": "{% $sum($states.input.input_values) + $var_constant_1 %}",
        "ja_states_input": "{% $states.input %}",
        "ja_states_result": "{% $states.result %}",
        "ja_states_result_access": "{% $states.result.ja_expr %}",
        "ja_states_context": "{% $states.context %}"
    });
    let states = json!({"input": input, "result": result, "context": context});
    let got = run_states(output, states, vars).unwrap();
    assert_eq!(
        got.to_string(),
        json!({
            "ja_var_access": "string literal", "ja_expr": 7, "ja_states_input": input,
            "ja_states_result": result, "ja_states_result_access": 7, "ja_states_context": context
        })
        .to_string()
    );
    let selector = json!({"map_item_value": "{% $states.context.Map.Item.Value %}", "var_sample": "{% $ItemsVar %}", "string_literal": "string literal"});
    let states =
        json!({"input": "Item2", "context": {"Map": {"Item": {"Index": 1, "Value": "Item2"}}}});
    let got = run_states(selector, states, json!({"ItemsVar": ["Item1", "Item2"]})).unwrap();
    assert_eq!(
        got,
        json!({"map_item_value": "Item2", "var_sample": ["Item1", "Item2"], "string_literal": "string literal"})
    );
}

/// test_base_cases[BASE_LITERALS]: strings that merely look like expressions stay literal.
#[test]
fn corpus_literals_stay_literal() {
    let output = json!({
        "constant_null": null, "constant_int": 0, "constant_float": 0.1, "constant_bool": true,
        "constant_str": "constant string", "constant_not_jsonata": " {% states.input %} ",
        "constant_varpath_states": "$states.input", "constant_varpath": "$no.such.var.path",
        "constant_jp_input": "$", "constant_jp_input.$": "$", "constant_jp_input_path": "$.input_value",
        "constant_jp_context": "$$", "constant_if": "States.Format('Format:{}', 101)",
        "constant_lst": [null, 0, 0.1, true, [], {"constant": 0}, " {% states.input %} ", "$states.input"]
    });
    let got = run(
        output.clone(),
        json!({"input_value": "string literal"}),
        json!({}),
    )
    .unwrap();
    assert_eq!(got.to_string(), output.to_string());
}

/// test_undefined_reference[BASE_UNDEFINED_OUTPUT, BASE_UNDEFINED_OUTPUT_FIELD]: AWS's causes
/// after the interpreter's "An error occurred while executing the state ..." prefix.
#[test]
fn corpus_undefined_causes() {
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
}
