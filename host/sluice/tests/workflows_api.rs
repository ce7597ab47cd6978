//! `/v1/workflows` and `/v1/tasks` on a real `sluice up` (managed nats-server, real guests,
//! loopback HTTP): a definition put, refused at its field, replaced; executions started by
//! name (idempotently), described, listed, paged through their history, stopped; a task
//! token answered; a redeployed stage taken by the next Task; and all of it after a restart.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_artifacts as guests;

mod common;
use common::{Api, Host};

/// Wait until the execution leaves RUNNING; its description.
async fn closed(api: &Api, workflow: &str, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, d) = api
            .send(
                Method::GET,
                &format!("/v1/workflows/{workflow}/executions/{name}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
        if d["status"] != "RUNNING" {
            return d;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn flow() -> Value {
    json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "pass", "Next": "B"},
            "B": {"Type": "Pass", "Result": {"done": true}, "ResultPath": "$.b", "Next": "C"},
            "C": {"Type": "Pass", "End": true}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_and_executions_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::spawn(dir.path(), &[]);
    let api = Api::of(&host, dir.path());
    api.deploy("pass", guests::PASSTHROUGH).await;

    // Refused definitions are stored nowhere, and point at their field.
    let mut bad = flow();
    bad["States"]["A"]["Next"] = json!("Nowhere");
    let (status, p) = api
        .send(
            Method::PUT,
            "/v1/workflows/flow",
            Some(json!({"definition": bad})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "/definition/States/A/Next", "{p}");
    assert!(!p["problems"].as_array().unwrap().is_empty());
    let (status, p) = api
        .send(
            Method::PUT,
            "/v1/workflows/flow",
            Some(json!({"definition": flow(), "type": "FAST"})),
        )
        .await;
    assert_eq!(
        (status, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("/type"))
    );
    assert_eq!(
        api.send(Method::GET, "/v1/workflows", None).await.1,
        json!({"workflows": []})
    );
    assert_eq!(
        api.send(Method::GET, "/v1/workflows/flow", None).await.0,
        StatusCode::NOT_FOUND
    );

    let put = json!({"definition": flow()});
    let (status, _) = api
        .send(Method::PUT, "/v1/workflows/flow", Some(put.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, w) = api.send(Method::PUT, "/v1/workflows/flow", Some(put)).await;
    assert_eq!((status, &w["type"]), (StatusCode::OK, &json!("STANDARD")));
    let (_, w) = api.send(Method::GET, "/v1/workflows/flow", None).await;
    assert_eq!(w["definition"], flow());
    // The stage a workflow's Task runs cannot be deleted.
    let (status, p) = api.send(Method::DELETE, "/v1/stages/pass", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");

    // Start by name: idempotent while running with the same input, refused with another.
    let start = |name: &str, input: Value| json!({"name": name, "input": input});
    let (status, s) = api
        .send(
            Method::POST,
            "/v1/workflows/flow/executions",
            Some(start("run-1", json!({"x": 1}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    assert_eq!(s["id"], "flow/run-1");
    let d = closed(&api, "flow", "run-1").await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"], json!({"x": 1, "b": {"done": true}}));
    let (status, p) = api
        .send(
            Method::POST,
            "/v1/workflows/flow/executions",
            Some(start("run-1", json!({"x": 1}))),
        )
        .await;
    assert_eq!(
        (status, &p["error"]),
        (StatusCode::CONFLICT, &json!("ExecutionAlreadyExists"))
    );
    let (status, p) = api
        .send(
            Method::POST,
            "/v1/workflows/nope/executions",
            Some(start("r", json!({}))),
        )
        .await;
    assert_eq!(
        (status, &p["error"]),
        (StatusCode::NOT_FOUND, &json!("StateMachineDoesNotExist"))
    );

    // History in pages of two, forwards and backwards.
    let full = api
        .send(
            Method::GET,
            "/v1/workflows/flow/executions/run-1/history?limit=1000",
            None,
        )
        .await
        .1["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(full.len() >= 6, "{full:?}");
    let ids: Vec<u64> = full.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=full.len() as u64).collect::<Vec<_>>());
    for reverse in [false, true] {
        let mut paged = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut path =
                format!("/v1/workflows/flow/executions/run-1/history?limit=2&reverse={reverse}");
            if let Some(n) = &next {
                path.push_str(&format!("&next={n}"));
            }
            let (status, page) = api.send(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            paged.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(n) => next = Some(n.to_owned()),
                None => break,
            }
        }
        let mut want = full.clone();
        if reverse {
            want.reverse();
        }
        assert_eq!(paged, want, "reverse={reverse}");
    }
    let (status, p) = api
        .send(
            Method::GET,
            "/v1/workflows/flow/executions/run-1/history?next=zz",
            None,
        )
        .await;
    assert_eq!(
        (status, &p["field"]),
        (StatusCode::BAD_REQUEST, &json!("next")),
        "{p}"
    );
    let (status, _) = api
        .send(Method::GET, "/v1/workflows/flow/executions?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, listed) = api
        .send(
            Method::GET,
            "/v1/workflows/flow/executions?status=SUCCEEDED",
            None,
        )
        .await;
    assert_eq!(listed["executions"][0]["name"], "run-1", "{listed}");

    // A redeployed stage is what the next execution's Task runs.
    api.deploy("pass", guests::ECHO).await;
    api.send(
        Method::POST,
        "/v1/workflows/flow/executions",
        Some(start("run-2", json!({"x": 2}))),
    )
    .await;
    let d = closed(&api, "flow", "run-2").await;
    assert_eq!(
        d["output"]["data"],
        json!({"x": 2}),
        "echo wraps its input: {d}"
    );

    // A stage uploaded now with state grants: a Task may use that state at once.
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(sluice_test_artifacts::read(guests::KV_COUNTER)),
        )
        .text(
            "config",
            json!({"grants": {"kv_buckets": ["counters"]}}).to_string(),
        );
    let r = api
        .req(Method::PUT, "/v1/stages/counter")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let count = json!({"definition": {"StartAt": "C", "States": {"C": {"Type": "Task", "Resource": "counter", "End": true}}}});
    api.send(Method::PUT, "/v1/workflows/count", Some(count))
        .await;
    api.send(
        Method::POST,
        "/v1/workflows/count/executions",
        Some(start(
            "c1",
            json!({"bucket": "counters", "key": "w", "delta": 3}),
        )),
    )
    .await;
    let d = closed(&api, "count", "c1").await;
    assert_eq!(
        (&d["status"], &d["output"]),
        (&json!("SUCCEEDED"), &json!({"value": 3})),
        "{d}"
    );

    // Stop a waiting execution; a workflow with a running execution cannot be deleted.
    let sleepy = json!({"definition": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}}});
    api.send(Method::PUT, "/v1/workflows/sleepy", Some(sleepy))
        .await;
    api.send(
        Method::POST,
        "/v1/workflows/sleepy/executions",
        Some(start("z", json!({}))),
    )
    .await;
    let (status, _) = api.send(Method::DELETE, "/v1/workflows/sleepy", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, d) = api
        .send(
            Method::POST,
            "/v1/workflows/sleepy/executions/z/stop",
            Some(json!({"error": "Ops.Cancelled", "cause": "not needed"})),
        )
        .await;
    assert_eq!(
        (status, &d["status"]),
        (StatusCode::OK, &json!("ABORTED")),
        "{d}"
    );
    assert_eq!(d["error"]["error"], "Ops.Cancelled", "{d}");
    assert_eq!(
        api.send(Method::DELETE, "/v1/workflows/sleepy", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.send(Method::GET, "/v1/workflows/sleepy", None).await.0,
        StatusCode::NOT_FOUND
    );

    // A task token: the Task waits until SendTaskSuccess names it.
    let approve = json!({"definition": {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "pass", "Payload": {"token.$": "$$.Task.Token"}},
        "End": true
    }}}});
    api.send(Method::PUT, "/v1/workflows/approve", Some(approve))
        .await;
    api.send(
        Method::POST,
        "/v1/workflows/approve/executions",
        Some(start("a1", json!({}))),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let token = loop {
        let (_, h) = api
            .send(
                Method::GET,
                "/v1/workflows/approve/executions/a1/history?limit=100",
                None,
            )
            .await;
        let scheduled = h["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "TaskScheduled")
            .cloned();
        if let Some(e) = scheduled {
            let params: Value = match &e["details"]["parameters"] {
                Value::String(s) => serde_json::from_str(s).unwrap(),
                other => other.clone(),
            };
            break params["Payload"]["token"]
                .as_str()
                .unwrap_or_else(|| panic!("{e}"))
                .to_owned();
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/tasks/heartbeat",
            Some(json!({"taskToken": token})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/tasks/success",
            Some(json!({"taskToken": token, "output": {"ok": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let d = closed(&api, "approve", "a1").await;
    assert_eq!(
        (&d["status"], &d["output"]),
        (&json!("SUCCEEDED"), &json!({"ok": 1}))
    );
    let (status, p) = api
        .send(
            Method::POST,
            "/v1/tasks/success",
            Some(json!({"taskToken": token, "output": {}})),
        )
        .await;
    assert_eq!(
        (status, &p["error"]),
        (StatusCode::CONFLICT, &json!("TaskTimedOut")),
        "{p}"
    );
    let (status, p) = api
        .send(
            Method::POST,
            "/v1/tasks/failure",
            Some(json!({"taskToken": "garbage"})),
        )
        .await;
    assert_eq!(
        (status, &p["error"]),
        (StatusCode::BAD_REQUEST, &json!("InvalidToken")),
        "{p}"
    );

    // After a restart: the workflows and their executions are there.
    host.stop();
    let host = Host::spawn(dir.path(), &[]);
    let api = Api::of(&host, dir.path());
    let (_, list) = api.send(Method::GET, "/v1/workflows", None).await;
    assert_eq!(
        list,
        json!({"workflows": [
            {"name": "approve", "type": "STANDARD"},
            {"name": "count", "type": "STANDARD"},
            {"name": "flow", "type": "STANDARD"},
        ]})
    );
    assert_eq!(closed(&api, "flow", "run-2").await["status"], "SUCCEEDED");
    api.send(
        Method::POST,
        "/v1/workflows/flow/executions",
        Some(start("run-3", json!({"x": 3}))),
    )
    .await;
    assert_eq!(
        closed(&api, "flow", "run-3").await["output"]["data"],
        json!({"x": 3})
    );
    host.stop();
}
