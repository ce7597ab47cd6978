//! Fault test for durable workflows: SIGKILL `sluice up` at random moments, ten times, while
//! 2,000 orders each run one execution of the order workflow (a Parallel of real stages, a
//! Retry with backoff on a flaky payment, a durable Wait before the notification). After the
//! last restart every execution has ended exactly once: one result per good order, one dead
//! letter per rejected one, one notification and one table item per good order, and the
//! order counters exact.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::{Value, json};
use sluice_model::state::{Query, SortKeyCondition, StateSession, SystemClock};
use sluice_store::{Store, StoreConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{
    KillOnDrop, NatsServer, UpArgs, create_stream, messages_in, order, orders_table, start_up,
};

const ORDERS: usize = 2_000;
const KILLS: usize = 10;

/// What becomes of order `i`: invalid (no items), flaky payment (retried, then rejected), or
/// good.
fn kind(i: usize) -> &'static str {
    match i % 50 {
        0 => "invalid",
        25 => "flaky",
        _ => "good",
    }
}

/// `pipelines/orders-workflow.json`, its workflow given inline with a one-second Wait before
/// the notification, and a short ack wait so a killed host's unacknowledged starts come back
/// quickly.
fn declaration(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut decl: Value = serde_json::from_slice(
        &std::fs::read(root.join("pipelines/orders-workflow.json")).unwrap(),
    )
    .unwrap();
    let mut def: Value = serde_json::from_slice(
        &std::fs::read(root.join("workflows/order-pipeline.asl.json")).unwrap(),
    )
    .unwrap();
    def["States"]["Store"]["Next"] = json!("Pause");
    def["States"]["Pause"] = json!({"Type": "Wait", "Seconds": 1, "Next": "Notify"});
    decl["workflows"][0]["definition"] = def;
    let t = &mut decl["triggers"][0];
    t["ack_wait_ms"] = 2000.into();
    t["batch_size"] = 200.into();
    let out = dir.join("orders-workflow.json");
    std::fs::write(&out, serde_json::to_vec(&decl).unwrap()).unwrap();
    out
}

fn start_host(declaration: &Path, data: &Path, cache: &Path, nats: &str) -> KillOnDrop {
    start_up(
        Path::new(env!("CARGO_BIN_EXE_sluice")),
        &UpArgs {
            cache,
            config: Some(declaration),
            components: Path::new(guests::VALIDATE_ORDER).parent(),
            data,
            nats,
        },
    )
}

async fn publish(js: &jetstream::Context) {
    for i in 0..ORDERS {
        let mut o = order(&format!("o-{i}"), &format!("u-{}", i % 10));
        match kind(i) {
            "invalid" => o["items"] = json!([]),
            "flaky" => o["payment"] = json!({"method": "flaky"}),
            _ => {}
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("order-{i}").as_str());
        js.publish_with_headers(
            "wf.orders.new",
            headers,
            serde_json::to_vec(&o).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_the_host_while_workflows_run_then_each_ends_exactly_once() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "NOTIFY", "notifications.>").await;
    create_stream(&js, "WF_RESULTS", "wf.results.>").await;
    create_stream(&js, "ORDERS_WF", "wf.orders.>").await;
    let dir = tempfile::tempdir().unwrap();
    let decl = declaration(dir.path());
    let (data, cache) = (dir.path().join("data"), dir.path().join("cache"));
    publish(&js).await;
    let good = (0..ORDERS).filter(|i| kind(*i) == "good").count() as u64;
    let rejected = ORDERS as u64 - good;

    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut progress = Vec::new();
    let kills = std::env::var("SLUICE_FAULT_KILLS").map_or(KILLS, |v| v.parse().unwrap());
    for _ in 0..kills {
        let mut host = start_host(&decl, &data, &cache, &nats.url);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(1500 + rng % 3000)).await;
        host.kill().unwrap(); // SIGKILL
        host.wait().unwrap();
        progress.push((
            messages_in(&js, "NOTIFY").await,
            messages_in(&js, "WF_RESULTS").await,
        ));
    }
    let mut host = start_host(&decl, &data, &cache, &nats.url);
    let last_start = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while messages_in(&js, "WF_RESULTS").await < good
        || messages_in(&js, "NOTIFY").await < good
        || messages_in(&js, "SLUICE_DLQ").await < rejected
    {
        assert!(
            Instant::now() < deadline,
            "did not finish: {} results, {} notifications, {} dead letters",
            messages_in(&js, "WF_RESULTS").await,
            messages_in(&js, "NOTIFY").await,
            messages_in(&js, "SLUICE_DLQ").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Redeliveries of starts a killed host left unacknowledged arrive up to an ack wait later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &host.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(host.wait().unwrap().success());
    eprintln!(
        "(notifications, results) after each kill: {progress:?}; the last host finished in {:.1} s",
        last_start.elapsed().as_secs_f64()
    );

    assert_eq!(
        messages_in(&js, "WF_RESULTS").await,
        good,
        "one result per good order"
    );
    assert_eq!(
        messages_in(&js, "NOTIFY").await,
        good,
        "one notification per good order"
    );
    assert_eq!(
        messages_in(&js, "SLUICE_DLQ").await,
        rejected,
        "one dead letter per rejection"
    );
    // The rejections name their reasons.
    let mut dlq = js.get_stream("SLUICE_DLQ").await.unwrap();
    let (mut invalid, mut unavailable) = (0, 0);
    for seq in 1..=dlq.info().await.unwrap().state.last_sequence {
        let m = dlq.get_raw_message(seq).await.unwrap();
        let name = m.headers.get("Sluice-Error-Name").map(|v| v.to_string());
        match name.as_deref() {
            Some("Order.Invalid") => invalid += 1,
            Some("Payment.Unavailable") => unavailable += 1,
            other => panic!("unexpected dead letter {other:?}"),
        }
    }
    assert_eq!(invalid, ORDERS / 50);
    assert_eq!(unavailable, ORDERS / 50);

    let store = Store::open(
        &data.join("sluice.redb"),
        StoreConfig {
            tables: vec![orders_table()],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let mut s = store.open_session();
    let mut q = Query {
        index: Some("by-status".into()),
        pk: "stored".into(),
        sk: SortKeyCondition::Any,
        forward: true,
        limit: 1000,
        cursor: None,
    };
    let mut ids = std::collections::HashSet::new();
    loop {
        let page = s.table_query("orders", &q).unwrap();
        for item in &page.items {
            assert_eq!(item.version, 1, "{} stored twice", item.pk);
            assert!(ids.insert(item.pk.clone()));
        }
        match page.cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(ids.len() as u64, good, "one table item per good order");
    let count = s.kv_get("stats", "orders/count").unwrap().unwrap();
    assert_eq!(
        i64::from_le_bytes(count.try_into().unwrap()),
        good as i64,
        "each good order counted once"
    );
    s.rollback();
    assert!(store.outbox(10).unwrap().is_empty());
}
