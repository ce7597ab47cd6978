//! Retry (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds,
//! JitterStrategy: delays read off the manual clock and the history), Catch (ResultPath,
//! Next, Assign, States.ALL, States.TaskFailed, order), the execution's TimeoutSeconds.

use serde_json::{Value, json};
use sluice_workflow::machine::Status;

use crate::support::{Fake, T0, event_types, exec, failed, run_on, succeeded, times_of};

fn retried(retry: Value) -> Value {
    json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "flaky", "End": true, "Retry": retry}}})
}

/// Gaps (ms) between consecutive attempts of the Task.
fn gaps(e: &sluice_workflow::machine::Execution) -> Vec<i64> {
    let t = times_of(e, "TaskScheduled");
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn retry_defaults_one_second_doubling_three_attempts() {
    let fake = Fake::new().flaky("flaky", "E", "c", 3);
    let (e, now) = run_on(
        &retried(json!([{"ErrorEquals": ["E"]}])),
        json!("in"),
        &fake,
    );
    assert_eq!(succeeded(&e), json!("in"));
    assert_eq!(gaps(&e), [1_000, 2_000, 4_000]);
    assert_eq!(now - T0, 7_000);
    assert_eq!(fake.ids(), ["exec/T/1", "exec/T/2", "exec/T/3", "exec/T/4"]);
}

#[test]
fn retry_gives_up_after_max_attempts() {
    let fake = Fake::new().flaky("flaky", "E", "still", 10);
    let def = retried(
        json!([{"ErrorEquals": ["E"], "MaxAttempts": 2, "IntervalSeconds": 3, "BackoffRate": 1.5}]),
    );
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(failed(&e), ("E".to_owned(), "still".to_owned()));
    assert_eq!(fake.calls().len(), 3);
    assert_eq!(gaps(&e), [3_000, 4_500]);
}

#[test]
fn max_attempts_zero_never_retries() {
    let fake = Fake::new().flaky("flaky", "E", "c", 1);
    let (e, _) = run_on(
        &retried(json!([{"ErrorEquals": ["E"], "MaxAttempts": 0}])),
        json!({}),
        &fake,
    );
    assert_eq!(failed(&e).0, "E");
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn an_error_not_in_error_equals_is_not_retried() {
    let fake = Fake::new().flaky("flaky", "Other", "c", 1);
    let (e, _) = run_on(&retried(json!([{"ErrorEquals": ["E"]}])), json!({}), &fake);
    assert_eq!(failed(&e).0, "Other");
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn max_delay_seconds_caps_the_backoff() {
    let fake = Fake::new().flaky("flaky", "E", "c", 4);
    let def = retried(
        json!([{"ErrorEquals": ["E"], "IntervalSeconds": 4, "BackoffRate": 10, "MaxAttempts": 4, "MaxDelaySeconds": 10}]),
    );
    let (e, _) = run_on(&def, json!({}), &fake);
    succeeded(&e);
    assert_eq!(gaps(&e), [4_000, 10_000, 10_000, 10_000]);
}

#[test]
fn full_jitter_delays_at_most_the_computed_backoff() {
    let fake = Fake::new().flaky("flaky", "E", "c", 5);
    let def = retried(
        json!([{"ErrorEquals": ["E"], "IntervalSeconds": 10, "BackoffRate": 2, "MaxAttempts": 5, "JitterStrategy": "FULL"}]),
    );
    let (e, _) = run_on(&def, json!({}), &fake);
    succeeded(&e);
    let g = gaps(&e);
    let caps = [10_000, 20_000, 40_000, 80_000, 160_000];
    assert_eq!(g.len(), 5);
    for (d, cap) in g.iter().zip(caps) {
        assert!(
            (0..=cap).contains(d),
            "jittered delay {d} not within 0..={cap}"
        );
    }
    assert_ne!(
        g, caps,
        "FULL jitter should not give the plain backoff every time"
    );
}

#[test]
fn jitter_none_is_the_plain_backoff() {
    let fake = Fake::new().flaky("flaky", "E", "c", 2);
    let def =
        retried(json!([{"ErrorEquals": ["E"], "IntervalSeconds": 2, "JitterStrategy": "NONE"}]));
    let (e, _) = run_on(&def, json!({}), &fake);
    succeeded(&e);
    assert_eq!(gaps(&e), [2_000, 4_000]);
}

#[test]
fn the_first_matching_retrier_decides_even_when_used_up() {
    let fake = Fake::new().flaky("flaky", "E", "c", 5);
    let def = retried(json!([
        {"ErrorEquals": ["E"], "MaxAttempts": 1},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 10}
    ]));
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(failed(&e).0, "E");
    assert_eq!(fake.calls().len(), 2);
}

#[test]
fn retriers_count_their_attempts_separately() {
    // Errors alternate A, B, A, B: each retrier allows two.
    struct Alternating(std::sync::Mutex<u32>);
    impl sluice_workflow::env::TaskRunner for Alternating {
        fn run(
            &self,
            req: &sluice_workflow::env::TaskRequest,
        ) -> Result<Value, sluice_workflow::error::StatesError> {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            match *n {
                1 | 3 => Err(sluice_workflow::error::StatesError::new("A", "")),
                2 | 4 => Err(sluice_workflow::error::StatesError::new("B", "")),
                _ => Ok(req.input.clone()),
            }
        }
    }
    let m = crate::support::machine(&retried(json!([
        {"ErrorEquals": ["A"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 1},
        {"ErrorEquals": ["B"], "MaxAttempts": 2, "IntervalSeconds": 5, "BackoffRate": 1}
    ])));
    let clock = sluice_workflow::run::ManualClock::new(T0);
    let e = sluice_workflow::run::run(
        &m,
        "wf",
        "exec",
        json!(1),
        &Alternating(Default::default()),
        &clock,
        &sluice_workflow::env::SplitMix::new(1),
    );
    assert_eq!(succeeded(&e), json!(1));
    assert_eq!(gaps(&e), [1_000, 5_000, 1_000, 5_000]);
}

#[test]
fn states_all_and_task_failed_retry_a_stage_error() {
    for name in ["States.ALL", "States.TaskFailed"] {
        let fake = Fake::new().flaky("flaky", "Custom.Error", "c", 1);
        let (e, _) = run_on(&retried(json!([{"ErrorEquals": [name]}])), json!({}), &fake);
        succeeded(&e);
        assert_eq!(fake.calls().len(), 2, "{name}");
    }
}

#[test]
fn retry_count_after_the_retries_is_in_the_result_selector_context() {
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "flaky", "End": true,
        "ResultSelector": {"n.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 1}]
    }}});
    let fake = Fake::new().flaky("flaky", "E", "c", 2);
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(succeeded(&e), json!({"n": 2}));
}

