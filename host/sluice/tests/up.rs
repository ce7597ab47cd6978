//! `sluice up` end to end: a real nats-server, the host as a child process running the
//! declaration in `pipelines/orders.json`, orders published over NATS, and a clean SIGTERM.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use sluice_test_artifacts as guests;
use sluice_tests::{NatsServer, create_stream, messages_in, order, wait_for_stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_the_declared_pipeline_and_stops_cleanly_on_sigterm() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "NOTIFY", "notifications.>").await;
    let dir = tempfile::tempdir().unwrap();
    let declaration = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/orders.json");
    let components = Path::new(guests::VALIDATE_ORDER).parent().unwrap();
    let mut host = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .arg("up")
        .arg("--config")
        .arg(&declaration)
        .arg("--components")
        .arg(components)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--nats", &nats.url])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = host.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log.iter().any(|l: &String| l.contains("sluice is up")) {
        assert!(Instant::now() < deadline, "host did not come up: {log:#?}");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            log.push(line);
        }
    }
    wait_for_stream(&js, "ORDERS").await;
    for i in 0..20 {
        let mut o = order(&format!("o-{i}"), "u-1");
        if i % 7 == 0 {
            o["items"] = serde_json::json!([]);
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("order-{i}").as_str());
        js.publish_with_headers(
            "orders.new",
            headers,
            serde_json::to_vec(&o).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let (valid, invalid) = (17, 3);
    while messages_in(&js, "NOTIFY").await < valid || messages_in(&js, "SLUICE_DLQ").await < invalid
    {
        assert!(Instant::now() < deadline, "pipeline did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = host.wait().unwrap();
    log.extend(rx.try_iter());
    assert!(exit.success(), "host exited with {exit}: {log:#?}");
    assert!(log.iter().any(|l| l.contains("outbox drained")), "{log:#?}");
    assert_eq!(messages_in(&js, "NOTIFY").await, valid);
    assert_eq!(messages_in(&js, "SLUICE_DLQ").await, invalid);
}
