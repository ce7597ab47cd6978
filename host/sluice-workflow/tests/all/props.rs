//! Property tests: no JSON value panics `parse`; definitions from a small grammar of valid
//! states (and mutations of them) run on arbitrary inputs to an end without panicking.

use std::collections::VecDeque;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sluice_workflow::definition::{Machine, parse};
use sluice_workflow::env::{SplitMix, TaskRequest, TaskRunner};
use sluice_workflow::machine::{Env, Execution};
use sluice_workflow::run::{ManualClock, Timer};

use crate::support::{Fake, T0};

/// Words of the language, so random definitions reach past the first check.
const WORDS: &[&str] = &[
    "StartAt",
    "States",
    "Type",
    "Next",
    "End",
    "Pass",
    "Task",
    "Choice",
    "Wait",
    "Succeed",
    "Fail",
    "Parallel",
    "Map",
    "Result",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "Resource",
    "Retry",
    "Catch",
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "FULL",
    "Choices",
    "Default",
    "Variable",
    "StringEquals",
    "NumericEquals",
    "NumericLessThanPath",
    "And",
    "Or",
    "Not",
    "IsPresent",
    "BooleanEquals",
    "TimestampEquals",
    "StringMatches",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "Error",
    "Cause",
    "ErrorPath",
    "CausePath",
    "Branches",
    "ItemProcessor",
    "Iterator",
    "ItemsPath",
    "Items",
    "ItemSelector",
    "ItemBatcher",
    "MaxItemsPerBatch",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
    "ProcessorConfig",
    "Mode",
    "DISTRIBUTED",
    "INLINE",
    "QueryLanguage",
    "JSONata",
    "JSONPath",
    "Arguments",
    "Output",
    "Assign",
    "Condition",
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "Comment",
    "States.ALL",
    "States.TaskFailed",
    "$",
    "$.a",
    "$.a.b[0]",
    "$$.Execution.Name",
    "$$.Map.Item.Value",
    "$x",
    "$..a",
    "$.a[?(@.b > 1)]",
    "$.a[",
    "States.Format('{}', $.a)",
    "States.Array(1, $.a)",
    "States.MathAdd($.a, 1)",
    "States.Nope()",
    "States.Format(",
    "{% $states.input %}",
    "{% 1 + %}",
    "{% $x.y %}",
    "{% $states.input.a > 1 %}",
    "x.$",
    "a.$",
    "2024-01-02T03:04:05Z",
    "arn:aws:states:::lambda:invoke",
    "arn:aws:lambda:us-east-1:1:function:f",
    "FunctionName",
    "Payload",
    "s",
    "A",
    "B",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9$.@\\[\\]{}%'(),: ?*-]{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0_u64..5).prop_map(Value::from),
        (-1e9_f64..1e9).prop_map(Value::from),
        word().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Shaped like a definition: states with a Type and random fields of the language.
fn definition_like() -> impl Strategy<Value = Value> {
    let state = (
        prop::sample::select(
            &[
                "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map", "Other",
            ][..],
        ),
        prop::collection::vec((word(), json_value()), 0..5),
    )
        .prop_map(|(t, fields)| {
            let mut m: Map<String, Value> = fields.into_iter().collect();
            m.insert("Type".into(), t.into());
            Value::Object(m)
        });
    (
        prop::sample::select(&["A", "B", "C"][..]),
        prop::collection::vec((prop::sample::select(&["A", "B", "C"][..]), state), 0..4),
        any::<bool>(),
    )
        .prop_map(|(start, states, jsonata)| {
            let mut d = json!({"StartAt": start, "States": Value::Object(
                states.into_iter().map(|(n, s)| (n.to_owned(), s)).collect())});
            if jsonata {
                d["QueryLanguage"] = "JSONata".into();
            }
            d
        })
}

/// One state of the grammar of valid definitions.
#[derive(Debug, Clone)]
enum Spec {
    Pass(u8),
    Wait(u8),
    Task(u8),
    Choice,
    Parallel(Vec<Vec<Spec>>),
    Map(Vec<Spec>, u8, u8),
}

fn spec() -> impl Strategy<Value = Spec> {
    let leaf = prop_oneof![
        (0_u8..7).prop_map(Spec::Pass),
        (0_u8..4).prop_map(Spec::Wait),
        (0_u8..5).prop_map(Spec::Task),
        Just(Spec::Choice),
    ];
    leaf.prop_recursive(3, 24, 3, |inner| {
        let chain = prop::collection::vec(inner, 1..4);
        prop_oneof![
            prop::collection::vec(chain.clone(), 1..3).prop_map(Spec::Parallel),
            (chain, 0_u8..4, 0_u8..4).prop_map(|(c, n, mc)| Spec::Map(c, n, mc)),
        ]
    })
}

/// A chain of states `S0 -> S1 -> ... -> Done`, with a `Bad` Fail state for Choice defaults.
fn render(chain: &[Spec], top: bool) -> Value {
    let mut states = Map::new();
    let name = |i: usize| format!("S{i}");
    let mut bad = false;
    for (i, s) in chain.iter().enumerate() {
        let next = if i + 1 < chain.len() {
            name(i + 1)
        } else {
            "Done".into()
        };
        match s {
            Spec::Pass(v) => {
                let st = match v {
                    0 => json!({"Type": "Pass", "Next": next}),
                    1 => {
                        json!({"Type": "Pass", "Result": {"k": 1}, "ResultPath": "$.r", "Next": next})
                    }
                    2 => {
                        json!({"Type": "Pass", "Parameters": {"a.$": "$", "n.$": "$$.State.Name", "f.$": "States.Format('{}', $$.Execution.Name)"}, "Next": next})
                    }
                    3 => json!({"Type": "Pass", "Assign": {"v.$": "$"}, "Next": next}),
                    4 => {
                        json!({"Type": "Pass", "InputPath": "$.a", "OutputPath": "$", "Next": next})
                    }
                    5 => {
                        json!({"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"in": "{% $states.input %}"}, "Assign": {"w": "{% $states.input %}"}, "Next": next})
                    }
                    _ => json!({"Type": "Pass", "Result": [1, 2], "Next": next}),
                };
                states.insert(name(i), st);
            }
            Spec::Wait(secs) => {
                states.insert(
                    name(i),
                    json!({"Type": "Wait", "Seconds": secs, "Next": next}),
                );
            }
            Spec::Task(v) => {
                let mut st = json!({"Type": "Task", "Resource": if v % 2 == 0 { "id" } else { "flaky" }, "Next": next});
                if *v >= 2 {
                    st["Retry"] =
                        json!([{"ErrorEquals": ["E"], "IntervalSeconds": 1, "MaxAttempts": 2}]);
                }
                if *v >= 3 {
                    st["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": next}]);
                }
                if *v == 4 {
                    st["TimeoutSeconds"] = json!(5);
                    st["Parameters"] = json!({"in.$": "$"});
                }
                states.insert(name(i), st);
            }
            Spec::Choice => {
                bad = true;
                states.insert(name(i), json!({"Type": "Choice", "Choices": [
                    {"Or": [{"Variable": "$", "IsPresent": true}, {"Variable": "$.n", "NumericGreaterThan": 0}], "Next": next}
                ], "Default": "Bad"}));
            }
            Spec::Parallel(branches) => {
                let b: Vec<Value> = branches.iter().map(|c| render(c, false)).collect();
                states.insert(
                    name(i),
                    json!({"Type": "Parallel", "Branches": b, "Next": next}),
                );
            }
            Spec::Map(c, n, mc) => {
                // A Pass sets the items; then the Map runs over them.
                let items: Vec<Value> = (0..*n).map(|k| json!({"k": k})).collect();
                let map_name = format!("{}m", name(i));
                states.insert(
                    name(i),
                    json!({"Type": "Pass", "Result": items, "Next": map_name}),
                );
                let mut proc = render(c, false);
                if mc % 2 == 1 {
                    proc["ProcessorConfig"] =
                        json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
                }
                states.insert(
                    map_name,
                    json!({
                        "Type": "Map", "MaxConcurrency": mc, "ToleratedFailureCount": 1,
                        "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
                        "ItemProcessor": proc, "Next": next
                    }),
                );
            }
        }
    }
    states.insert("Done".into(), json!({"Type": "Succeed"}));
    if bad {
        states.insert("Bad".into(), json!({"Type": "Fail", "Error": "Bad"}));
    }
    let mut m = json!({"StartAt": if chain.is_empty() { "Done".to_owned() } else { name(0) }, "States": states});
    if top {
        m["TimeoutSeconds"] = json!(3600);
    }
    m
}

/// Drive `m` on its own requests, one result back at a time, at most `cap` rounds; done?
fn drive(m: &Machine, input: Value, tasks: &dyn TaskRunner, cap: usize) -> (bool, Execution) {
    let clock = ManualClock::new(T0);
    let random = SplitMix::new(3);
    let env = Env {
        clock: &clock,
        random: &random,
        objects: &sluice_workflow::env::NoObjects,
    };
    let mut e = Execution::start(m, "wf", "prop", input, &env);
    let mut out: VecDeque<TaskRequest> = VecDeque::new();
    for _ in 0..cap {
        out.extend(e.advance(m, &env));
        if e.is_done() {
            return (true, e);
        }
        if let Some(r) = out.pop_front() {
            let result = tasks.run(&r);
            e.deliver(&r.id, result);
        } else if let Some(due) = e.next_due_ms() {
            clock.wait_until(due);
        } else {
            return (false, e);
        }
    }
    (e.is_done(), e)
}

fn fake() -> Fake {
    Fake::new().flaky("flaky", "E", "once", 1)
}

/// Keys a mutation may set: none that names a state, so no cycle can appear.
const MUTABLE: &[&str] = &[
    "Result",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "Resource",
    "Retry",
    "Assign",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "ItemsPath",
    "ItemSelector",
    "MaxConcurrency",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
    "TimeoutSeconds",
    "QueryLanguage",
    "Output",
    "Arguments",
    "ItemBatcher",
    "Error",
    "Cause",
    "Comment",
    "Type",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_any_json(v in json_value()) {
        let _ = parse(&v);
    }

    #[test]
    fn parse_never_panics_on_definition_like_json(v in definition_like()) {
        // Names come from three, so a valid one may hold a cycle: parse only.
        let _ = parse(&v);
    }

    #[test]
    fn definitions_of_the_grammar_are_valid_and_run_to_an_end(
        chain in prop::collection::vec(spec(), 0..5),
        input in json_value(),
    ) {
        let def = render(&chain, true);
        let m = match parse(&def) {
            Ok(m) => m,
            Err(e) => return Err(TestCaseError::fail(format!("{e} in {def}"))),
        };
        let (done, e) = drive(&m, input, &fake(), 100_000);
        prop_assert!(done, "execution did not end: {def}");
        // The history is numbered from 1 and every event follows an earlier one.
        for (i, h) in e.history.iter().enumerate() {
            prop_assert_eq!(h.id, i as u64 + 1);
            prop_assert!(h.previous_event_id < h.id);
        }
        // An execution survives a serde round trip unchanged.
        let back: Execution = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        prop_assert_eq!(back, e);
    }

    #[test]
    fn mutated_definitions_parse_or_run_without_panicking(
        chain in prop::collection::vec(spec(), 1..4),
        state in 0_usize..4,
        key in prop::sample::select(MUTABLE),
        value in json_value(),
        input in json_value(),
    ) {
        let mut def = render(&chain, true);
        let names: Vec<String> = def["States"].as_object().unwrap().keys().cloned().collect();
        let target = names[state % names.len()].clone();
        def["States"][&target][key] = value;
        if let Ok(m) = parse(&def) {
            let _ = drive(&m, input, &fake(), 10_000);
        }
    }
}

#[test]
fn the_driver_of_the_properties_runs_the_real_driver_alike() {
    // The property driver and `run` agree on a definition of every kind of state.
    let chain = vec![
        Spec::Pass(2),
        Spec::Task(3),
        Spec::Choice,
        Spec::Wait(2),
        Spec::Parallel(vec![vec![Spec::Pass(1)], vec![Spec::Task(1)]]),
        Spec::Map(vec![Spec::Task(2), Spec::Pass(5)], 3, 1),
    ];
    let def = render(&chain, true);
    let m = parse(&def).expect("valid");
    let (done, mine) = drive(&m, json!({"a": 1}), &fake(), 10_000);
    assert!(done);
    let clock = ManualClock::new(T0);
    let theirs = sluice_workflow::run::run(
        &m,
        "wf",
        "prop",
        json!({"a": 1}),
        &fake(),
        &clock,
        &SplitMix::new(3),
    );
    assert_eq!(mine.status, theirs.status);
    assert_eq!(mine.output, theirs.output);
}