#[test]
fn retry_count_is_in_the_parameters_context_of_every_attempt() {
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "flaky", "End": true,
        "Parameters": {"n.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 1}]
    }}});
    let fake = Fake::new().flaky("flaky", "E", "c", 2);
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(succeeded(&e), json!({"n": 2}));
    let ns: Vec<Value> = fake
        .calls()
        .into_iter()
        .map(|c| c.input["n"].clone())
        .collect();
    assert_eq!(ns, [json!(0), json!(1), json!(2)]);
}

fn caught(catch: Value, stage_error: &str) -> sluice_workflow::machine::Execution {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "boom", "Next": "Ok", "Catch": catch},
        "Ok": {"Type": "Choice", "Choices": [{"Variable": "$.in", "NumericEquals": 0, "Next": "A"}], "Default": "B"},
        "A": {"Type": "Pass", "Result": "A", "ResultPath": "$.went", "End": true},
        "B": {"Type": "Pass", "Result": "B", "ResultPath": "$.went", "End": true}
    }});
    let fake = Fake::new().failing("boom", stage_error, "the cause");
    run_on(&def, json!({"in": 1}), &fake).0
}

#[test]
fn catch_without_result_path_outputs_the_error() {
    let e = caught(json!([{"ErrorEquals": ["X"], "Next": "A"}]), "X");
    assert_eq!(
        succeeded(&e),
        json!({"Error": "X", "Cause": "the cause", "went": "A"})
    );
}

#[test]
fn catch_result_path_places_the_error_into_the_input() {
    let e = caught(
        json!([{"ErrorEquals": ["X"], "ResultPath": "$.err", "Next": "A"}]),
        "X",
    );
    assert_eq!(
        succeeded(&e),
        json!({"in": 1, "err": {"Error": "X", "Cause": "the cause"}, "went": "A"})
    );
    let e = caught(
        json!([{"ErrorEquals": ["X"], "ResultPath": null, "Next": "A"}]),
        "X",
    );
    assert_eq!(succeeded(&e), json!({"in": 1, "went": "A"}));
}

