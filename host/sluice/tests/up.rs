//! `sluice up` end to end: a real nats-server, the host as a child process running the
//! declaration in `pipelines/orders.json`, orders published over NATS, a clean SIGTERM, and a
//! restart without the declaration that resumes from the data directory's registry.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use sluice_test_artifacts as guests;

mod common;
use common::Host;
use sluice_tests::{
    NatsServer, create_stream, messages_in, order, publish_with_id, wait_for_stream,
};

/// One HTTP/1.1 request to the API at `addr`, with the bearer `token`: the status and the
/// whole answer.
fn http(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    (status.unwrap_or_else(|| panic!("not HTTP: {out:?}")), out)
}

/// `POST path` with `body` and the extra header lines `headers` to the API at `addr`: the
/// status and the whole answer.
fn http_post(addr: &str, path: &str, token: &str, headers: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    (status.unwrap_or_else(|| panic!("not HTTP: {out:?}")), out)
}

/// Publish orders `range`; every 7th has no items (dead-lettered by validation).
async fn publish_orders(js: &jetstream::Context, range: std::ops::Range<usize>) {
    for i in range {
        let mut o = order(&format!("o-{i}"), "u-1");
        if i % 7 == 0 {
            o["items"] = serde_json::json!([]);
        }
        publish_with_id(
            js,
            "orders.new",
            &format!("order-{i}"),
            serde_json::to_vec(&o).unwrap(),
        )
        .await;
    }
}

