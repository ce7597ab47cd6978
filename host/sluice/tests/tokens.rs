//! Task tokens and publishing Tasks through `sluice up`, end to end over a real nats-server:
//! a workflow asks for approval on a NATS subject (the token in the message, out through the
//! outbox), the host is SIGKILLed while the executions wait, and after the restart the
//! answers come back as NATS requests on `sluice.task.*`; approved orders run a real stage
//! and announce themselves through `sns:publish` and `events:putEvents`, rejected ones go to
//! the dead letters with the error the answer named. Nothing is lost or doubled.

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::{Value, json};
use sluice_test_artifacts as guests;
use sluice_tests::{
    NatsServer, UpArgs, create_stream, messages_in, order, publish_with_id, read_stream, start_up,
    wait_for_stream,
};

fn declaration(dir: &Path) -> std::path::PathBuf {
    let built = Path::new(guests::VALIDATE_ORDER).parent().unwrap();
    let workflow = json!({
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:sluice:states:::nats:publish.waitForTaskToken",
                "Parameters": {"Subject": "approvals.requested",
                               "Message": {"order.$": "$.orderId", "token.$": "$$.Task.Token"}},
                "HeartbeatSeconds": 600,
                "ResultPath": "$.approval",
                "Next": "Validate"
            },
            "Validate": {"Type": "Task", "Resource": "validate-order", "Next": "Announce"},
            "Announce": {
                "Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": "arn:aws:sns:local:000000000000:approved", "Message.$": "$.orderId"},
                "ResultPath": "$.sns", "Next": "Tell"
            },
            "Tell": {
                "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"Source": "shop.orders", "DetailType": "OrderApproved",
                                            "Detail": {"order.$": "$.orderId"}}]},
                "ResultPath": "$.events", "End": true
            }
        }
    });
    let decl = json!({
        "stages": [{"name": "validate-order", "component": built.join("validate_order.wasm")}],
        "workflows": [{"name": "approve", "definition": workflow}],
        "triggers": [{
            "workflow": "approve", "name": "approve", "stream": "APPROVE_IN",
            "stream_subjects": ["approve.>"], "filter_subject": "approve.new",
            "output_subject": "approved.done"
        }]
    });
    let path = dir.join("decl.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&decl).unwrap()).unwrap();
    path
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Send `body` to `sluice.task.<verb>`; the reply.
async fn callback(client: &async_nats::Client, verb: &str, body: Value) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        client.request(
            format!("sluice.task.{verb}"),
            serde_json::to_vec(&body).unwrap().into(),
        ),
    )
    .await
    .expect("a reply in time")
    .expect("a reply");
    serde_json::from_slice(&reply.payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_wait_through_a_sigkill_and_answers_over_nats_resume_them() {
    let nats = NatsServer::start();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = jetstream::new(client.clone());
    for (name, subjects) in [
        ("APPROVALS", "approvals.>"),
        ("SNS", "sns.>"),
        ("EVENTS", "events.>"),
        ("DONE", "approved.done"),
    ] {
        create_stream(&js, name, subjects).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let decl = declaration(dir.path());
    let bin = Path::new(env!("CARGO_BIN_EXE_sluice"));
    let (cache, data) = (dir.path().join("cache"), dir.path().join("data"));
    let start = |with_config: bool| {
        start_up(
            bin,
            &UpArgs {
                cache: &cache,
                config: with_config.then_some(decl.as_path()),
                components: None,
                data: &data,
                nats: &nats.url,
            },
        )
    };
    let host = start(true);
    wait_for_stream(&js, "APPROVE_IN").await;
    let n = 6;
    for i in 0..n {
        let o = order(&format!("o-{i}"), "u-1");
        publish_with_id(
            &js,
            "approve.new",
            &format!("a-{i}"),
            serde_json::to_vec(&o).unwrap(),
        )
        .await;
    }
    until("every approval request", async || {
        messages_in(&js, "APPROVALS").await == n
    })
    .await;
    // The host dies while every execution waits for its answer.
    drop(host);
    let host = start(false);
    let requests = read_stream(&js, "APPROVALS", 100).await;
    assert_eq!(requests.len(), n as usize, "each request published once");
    let mut tokens: Vec<(String, String)> = requests
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_slice(&m.payload).unwrap();
            (
                v["order"].as_str().unwrap().to_owned(),
                v["token"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    tokens.sort();
    for (i, (order, token)) in tokens.iter().enumerate() {
        assert_eq!(order, &format!("o-{i}"));
        assert_eq!(
            callback(&client, "heartbeat", json!({"taskToken": token})).await,
            json!({})
        );
        let reply = if i % 2 == 0 {
            callback(
                &client,
                "success",
                json!({"taskToken": token, "output": "{\"by\": \"ops\"}"}),
            )
            .await
        } else {
            callback(
                &client,
                "failure",
                json!({"taskToken": token, "error": "Order.Rejected", "cause": "over the limit"}),
            )
            .await
        };
        assert_eq!(reply, json!({}), "answer for {order}");
    }
    // A repeat finds nothing waiting; a bad token or request is refused by name.
    let again = callback(
        &client,
        "success",
        json!({"taskToken": tokens[0].1, "output": "{}"}),
    )
    .await;
    assert_eq!(again["error"], "TaskTimedOut", "{again}");
    let bad = callback(
        &client,
        "success",
        json!({"taskToken": "nope", "output": "{}"}),
    )
    .await;
    assert_eq!(bad["error"], "InvalidToken", "{bad}");
    let bad = callback(
        &client,
        "success",
        json!({"taskToken": tokens[1].1, "output": "{not json"}),
    )
    .await;
    assert_eq!(bad["error"], "InvalidOutput", "{bad}");
    let bad = callback(&client, "success", json!({"token": "x"})).await;
    assert_eq!(bad["error"], "InvalidArgument", "{bad}");

    until("every execution's end", async || {
        messages_in(&js, "DONE").await == n / 2 && messages_in(&js, "SLUICE_DLQ").await == n / 2
    })
    .await;
    until("every announcement", async || {
        messages_in(&js, "SNS").await == n / 2 && messages_in(&js, "EVENTS").await == n / 2
    })
    .await;
    // Give a duplicate the time to show up, then count again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = read_stream(&js, "DONE", 100).await;
    assert_eq!(done.len(), (n / 2) as usize);
    for m in &done {
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["approval"], json!({"by": "ops"}), "{v}");
        assert!(
            v["sns"]["MessageId"]
                .as_str()
                .unwrap()
                .ends_with("/Announce/1/0"),
            "{v}"
        );
    }
    let dlq = read_stream(&js, "SLUICE_DLQ", 100).await;
    assert_eq!(dlq.len(), (n / 2) as usize);
    for m in &dlq {
        let h = m.headers.as_ref().unwrap();
        assert_eq!(
            h.get("Sluice-Error-Name").unwrap().as_str(),
            "Order.Rejected"
        );
        assert_eq!(
            h.get("Sluice-Error-Cause").unwrap().as_str(),
            "over the limit"
        );
    }
    let sns = read_stream(&js, "SNS", 100).await;
    assert!(sns.iter().all(|m| m.subject.as_str() == "sns.approved"));
    let mut announced: Vec<String> = sns
        .iter()
        .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
        .collect();
    announced.sort();
    assert_eq!(announced, ["o-0", "o-2", "o-4"]);
    let events = read_stream(&js, "EVENTS", 100).await;
    for m in &events {
        assert_eq!(m.subject.as_str(), "events.default.shop.orders");
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["detail-type"], "OrderApproved");
    }
    drop(host);
    assert_eq!(
        messages_in(&js, "APPROVALS").await,
        n,
        "no request published twice"
    );
}