#[test]
fn the_first_matching_catcher_wins() {
    let c = json!([
        {"ErrorEquals": ["Y"], "ResultPath": null, "Next": "B"},
        {"ErrorEquals": ["X", "Y"], "ResultPath": null, "Next": "A"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": "B"}
    ]);
    assert_eq!(succeeded(&caught(c.clone(), "X"))["went"], "A");
    assert_eq!(succeeded(&caught(c.clone(), "Y"))["went"], "B");
    assert_eq!(succeeded(&caught(c, "Z"))["went"], "B");
}

#[test]
fn task_failed_does_not_catch_a_timeout_but_all_does() {
    let c = json!([
        {"ErrorEquals": ["States.TaskFailed"], "ResultPath": null, "Next": "A"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": "B"}
    ]);
    assert_eq!(succeeded(&caught(c.clone(), "Custom"))["went"], "A");
    assert_eq!(succeeded(&caught(c.clone(), "States.Timeout"))["went"], "B");
    let c = json!([{"ErrorEquals": ["States.Timeout"], "ResultPath": null, "Next": "A"}]);
    assert_eq!(succeeded(&caught(c, "States.Timeout"))["went"], "A");
}

#[test]
fn an_uncaught_error_fails_the_execution() {
    let e = caught(json!([{"ErrorEquals": ["Y"], "Next": "A"}]), "X");
    assert_eq!(failed(&e), ("X".to_owned(), "the cause".to_owned()));
}

#[test]
fn catch_assign_sets_variables_from_the_error_output() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "boom", "Next": "Ok", "Catch": [
            {"ErrorEquals": ["States.ALL"], "Assign": {"why.$": "$.Cause", "what.$": "$.Error"}, "ResultPath": null, "Next": "Report"}
        ]},
        "Ok": {"Type": "Succeed"},
        "Report": {"Type": "Pass", "Parameters": {"why.$": "$why", "what.$": "$what"}, "End": true}
    }});
    let fake = Fake::new().failing("boom", "X", "the cause");
    let (e, _) = run_on(&def, json!({}), &fake);
    assert_eq!(succeeded(&e), json!({"why": "the cause", "what": "X"}));
}

#[test]
fn retries_run_out_before_catch_applies() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "flaky", "Next": "Ok",
              "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 2, "IntervalSeconds": 1}],
              "Catch": [{"ErrorEquals": ["E"], "Next": "Caught"}]},
        "Ok": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let fake = Fake::new().flaky("flaky", "E", "c", 5);
    let (e, now) = run_on(&def, json!({}), &fake);
    assert_eq!(succeeded(&e), json!({"Error": "E", "Cause": "c"}));
    assert_eq!(fake.calls().len(), 3);
    assert_eq!(now - T0, 3_000);
}

#[test]
fn a_runtime_error_of_output_processing_is_not_caught() {
    // Recorded: scenarios.test_base_scenarios.TestBaseScenarios.test_catch_states_runtime.
    let def = json!({"StartAt": "RaiseRuntime", "States": {
        "RaiseRuntime": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:111111111111:function:id", "OutputPath": "$.no.such.result.path",
            "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "CaughtRuntime"}], "Next": "Final"},
        "CaughtRuntime": {"Type": "Pass", "End": true},
        "Final": {"Type": "Pass", "End": true}
    }});
    let (e, _) = run_on(&def, json!({}), &Fake::new());
    assert_eq!(
        failed(&e),
        (
            "States.Runtime".to_owned(),
            "An error occurred while executing the state 'RaiseRuntime' (entered at the event id #2). Invalid path '$.no.such.result.path' : Missing property in path $['no']".to_owned()
        )
    );
    assert_eq!(
        event_types(&e),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "ExecutionFailed"
        ]
    );
}

#[test]
fn the_execution_times_out_after_its_timeout_seconds() {
    let def = json!({"TimeoutSeconds": 10, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "End": true}}});
    let (e, now) = run_on(&def, json!({}), &Fake::new());
    assert_eq!(e.status, Status::TimedOut);
    assert_eq!(now - T0, 10_000);
    assert_eq!(
        e.error.as_ref().map(|e| e.error.as_str()),
        Some("States.Timeout")
    );
    assert_eq!(event_types(&e).last(), Some(&"ExecutionTimedOut"));
}

#[test]
fn the_execution_times_out_during_retry_backoff() {
    let def = json!({"TimeoutSeconds": 5, "StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "flaky", "End": true,
        "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 3, "MaxAttempts": 5}]
    }}});
    let fake = Fake::new().flaky("flaky", "E", "c", 10);
    let (e, now) = run_on(&def, json!({}), &fake);
    assert_eq!(e.status, Status::TimedOut);
    assert_eq!(now - T0, 5_000);
    assert_eq!(fake.calls().len(), 2);
}

#[test]
fn an_execution_within_its_timeout_succeeds() {
    let def = json!({"TimeoutSeconds": 10, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 9, "End": true}}});
    assert_eq!(exec(&def, json!(1)).status, Status::Succeeded);
}
