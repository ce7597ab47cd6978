//! `sluice demo --nats`: the order pipeline as it really runs. Starts a nats-server (JetStream,
//! loopback, ephemeral port, temporary store), runs the host with the seven stages of
//! `pipelines/orders.json` chained through subjects, publishes the sample orders, prints what
//! came out (notifications and dead letters), then shuts the host down cleanly; then the same
//! orders as durable workflow executions (`pipelines/orders-workflow.json`) on a second host,
//! and what each execution ended with.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use serde_json::Value;
use sluice_model::state::{Query, SortKeyCondition, StateBackend};
use sluice_runtime::Runtime;

use crate::demo::{read_i64, sample_orders, seed_inventory};
use crate::registry::Applied;
use crate::up::{self, Declaration};

const DECLARATION: &str = include_str!("../../../pipelines/orders.json");
/// The same stages as one durable workflow behind one trigger.
const WORKFLOW_DECLARATION: &str = include_str!("../../../pipelines/orders-workflow.json");
const ORDER_WORKFLOW: &str = include_str!("../../../workflows/order-pipeline.asl.json");

async fn count(js: &jetstream::Context, stream: &str) -> u64 {
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

async fn drain(js: &jetstream::Context, stream: &str) -> anyhow::Result<Vec<jetstream::Message>> {
    let s = js.get_stream(stream).await?;
    let c = s.create_consumer(pull::Config::default()).await?;
    let mut out = Vec::new();
    let mut msgs = c
        .fetch()
        .max_messages(1000)
        .expires(Duration::from_millis(500))
        .messages()
        .await?;
    while let Some(m) = msgs.next().await {
        out.push(m.map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(out)
}

pub(crate) fn run(
    runtime: &Runtime,
    components: &Path,
    data_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let decl: Declaration =
        serde_json::from_str(DECLARATION).context("the built-in declaration")?;
    std::fs::create_dir_all(data_dir)?;
    let nats_dir = data_dir.join("nats");
    std::fs::create_dir_all(&nats_dir)?;
    let nats = sluice_nats::LocalNatsServer::start(&nats_dir, None)?;
    let url = nats.url();
    println!(
        "nats-server (JetStream) on {url}; state in {}",
        data_dir.join("sluice.redb").display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let js = jetstream::new(async_nats::connect(&url).await?);
        js.get_or_create_stream(jetstream::stream::Config {
            name: "NOTIFY".into(),
            subjects: vec!["notifications.>".into()],
            ..Default::default()
        })
        .await?;
        let applied = Applied::from_files(decl, components)?;
        let stages = up::deploy(runtime, &applied)?;
        let host = up::start(
            applied.decl,
            &stages,
            (&applied.components, runtime),
            data_dir,
            &js,
            up::Extras::default(),
        )?;
        seed_inventory(&host.store)?;
        println!("host up: {} triggers, validate → price → pay → reserve → aggregate → store → notify", host.trigger_count());
        let deadline = Instant::now() + Duration::from_secs(30);
        while js.get_stream("ORDERS").await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "the triggers did not create the ORDERS stream");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let orders = sample_orders();
        let started = Instant::now();
        for (i, o) in orders.iter().enumerate() {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("demo-order-{i}").as_str());
            h.insert("ce-type", "order.created");
            js.publish_with_headers("orders.new", h, serde_json::to_vec(o)?.into()).await?.await?;
        }
        println!("published {} orders to orders.new\n", orders.len());
        // Wait until every order has come out one way or the other.
        let total = orders.len() as u64;
        while count(&js, "NOTIFY").await + count(&js, "SLUICE_DLQ").await < total {
            anyhow::ensure!(Instant::now() < deadline, "the pipeline did not finish in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        println!("{:<8} result", "order");
        let mut lines = Vec::new();
        for m in drain(&js, "NOTIFY").await? {
            let n: Value = serde_json::from_slice(&m.payload)?;
            let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.to_string()).unwrap_or_default();
            lines.push((n["orderId"].as_str().unwrap_or("?").to_owned(), format!("notified: {} (msg id {id})", n["message"].as_str().unwrap_or(""))));
        }
        for m in drain(&js, "SLUICE_DLQ").await? {
            let h = m.headers.as_ref();
            let get = |k: &str| h.and_then(|h| h.get(k)).map(|v| v.to_string()).unwrap_or_default();
            let o: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            lines.push((
                o["orderId"].as_str().unwrap_or("?").to_owned(),
                format!(
                    "dead letter from {}: {}: {} (after {} deliveries)",
                    get(sluice_nats::DLQ_ORIGINAL_SUBJECT),
                    get(sluice_nats::DLQ_ERROR_NAME),
                    get(sluice_nats::DLQ_ERROR_CAUSE),
                    get(sluice_nats::DLQ_ATTEMPTS)
                ),
            ));
        }
        lines.sort();
        for (order, line) in &lines {
            println!("{order:<8} {line}");
        }
        println!("\n{} orders through 7 stages over NATS in {:.0} ms (each stage: fetch, run, one redb commit, ack)", orders.len(), elapsed.as_secs_f64() * 1e3);
        let store = host.store.clone();
        let clean = host.shutdown().await?;
        let mut s = store.session();
        let count = read_i64(s.as_mut(), "stats", "orders/count")?;
        let revenue = read_i64(s.as_mut(), "stats", "revenue/cents")?;
        println!("stats: {count} orders, revenue ${}.{:02}; GPU-1 stock left {}", revenue / 100, revenue % 100, read_i64(s.as_mut(), "inventory", "stock/GPU-1")?);
        for user in ["u-alice", "u-carol"] {
            let q = Query { index: Some("by-user".into()), pk: user.into(), sk: SortKeyCondition::Any, forward: true, limit: 10, cursor: None };
            let ids: Vec<String> = s.table_query("orders", &q)?.items.iter().filter_map(|i| i.doc["orderId"].as_str().map(str::to_owned)).collect();
            println!("orders of {user} (table index by-user): {ids:?}");
        }
        s.rollback();
        drop(s);
        let clean = clean && workflow_phase(runtime, components, data_dir, &js).await?;
        Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// The same sample orders as durable executions of `workflows/order-pipeline.asl.json`,
/// one per order, started by one trigger (`pipelines/orders-workflow.json`) on a host of its
/// own; what each execution ended with, as the engine describes it.
async fn workflow_phase(
    runtime: &Runtime,
    components: &Path,
    data_dir: &Path,
    js: &jetstream::Context,
) -> anyhow::Result<bool> {
    println!("\nthe same orders as durable workflow executions (pipelines/orders-workflow.json):");
    let mut decl: Declaration =
        serde_json::from_str(WORKFLOW_DECLARATION).context("the built-in workflow declaration")?;
    decl.workflows[0].definition =
        serde_json::from_str(ORDER_WORKFLOW).context("the built-in order workflow")?;
    let applied = Applied::from_files(decl, components)?;
    let stages = up::deploy(runtime, &applied)?;
    js.get_or_create_stream(jetstream::stream::Config {
        name: "WF_RESULTS".into(),
        subjects: vec!["wf.results.>".into()],
        ..Default::default()
    })
    .await?;
    let host = up::start(
        applied.decl,
        &stages,
        (&applied.components, runtime),
        &data_dir.join("workflow"),
        js,
        up::Extras::default(),
    )?;
    seed_inventory(&host.store)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while js.get_stream("ORDERS_WF").await.is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the trigger did not create the ORDERS_WF stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let orders = sample_orders();
    let dead_before = count(js, "SLUICE_DLQ").await;
    let started = Instant::now();
    for (i, o) in orders.iter().enumerate() {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("demo-wf-{i}").as_str());
        js.publish_with_headers("wf.orders.new", h, serde_json::to_vec(o)?.into())
            .await?
            .await?;
    }
    let total = orders.len() as u64;
    while count(js, "WF_RESULTS").await + count(js, "SLUICE_DLQ").await - dead_before < total {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the workflows did not finish in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let engine = host.engine().clone();
    for i in 0..orders.len() {
        let id = format!("orders/demo-wf-{i}");
        let d = engine.describe(&id)?;
        let order = d.input["orderId"].as_str().unwrap_or("?").to_owned();
        let events = engine.history(&id, false, 1000, None)?.events.len();
        let how = match (&d.output, &d.error) {
            (Some(out), _) => format!("notified {}", out["subject"].as_str().unwrap_or("?")),
            (None, Some(e)) => e.error.clone(),
            (None, None) => String::new(),
        };
        println!(
            "{order:<8} workflow {:?}: {how} ({events} history events)",
            d.status
        );
    }
    println!(
        "{} executions in {:.0} ms (o-1007 waits out its Retry backoff, 1 s then 2 s), every step committed with its Tasks' effects",
        orders.len(),
        elapsed.as_secs_f64() * 1e3
    );
    host.shutdown().await
}
