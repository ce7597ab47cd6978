use serde_json::{Map, Value, json};

use super::*;

fn p(text: &str) -> Path {
    Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn sel(text: &str, doc: &Value) -> Value {
    p(text)
        .select(doc)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str, doc: &Value) -> String {
    match p(text).select(doc) {
        Ok(v) => panic!("{text} selected {v}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn roots() {
    assert_eq!(p("$").root(), &Root::Input);
    assert_eq!(p("$.a").root(), &Root::Input);
    assert_eq!(p("$[0]").root(), &Root::Input);
    assert_eq!(p("$$").root(), &Root::Context);
    assert_eq!(p("$$.Map.Item.Value").root(), &Root::Context);
    assert_eq!(p("$x").root(), &Root::Variable("x".into()));
    assert_eq!(
        p("$constant_obj.in_obj_constant_lst").root(),
        &Root::Variable("constant_obj".into())
    );
    assert_eq!(p("$v[0]").root(), &Root::Variable("v".into()));
    assert_eq!(p("$.a").text(), "$.a");
    for bad in ["", "a", ".a", "$1x", "$x-y", "$ $", "@.a"] {
        assert!(Path::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn scope_picks_the_document() {
    let input = json!({"a": 1});
    let context = json!({"Map": {"Item": {"Value": "A", "Index": 0}}, "State": {"Name": "S"}});
    let mut variables = Map::new();
    variables.insert("x".into(), json!({"f": [1, 2]}));
    variables.insert("answer".into(), json!(42));
    let scope = Scope {
        input: &input,
        context: &context,
        variables: &variables,
    };
    assert_eq!(scope.resolve(&p("$.a")).unwrap(), json!(1));
    assert_eq!(scope.resolve(&p("$")).unwrap(), input);
    assert_eq!(scope.resolve(&p("$$.Map.Item.Value")).unwrap(), json!("A"));
    assert_eq!(scope.resolve(&p("$$.State.Name")).unwrap(), json!("S"));
    assert_eq!(scope.resolve(&p("$x.f[1]")).unwrap(), json!(2));
    assert_eq!(scope.resolve(&p("$answer")).unwrap(), json!(42));
    let e = scope.resolve(&p("$nope.a")).unwrap_err();
    assert_eq!(e.path, "$nope.a");
    assert_eq!(e.message, "The variable 'nope' is not defined");
    let e = scope
        .resolve(&p("$$.Execution.Input.no_such_jsonpath"))
        .unwrap_err();
    assert_eq!(e.message, "Missing property in path $['Execution']");
}

#[test]
fn names_and_brackets() {
    let doc = json!({
        "a": {"b": {"c": 1}},
        "delivery-partner": "UQS",
        "sub-values": [1],
        "Test\\\"\"Name\"": "Value\"\\",
        "with space": 2,
        "it's": 3,
        "a*b": 4,
        "$": 5,
        "Key": "upper", "key": "lower"
    });
    assert_eq!(sel("$.a.b.c", &doc), json!(1));
    assert_eq!(sel("$['a']['b']['c']", &doc), json!(1));
    assert_eq!(sel("$[\"a\"][\"b\"].c", &doc), json!(1));
    assert_eq!(sel("$.['a'].b", &doc), json!({"c": 1}));
    assert_eq!(sel("$[ 'a' ]", &doc), json!({"b": {"c": 1}}));
    assert_eq!(sel("$.delivery-partner", &doc), json!("UQS"));
    assert_eq!(sel("$.sub-values", &doc), json!([1]));
    assert_eq!(sel("$['with space']", &doc), json!(2));
    assert_eq!(sel("$[\"it's\"]", &doc), json!(3));
    assert_eq!(sel("$.a*b", &doc), json!(4));
    assert_eq!(sel("$.$", &doc), json!(5));
    // Case-sensitive.
    assert_eq!(sel("$.Key", &doc), json!("upper"));
    assert_eq!(sel("$.key", &doc), json!("lower"));
    // The corpus's escape case: the backslash stays part of the name.
    assert_eq!(sel("$['Test\\\"\"Name\"']", &doc), json!("Value\"\\"));
    assert!(Path::parse("$.with space").is_err());
    assert!(Path::parse("$['a'").is_err());
    assert!(Path::parse("$['a]").is_err());
    assert!(Path::parse("$['a' 'b']").is_err());
    assert!(Path::parse("$.").is_err());
    assert!(Path::parse("$..").is_err());
    assert!(Path::parse("$...a").is_err());
    assert!(Path::parse("$.a.").is_err());
    assert!(Path::parse("$[]").is_err());
    assert!(Path::parse("$[a]").is_err());
}

#[test]
fn indexes_slices_unions() {
    let doc = json!({"items": [0, 1, 2, 3, 4], "o": {"a": 1, "b": 2, "c": 3}});
    assert_eq!(sel("$.items[0]", &doc), json!(0));
    assert_eq!(sel("$.items[4]", &doc), json!(4));
    assert_eq!(sel("$.items[-1]", &doc), json!(4));
    assert_eq!(sel("$.items[-5]", &doc), json!(0));
    assert_eq!(sel("$.items[1:3]", &doc), json!([1, 2]));
    assert_eq!(sel("$.items[1:]", &doc), json!([1, 2, 3, 4]));
    assert_eq!(sel("$.items[:2]", &doc), json!([0, 1]));
    assert_eq!(sel("$.items[-2:]", &doc), json!([3, 4]));
    assert_eq!(sel("$.items[:-2]", &doc), json!([0, 1, 2]));
    assert_eq!(sel("$.items[3:10]", &doc), json!([3, 4]));
    assert_eq!(sel("$.items[3:1]", &doc), json!([]));
    assert_eq!(sel("$.items[-10:]", &doc), json!([0, 1, 2, 3, 4]));
    // Jayway does not adjust a negative start when there is an end: -1 reads as the last.
    assert_eq!(sel("$.items[-1:2]", &doc), json!([4, 0, 1]));
    assert_eq!(sel("$.items[0,2]", &doc), json!([0, 2]));
    assert_eq!(sel("$.items[0, -1, 9]", &doc), json!([0, 4]));
    // A leaf property union merges into one object (definite), as Jayway does.
    assert_eq!(sel("$.o['a','c']", &doc), json!({"a": 1, "c": 3}));
    assert_eq!(sel("$.o['a','zz']", &doc), json!({"a": 1}));
    assert!(p("$.o['a','c']").is_definite());
    // ... but not in the middle of a path.
    let doc2 = json!({"x": {"v": 1}, "y": {"v": 2}});
    assert_eq!(sel("$['x','y'].v", &doc2), json!([1, 2]));
    assert!(!p("$['x','y'].v").is_definite());
    assert!(Path::parse("$.items[1:2:1]").is_err());
    assert!(Path::parse("$.items[:]").is_err());
    assert!(Path::parse("$.items[0,]").is_err());
    assert!(Path::parse("$.items[1:,2]").is_err());
}

#[test]
fn wildcards_and_deep_scan() {
    let doc = json!({"store": {
        "book": [
            {"title": "A", "price": 8, "isbn": "1"},
            {"title": "B", "price": 12},
            {"title": "C", "price": 9, "isbn": "3"}],
        "bicycle": {"color": "red", "price": 20}}});
    assert_eq!(sel("$.store.book[*].title", &doc), json!(["A", "B", "C"]));
    assert_eq!(sel("$.store.book.*.title", &doc), json!(["A", "B", "C"]));
    // On an object, a wildcard iterates its values.
    assert_eq!(sel("$.store.bicycle[*]", &doc), json!(["red", 20]));
    assert_eq!(sel("$.store.bicycle.*", &doc), json!(["red", 20]));
    assert_eq!(sel("$..price", &doc), json!([8, 12, 9, 20]));
    assert_eq!(sel("$..book[0].title", &doc), json!(["A"]));
    assert_eq!(sel("$..book[-1].title", &doc), json!(["C"]));
    assert_eq!(sel("$.store..isbn", &doc), json!(["1", "3"]));
    assert_eq!(sel("$..nothing", &doc), json!([]));
    // Jayway applies a function after a leading scan to the list of matches: one array.
    assert_eq!(sel("$..book.length()", &doc), json!(1));
    let all = sel("$..*", &json!({"a": {"b": [1]}}));
    assert_eq!(all, json!([{"b": [1]}, [1], 1]));
    let doc = json!({"a": [{"x": 1}, {"x": 2, "a": [{"x": 3}]}]});
    assert_eq!(sel("$..x", &doc), json!([1, 2, 3]));
    assert_eq!(sel("$..a[*].x", &doc), json!([1, 2, 3]));
}

#[test]
fn functions() {
    let doc = json!({"arr": [1, 2, 3, 4], "o": {"a": 1, "b": 2}, "s": "abc", "e": [], "mixed": [1, "x", 3]});
    assert_eq!(sel("$.arr.length()", &doc), json!(4));
    assert_eq!(sel("$.o.length()", &doc), json!(2));
    assert_eq!(sel("$.s.length()", &doc), Value::Null);
    assert_eq!(sel("$.length()", &doc), json!(5));
    assert_eq!(sel("$.arr.sum()", &doc), json!(10.0));
    assert_eq!(sel("$.arr.min()", &doc), json!(1.0));
    assert_eq!(sel("$.arr.max()", &doc), json!(4.0));
    assert_eq!(sel("$.arr.avg()", &doc), json!(2.5));
    assert_eq!(sel("$.mixed.sum()", &doc), json!(4.0));
    assert_eq!(sel("$.o.keys()", &doc), json!(["a", "b"]));
    assert_eq!(sel("$.arr.first()", &doc), json!(1));
    assert_eq!(sel("$.arr.last()", &doc), json!(4));
    let sd = sel("$.arr.stddev()", &doc).as_f64().unwrap();
    assert!((sd - 1.118_033_988_749_895).abs() < 1e-12);
    assert_eq!(
        err("$.e.sum()", &doc),
        "Invalid path '$.e.sum()' : Aggregation function attempted to calculate value using empty array"
    );
    // Per element after a wildcard that is not a leading scan.
    assert_eq!(
        sel("$.o[*].length()", &json!({"o": {"a": [1], "b": [1, 2]}})),
        json!([1, 2])
    );
    assert_eq!(sel("$..arr.length()", &doc), json!(1));
    assert!(p("$..arr.length()").is_definite());
    assert!(Path::parse("$.arr.length().x").is_err());
    assert!(Path::parse("$.arr.nosuch()").is_err());
    assert!(Path::parse("$.arr.length(1)").is_err());
    assert!(Path::parse("$..length()").is_err());
}

#[test]
fn definite_or_not() {
    for (text, definite) in [
        ("$", true),
        ("$.a.b", true),
        ("$['a'][0]", true),
        ("$.a[-1]", true),
        ("$.a.length()", true),
        ("$.a['x','y']", true),
        ("$.a[*]", false),
        ("$.a.*", false),
        ("$..a", false),
        ("$.a[1:2]", false),
        ("$.a[0,1]", false),
        ("$.a[?(@.x)]", false),
        ("$.a[*].length()", false),
    ] {
        assert_eq!(p(text).is_definite(), definite, "{text}");
    }
    assert!(p("$.a[0].b").is_reference());
    assert!(p("$$.Map.Item.Value").is_reference());
    assert!(!p("$.a['x','y']").is_reference());
    assert!(!p("$.a.length()").is_reference());
}

#[test]
fn a_definite_path_returns_the_value_an_indefinite_one_a_list() {
    let doc = json!({"items": [{"v": 1}, {"v": 2}]});
    assert_eq!(sel("$.items[0].v", &doc), json!(1));
    assert_eq!(sel("$.items[*].v", &doc), json!([1, 2]));
    assert_eq!(sel("$.items[0:1].v", &doc), json!([1]));
    // Corpus (test_json_path_array_access): a definite index gives the element itself.
    let items: Vec<Value> = (0..=10).map(|i| json!({"item_key": i})).collect();
    assert_eq!(
        sel("$.items[10]", &json!({ "items": items })),
        json!({"item_key": 10})
    );
    // Corpus (test_json_path_array_wildcard_or_slice_with_no_input): all [] on {}.
    for text in [
        "$.item.items[1:5].itemValue",
        "$.item.items[1:]",
        "$.item.items[:1]",
        "$.items[1:].itemValue",
        "$.items[1:]",
        "$.items[*].itemValue",
        "$.items[*]",
        "$[*]",
    ] {
        assert_eq!(sel(text, &json!({})), json!([]), "{text}");
    }
    // Elements without the property are skipped.
    assert_eq!(
        sel("$.a[*].v", &json!({"a": [{"v": 1}, {}, 3, {"v": null}]})),
        json!([1, null])
    );
}

#[test]
fn jayway_error_texts() {
    // Corpus (ST.INVALID_JSONPATH_IN_INPUTPATH / OUTPUTPATH) and test_catch_states_runtime.
    assert_eq!(
        err("$.NoSuchInputPath", &json!({})),
        "Invalid path '$.NoSuchInputPath' : No results for path: $['NoSuchInputPath']"
    );
    assert_eq!(
        err("$.NoSuchOutputPath", &json!({"a": 1})),
        "Invalid path '$.NoSuchOutputPath' : No results for path: $['NoSuchOutputPath']"
    );
    assert_eq!(
        err("$.no.such.result.path", &json!({})),
        "Invalid path '$.no.such.result.path' : Missing property in path $['no']"
    );
    let doc =
        json!({"a": {"b": 1}, "s": "x", "n": null, "arr": [1, 2], "o": {"k": [1, {"z": 2.5}]}});
    assert_eq!(
        p("$.a.c").select(&doc).unwrap_err().message,
        "No results for path: $['a']['c']"
    );
    assert_eq!(
        p("$.a.c.d").select(&doc).unwrap_err().message,
        "Missing property in path $['a']['c']"
    );
    assert_eq!(
        p("$.arr[5]").select(&doc).unwrap_err().message,
        "No results for path: $['arr'][5]"
    );
    assert_eq!(
        p("$.arr[5].x").select(&doc).unwrap_err().message,
        "No results for path: $['arr'][5]['x']"
    );
    assert_eq!(
        p("$.s.x").select(&doc).unwrap_err().message,
        "Expected to find an object with property ['x'] in path $['s'] but found 'java.lang.String'. \
         This is not a json object according to the JsonProvider: 'com.jayway.jsonpath.spi.json.JacksonJsonProvider'."
    );
    assert_eq!(
        p("$.arr.x").select(&doc).unwrap_err().message,
        "Expected to find an object with property ['x'] in path $['arr'] but found 'java.util.ArrayList'. \
         This is not a json object according to the JsonProvider: 'com.jayway.jsonpath.spi.json.JacksonJsonProvider'."
    );
    assert_eq!(
        p("$.n[0]").select(&doc).unwrap_err().message,
        "The path $['n'] is null"
    );
    assert_eq!(
        p("$.o[0]").select(&doc).unwrap_err().message,
        "Filter: [0] can only be applied to arrays. Current context is: {k=[1, {z=2.5}]}"
    );
    assert_eq!(
        p("$[0]").select(&json!("str")).unwrap_err().message,
        "Filter: [0] can only be applied to arrays. Current context is: str"
    );
    // A present null is a value, not a miss.
    assert_eq!(sel("$.n", &doc), Value::Null);
}

#[test]
fn normalized_rendering() {
    assert_eq!(p("$.a['b'][0]").normalized(), "$['a']['b'][0]");
    assert_eq!(
        p("$..a[*][1:2][?(@.x)].length()").normalized(),
        "$..['a'][*][1:2][?].length()"
    );
    assert_eq!(
        p("$$.Execution.Input").normalized(),
        "$['Execution']['Input']"
    );
    assert_eq!(p("$['a','b']").normalized(), "$['a','b']");
    assert_eq!(p("$[0,1]").normalized(), "$[0,1]");
}

#[test]
fn write_back() {
    let mut v = json!({"a": 1});
    p("$").write(&mut v, json!("all")).unwrap();
    assert_eq!(v, json!("all"));

    let mut v = json!({"a": 1});
    p("$.b").write(&mut v, json!(2)).unwrap();
    assert_eq!(v, json!({"a": 1, "b": 2}));

    // Missing intermediates are created; existing keys keep their place (preserve_order).
    let mut v = json!({"x": 0, "detail": {"shipped": ["A"]}});
    p("$.detail.shipped_output")
        .write(&mut v, json!([1]))
        .unwrap();
    p("$.new.deep.er").write(&mut v, json!(true)).unwrap();
    p("$.x").write(&mut v, json!(9)).unwrap();
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"x":9,"detail":{"shipped":["A"],"shipped_output":[1]},"new":{"deep":{"er":true}}}"#
    );

    let mut v = json!({"arr": [{"a": 1}, {"a": 2}]});
    p("$.arr[1].a").write(&mut v, json!(5)).unwrap();
    p("$.arr[-2]").write(&mut v, json!("first")).unwrap();
    assert_eq!(v, json!({"arr": ["first", {"a": 5}]}));
    p("$['arr'][0]").write(&mut v, json!(0)).unwrap();
    assert_eq!(v, json!({"arr": [0, {"a": 5}]}));

    // Failures leave the target alone.
    for (text, start) in [
        ("$.a.b", json!({"a": 1})),
        ("$.a.b.c", json!({"a": {"b": "s"}})),
        ("$.x", json!("string input")),
        ("$.x", json!([1])),
        ("$.arr[5]", json!({"arr": [1]})),
        ("$.arr[0]", json!({"arr": {"0": 1}})),
        ("$.missing[0]", json!({})),
        ("$.a[*]", json!({"a": [1]})),
        ("$..a", json!({"a": 1})),
        ("$.a.length()", json!({"a": [1]})),
    ] {
        let mut v = start.clone();
        let e = p(text).write(&mut v, json!("new")).unwrap_err();
        assert_eq!(e.path, text);
        assert_eq!(v, start, "{text}");
    }
    let mut v = json!({"a": 1});
    assert_eq!(
        p("$.a.b").write(&mut v, json!(0)).unwrap_err().message,
        "Unable to apply ResultPath '$.a.b': $['a'] is not an object but 1"
    );
}

#[test]
fn whitespace_around_the_path_is_trimmed() {
    assert_eq!(sel(" $.a ", &json!({"a": 1})), json!(1));
    assert_eq!(p(" $.a ").text(), " $.a ");
}

#[test]
fn every_corpus_path_parses() {
    // Every distinct JSONPath of the conformance corpus (InputPath, OutputPath, ResultPath,
    // ItemsPath, `.$` keys, Choice Variable and `...Path` operands, `*Path` fields).
    for text in [
        r#"$"#,
        r#"$$"#,
        r#"$$.Execution.Input.no_such_jsonpath"#,
        r#"$$.Map.Item.Index"#,
        r#"$$.Map.Item.Value"#,
        r#"$$.State.Name"#,
        r#"$$.State.RetryCount"#,
        r#"$$.StateMachine.Name"#,
        r#"$.AnnouncePokemon"#,
        r#"$.Bucket"#,
        r#"$.Cause"#,
        r#"$.Error"#,
        r#"$.ErrorX"#,
        r#"$.FunctionName"#,
        r#"$.Items"#,
        r#"$.Iterations"#,
        r#"$.Key"#,
        r#"$.MaxConcurrencyValue"#,
        r#"$.MaxItems"#,
        r#"$.NoSuchCausePath"#,
        r#"$.NoSuchInputPath"#,
        r#"$.NoSuchOutputPath"#,
        r#"$.Payload"#,
        r#"$.TimestampValue"#,
        r#"$.ToleratedFailureCount"#,
        r#"$.ToleratedFailurePercentage"#,
        r#"$.Value"#,
        r#"$.Values"#,
        r#"$.Variable"#,
        r#"$.answer"#,
        r#"$.arr"#,
        r#"$.content"#,
        r#"$.content.bucket"#,
        r#"$.content.values"#,
        r#"$.delivery-partner"#,
        r#"$.detail"#,
        r#"$.detail.shipped_output"#,
        r#"$.from_previous"#,
        r#"$.input.waitSeconds"#,
        r#"$.input_value"#,
        r#"$.item.items[1:5].itemValue"#,
        r#"$.item.items[1:]"#,
        r#"$.item.items[:1]"#,
        r#"$.items[*]"#,
        r#"$.items[*].itemValue"#,
        r#"$.items[10]"#,
        r#"$.items[1:]"#,
        r#"$.items[1:].itemValue"#,
        r#"$.jsonpath"#,
        r#"$.no.such.path"#,
        r#"$.no.such.result.path"#,
        r#"$.no_such_jsonpath"#,
        r#"$.result"#,
        r#"$.result.done"#,
        r#"$.result_value"#,
        r#"$.shipped"#,
        r#"$.state_output"#,
        r#"$.sub-values"#,
        r#"$.type"#,
        r#"$.value"#,
        r#"$.values"#,
        r#"$Question"#,
        r#"$['Test\""Name"']"#,
        r#"$[*]"#,
        r#"$[0]"#,
        r#"$[1]"#,
        r#"$[2]"#,
        r#"$answer"#,
        r#"$constant_bool"#,
        r#"$constant_float"#,
        r#"$constant_int"#,
        r#"$constant_lst"#,
        r#"$constant_lst_empty"#,
        r#"$constant_null"#,
        r#"$constant_obj"#,
        r#"$constant_obj.in_obj_constant_lst"#,
        r#"$constant_obj_empty"#,
        r#"$constant_str"#,
        r#"$constant_str_contextpath"#,
        r#"$constant_str_contextpath_root"#,
        r#"$constant_str_intrinsic_func"#,
        r#"$constant_str_jsonata_expr"#,
        r#"$constant_str_path"#,
        r#"$constant_str_path_root"#,
        r#"$constant_str_var"#,
        r#"$constant_str_var_expr"#,
        r#"$guess"#,
        r#"$maxConcurrency"#,
        r#"$maxItems"#,
        r#"$startAt"#,
        r#"$status"#,
        r#"$theAnswer"#,
        r#"$toleratedFailureCount"#,
        r#"$toleratedFailurePercentage"#,
        r#"$waitTime"#,
        r#"$x"#,
    ] {
        let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(path.text(), text);
    }
}
