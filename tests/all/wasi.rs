//! What the sandbox grants a guest through WASI, and where guest output goes.

use serde_json::{Value, json};
use sluice_runtime::{Grants, StageConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, event, ok_json};

#[test]
fn nothing_is_granted_by_default() {
    let h = Harness::new();
    let mut w = h.worker_for("wasi-probe", guests::WASI_PROBE, StageConfig::default());
    let out = ok_json(&w.invoke(&event("p1", &json!({}))).outcome);
    assert_eq!(out["env"], json!([]), "no environment: {out}");
    assert_eq!(out["args"], json!([]), "no arguments: {out}");
    assert!(
        out["rootDir"].as_str().unwrap().starts_with("err:"),
        "no filesystem: {out}"
    );
    assert!(
        out["tcp"].as_str().unwrap().starts_with("err:"),
        "no sockets: {out}"
    );
}

#[test]
fn granted_environment_and_directory_are_visible() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    std::fs::write(dir.path().join("b.txt"), "b").unwrap();
    let grants = Grants {
        env: vec![("REGION".into(), "eu-1".into())],
        dirs: vec![(dir.path().to_owned(), "/".into())],
        ..Grants::default()
    };
    let mut w = h.worker_for(
        "wasi-probe",
        guests::WASI_PROBE,
        StageConfig {
            grants,
            ..StageConfig::default()
        },
    );
    let out = ok_json(&w.invoke(&event("p1", &json!({}))).outcome);
    assert_eq!(out["env"], json!(["REGION"]));
    assert_eq!(out["rootDir"], "ok:2");
    assert!(
        out["tcp"].as_str().unwrap().starts_with("err:"),
        "network still denied: {out}"
    );
}

#[test]
fn echo_sees_every_event_field_and_its_output_is_logged_with_the_event_id() {
    let h = Harness::new();
    let mut w = h.worker_for("echo", guests::ECHO, StageConfig::default());
    let mut e = event("evt-42", &json!({"hello": "world"}));
    e.attempt = 3;
    e.headers = vec![
        ("Nats-Msg-Id".into(), "evt-42".into()),
        ("x-trace".into(), "t1".into()),
    ];
    let out = ok_json(&w.invoke(&e).outcome);
    assert_eq!(out["id"], "evt-42");
    assert_eq!(out["type"], "order.created");
    assert_eq!(out["source"], "tests");
    assert_eq!(out["subject"], "orders.created");
    assert_eq!(out["time"], "2026-11-26T10:00:00Z");
    assert_eq!(out["attempt"], 3);
    assert_eq!(
        out["headers"],
        json!([["Nats-Msg-Id", "evt-42"], ["x-trace", "t1"]])
    );
    assert_eq!(out["data"], json!({"hello": "world"}));

    let mut raw = event("evt-43", &Value::Null);
    raw.data = b"plain text".to_vec();
    assert_eq!(ok_json(&w.invoke(&raw).outcome)["data"], "plain text");

    let logs = h.logs.0.lock();
    for stream in ["stdout", "stderr"] {
        assert!(
            logs.iter().any(|l| l.stream == stream
                && l.stage == "echo"
                && l.event_id == "evt-42"
                && l.message.contains("evt-42")),
            "{stream} line tagged with the event: {logs:?}"
        );
    }
    assert!(
        logs.iter().any(|l| l.event_id == "evt-43"),
        "second event tagged with its own id"
    );
}
