//! A full disk under the order pipeline on a real nats-server: the store's file sits behind a
//! byte quota (`QuotaFile`, failing writes past it as a full filesystem does), the quota is
//! shut mid-stream so commits fail, then opened again. The host must hold what it has, heal
//! by itself, and finish the stream with every effect exactly once and no valid order
//! dead-lettered; stopped during the outage, it must stop, and finish after a restart.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::json;
use sluice_model::state::SystemClock;
use sluice_nats::{
    DLQ_ERROR_NAME, OutboxRelay, Trigger, TriggerConfig, TriggerError, TriggerStats,
};
use sluice_runtime::{Grants, StageConfig};
use sluice_store::{Health, QuotaFile, QuotaHandle, Store, StoreConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{
    Harness, NatsServer, create_stream, messages_in, order, orders_table, publish_with_id,
    read_stream, stored_orders, wait_for_stream,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Orders in all; the first `FIRST` go through on a healthy disk.
const TOTAL: u64 = 1500;
const FIRST: u64 = 300;

/// Orders below `n` that are invalid (every 10th, from 0).
fn invalid_below(n: u64) -> u64 {
    n.div_ceil(10)
}

/// Publish orders `from..to` to `orders.new`; every 10th is invalid (no items).
async fn publish_orders(js: &jetstream::Context, from: u64, to: u64) {
    for i in from..to {
        let mut o = order(&format!("o-{i}"), &format!("u-{}", i % 7));
        if i % 10 == 0 {
            o["items"] = json!([]);
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

/// A store whose file sits behind `quota`. A restart within one process may find the file
/// still open for a moment, while the old store's last threads (its healer, a blocking task)
/// let go of it; a new process would not, so the open is retried for a while.
fn quota_store(h: &Harness, quota: &QuotaHandle) -> (Store, PathBuf) {
    let path = h.dir.path().join("state.redb");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let quota = quota.clone();
        let opened = Store::open_with_backend(
            &path,
            StoreConfig {
                tables: vec![orders_table()],
                clock: Arc::new(SystemClock),
                dedupe_retention: Duration::from_secs(3600),
            },
            move |p| QuotaFile::open(p, quota.clone()),
        );
        match opened {
            Ok(store) => return (store, path),
            Err(sluice_store::OpenError::Database(redb::DatabaseError::DatabaseAlreadyOpen))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("open store: {e}"),
        }
    }
}

type TriggerTask = JoinHandle<Result<TriggerStats, TriggerError>>;

/// The order pipeline (validate → price → store → notify) over `store`, until `stopped`.
fn start_pipeline(
    h: &Harness,
    js: &jetstream::Context,
    store: &Store,
    stopped: &watch::Receiver<bool>,
) -> Vec<TriggerTask> {
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let table = Grants {
        tables: vec![orders_table()],
        ..Grants::default()
    };
    let notify = Grants {
        emit_subjects: vec!["notifications.".into()],
        ..Grants::default()
    };
    let stages = [
        (
            "validate",
            guests::VALIDATE_ORDER,
            Grants::default(),
            "orders.new",
            Some("orders.validated"),
        ),
        (
            "price",
            guests::PROCESS_ORDER,
            Grants::default(),
            "orders.validated",
            Some("orders.priced"),
        ),
        (
            "store",
            guests::STORE_ORDER,
            table,
            "orders.priced",
            Some("orders.stored"),
        ),
        ("notify", guests::NOTIFY, notify, "orders.stored", None),
    ];
    stages
        .into_iter()
        .map(|(name, path, grants, filter, output)| {
            let stage = h.deploy(
                name,
                path,
                StageConfig {
                    grants,
                    ..StageConfig::default()
                },
            );
            let mut t = TriggerConfig::new(name, "ORDERS", &["orders.>"], filter);
            t.batch_size = 50;
            // Few deliveries, so that counting failed commits against events (the old
            // behaviour) would dead-letter valid orders within the outage.
            t.max_deliver = 3;
            t.backoff_ms = 20;
            t.output_subject = output.map(str::to_owned);
            let trigger = Trigger::new(js.clone(), t, stage, store.clone(), relay.clone());
            tokio::spawn(trigger.run(stopped.clone()))
        })
        .collect()
}

/// Wait (at most 120 s) until `NOTIFY` holds `notified` messages and the dead-letter stream
/// `dead`.
async fn wait_for(js: &jetstream::Context, notified: u64, dead: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (n, d) = (
            messages_in(js, "NOTIFY").await,
            messages_in(js, "SLUICE_DLQ").await,
        );
        if n >= notified && d >= dead {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {n} notifications, {d} dead letters"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fill the disk (no byte past the file's size may be written), publish the rest of the
/// orders, and wait until the store notices.
async fn fill_disk_mid_stream(
    js: &jetstream::Context,
    store: &Store,
    quota: &QuotaHandle,
    path: &Path,
) {
    quota.set(std::fs::metadata(path).unwrap().len());
    publish_orders(js, FIRST, TOTAL).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while matches!(store.health(), Health::Healthy) {
        assert!(
            Instant::now() < deadline,
            "the store never noticed the full disk"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// No dead letter but for invalid orders.
async fn only_invalid_orders_dead(js: &jetstream::Context, when: &str) {
    for m in read_stream(js, "SLUICE_DLQ", 10_000).await {
        let name = m
            .headers
            .as_ref()
            .unwrap()
            .get(DLQ_ERROR_NAME)
            .unwrap()
            .to_string();
        assert_eq!(
            name, "Order.Invalid",
            "a valid order was dead-lettered {when}"
        );
    }
}

/// Every valid order notified and stored exactly once, every invalid one dead-lettered once,
/// the outbox drained.
async fn every_effect_once(js: &jetstream::Context, store: &Store) {
    let (valid, invalid) = (TOTAL - invalid_below(TOTAL), invalid_below(TOTAL));
    assert_eq!(
        messages_in(js, "NOTIFY").await,
        valid,
        "each valid order notified once"
    );
    assert_eq!(
        messages_in(js, "SLUICE_DLQ").await,
        invalid,
        "only the invalid orders dead"
    );
    only_invalid_orders_dead(js, "in the end").await;
    let mut ids = HashSet::new();
    for m in read_stream(js, "NOTIFY", 10_000).await {
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .to_string();
        assert!(ids.insert(id.clone()), "notification {id} twice");
    }
    assert_eq!(ids.len() as u64, valid);
    let stored = stored_orders(store).await;
    assert_eq!(stored as u64, valid, "each valid order stored once");
    assert!(
        store.outbox(10).unwrap().is_empty(),
        "the relay drained the outbox"
    );
}

/// A pipeline running over a store on a quota, after the first `FIRST` orders went through
/// on a healthy disk and the disk then filled mid-stream (the store is down).
struct FullDisk {
    _nats: NatsServer,
    js: jetstream::Context,
    h: Harness,
    quota: QuotaHandle,
    store: Store,
    stop: watch::Sender<bool>,
    tasks: Vec<TriggerTask>,
}

async fn run_until_the_disk_fills() -> FullDisk {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "NOTIFY", "notifications.>").await;
    let h = Harness::new();
    let quota = QuotaHandle::unlimited();
    let (store, path) = quota_store(&h, &quota);
    let (stop, stopped) = watch::channel(false);
    let tasks = start_pipeline(&h, &js, &store, &stopped);
    wait_for_stream(&js, "ORDERS").await;
    publish_orders(&js, 0, FIRST).await;
    wait_for(
        &js,
        FIRST - invalid_below(FIRST),
        invalid_below(FIRST),
        "on a healthy disk",
    )
    .await;
    fill_disk_mid_stream(&js, &store, &quota, &path).await;
    FullDisk {
        _nats: nats,
        js,
        h,
        quota,
        store,
        stop,
        tasks,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_stream_loses_nothing_and_the_host_heals_by_itself() {
    let FullDisk {
        _nats,
        js,
        h: _h,
        quota,
        store,
        stop,
        tasks,
    } = run_until_the_disk_fills().await;
    // Keep the disk full a while: held batches must not turn into dead letters.
    tokio::time::sleep(Duration::from_secs(3)).await;
    only_invalid_orders_dead(&js, "during the outage").await;
    assert!(
        messages_in(&js, "NOTIFY").await < TOTAL - invalid_below(TOTAL),
        "the stream finished although the disk was full: the test filled nothing"
    );

    // Space returns; nobody restarts anything.
    quota.set(u64::MAX);
    wait_for(
        &js,
        TOTAL - invalid_below(TOTAL),
        invalid_below(TOTAL),
        "after the disk was freed",
    )
    .await;
    // Let anything extra (a duplicate) arrive before counting exactly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(matches!(store.health(), Health::Healthy));
    every_effect_once(&js, &store).await;
}

/// Stopping the host while the disk is full must not wait for the disk: the held batches
/// give up (retried later, not counted against their events), the triggers end, and a
/// restart on a freed disk finishes the stream exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_stops_during_a_full_disk_and_finishes_after_a_restart() {
    let FullDisk {
        _nats,
        js,
        h,
        quota,
        store,
        stop,
        tasks,
    } = run_until_the_disk_fills().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stopping = Instant::now();
    stop.send(true).unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("a trigger kept waiting for the full disk at shutdown")
            .unwrap()
            .unwrap();
    }
    let took = stopping.elapsed();
    only_invalid_orders_dead(&js, "by the shutdown").await;
    drop(store);

    // A restart: a new store on the same file, the disk freed, the same triggers.
    quota.set(u64::MAX);
    let (store, _) = quota_store(&h, &quota);
    let (stop, stopped) = watch::channel(false);
    let tasks = start_pipeline(&h, &js, &store, &stopped);
    wait_for(
        &js,
        TOTAL - invalid_below(TOTAL),
        invalid_below(TOTAL),
        "after the restart",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    every_effect_once(&js, &store).await;
    assert!(took < Duration::from_secs(30), "{took:?}");
}
