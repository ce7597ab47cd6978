//! A distributed Map's ItemReader: the object named by Parameters/Arguments, read through
//! `Objects`, as JSON, JSON lines or CSV; MaxItems and its Path and JSONata forms; each
//! failure a `States.ItemReaderFailed` with its cause and the Map run's failure events.

use serde_json::{Value, json};
use sluice_workflow::env::{MemoryObjects, NoObjects, Objects, SplitMix};
use sluice_workflow::machine::{Execution, Status};
use sluice_workflow::run::{ManualClock, World, run_with};

use crate::support::{Fake, T0, event_types, failed, machine, succeeded};

fn reader_map(reader: Value, jsonata: bool) -> Value {
    let mut def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map",
        "End": true,
        "ItemReader": reader,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": "echo", "End": true}}
        }
    }}});
    if jsonata {
        def["QueryLanguage"] = json!("JSONata");
    }
    def
}

fn get_object(config: Value) -> Value {
    json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": config,
        "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"}
    })
}

fn run_reading(def: &Value, input: Value, objects: &dyn Objects, tasks: &Fake) -> Execution {
    let m = machine(def);
    run_with(
        &m,
        "wf",
        "exec",
        input,
        &World {
            tasks,
            clock: &ManualClock::new(T0),
            random: &SplitMix::new(1),
            objects,
        },
    )
}

fn store(key: &str, body: &str) -> MemoryObjects {
    let mut o = MemoryObjects::new();
    o.put("orders", key, body.as_bytes());
    o
}

#[test]
fn a_json_array_object_becomes_the_items_each_run_by_a_task() {
    let objects = store("day.json", r#"[{"id":1},{"id":2},{"id":3}]"#);
    let tasks = Fake::new();
    let e = run_reading(
        &reader_map(get_object(json!({"InputType": "JSON"})), false),
        json!({"bucket": "orders", "key": "day.json"}),
        &objects,
        &tasks,
    );
    assert_eq!(succeeded(&e), json!([{"id": 1}, {"id": 2}, {"id": 3}]));
    assert_eq!(tasks.calls().len(), 3);
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn csv_rows_are_objects_keyed_by_the_first_row_or_the_given_headers() {
    let objects = store("t.csv", "sku,qty\nA-1,2\n\"B,2\",7\n");
    let first_row = reader_map(
        get_object(json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"})),
        false,
    );
    let input = json!({"bucket": "orders", "key": "t.csv"});
    let e = run_reading(&first_row, input.clone(), &objects, &Fake::new());
    assert_eq!(
        succeeded(&e),
        json!([{"sku": "A-1", "qty": "2"}, {"sku": "B,2", "qty": "7"}])
    );
    let given = reader_map(
        get_object(
            json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b", "c"]}),
        ),
        false,
    );
    let e = run_reading(&given, input, &objects, &Fake::new());
    assert_eq!(
        succeeded(&e),
        json!([
            {"a": "sku", "b": "qty", "c": ""},
            {"a": "A-1", "b": "2", "c": ""},
            {"a": "B,2", "b": "7", "c": ""}
        ])
    );
}

#[test]
fn jsonl_and_a_pipe_delimited_csv_are_read_too() {
    let objects = store("e.jsonl", "{\"n\":1}\n\n{\"n\":2}\n");
    let e = run_reading(
        &reader_map(get_object(json!({"InputType": "JSONL"})), false),
        json!({"bucket": "orders", "key": "e.jsonl"}),
        &objects,
        &Fake::new(),
    );
    assert_eq!(succeeded(&e), json!([{"n": 1}, {"n": 2}]));
    let objects = store("p.csv", "a|b\n1|2\n");
    let e = run_reading(
        &reader_map(
            get_object(json!({"InputType": "CSV", "CSVDelimiter": "PIPE"})),
            false,
        ),
        json!({"bucket": "orders", "key": "p.csv"}),
        &objects,
        &Fake::new(),
    );
    assert_eq!(succeeded(&e), json!([{"a": "1", "b": "2"}]));
}

#[test]
fn max_items_in_each_form_limits_the_items_and_zero_means_all() {
    let objects = store("n.json", "[1,2,3,4,5]");
    let input = json!({"bucket": "orders", "key": "n.json", "max": 2, "zero": 0});
    for (config, want) in [
        (
            json!({"InputType": "JSON", "MaxItems": 3}),
            json!([1, 2, 3]),
        ),
        (
            json!({"InputType": "JSON", "MaxItems": 0}),
            json!([1, 2, 3, 4, 5]),
        ),
        (
            json!({"InputType": "JSON", "MaxItemsPath": "$.max"}),
            json!([1, 2]),
        ),
        (
            json!({"InputType": "JSON", "MaxItemsPath": "$.zero"}),
            json!([1, 2, 3, 4, 5]),
        ),
    ] {
        let e = run_reading(
            &reader_map(get_object(config.clone()), false),
            input.clone(),
            &objects,
            &Fake::new(),
        );
        assert_eq!(succeeded(&e), want, "{config}");
    }
    let jsonata = reader_map(
        json!({
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.max + 2 %}"},
            "Arguments": {"Bucket": "{% $states.input.bucket %}", "Key": "{% $states.input.key %}"}
        }),
        true,
    );
    let e = run_reading(&jsonata, input, &objects, &Fake::new());
    assert_eq!(succeeded(&e), json!([1, 2, 3, 4]));
}

#[test]
fn a_bad_max_items_path_fails_the_state_with_its_prefix() {
    let objects = store("n.json", "[1]");
    let e = run_reading(
        &reader_map(get_object(json!({"MaxItemsPath": "$.max"})), false),
        json!({"bucket": "orders", "key": "n.json", "max": "lots"}),
        &objects,
        &Fake::new(),
    );
    let (error, cause) = failed(&e);
    assert_eq!(error, "States.Runtime");
    assert_eq!(
        cause,
        "An error occurred while executing the state 'M' (entered at the event id #2). The MaxItemsPath field refers to value \"lots\" which is not a valid integer: $.max"
    );
}

#[test]
fn reader_failures_are_named_and_fail_the_map_run() {
    let input = json!({"bucket": "orders", "key": "x"});
    let json_map = reader_map(get_object(json!({"InputType": "JSON"})), false);
    let cases: Vec<(Value, MemoryObjects, &str)> = vec![
        (
            json_map.clone(),
            store("x", r#"{"not": "a list"}"#),
            "Attempting to map over non-iterable node.",
        ),
        (
            json_map.clone(),
            MemoryObjects::new(),
            "Could not read the object: the object x does not exist in the bucket orders",
        ),
        (
            reader_map(
                get_object(
                    json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "a"]}),
                ),
                false,
            ),
            store("x", "1,2\n"),
            "CSV headers cannot contain duplicates.",
        ),
        (
            reader_map(
                json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "orders"}}),
                false,
            ),
            store("x", "[]"),
            "This ItemReader is not supported by Sluice: arn:aws:states:::s3:listObjectsV2",
        ),
        (
            reader_map(
                json!({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "orders"}}),
                false,
            ),
            store("x", "[]"),
            "The ItemReader's Parameters must give 'Key' as a string, got: {\"Bucket\":\"orders\"}",
        ),
    ];
    for (def, objects, want) in cases {
        let e = run_reading(&def, input.clone(), &objects, &Fake::new());
        let (error, cause) = failed(&e);
        assert_eq!(error, "States.ItemReaderFailed");
        assert_eq!(cause, want);
        assert_eq!(
            event_types(&e),
            [
                "ExecutionStarted",
                "MapStateEntered",
                "MapStateStarted",
                "MapRunStarted",
                "MapRunFailed",
                "MapStateFailed",
                "ExecutionFailed"
            ],
            "{want}"
        );
    }
}

