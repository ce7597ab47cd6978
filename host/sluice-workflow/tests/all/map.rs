//! Map, inline and distributed: ItemsPath, ItemSelector with `$$.Map.Item`, ItemBatcher,
//! MaxConcurrency (counted on the machine's own requests), tolerated failures.

use std::collections::VecDeque;

use serde_json::{Value, json};
use sluice_workflow::env::{SplitMix, TaskRequest};
use sluice_workflow::machine::{Env, Execution, Status};
use sluice_workflow::run::{ManualClock, Timer};

use crate::support::{Fake, T0, exec, failed, machine, output, run_on, succeeded};

fn map(fields: Value, processor: Value) -> Value {
    let mut m = json!({"Type": "Map", "End": true, "ItemProcessor": processor});
    for (k, v) in fields.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({"StartAt": "M", "States": {"M": m}})
}

fn pass_proc() -> Value {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}})
}

fn task_proc(stage: &str) -> Value {
    json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": stage, "End": true}}})
}

fn distributed(mut processor: Value) -> Value {
    processor["ProcessorConfig"] = json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
    processor
}

#[test]
fn each_item_runs_the_processor_and_results_keep_item_order() {
    let proc = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "P"},
        "P": {"Type": "Pass", "InputPath": "$.id", "End": true}
    }});
    let def = map(json!({"ItemsPath": "$.items"}), proc);
    let input =
        json!({"items": [{"id": "a", "wait": 3}, {"id": "b", "wait": 1}, {"id": "c", "wait": 2}]});
    assert_eq!(output(&def, input), json!(["a", "b", "c"]));
}

#[test]
fn an_empty_array_gives_an_empty_result() {
    assert_eq!(output(&map(json!({}), pass_proc()), json!([])), json!([]));
}

#[test]
fn items_that_are_not_an_array_fail_with_states_runtime() {
    let e = exec(
        &map(json!({"ItemsPath": "$.x"}), pass_proc()),
        json!({"x": {"a": 1}}),
    );
    let (error, cause) = failed(&e);
    assert_eq!(error, "States.Runtime");
    assert!(
        cause.starts_with(
            "An error occurred while executing the state 'M' (entered at the event id #2)."
        ),
        "{cause}"
    );
}

#[test]
fn item_selector_sees_the_index_the_value_and_the_state_input() {
    let def = map(
        json!({"ItemsPath": "$.xs", "ItemSelector": {
            "i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "tag.$": "$.tag"
        }}),
        pass_proc(),
    );
    assert_eq!(
        output(&def, json!({"xs": ["p", "q"], "tag": "T"})),
        json!([{"i": 0, "v": "p", "tag": "T"}, {"i": 1, "v": "q", "tag": "T"}])
    );
}

#[test]
fn legacy_parameters_and_iterator_still_work() {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": true, "Parameters": {"v.$": "$$.Map.Item.Value"},
        "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
    }}});
    assert_eq!(output(&def, json!([1, 2])), json!([{"v": 1}, {"v": 2}]));
}

#[test]
fn distributed_mode_runs_the_same_way() {
    let def = map(
        json!({"ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"}}),
        distributed(task_proc("s")),
    );
    let fake = Fake::new();
    let (e, _) = run_on(&def, json!([10, 20, 30]), &fake);
    assert_eq!(
        succeeded(&e),
        json!([{"v": 10, "i": 0}, {"v": 20, "i": 1}, {"v": 30, "i": 2}])
    );
    assert_eq!(fake.calls().len(), 3);
}

