//! A full disk under the order pipeline on a real nats-server: the store's file sits behind a
//! byte quota (`QuotaFile`, failing writes past it as a full filesystem does), the quota is
//! shut mid-stream so commits fail, then opened again. The host must hold what it has, heal
//! by itself, and finish the stream with every effect exactly once and no valid order
//! dead-lettered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::json;
use sluice_model::state::{Query, SortKeyCondition, StateSession, SystemClock};
use sluice_nats::{DLQ_ERROR_NAME, OutboxRelay, Trigger, TriggerConfig};
use sluice_runtime::{Grants, StageConfig};
use sluice_store::{Health, QuotaFile, QuotaHandle, Store, StoreConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{
    Harness, NatsServer, create_stream, messages_in, order, orders_table, publish_with_id,
    read_stream, wait_for_stream,
};

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

fn invalid_below(n: u64) -> u64 {
    n.div_ceil(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_stream_loses_nothing_and_the_host_heals_by_itself() {
    let nats = NatsServer::start();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = jetstream::new(client);
    create_stream(&js, "NOTIFY", "notifications.>").await;

    let h = Harness::new();
    let quota = QuotaHandle::unlimited();
    let path = h.dir.path().join("state.redb");
    let store = {
        let quota = quota.clone();
        Store::open_with_backend(
            &path,
            StoreConfig {
                tables: vec![orders_table()],
                clock: Arc::new(SystemClock),
                dedupe_retention: Duration::from_secs(3600),
            },
            move |p| QuotaFile::open(p, quota.clone()),
        )
        .expect("open store")
    };
    let relay = OutboxRelay::new(js.clone(), store.clone());
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
            Grants {
                tables: vec![orders_table()],
                ..Grants::default()
            },
            "orders.priced",
            Some("orders.stored"),
        ),
        (
            "notify",
            guests::NOTIFY,
            Grants {
                emit_subjects: vec!["notifications.".into()],
                ..Grants::default()
            },
            "orders.stored",
            None,
        ),
    ];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (name, path, grants, filter, output) in stages {
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
        tasks.push(tokio::spawn(trigger.run(stopped.clone())));
    }
    wait_for_stream(&js, "ORDERS").await;

    // Phase 1: a stream on a healthy disk.
    let (first, total) = (300, 1500);
    publish_orders(&js, 0, first).await;
    let wait_for = |notified: u64, dead: u64, what: &'static str| {
        let js = js.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let (n, d) = (
                    messages_in(&js, "NOTIFY").await,
                    messages_in(&js, "SLUICE_DLQ").await,
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
    };
    wait_for(
        first - invalid_below(first),
        invalid_below(first),
        "phase 1",
    )
    .await;

    // Phase 2: the disk fills. Commits need the file to grow, which now fails.
    let len = std::fs::metadata(&path).unwrap().len();
    quota.set(len);
    publish_orders(&js, first, total).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while matches!(store.health(), Health::Healthy) {
        assert!(
            Instant::now() < deadline,
            "the store never noticed the full disk"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Keep the disk full a while: held batches must not turn into dead letters.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for m in read_stream(&js, "SLUICE_DLQ", 10_000).await {
        let name = m
            .headers
            .as_ref()
            .unwrap()
            .get(DLQ_ERROR_NAME)
            .unwrap()
            .to_string();
        assert_eq!(
            name, "Order.Invalid",
            "a valid order was dead-lettered during the outage"
        );
    }
    assert!(
        messages_in(&js, "NOTIFY").await < total - invalid_below(total),
        "the stream finished although the disk was full: the test filled nothing"
    );

    // Space returns; nobody restarts anything.
    quota.set(u64::MAX);
    let (valid, invalid) = (total - invalid_below(total), invalid_below(total));
    wait_for(valid, invalid, "after the disk was freed").await;
    // Let anything extra (a duplicate) arrive before counting exactly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(matches!(store.health(), Health::Healthy));
    assert_eq!(
        messages_in(&js, "NOTIFY").await,
        valid,
        "each valid order notified once"
    );
    assert_eq!(
        messages_in(&js, "SLUICE_DLQ").await,
        invalid,
        "only the invalid orders dead"
    );
    for m in read_stream(&js, "SLUICE_DLQ", 10_000).await {
        let name = m
            .headers
            .as_ref()
            .unwrap()
            .get(DLQ_ERROR_NAME)
            .unwrap()
            .to_string();
        assert_eq!(name, "Order.Invalid");
    }
    let mut ids = std::collections::HashSet::new();
    for m in read_stream(&js, "NOTIFY", 10_000).await {
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .to_string();
        assert!(ids.insert(id.clone()), "notification {id} twice");
    }
    assert_eq!(ids.len() as u64, valid);
    let store2 = store.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut s = store2.open_session();
        let q = Query {
            index: Some("by-status".into()),
            pk: "stored".into(),
            sk: SortKeyCondition::Any,
            forward: true,
            limit: 100,
            cursor: None,
        };
        let mut n = 0;
        let mut page = s.table_query("orders", &q).unwrap();
        loop {
            n += page.items.len();
            let Some(cursor) = page.cursor.take() else {
                break;
            };
            page = s
                .table_query(
                    "orders",
                    &Query {
                        cursor: Some(cursor),
                        ..q.clone()
                    },
                )
                .unwrap();
        }
        s.rollback();
        n
    })
    .await
    .unwrap();
    assert_eq!(stored as u64, valid, "each valid order stored once");
    assert!(
        store.outbox(10).unwrap().is_empty(),
        "the relay drained the outbox"
    );
}
