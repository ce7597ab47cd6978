//! The Lambda stand-ins that workflow Tasks (and the ASL conformance run) use, each run once
//! through the runtime: what they return or raise is what AWS shows for the LocalStack
//! handlers they mimic, byte for byte where the corpus records it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_model::names;
use sluice_runtime::{Limits, StageConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, err_name, event};

#[test]
fn lambda_raise_fails_with_the_python_runtimes_error_payload() {
    let h = Harness::new();
    let mut w = h.worker_for("lambda-raise", guests::LAMBDA_RAISE, StageConfig::default());
    let inv = w.invoke(&event("wf/Raise/1", &json!({"any": "input"})));
    let e = inv.outcome.expect_err("lambda-raise fails");
    assert_eq!(e.name, "Exception");
    assert!(!e.retryable);
    // Python's json.dumps separators, and the key order of the Lambda runtime.
    let (head, rest) = e
        .cause
        .split_at(e.cause.find("\"requestId\": \"").unwrap() + 14);
    assert_eq!(
        head,
        r#"{"errorMessage": "Some exception was raised.", "errorType": "Exception", "requestId": ""#
    );
    let (id, tail) = rest.split_at(36);
    assert_eq!(
        tail,
        r#"", "stackTrace": ["  File \"/var/task/handler.py\", line 2, in handler\n    raise Exception(\"Some exception was raised.\")\n"]}"#
    );
    // A version 4 uuid, derived from the event id: the same event, the same id.
    let shape: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(shape, [8, 4, 4, 4, 12], "{id}");
    assert_eq!(&id[14..15], "4");
    let parsed: Value = serde_json::from_str(&e.cause).unwrap();
    assert_eq!(parsed["errorType"], "Exception");
    let again = w
        .invoke(&event("wf/Raise/1", &json!({})))
        .outcome
        .unwrap_err();
    assert_eq!(again.cause, e.cause);
    let other = w
        .invoke(&event("wf/Raise/2", &json!({})))
        .outcome
        .unwrap_err();
    assert_ne!(other.cause, e.cause);
}

#[test]
fn lambda_return_bytes_returns_text_that_is_not_json() {
    let h = Harness::new();
    let mut w = h.worker_for(
        "lambda-return-bytes",
        guests::LAMBDA_RETURN_BYTES,
        StageConfig::default(),
    );
    let out = w.invoke(&event("wf/Bytes/1", &json!({}))).outcome.unwrap();
    assert_eq!(out, b"HelloWorld!");
    assert!(serde_json::from_slice::<Value>(&out).is_err());
}

#[test]
fn lambda_sleep_is_ended_by_the_deadline() {
    let h = Harness::new();
    let config = StageConfig {
        limits: Limits {
            deadline: Duration::from_millis(300),
            ..Limits::default()
        },
        ..StageConfig::default()
    };
    let mut w = h.worker_for("lambda-sleep", guests::LAMBDA_SLEEP, config);
    let started = Instant::now();
    let inv = w.invoke(&event("wf/Sleep/1", &json!({"Payload": null})));
    assert_eq!(err_name(&inv.outcome), names::SANDBOX_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