#[test]
fn item_batcher_groups_items_with_batch_input() {
    let def = map(
        json!({"ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"b": true}}}),
        distributed(pass_proc()),
    );
    assert_eq!(
        output(&def, json!([1, 2, 3, 4, 5])),
        json!([
            {"BatchInput": {"b": true}, "Items": [1, 2]},
            {"BatchInput": {"b": true}, "Items": [3, 4]},
            {"BatchInput": {"b": true}, "Items": [5]}
        ])
    );
}

#[test]
fn item_batcher_max_input_bytes() {
    // Each item "aaaa" is 6 bytes of JSON; at most 13 bytes a batch means two a batch.
    let def = map(
        json!({"ItemBatcher": {"MaxInputBytesPerBatch": 13}}),
        distributed(pass_proc()),
    );
    assert_eq!(
        output(&def, json!(["aaaa", "bbbb", "cccc"])),
        json!([{"Items": ["aaaa", "bbbb"]}, {"Items": ["cccc"]}])
    );
}

#[test]
fn item_batcher_max_items_per_batch_path() {
    let def = map(
        json!({"ItemsPath": "$.xs", "ItemBatcher": {"MaxItemsPerBatchPath": "$.n"}}),
        distributed(pass_proc()),
    );
    assert_eq!(
        output(&def, json!({"xs": [1, 2, 3], "n": 3})),
        json!([{"Items": [1, 2, 3]}])
    );
}

/// Drive an execution on its own requests, handing one result back at a time; the most
/// Tasks outstanding at once, and the execution.
fn most_outstanding(def: &Value, input: Value) -> (usize, Execution) {
    let m = machine(def);
    let clock = ManualClock::new(T0);
    let random = SplitMix::new(1);
    let env = Env {
        clock: &clock,
        random: &random,
        objects: &sluice_workflow::env::NoObjects,
    };
    let mut e = Execution::start(&m, "wf", "exec", input, &env);
    let mut out: VecDeque<TaskRequest> = VecDeque::new();
    let mut most = 0;
    for _ in 0..10_000 {
        out.extend(e.advance(&m, &env));
        most = most.max(out.len());
        if e.is_done() {
            break;
        }
        if let Some(r) = out.pop_front() {
            e.deliver(&r.id, Ok(r.input));
        } else if let Some(due) = e.next_due_ms() {
            clock.wait_until(due);
        } else {
            break;
        }
    }
    (most, e)
}

#[test]
fn max_concurrency_bounds_the_tasks_outstanding() {
    for (mc, want) in [(1, 1), (2, 2), (3, 3), (0, 6), (10, 6)] {
        let def = map(json!({"MaxConcurrency": mc}), task_proc("s"));
        let (most, e) = most_outstanding(&def, json!([1, 2, 3, 4, 5, 6]));
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(e.output, Some(json!([1, 2, 3, 4, 5, 6])));
        assert_eq!(most, want, "MaxConcurrency {mc}");
    }
}

#[test]
fn max_concurrency_path_and_distributed_mode_bound_too() {
    let def = map(
        json!({"ItemsPath": "$.xs", "MaxConcurrencyPath": "$.mc"}),
        distributed(task_proc("s")),
    );
    let (most, e) = most_outstanding(&def, json!({"xs": [1, 2, 3, 4, 5], "mc": 2}));
    assert_eq!(e.status, Status::Succeeded);
    assert_eq!(most, 2);
}

fn items(fails: &[bool]) -> Value {
    Value::Array(
        fails
            .iter()
            .enumerate()
            .map(|(i, f)| json!({"i": i, "fail": f}))
            .collect(),
    )
}

#[test]
fn a_failing_iteration_fails_the_map_with_its_error() {
    let def = map(json!({}), task_proc("check"));
    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, items(&[false, true, false]), &fake);
    assert_eq!(failed(&e), ("Item.Bad".to_owned(), "bad item".to_owned()));
}

#[test]
fn tolerated_failure_count() {
    let def = map(
        json!({"ToleratedFailureCount": 1}),
        distributed(task_proc("check")),
    );
    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, items(&[false, true, false]), &fake);
    let out = succeeded(&e);
    assert_eq!(out[0], json!({"i": 0, "fail": false}));
    assert_eq!(out[2], json!({"i": 2, "fail": false}));

    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, items(&[true, true, false]), &fake);
    let (error, cause) = failed(&e);
    assert_eq!(error, "States.ExceedToleratedFailureThreshold");
    assert!(
        cause.ends_with("The specified tolerated failure threshold was exceeded"),
        "{cause}"
    );
}

#[test]
fn tolerated_failure_percentage() {
    let def = map(
        json!({"ToleratedFailurePercentage": 50}),
        distributed(task_proc("check")),
    );
    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, items(&[true, false, true, false]), &fake);
    assert_eq!(e.status, Status::Succeeded);

    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, items(&[true, true, true, false]), &fake);
    assert_eq!(failed(&e).0, "States.ExceedToleratedFailureThreshold");
}

#[test]
fn tolerated_failure_count_zero_fails_on_the_first_failure() {
    let def = map(
        json!({"ToleratedFailureCount": 0}),
        distributed(task_proc("check")),
    );
    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, items(&[false, true]), &fake);
    assert_eq!(failed(&e).0, "States.ExceedToleratedFailureThreshold");
}

#[test]
fn a_tolerated_failure_percentage_path_out_of_range_fails_as_aws_reports() {
    // Recorded: test_map_state_tolerated_failure_percentage_path[-1].
    let def = map(
        json!({"ToleratedFailurePercentagePath": "$.p", "ItemsPath": "$.xs"}),
        distributed(pass_proc()),
    );
    let e = exec(&def, json!({"p": -1, "xs": [1]}));
    assert_eq!(
        failed(&e),
        (
            "States.Runtime".to_owned(),
            "An error occurred while executing the state 'M' (entered at the event id #2). ToleratedFailurePercentage must be between 0 and 100.".to_owned()
        )
    );
}

#[test]
fn catch_on_a_map_state() {
    let def = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "Next": "Ok", "ItemProcessor": task_proc("check"),
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]},
        "Ok": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "OutputPath": "$.error", "End": true}
    }});
    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, items(&[true]), &fake);
    // The input is an array: ResultPath $.error cannot be applied to it.
    assert_eq!(failed(&e).0, "States.ResultPathMatchFailure");

    let def = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "Next": "Ok", "ItemsPath": "$.xs", "ItemProcessor": task_proc("check"),
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]},
        "Ok": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "OutputPath": "$.error", "End": true}
    }});
    let fake = Fake::new().fail_if("check", "Item.Bad", "bad item");
    let (e, _) = run_on(&def, json!({"xs": items(&[false, true])}), &fake);
    assert_eq!(
        succeeded(&e),
        json!({"Error": "Item.Bad", "Cause": "bad item"})
    );
}

#[test]
fn nested_maps() {
    let inner = json!({"StartAt": "IM", "States": {"IM": {
        "Type": "Map", "End": true,
        "ItemSelector": {"v.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.v", "End": true}}}
    }}});
    let def = map(json!({}), inner);
    assert_eq!(output(&def, json!([[1, 2], [3]])), json!([[1, 2], [3]]));
}