#[test]
fn without_an_object_store_the_reader_says_so_and_catch_can_handle_it() {
    let mut def = reader_map(get_object(json!({"InputType": "JSON"})), false);
    def["States"]["M"]["Catch"] =
        json!([{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Handled"}]);
    def["States"]["M"].as_object_mut().unwrap().remove("End");
    def["States"]["M"]["Next"] = json!("Done");
    def["States"]["Done"] = json!({"Type": "Succeed"});
    def["States"]["Handled"] = json!({"Type": "Pass", "End": true});
    let e = run_reading(
        &def,
        json!({"bucket": "b", "key": "k"}),
        &NoObjects,
        &Fake::new(),
    );
    assert_eq!(e.status, Status::Succeeded);
    assert_eq!(
        e.output.unwrap(),
        json!({"Error": "States.ItemReaderFailed", "Cause": "Could not read the object: no object store is configured to read items from"})
    );
}

#[test]
fn reader_config_is_validated_with_pointers() {
    use crate::support::problems;
    let def = reader_map(
        get_object(
            json!({"InputType": "XML", "CSVHeaderLocation": "SOMEWHERE", "CSVDelimiter": "COLON"}),
        ),
        false,
    );
    let p = problems(&def);
    assert!(
        p.iter().any(|p| p.contains(
            "InputType must be one of [CSV, JSON, JSONL, MANIFEST, PARQUET], not \"XML\""
        ) && p.contains("/States/M/ItemReader/ReaderConfig/InputType")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.contains("CSVHeaderLocation must be one of [FIRST_ROW, GIVEN]")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.contains("CSVDelimiter must be one of [COMMA, PIPE, SEMICOLON, SPACE, TAB]")),
        "{p:?}"
    );
    let given = reader_map(
        get_object(json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN"})),
        false,
    );
    assert!(
        problems(&given)
            .iter()
            .any(|p| p.contains("CSVHeaders is required when CSVHeaderLocation is GIVEN")),
    );
}
