//! Changes on a running `sluice up` under a stream of events (real nats-server, real guests,
//! real HTTP): a stage redeployed while its trigger consumes, a trigger added mid-stream and
//! deleted, and the triggers created over the API running again after a restart. Every event
//! is handled exactly once by each trigger, and by one version: the outputs of a trigger's
//! single partition switch from the old version to the new once, never back.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_test_artifacts as guests;
use sluice_tests::{create_stream, messages_in, publish_with_id, read_stream};

mod common;
use common::{Api, Host};

fn trigger(name: &str, output: &str) -> Value {
    // Each trigger its own stream: event ids are the dedupe keys of the whole host, so a
    // second trigger over the same messages would find them all done.
    let (stream, subjects) = if name == "b" {
        ("IN_B", "inb.>")
    } else {
        ("IN", "in.>")
    };
    json!({
        "name": name,
        "stream": stream,
        "stream_subjects": [subjects],
        "filter_subject": subjects,
        "stage": "tag",
        "output_subject": output,
        "batch_size": 8,
        "max_wait_ms": 20,
    })
}

async fn wait_for(js: &jetstream::Context, stream: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages_in(js, stream).await < n {
        assert!(
            Instant::now() < deadline,
            "{stream} has {} of {n}",
            messages_in(js, stream).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each output of `stream` by its event id: the version that made it (1: passthrough, which
/// returns the data; 2: echo, which wraps it), in stream order.
async fn outputs(js: &jetstream::Context, stream: &str) -> Vec<(String, u8)> {
    read_stream(js, stream, 10_000)
        .await
        .iter()
        .map(|m| {
            let id = m
                .headers
                .as_ref()
                .unwrap()
                .get("Nats-Msg-Id")
                .unwrap()
                .as_str();
            let event = id.rsplit_once('/').unwrap().0.to_owned();
            let body: Value = serde_json::from_slice(&m.payload).unwrap();
            (event, if body.get("id").is_some() { 2 } else { 1 })
        })
        .collect()
}

/// Every event `<prefix>0..n` exactly once.
fn exactly_once(outs: &[(String, u8)], (prefix, n): (&str, usize), what: &str) {
    let mut ids: Vec<&str> = outs.iter().map(|(e, _)| e.as_str()).collect();
    ids.sort_unstable();
    let mut want: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    want.sort_unstable();
    assert_eq!(
        ids,
        want.iter().map(String::as_str).collect::<Vec<_>>(),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_and_added_and_deleted_triggers_take_effect_on_the_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::spawn(dir.path(), &[]);
    let api = Api::of(&host, dir.path());
    let js = jetstream::new(async_nats::connect(host.nats_url()).await.unwrap());
    create_stream(&js, "OUT_A", "out.a").await;
    create_stream(&js, "OUT_B", "out.b").await;

    assert_eq!(api.deploy("tag", guests::PASSTHROUGH).await["version"], 1);
    // Refusals first: an unknown stage, a bad field, a bad pattern; nothing is created.
    let mut bad = trigger("x", "out.a");
    bad["stage"] = json!("nope");
    let (status, body) = api
        .send(reqwest::Method::POST, "/v1/triggers", Some(bad))
        .await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::NOT_FOUND, &json!("/stage")),
        "{body}"
    );
    let mut bad = trigger("x", "out.a");
    bad["batch_sizes"] = json!(3);
    let (status, _) = api
        .send(reqwest::Method::POST, "/v1/triggers", Some(bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut bad = trigger("x", "out.a");
    bad["pattern"] = json!({"type": 3});
    let (status, body) = api
        .send(reqwest::Method::POST, "/v1/triggers", Some(bad))
        .await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("/pattern")),
        "{body}"
    );
    assert_eq!(
        api.send(reqwest::Method::GET, "/v1/triggers", None).await.1,
        json!({"triggers": []})
    );

    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/v1/triggers",
            Some(trigger("a", "out.a")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "running");
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/v1/triggers",
            Some(trigger("a", "out.a")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A stage a trigger runs cannot be deleted.
    let (status, body) = api
        .send(reqwest::Method::DELETE, "/v1/stages/tag", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        api.send(reqwest::Method::GET, "/v1/stages/tag", None)
            .await
            .1["triggers"],
        json!(["a"])
    );

    // A second stage trigger over a's messages would find each done (event ids are the
    // store's dedupe keys) and never run: refused, and nothing is created on the broker.
    let mut same = trigger("a2", "out.b");
    same["filter_subject"] = json!("in.x");
    let (status, body) = api
        .send(reqwest::Method::POST, "/v1/triggers", Some(same))
        .await;
    assert_eq!(
        (status, &body["type"], &body["field"]),
        (
            StatusCode::CONFLICT,
            &json!("urn:sluice:problem:shares-messages"),
            &json!("/filter_subject")
        ),
        "{body}"
    );
    assert!(
        js.get_stream("IN")
            .await
            .unwrap()
            .consumer_info("a2")
            .await
            .is_err()
    );
    // Content patterns route apart: two routed triggers may share a filter.
    let mut routed = trigger("a2", "out.b");
    routed["pattern"] = json!({"data": {"n": [-1]}});
    let mut routed_too = routed.clone();
    routed_too["name"] = json!("a3");
    routed_too["pattern"] = json!({"data": {"n": [-2]}});
    for t in [&routed, &routed_too] {
        let (status, body) = api
            .send(reqwest::Method::POST, "/v1/triggers", Some(t.clone()))
            .await;
        // Each still overlaps a, which takes every message.
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }

    // 600 events in three parts: the first on version 1; then version 2 deployed while the
    // second part streams; a second trigger added before the third.
    let publish = |range: std::ops::Range<usize>| {
        let js = js.clone();
        async move {
            for i in range {
                let data = serde_json::to_vec(&json!({"n": i})).unwrap();
                publish_with_id(&js, "in.x", &format!("e-{i}"), data).await;
                if i >= 400 {
                    // The third part goes to b's stream too, under its own ids.
                    let data = serde_json::to_vec(&json!({"n": i})).unwrap();
                    publish_with_id(&js, "inb.x", &format!("b-{}", i - 400), data).await;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    publish(0..200).await;
    wait_for(&js, "OUT_A", 100).await;
    let streaming = tokio::spawn(publish(200..400));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(api.deploy("tag", guests::ECHO).await["version"], 2);
    streaming.await.unwrap();
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/v1/triggers",
            Some(trigger("b", "out.b")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    publish(400..600).await;
    wait_for(&js, "OUT_A", 600).await;
    wait_for(&js, "OUT_B", 200).await;

    let a = outputs(&js, "OUT_A").await;
    exactly_once(&a, ("e-", 600), "trigger a");
    let switch = a.iter().position(|(_, v)| *v == 2).expect("version 2 ran");
    assert!(switch >= 100, "version 1 ran the first events");
    assert!(
        a[switch..].iter().all(|(_, v)| *v == 2),
        "never back to version 1 after the switch"
    );
    assert!(
        a[600 - 200..].iter().all(|(_, v)| *v == 2),
        "events after the deploy run version 2"
    );
    // The trigger added mid-stream ran the live version.
    let b = outputs(&js, "OUT_B").await;
    exactly_once(&b, ("b-", 200), "trigger b");
    assert!(b.iter().all(|(_, v)| *v == 2));

    let (status, d) = api.send(reqwest::Method::GET, "/v1/triggers/b", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["consumer"]["pending"], 0, "{d}");
    assert_eq!(d["consumer"]["ack_pending"], 0, "{d}");
    // Deleting b stops it and removes its consumer: later events reach a only.
    let (status, _) = api
        .send(reqwest::Method::DELETE, "/v1/triggers/b", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.send(reqwest::Method::GET, "/v1/triggers/b", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let stream = js.get_stream("IN").await.unwrap();
    assert!(
        stream.consumer_info("b").await.is_err(),
        "b's consumer is gone"
    );
    publish(600..650).await;
    wait_for(&js, "OUT_A", 650).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(messages_in(&js, "OUT_B").await, 200);
    assert_eq!(
        messages_in(&js, "IN_B").await,
        250,
        "b's stream got 50 more, unconsumed"
    );

    // After a restart the API's trigger runs again, on the live version.
    host.stop();
    let host = Host::spawn(dir.path(), &[]);
    let api = Api::of(&host, dir.path());
    let js = jetstream::new(async_nats::connect(host.nats_url()).await.unwrap());
    let (_, list) = api.send(reqwest::Method::GET, "/v1/triggers", None).await;
    let names: Vec<&str> = list["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    let publish = |range: std::ops::Range<usize>| {
        let js = js.clone();
        async move {
            for i in range {
                let data = serde_json::to_vec(&json!({"n": i})).unwrap();
                publish_with_id(&js, "in.x", &format!("e-{i}"), data).await;
            }
        }
    };
    publish(650..700).await;
    wait_for(&js, "OUT_A", 700).await;
    let a = outputs(&js, "OUT_A").await;
    exactly_once(&a, ("e-", 700), "trigger a after the restart");
    host.stop();
}
