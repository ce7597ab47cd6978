//! Wait: Seconds, SecondsPath, Timestamp, TimestampPath, on the manual clock.

use serde_json::{Value, json};

use crate::support::{Fake, T0, failed, run_on, succeeded, times_of};

fn wait(fields: Value) -> Value {
    let mut w = json!({"Type": "Wait", "Next": "After"});
    for (k, v) in fields.as_object().unwrap() {
        w[k] = v.clone();
    }
    json!({"StartAt": "W", "States": {"W": w, "After": {"Type": "Pass", "End": true}}})
}

#[test]
fn seconds_waits_that_long_and_passes_the_input() {
    let (e, now) = run_on(&wait(json!({"Seconds": 10})), json!({"a": 1}), &Fake::new());
    assert_eq!(succeeded(&e), json!({"a": 1}));
    assert_eq!(now - T0, 10_000);
    assert_eq!(times_of(&e, "WaitStateEntered"), [0]);
    assert_eq!(times_of(&e, "WaitStateExited"), [10_000]);
    assert_eq!(times_of(&e, "PassStateEntered"), [10_000]);
}

#[test]
fn zero_seconds_does_not_wait() {
    let (e, now) = run_on(&wait(json!({"Seconds": 0})), json!({}), &Fake::new());
    succeeded(&e);
    assert_eq!(now, T0);
}

#[test]
fn seconds_path_reads_the_input() {
    let (e, now) = run_on(
        &wait(json!({"SecondsPath": "$.s"})),
        json!({"s": 7}),
        &Fake::new(),
    );
    succeeded(&e);
    assert_eq!(now - T0, 7_000);
}

#[test]
fn a_negative_seconds_path_value_fails_with_states_runtime() {
    let (e, _) = run_on(
        &wait(json!({"SecondsPath": "$.s"})),
        json!({"s": -1}),
        &Fake::new(),
    );
    let (error, cause) = failed(&e);
    assert_eq!(error, "States.Runtime");
    assert_eq!(
        cause,
        "An error occurred while executing the state 'W' (entered at the event id #2). The SecondsPath parameter references a negative value: $.s == -1"
    );
}

#[test]
fn a_fractional_seconds_path_value_fails_as_aws_reports() {
    // Recorded: base.test_wait.TestSfnWait.test_base_wait_seconds_path[-1.5].
    let (e, _) = run_on(
        &wait(json!({"SecondsPath": "$.input.waitSeconds"})),
        json!({"input": {"waitSeconds": -1.5}}),
        &Fake::new(),
    );
    assert_eq!(
        failed(&e),
        (
            "States.Runtime".to_owned(),
            "An error occurred while executing the state 'W' (entered at the event id #2). The SecondsPath parameter cannot be parsed as a long value: $.input.waitSeconds == -1.5".to_owned()
        )
    );
}

#[test]
fn timestamp_waits_until_then() {
    // T0 is 2023-11-14T22:13:20Z.
    let (e, now) = run_on(
        &wait(json!({"Timestamp": "2023-11-14T22:14:00Z"})),
        json!({}),
        &Fake::new(),
    );
    succeeded(&e);
    assert_eq!(now - T0, 40_000);
    assert_eq!(times_of(&e, "WaitStateExited"), [40_000]);
}

#[test]
fn timestamp_with_an_offset_and_fraction() {
    let (e, now) = run_on(
        &wait(json!({"Timestamp": "2023-11-15T00:13:21.5+02:00"})),
        json!({}),
        &Fake::new(),
    );
    succeeded(&e);
    assert_eq!(now - T0, 1_500);
}

#[test]
fn a_timestamp_in_the_past_does_not_wait() {
    let (e, now) = run_on(
        &wait(json!({"Timestamp": "2020-01-01T00:00:00Z"})),
        json!({}),
        &Fake::new(),
    );
    succeeded(&e);
    assert_eq!(now, T0);
}

#[test]
fn timestamp_path_reads_the_input() {
    let (e, now) = run_on(
        &wait(json!({"TimestampPath": "$.at"})),
        json!({"at": "2023-11-14T22:13:25Z"}),
        &Fake::new(),
    );
    succeeded(&e);
    assert_eq!(now - T0, 5_000);
}

#[test]
fn a_bad_timestamp_path_value_fails_with_states_runtime() {
    let (e, _) = run_on(
        &wait(json!({"TimestampPath": "$.at"})),
        json!({"at": "soon"}),
        &Fake::new(),
    );
    let (error, cause) = failed(&e);
    assert_eq!(error, "States.Runtime");
    assert!(cause.ends_with("The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: soon"), "{cause}");
}

#[test]
fn waits_add_up_across_states() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Wait", "Seconds": 3, "Next": "B"},
        "B": {"Type": "Wait", "SecondsPath": "$.s", "OutputPath": "$.o", "End": true}
    }});
    let (e, now) = run_on(&def, json!({"s": 4, "o": "done"}), &Fake::new());
    assert_eq!(succeeded(&e), json!("done"));
    assert_eq!(now - T0, 7_000);
}
