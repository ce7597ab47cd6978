//! End-to-end throughput on a real nats-server: stream → stage → commit → ack, against the
//! raw JetStream pull-consume rate of the same messages in the same run, plus latency from
//! publish to the stage's output being published (which is after the commit).
//!
//! Run: `cargo bench -p sluice-tests --bench pipeline` (`-- --quick` for fewer events).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use sluice_model::state::SystemClock;
use sluice_nats::{OutboxRelay, PartitionKey, Trigger, TriggerConfig};
use sluice_runtime::StageConfig;
use sluice_store::{Store, StoreConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, NatsServer, order};

fn now_ns() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

async fn publish(js: &jetstream::Context, subject: &str, n: usize, body: &[u8], prefix: &str) {
    let mut acks = Vec::with_capacity(4096);
    for i in 0..n {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("{prefix}-{i:08}").as_str());
        acks.push(
            js.publish_with_headers(subject.to_owned(), h, body.to_vec().into())
                .await
                .unwrap(),
        );
        if acks.len() == 4096 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
}

async fn stream(js: &jetstream::Context, name: &str, subject: &str) {
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: vec![subject.into()],
        ..Default::default()
    })
    .await
    .unwrap();
}

/// Pull-consume `n` messages in batches of 1000 and ack each: no stage, no commit.
async fn raw_rate(js: &jetstream::Context, n: usize, body: &[u8]) -> f64 {
    stream(js, "RAW", "raw.>").await;
    publish(js, "raw.in", n, body, "raw").await;
    let s = js.get_stream("RAW").await.unwrap();
    let c = s
        .create_consumer(pull::Config {
            durable_name: Some("raw".into()),
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        let mut b = c
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(200))
            .messages()
            .await
            .unwrap();
        while let Some(m) = b.next().await {
            m.unwrap().ack().await.unwrap();
            got += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    js.delete_stream("RAW").await.unwrap();
    rate
}

/// Events per second through a trigger running `stage_path` with `batch` and `partitions`.
#[allow(
    clippy::too_many_arguments,
    reason = "a benchmark case's knobs, spelled out at the call"
)]
async fn trigger_rate(
    js: &jetstream::Context,
    h: &Harness,
    stage_path: &str,
    batch: usize,
    partitions: usize,
    n: usize,
    body: &[u8],
    tag: &str,
) -> f64 {
    let stream_name = format!("E2E{tag}");
    let subject = format!("e2e{tag}.in");
    stream(js, &stream_name, &format!("e2e{tag}.>")).await;
    publish(js, &subject, n, body, tag).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.redb"),
        StoreConfig {
            tables: vec![],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let stage = h.deploy("stage", stage_path, StageConfig::default());
    let mut t = TriggerConfig::new(
        &format!("t{tag}"),
        &stream_name,
        &[&format!("e2e{tag}.>")],
        &subject,
    );
    t.batch_size = batch;
    t.partitions = partitions;
    t.partition_key = PartitionKey::EventId;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let start = Instant::now();
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store, relay).run(stopped));
    let mut consumer = js
        .get_stream(&stream_name)
        .await
        .unwrap()
        .get_consumer::<pull::Config>(&format!("t{tag}"))
        .await;
    while consumer.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
        consumer = js
            .get_stream(&stream_name)
            .await
            .unwrap()
            .get_consumer::<pull::Config>(&format!("t{tag}"))
            .await;
    }
    let mut consumer = consumer.unwrap();
    loop {
        let info = consumer.info().await.unwrap();
        if info.num_pending == 0
            && info.num_ack_pending == 0
            && info.delivered.stream_sequence as usize >= n
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.acked as usize, n, "every event acknowledged once");
    js.delete_stream(&stream_name).await.unwrap();
    rate
}

/// Publish→output latency percentiles with a paced publisher and a passthrough stage.
async fn latency(
    js: &jetstream::Context,
    h: &Harness,
    rate_per_s: u64,
    seconds: u64,
) -> (Duration, Duration) {
    stream(js, "LAT", "lat.>").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.redb"),
        StoreConfig {
            tables: vec![],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let stage = h.deploy("passthrough", guests::PASSTHROUGH, StageConfig::default());
    let mut t = TriggerConfig::new("lat", "LAT", &["lat.>"], "lat.in");
    t.batch_size = 1000;
    t.max_wait_ms = 5;
    t.output_subject = Some("lat.out".into());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store, relay).run(stopped));
    let out = js.get_stream("LAT").await.unwrap();
    let c = out
        .create_consumer(pull::Config {
            filter_subject: "lat.out".into(),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = c.messages().await.unwrap();
    let total = rate_per_s * seconds;
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            for i in 0..total {
                let due = start + Duration::from_nanos(i * 1_000_000_000 / rate_per_s);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
                let mut h = async_nats::HeaderMap::new();
                h.insert("Nats-Msg-Id", format!("lat-{i}").as_str());
                let _ack = js
                    .publish_with_headers("lat.in", h, now_ns().to_le_bytes().to_vec().into())
                    .await
                    .unwrap();
            }
        })
    };
    let mut lat = Vec::with_capacity(total as usize);
    while (lat.len() as u64) < total {
        let m = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let sent = u64::from_le_bytes(m.payload[..8].try_into().unwrap());
        lat.push(Duration::from_nanos(now_ns().saturating_sub(sent)));
    }
    publisher.await.unwrap();
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    lat.sort();
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 20_000 } else { 100_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let nats = NatsServer::start();
        let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
        let h = Harness::new();
        let body = serde_json::to_vec(&order("o-1", "u-1")).unwrap();
        let raw = raw_rate(&js, n, &body).await;
        println!("\npipeline: {n} events of {} bytes, file stream, one nats-server on loopback", body.len());
        println!("{:<44} {:>12} {:>10}", "variant", "events/s", "of raw");
        println!("{:<44} {raw:>12.0} {:>9.0}%", "raw JetStream pull + ack (batch 1000)", 100.0);
        let mut tag = 0;
        for (name, path) in [("trivial (passthrough)", guests::PASSTHROUGH), ("order (process-order)", guests::PROCESS_ORDER)] {
            for batch in [1, 100, 1000] {
                let events = if batch == 1 { n / 20 } else { n };
                tag += 1;
                let r = trigger_rate(&js, &h, path, batch, 1, events, &body, &tag.to_string()).await;
                println!("{:<44} {r:>12.0} {:>9.0}%", format!("{name}, batch {batch}"), 100.0 * r / raw);
            }
        }
        tag += 1;
        let r2 = trigger_rate(&js, &h, guests::PROCESS_ORDER, 1000, 2, n, &body, &tag.to_string()).await;
        println!("{:<44} {r2:>12.0} {:>9.0}%", "order, batch 1000, 2 partitions", 100.0 * r2 / raw);
        let (p50, p99) = latency(&js, &h, 5_000, if quick { 2 } else { 4 }).await;
        println!("\npublish → output published (passthrough, 5k events/s paced): p50 {:.2} ms, p99 {:.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
    });
}
