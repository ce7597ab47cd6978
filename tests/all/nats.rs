//! The order pipeline chained through NATS subjects on a real nats-server: triggers consume
//! with ack-after-commit, outputs and emits go out through the outbox, bad orders are
//! dead-lettered.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::json;
use sluice_nats::{DLQ_ATTEMPTS, DLQ_ERROR_NAME, OutboxRelay, Trigger, TriggerConfig};
use sluice_runtime::{Grants, StageConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{
    Harness, NatsServer, create_stream, messages_in, open_store, order, orders_table,
    publish_with_id, read_stream, stored_orders, wait_for_stream,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_pipeline_chained_through_subjects_runs_each_event_once() {
    let nats = NatsServer::start();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = jetstream::new(client);
    create_stream(&js, "NOTIFY", "notifications.>").await;

    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![orders_table()]);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let grants = |g: Grants| StageConfig {
        grants: g,
        ..StageConfig::default()
    };
    let stages = [
        (
            "validate",
            guests::VALIDATE_ORDER,
            StageConfig::default(),
            "orders.new",
            Some("orders.validated"),
        ),
        (
            "price",
            guests::PROCESS_ORDER,
            StageConfig::default(),
            "orders.validated",
            Some("orders.priced"),
        ),
        (
            "store",
            guests::STORE_ORDER,
            grants(Grants {
                tables: vec![orders_table()],
                ..Grants::default()
            }),
            "orders.priced",
            Some("orders.stored"),
        ),
        (
            "notify",
            guests::NOTIFY,
            grants(Grants {
                emit_subjects: vec!["notifications.".into()],
                ..Grants::default()
            }),
            "orders.stored",
            None,
        ),
    ];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (name, path, config, filter, output) in stages {
        let stage = h.deploy(name, path, config);
        let mut t = TriggerConfig::new(name, "ORDERS", &["orders.>"], filter);
        t.batch_size = 16;
        t.output_subject = output.map(str::to_owned);
        let trigger = Trigger::new(js.clone(), t, stage, store.clone(), relay.clone());
        tasks.push(tokio::spawn(trigger.run(stopped.clone())));
    }

    // Wait for the stream the triggers create, then publish: 40 orders, every 8th invalid.
    wait_for_stream(&js, "ORDERS").await;
    let (total, invalid) = (40, 5);
    for i in 0..total {
        let mut o = order(&format!("o-{i}"), &format!("u-{}", i % 3));
        if i % 8 == 0 {
            o["items"] = json!([]);
        }
        publish_with_id(
            &js,
            "orders.new",
            &format!("order-{i}"),
            serde_json::to_vec(&o).unwrap(),
        )
        .await;
    }
    // Publish one order twice with the same id: JetStream's duplicate window drops it.
    publish_with_id(
        &js,
        "orders.new",
        "order-1",
        serde_json::to_vec(&order("o-1", "u-1")).unwrap(),
    )
    .await;

    let valid = total - invalid;
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages_in(&js, "NOTIFY").await < valid || messages_in(&js, "SLUICE_DLQ").await < invalid
    {
        assert!(
            Instant::now() < deadline,
            "pipeline did not drain: {} notifications, {} dead letters",
            messages_in(&js, "NOTIFY").await,
            messages_in(&js, "SLUICE_DLQ").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let anything extra (a duplicate) arrive before counting exactly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap().unwrap().acked;
    }
    assert_eq!(
        messages_in(&js, "NOTIFY").await,
        valid,
        "each valid order notified exactly once"
    );
    assert_eq!(
        messages_in(&js, "SLUICE_DLQ").await,
        invalid,
        "dead letters only for the invalid orders"
    );
    assert_eq!(
        acked,
        valid * 4,
        "every valid order acknowledged once by each of the four stages"
    );

    // Every notification carries its deterministic id; no id twice.
    let mut ids = HashSet::new();
    for m in read_stream(&js, "NOTIFY", 100).await {
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .to_string();
        assert!(id.ends_with("/0"), "{id}");
        assert!(ids.insert(id));
    }
    assert_eq!(ids.len() as u64, valid);

    // Dead letters carry the error and the attempt count.
    let msgs = read_stream(&js, "SLUICE_DLQ", 10).await;
    let mut dead = 0;
    for m in msgs {
        let h = m.headers.as_ref().unwrap();
        assert_eq!(h.get(DLQ_ERROR_NAME).unwrap().as_str(), "Order.Invalid");
        assert_eq!(h.get(DLQ_ATTEMPTS).unwrap().as_str(), "1");
        dead += 1;
    }
    assert_eq!(dead, invalid);

    // The table holds each valid order once.
    let stored = stored_orders(&store).await;
    assert_eq!(stored as u64, valid);
    assert!(
        store.outbox(10).unwrap().is_empty(),
        "the relay drained the outbox"
    );
}

/// A retryable failure is NAKed with backoff and retried until `max_deliver`, then
/// dead-lettered with the attempt count; a success next to it is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_retry_with_backoff_then_dead_letter() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let stage = h.deploy("pay", guests::PROCESS_PAYMENT, StageConfig::default());
    let mut t = TriggerConfig::new("pay", "PAY", &["pay.>"], "pay.in");
    t.max_deliver = 3;
    t.backoff_ms = 20;
    t.output_subject = Some("pay.done".into());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store.clone(), relay).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    wait_for_stream(&js, "PAY").await;
    let priced = |id: &str, method: serde_json::Value| {
        let mut o = order(id, "u-1");
        o["payment"] = method;
        o["totals"] = json!({"itemCount": 1, "totalCents": 100});
        serde_json::to_vec(&o).unwrap()
    };
    // No Nats-Msg-Id: the event id falls back to the stream sequence.
    js.publish(
        "pay.in",
        priced("o-flaky", json!({"method": "flaky"})).into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    js.publish(
        "pay.in",
        priced(
            "o-ok",
            json!({"method": "card", "card": "4242424242424242"}),
        )
        .into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    while messages_in(&js, "SLUICE_DLQ").await < 1 || messages_in(&js, "PAY").await < 3 {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.retried, 2, "deliveries 1 and 2 were NAKed");
    assert_eq!(stats.dead_lettered, 1);
    assert_eq!(stats.acked, 1);
    let msgs = read_stream(&js, "SLUICE_DLQ", 10).await;
    let m = msgs.into_iter().next().expect("a dead letter");
    let headers = m.headers.as_ref().unwrap();
    assert_eq!(
        headers.get(DLQ_ERROR_NAME).unwrap().as_str(),
        "Payment.Unavailable"
    );
    assert_eq!(headers.get(DLQ_ATTEMPTS).unwrap().as_str(), "3");
    assert_eq!(
        headers
            .get(sluice_nats::DLQ_ORIGINAL_SUBJECT)
            .unwrap()
            .as_str(),
        "pay.in"
    );
    let body: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(body["orderId"], "o-flaky", "the original payload is kept");
}

/// Deliveries the platform spends are not the event's: messages delivered into a connection
/// that is lost before it settles them (what a broker outage, a dropped client or a host
/// crash leaves behind) come back with a higher delivery count, yet the event is
/// dead-lettered only after the stage itself failed it `max_deliver` times, as the store
/// counts them. Here each message's first two deliveries go to a client that never settles;
/// with `max_deliver` 2 the retryable failure still runs twice (the delivery count alone
/// would have dead-lettered it at once, at delivery 3), the good order succeeds, and the
/// dead letter leaves no count behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_lost_in_transit_do_not_count_towards_the_dead_letter() {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "PAY", "pay.>").await;
    let ack_wait = Duration::from_millis(600);
    let stream = js.get_stream("PAY").await.unwrap();
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .create_consumer(pull::Config {
            durable_name: Some("pay".into()),
            filter_subject: "pay.in".into(),
            ack_policy: AckPolicy::Explicit,
            ack_wait,
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .unwrap();
    let priced = |id: &str, method: serde_json::Value| {
        let mut o = order(id, "u-1");
        o["payment"] = method;
        o["totals"] = json!({"itemCount": 1, "totalCents": 100});
        serde_json::to_vec(&o).unwrap()
    };
    publish_with_id(
        &js,
        "pay.in",
        "o-flaky",
        priced("o-flaky", json!({"method": "flaky"})),
    )
    .await;
    let card = json!({"method": "card", "card": "4242424242424242"});
    publish_with_id(&js, "pay.in", "o-ok", priced("o-ok", card)).await;
    // Two deliveries of each message that nobody settles.
    for lost in 1..=2_i64 {
        let mut batch = consumer
            .fetch()
            .max_messages(2)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .unwrap();
        let mut seen = 0;
        while let Some(m) = futures::StreamExt::next(&mut batch).await {
            assert_eq!(m.unwrap().info().unwrap().delivered, lost);
            seen += 1;
        }
        assert_eq!(seen, 2, "delivery {lost} of both messages");
        tokio::time::sleep(ack_wait + Duration::from_millis(200)).await;
    }

    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let stage = h.deploy("pay", guests::PROCESS_PAYMENT, StageConfig::default());
    let mut t = TriggerConfig::new("pay", "PAY", &["pay.>"], "pay.in");
    t.max_deliver = 2;
    t.backoff_ms = 20;
    t.ack_wait_ms = u64::try_from(ack_wait.as_millis()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store.clone(), relay).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages_in(&js, "SLUICE_DLQ").await < 1 {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.acked, 1, "the good order succeeded: {stats:?}");
    assert_eq!(
        stats.retried, 1,
        "the stage's first failure was retried: {stats:?}"
    );
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
    let msgs = read_stream(&js, "SLUICE_DLQ", 10).await;
    let headers = msgs[0].headers.clone().unwrap();
    assert_eq!(
        headers.get(DLQ_ERROR_NAME).unwrap().as_str(),
        "Payment.Unavailable"
    );
    assert_eq!(
        headers.get(DLQ_ATTEMPTS).unwrap().as_str(),
        "2",
        "the stage failed it twice, in its deliveries 3 and 4"
    );
    assert_eq!(
        store.failures("o-flaky").unwrap(),
        0,
        "forgotten once dead-lettered"
    );
    assert_eq!(store.failures("o-ok").unwrap(), 0);
    assert!(store.recorded("o-ok").unwrap().is_some());
}

/// Content routing: only events matching the trigger's pattern run; the rest are acked and
/// counted. The guest sees the subject, the headers and the event id chosen from
/// `Nats-Msg-Id`, else `ce-id`, else the stream sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_route_events_and_headers_reach_the_guest() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "OUT", "out.>").await;
    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let stage = h.deploy("echo", guests::ECHO, StageConfig::default());
    let mut t = TriggerConfig::new("route", "ROUTE", &["route.>"], "route.>");
    t.output_subject = Some("out.echo".into());
    t.pattern = Some(
        json!({"data": {"total": [{"numeric": [">=", 100]}]}, "headers": {"region": [{"prefix": "eu-"}]}}),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store.clone(), relay).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    wait_for_stream(&js, "ROUTE").await;
    // (total, region, id header): three match, three do not.
    let cases = [
        (150, "eu-west", Some(("Nats-Msg-Id", "m-1"))),
        (100, "eu-north", Some(("ce-id", "ce-2"))),
        (500, "eu-west", None),
        (99, "eu-west", None),
        (150, "us-east", None),
        (150, "", None),
    ];
    for (total, region, id) in cases {
        let mut headers = async_nats::HeaderMap::new();
        if !region.is_empty() {
            headers.insert("region", region);
        }
        if let Some((k, v)) = id {
            headers.insert(k, v);
        }
        js.publish_with_headers(
            "route.orders",
            headers,
            serde_json::to_vec(&json!({"total": total})).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    while messages_in(&js, "OUT").await < 3 {
        assert!(Instant::now() < deadline, "routed events never came out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!((stats.acked, stats.filtered), (3, 3));
    assert_eq!(messages_in(&js, "OUT").await, 3);

    let msgs = read_stream(&js, "OUT", 10).await;
    let mut ids = Vec::new();
    for m in msgs {
        let echoed: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(echoed["subject"], "route.orders");
        assert!(
            echoed["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h[0] == "region"),
            "{echoed}"
        );
        assert_eq!(echoed["attempt"], 1);
        ids.push(echoed["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], "m-1");
    assert_eq!(ids[1], "ce-2");
    assert_eq!(ids[2], "ROUTE/3", "without id headers, the stream sequence");
}

/// Two partitions keyed by a subject token: events of one key run in publish order (each
/// increment sees the previous ones), whichever worker runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_keep_per_key_order() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "SEQOUT", "seqout.>").await;
    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let grants = Grants {
        kv_buckets: vec!["seq".into()],
        ..Grants::default()
    };
    let stage = h.deploy(
        "script",
        guests::STATE_SCRIPT,
        StageConfig {
            grants,
            ..StageConfig::default()
        },
    );
    let mut t = TriggerConfig::new("seq", "SEQ", &["seq.>"], "seq.>");
    t.partitions = 2;
    t.partition_key = sluice_nats::PartitionKey::SubjectToken(1);
    t.batch_size = 32;
    t.output_subject = Some("seqout.x".into());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store.clone(), relay).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_for_stream(&js, "SEQ").await;
    let users = ["ann", "bob", "cyd", "dan", "eve"];
    let per_user = 40;
    let mut acks = Vec::new();
    for k in 0..per_user {
        for u in users {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{u}-{k}").as_str());
            let body =
                json!({"ops": [{"op": "kv.increment", "bucket": "seq", "key": u, "delta": 1}]});
            acks.push(
                js.publish_with_headers(
                    format!("seq.{u}"),
                    headers,
                    serde_json::to_vec(&body).unwrap().into(),
                )
                .await
                .unwrap(),
            );
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    let total = (users.len() * per_user) as u64;
    while messages_in(&js, "SEQOUT").await < total {
        assert!(
            Instant::now() < deadline,
            "only {} outputs",
            messages_in(&js, "SEQOUT").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.acked, total);
    let msgs = read_stream(&js, "SEQOUT", 10_000).await;
    let mut seen = 0;
    for m in msgs {
        let source = m
            .headers
            .as_ref()
            .unwrap()
            .get("ce-source")
            .unwrap()
            .to_string();
        let (user, k) = source.rsplit_once('-').unwrap();
        let k: i64 = k.parse().unwrap();
        let out: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            out["results"][0],
            k + 1,
            "{user}'s event {k} saw {} increments before it",
            out["results"][0]
        );
        seen += 1;
        if seen == total {
            break;
        }
    }
    assert_eq!(seen, total);
}

/// A batch that runs longer than the consumer's ack wait is kept alive with in-progress acks:
/// JetStream does not redeliver the message while the stage still works on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_batches_send_in_progress_acks() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    // The loop runs into its 1.2 s deadline: four times the 300 ms ack wait.
    let limits = sluice_runtime::Limits {
        deadline: Duration::from_millis(1200),
        ..sluice_runtime::Limits::default()
    };
    let stage = h.deploy(
        "slow",
        guests::INFINITE_LOOP,
        StageConfig {
            limits,
            ..StageConfig::default()
        },
    );
    let mut t = TriggerConfig::new("slow", "SLOW", &["slow.>"], "slow.in");
    t.ack_wait_ms = 300;
    t.max_deliver = 1;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store.clone(), relay).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    wait_for_stream(&js, "SLOW").await;
    js.publish("slow.in", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    while messages_in(&js, "SLUICE_DLQ").await < 1 {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long enough for a redelivery that slipped through to have been handled too.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        stats.dead_lettered, 1,
        "the message was delivered once: {stats:?}"
    );
    assert_eq!(stats.batches, 1, "{stats:?}");
}

/// Messages that wait behind a slow batch are kept alive too: the trigger keeps reading the
/// pull while the partition works, and every batch it forms sends in-progress acks from then
/// on, so nothing sits unacknowledged in the client's buffer past the ack wait (a redelivery
/// would run the event twice and count against `max_deliver`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_behind_a_slow_batch_are_not_redelivered() {
    const N: u64 = 5;
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    // Each event runs into its 1.5 s deadline, so the last one waits ~6 s: six ack waits
    // (wide margins, so that a loaded machine's late timers cannot decide the test).
    let stage = h.deploy(
        "slow",
        guests::INFINITE_LOOP,
        StageConfig {
            limits: sluice_runtime::Limits {
                deadline: Duration::from_millis(1500),
                ..sluice_runtime::Limits::default()
            },
            ..StageConfig::default()
        },
    );
    let mut t = TriggerConfig::new("queued", "QUEUED", &["queued.>"], "queued.in");
    t.ack_wait_ms = 1000;
    t.max_deliver = 1;
    t.batch_size = 1;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store.clone(), relay).run(stopped));
    wait_for_stream(&js, "QUEUED").await;
    for i in 0..N {
        publish_with_id(&js, "queued.in", &format!("q-{i}"), b"{}".to_vec()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages_in(&js, "SLUICE_DLQ").await < N {
        assert!(
            Instant::now() < deadline,
            "not every event was dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long enough for a redelivery that slipped through to have been handled too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        stats.dead_lettered, N,
        "each message was delivered once: {stats:?}"
    );
    assert_eq!(stats.batches, N, "{stats:?}");
}

/// Events that were committed but never acknowledged (a crash between the two) come back
/// mixed with new ones, across batches that the trigger pipelines: each batch holding one
/// is re-run with look-ups (and the batch after it re-run on top), so every increment
/// applies once, every message is acknowledged once, and only new events publish outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_but_unacknowledged_events_apply_once_through_the_pipeline() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "DUPOUT", "dupout.>").await;
    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let stage = h.kv_counter();
    let body = |i: usize| {
        serde_json::to_vec(&json!({"bucket": "counters", "key": "hits", "delta": 1 + i % 3}))
            .unwrap()
    };
    // The "crash": every third event already committed, as if its ack had been lost.
    let mut w = sluice_runtime::Worker::new(stage.clone(), Box::new(store.open_session()));
    let total: usize = 60;
    let mut expected: i64 = 0;
    for i in 0..total {
        expected += i64::try_from(1 + i % 3).unwrap();
        if i.is_multiple_of(3) {
            let mut e = sluice_model::Event::json(format!("dup-{i}"), &json!({}));
            e.data = body(i);
            assert!(w.invoke(&e).outcome.is_ok());
        }
    }
    drop(w);
    let mut t = TriggerConfig::new("dup", "DUP", &["dup.>"], "dup.in");
    t.batch_size = 7;
    t.max_wait_ms = 1;
    t.output_subject = Some("dupout.x".into());
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Publish first, so the trigger meets full batches back to back.
    create_stream(&js, "DUP", "dup.>").await;
    for i in 0..total {
        publish_with_id(&js, "dup.in", &format!("dup-{i}"), body(i)).await;
    }
    let task = tokio::spawn(Trigger::new(js.clone(), t, stage, store.clone(), relay).run(stopped));
    let new_events = (total - total.div_ceil(3)) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages_in(&js, "DUPOUT").await < new_events {
        assert!(Instant::now() < deadline, "outputs missing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.acked, total as u64, "{stats:?}");
    assert_eq!(stats.retried + stats.dead_lettered, 0, "{stats:?}");
    assert_eq!(sluice_tests::hits(&store), expected);
    // Only the new events published an output, each once.
    let outputs = read_stream(&js, "DUPOUT", 1000).await;
    assert_eq!(outputs.len() as u64, new_events);
    let sources: HashSet<String> = outputs
        .iter()
        .map(|m| {
            m.headers
                .as_ref()
                .unwrap()
                .get("ce-source")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(sources.len() as u64, new_events);
    assert!(sources.iter().all(|id| {
        let i: usize = id.trim_start_matches("dup-").parse().unwrap();
        !i.is_multiple_of(3)
    }));
}

/// A trigger refuses a stream or consumer defined otherwise than it needs, naming what
/// conflicts, and brings an existing consumer's editable settings (ack wait, pending bound,
/// deliveries) up to its declaration, keeping the consumer's position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_definitions_are_refused_and_consumer_settings_follow_the_declaration() {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let h = Harness::new();
    let store = open_store(h.dir.path(), vec![]);
    let stage = h.deploy("echo", guests::ECHO, StageConfig::default());
    // Run a trigger that must be refused at once; its error, as text.
    let refused = async |config: TriggerConfig| {
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let relay = OutboxRelay::new(js.clone(), store.clone());
        let run = Trigger::new(js.clone(), config, stage.clone(), store.clone(), relay);
        tokio::time::timeout(Duration::from_secs(30), run.run(stopped))
            .await
            .expect("refused at once")
            .expect_err("a conflicting definition")
            .to_string()
    };
    create_stream(&js, "CONF", "conf.a.>").await;

    // The stream exists with other subjects.
    let err = refused(TriggerConfig::new("t1", "CONF", &["conf.>"], "conf.a.in")).await;
    assert!(err.contains("stream CONF exists with subjects"), "{err}");

    // A consumer of that name exists with another filter, or with another ack policy.
    let stream = js.get_stream("CONF").await.unwrap();
    let made = |name: &str, filter: &str, ack_policy: AckPolicy| pull::Config {
        durable_name: Some(name.to_owned()),
        filter_subject: filter.to_owned(),
        ack_policy,
        ack_wait: Duration::from_secs(5),
        max_ack_pending: 10,
        max_deliver: 3,
        ..Default::default()
    };
    stream
        .create_consumer(made("t2", "conf.a.other", AckPolicy::Explicit))
        .await
        .unwrap();
    let err = refused(TriggerConfig::new("t2", "CONF", &[], "conf.a.in")).await;
    assert!(err.contains("consumer t2 exists with filter"), "{err}");
    stream
        .create_consumer(made("t3", "conf.a.in", AckPolicy::All))
        .await
        .unwrap();
    let err = refused(TriggerConfig::new("t3", "CONF", &[], "conf.a.in")).await;
    assert!(err.contains("ack policy"), "{err}");

    // A consumer made with other editable settings (say, by an older Sluice) is updated, and
    // keeps its position: the message it had acknowledged is not run again.
    let c4 = made("t4", "conf.a.in", AckPolicy::Explicit);
    stream.create_consumer(c4).await.unwrap();
    publish_with_id(&js, "conf.a.in", "old", b"{}".to_vec()).await;
    let mut consumer: jetstream::consumer::Consumer<pull::Config> =
        stream.get_consumer("t4").await.unwrap();
    let mut old = consumer.fetch().max_messages(1).messages().await.unwrap();
    futures::StreamExt::next(&mut old)
        .await
        .unwrap()
        .unwrap()
        .double_ack()
        .await
        .unwrap();
    drop(old);
    publish_with_id(&js, "conf.a.in", "new", b"{}".to_vec()).await;
    let mut t = TriggerConfig::new("t4", "CONF", &[], "conf.a.in");
    t.ack_wait_ms = 700;
    t.batch_size = 10;
    t.max_wait_ms = 5;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    let task =
        tokio::spawn(Trigger::new(js.clone(), t, stage.clone(), store.clone(), relay).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = consumer.info().await.unwrap().clone();
        if info.ack_floor.stream_sequence >= 2 {
            assert_eq!(info.config.ack_wait, Duration::from_millis(700));
            assert_eq!(info.config.max_ack_pending, 1000);
            assert_eq!(info.config.max_deliver, -1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the trigger never acknowledged: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.acked, 1, "only the new message ran: {stats:?}");
}