async fn wait_for_outputs(js: &jetstream::Context, valid: u64, invalid: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while messages_in(js, "NOTIFY").await < valid || messages_in(js, "SLUICE_DLQ").await < invalid {
        assert!(Instant::now() < deadline, "pipeline did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_the_declared_pipeline_stops_cleanly_and_resumes_from_its_registry() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "NOTIFY", "notifications.>").await;
    let dir = tempfile::tempdir().unwrap();
    let declaration = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/orders.json");
    // The components are copied, so the test can take them away before the restart.
    let components = dir.path().join("components");
    std::fs::create_dir(&components).unwrap();
    let built = Path::new(guests::VALIDATE_ORDER).parent().unwrap();
    for f in std::fs::read_dir(built).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&f, components.join(f.file_name().unwrap())).unwrap();
        }
    }
    let host = Host::start(
        dir.path(),
        &nats.url,
        &[
            "--config".as_ref(),
            declaration.as_os_str(),
            "--components".as_ref(),
            components.as_os_str(),
        ],
    );
    wait_for_stream(&js, "ORDERS").await;
    // The API serves beside the triggers: health without a token, `/v1` only with one.
    let api = host.api_addr();
    assert_eq!(http(&api, "/healthz", None).0, 200);
    let (status, ready) = http(&api, "/readyz", None);
    assert_eq!(status, 200, "{ready}");
    let admin_file = dir.path().join("data/admin.token");
    let admin = std::fs::read_to_string(&admin_file).unwrap();
    assert_eq!(http(&api, "/v1/tokens", Some(&admin)).0, 200);
    assert_eq!(http(&api, "/v1/tokens", None).0, 401);
    publish_orders(&js, 0..20).await;
    wait_for_outputs(&js, 17, 3).await;
    // The stored orders, through the state API: the table's `by-status` index.
    let (status, page) = http(
        &api,
        "/v1/state/tables/orders?index=by-status&pk=stored&limit=1000",
        Some(admin.trim()),
    );
    assert_eq!(status, 200, "{page}");
    let body: serde_json::Value =
        serde_json::from_str(&page[page.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 17, "{body}");
    assert_eq!(body["items"][0]["doc"]["status"], "stored", "{body}");
    host.stop();
    assert_eq!(messages_in(&js, "NOTIFY").await, 17);
    assert_eq!(messages_in(&js, "SLUICE_DLQ").await, 3);

    // A declaration that does not deploy is refused before it is recorded.
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("x.wasm"), b"not a component").unwrap();
    std::fs::write(
        bad.join("bad.json"),
        r#"{"stages": [{"name": "x", "component": "x.wasm"}], "triggers": []}"#,
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .arg("up")
        .arg("--config")
        .arg(bad.join("bad.json"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--nats", &nats.url])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("deploying stage x"), "{stderr}");

    // Orders published while the host is down wait in the stream; the restarted host, given
    // neither the declaration nor the component files, resumes the same triggers (the ones
    // recorded first, not the refused ones).
    publish_orders(&js, 20..30).await;
    std::fs::remove_dir_all(&components).unwrap();
    let host = Host::start(dir.path(), &nats.url, &[]);
    // The restarted host keeps its tokens: the admin token still opens the API.
    assert_eq!(std::fs::read_to_string(&admin_file).unwrap(), admin);
    assert_eq!(http(&host.api_addr(), "/v1/tokens", Some(&admin)).0, 200);
    publish_orders(&js, 30..40).await;
    // 40 orders, 6 of them invalid (0, 7, 14, 21, 28, 35).
    wait_for_outputs(&js, 34, 6).await;
    host.stop();
    assert_eq!(messages_in(&js, "NOTIFY").await, 34);
    assert_eq!(messages_in(&js, "SLUICE_DLQ").await, 6);
}

/// The process id in the managed nats-server's pid file under `dir`.
fn managed_pid(dir: &Path) -> u32 {
    let file = dir.join("data/nats/nats-server.pid");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    text.trim().parse().unwrap()
}

/// Kills (by process id) a managed nats-server a failed test would leave behind.
struct KillPid(u32);

impl Drop for KillPid {
    fn drop(&mut self) {
        // Only while it is still a nats-server: a pid may have been reused since.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        let is_nats = String::from_utf8_lossy(&cmdline).contains("nats-server");
        if is_nats && sluice_nats::process_runs(self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// `sluice up` with neither `--config` nor `--nats`, on an empty data directory: the host
/// starts empty, says so, and runs a nats-server of its own (JetStream on, its store in the
/// data directory) that clients can use. A host killed with SIGKILL leaves that server
/// behind; the next host stops it before starting its own on the same store, and a host
/// stopped with SIGTERM stops its server too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_no_arguments_runs_an_empty_host_on_a_managed_nats_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::spawn(dir.path(), &[]);
    assert!(
        host.log.iter().any(|l| l.contains("no declaration yet")),
        "{:#?}",
        host.log
    );
    let url_of = |log: &[String]| {
        let line = log
            .iter()
            .find(|l| l.contains("nats-server (managed) on "))
            .unwrap_or_else(|| panic!("no managed nats-server: {log:#?}"))
            .clone();
        line.split_whitespace()
            .find(|w| w.starts_with("nats://"))
            .unwrap()
            .trim_end_matches(',')
            .to_owned()
    };
    let url = url_of(&host.log);
    let first = KillPid(managed_pid(dir.path()));
    assert!(sluice_nats::process_runs(first.0));
    // JetStream works on it, with its store inside the data directory.
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    create_stream(&js, "PROBE", "probe.>").await;
    publish_with_id(&js, "probe.one", "p-1", b"{}".to_vec()).await;
    assert_eq!(messages_in(&js, "PROBE").await, 1);
    assert!(dir.path().join("data/nats/jetstream").is_dir());
    let (status, _) = http(&host.api_addr(), "/readyz", None);
    assert_eq!(status, 200);
    // An event through the API: a binary CloudEvent, stored with its id as Nats-Msg-Id and
    // its attributes as ce-* headers; the same id again is a duplicate.
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let event = "ce-specversion: 1.0\r\nce-id: evt-1\r\nce-source: /test\r\n\
                 ce-type: probe.made\r\nContent-Type: application/json\r\n";
    for duplicate in [false, true] {
        let (status, answer) = http_post(
            &host.api_addr(),
            "/v1/events/probe.api",
            admin.trim(),
            event,
            r#"{"n":2}"#,
        );
        assert_eq!(status, 200, "{answer}");
        assert!(
            answer.contains(&format!(
                r#""id":"evt-1","stream":"PROBE","seq":2,"duplicate":{duplicate}"#
            )),
            "{answer}"
        );
    }
    assert_eq!(messages_in(&js, "PROBE").await, 2);
    let stored = js
        .get_stream("PROBE")
        .await
        .unwrap()
        .get_raw_message(2)
        .await
        .unwrap();
    assert_eq!(stored.headers.get("Nats-Msg-Id").unwrap().as_str(), "evt-1");
    assert_eq!(
        stored.headers.get("ce-type").unwrap().as_str(),
        "probe.made"
    );
    assert_eq!(&stored.payload[..], br#"{"n":2}"#);

    // SIGKILL: the host cannot stop its server, which stays on the store.
    host.child.kill().unwrap();
    host.child.wait().unwrap();
    assert!(sluice_nats::process_runs(first.0), "the orphan still runs");

    // The next host stops the orphan and starts its own on the same store: the stream and
    // its message are still there.
    let host = Host::spawn(dir.path(), &[]);
    assert!(
        !sluice_nats::process_runs(first.0),
        "the orphan was stopped"
    );
    let second = KillPid(managed_pid(dir.path()));
    assert_ne!(second.0, first.0);
    let js = jetstream::new(async_nats::connect(&url_of(&host.log)).await.unwrap());
    assert_eq!(messages_in(&js, "PROBE").await, 2);
    drop(js);

    // A second host on the same data directory is refused, and the live server untouched.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .arg("up")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another sluice host runs"), "{stderr}");
    assert!(
        sluice_nats::process_runs(second.0),
        "the live host's server still runs"
    );

    // SIGTERM stops the host and its server.
    let pid = host.child.id();
    let mut host = host;
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(host.child.wait().unwrap().success());
    assert!(
        !sluice_nats::process_runs(second.0),
        "stopped with its host"
    );
}

/// `sluice up` with `pipelines/orders-workflow.json`: each order on `wf.orders.new` starts one
/// durable execution of `workflows/order-pipeline.asl.json` on the real stages; a good order's
/// output goes to the trigger's output subject and its notification out through the outbox,
/// a rejected one to the dead letters with its error. A host killed with SIGKILL while orders
/// flow resumes every execution from the store, and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_the_order_workflow_behind_one_trigger_and_survives_sigkill() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "NOTIFY", "notifications.>").await;
    create_stream(&js, "WF_RESULTS", "wf.results.>").await;
    let dir = tempfile::tempdir().unwrap();
    let declaration =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/orders-workflow.json");
    let built = Path::new(guests::VALIDATE_ORDER).parent().unwrap();
    let config = [
        "--config".as_ref(),
        declaration.as_os_str(),
        "--components".as_ref(),
        built.as_os_str(),
    ];
    let host = Host::start(dir.path(), &nats.url, &config);
    wait_for_stream(&js, "ORDERS_WF").await;
    let publish = |range: std::ops::Range<usize>| {
        let js = js.clone();
        async move {
            for i in range {
                let mut o = order(&format!("o-{i}"), "u-1");
                if i % 7 == 0 {
                    o["items"] = serde_json::json!([]);
                }
                publish_with_id(
                    &js,
                    "wf.orders.new",
                    &format!("order-{i}"),
                    serde_json::to_vec(&o).unwrap(),
                )
                .await;
            }
        }
    };
    let settled = |valid: u64, invalid: u64| {
        let js = js.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while messages_in(&js, "WF_RESULTS").await < valid
                || messages_in(&js, "NOTIFY").await < valid
                || messages_in(&js, "SLUICE_DLQ").await < invalid
            {
                assert!(
                    Instant::now() < deadline,
                    "the workflows did not finish: results {}, notifications {}, dead letters {}",
                    messages_in(&js, "WF_RESULTS").await,
                    messages_in(&js, "NOTIFY").await,
                    messages_in(&js, "SLUICE_DLQ").await
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    publish(0..20).await;
    settled(17, 3).await;
    // The output of a good order is the workflow's output.
    let done = last_message(&js, "WF_RESULTS").await;
    assert_eq!(done["notified"], serde_json::json!(true), "{done}");

    // SIGKILL while a burst is in flight, then restart from the registry alone.
    publish(20..60).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(host);
    let host = Host::start(dir.path(), &nats.url, &[]);
    publish(60..80).await;
    // 80 orders; 0, 7, ..., 77 are invalid: 12 rejected, 68 good.
    settled(68, 12).await;
    host.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(messages_in(&js, "WF_RESULTS").await, 68);
    assert_eq!(messages_in(&js, "NOTIFY").await, 68);
    assert_eq!(messages_in(&js, "SLUICE_DLQ").await, 12);
}

/// The data of the newest message of `stream`, as JSON.
async fn last_message(js: &jetstream::Context, stream: &str) -> serde_json::Value {
    let mut s = js.get_stream(stream).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    let m = s.get_raw_message(last).await.unwrap();
    serde_json::from_slice(&m.payload).unwrap()
}
