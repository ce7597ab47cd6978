//! The demo: sample orders through the seven-stage order pipeline, in-process.
//!
//! Each stage runs in its own [`Worker`] over one shared in-memory state backend, and each
//! stage's output is the next stage's event data, as the NATS-chained pipeline will do later.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use sluice_model::Event;
use sluice_model::memory::MemoryBackend;
use sluice_model::state::{IndexDef, StateBackend, StateSession, SystemClock, TableDef};
use sluice_runtime::{Grants, Runtime, StageConfig, Worker};
use sluice_store::{Store, StoreConfig};

/// The pipeline, in order: (stage name, component file stem).
const PIPELINE: &[&str] = &[
    "validate-order",
    "process-order",
    "process-payment",
    "process-inventory",
    "aggregate",
    "store-order",
    "notify",
];

/// The orders table and its two secondary indexes.
fn orders_table() -> TableDef {
    let index = |name: &str, attr: &str| IndexDef {
        name: name.into(),
        pk_attr: attr.into(),
        sk_attr: Some("createdAt".into()),
    };
    TableDef {
        name: "orders".into(),
        indexes: vec![index("by-user", "userId"), index("by-status", "status")],
    }
}

fn grants(stage: &str) -> Grants {
    let mut g = Grants::default();
    match stage {
        "process-inventory" => g.kv_buckets = vec!["inventory".into()],
        "aggregate" => g.kv_buckets = vec!["stats".into()],
        "store-order" => g.tables = vec![orders_table()],
        "notify" => g.emit_subjects = vec!["notifications.".into()],
        _ => {}
    }
    g
}

fn order(id: &str, user: &str, minute: u32, items: Value, payment: Value) -> Value {
    let mut order = json!({
        "orderId": id, "userId": user, "createdAt": format!("2026-11-26T10:{minute:02}:00Z"),
    });
    order["items"] = items;
    order["payment"] = payment;
    order
}

pub(crate) fn sample_orders() -> Vec<Value> {
    let card = |n: &str| json!({"method": "card", "card": n});
    vec![
        order(
            "o-1001",
            "u-alice",
            1,
            json!([{"sku": "BOOK-1", "qty": 2, "price": 12.5}, {"sku": "PEN-3", "qty": 3, "price": 1.99}]),
            card("4242424242424242"),
        ),
        order(
            "o-1002",
            "u-bob",
            2,
            json!([{"sku": "LAMP-7", "qty": 1, "price": 49.0}]),
            card("5555555555554444"),
        ),
        order(
            "o-1003",
            "u-alice",
            3,
            json!([{"sku": "GPU-1", "qty": 1, "price": 899.99}]),
            card("4242424242424242"),
        ),
        order("o-1004", "u-bob", 4, json!([]), card("4242424242424242")),
        order(
            "o-1005",
            "u-carol",
            5,
            json!([{"sku": "BOOK-1", "qty": 1, "price": 12.5}]),
            card("4000000000000000"),
        ),
        order(
            "o-1006",
            "u-carol",
            6,
            json!([{"sku": "GPU-1", "qty": 5, "price": 899.99}]),
            card("4242424242424242"),
        ),
        order(
            "o-1007",
            "u-dave",
            7,
            json!([{"sku": "PEN-3", "qty": 10, "price": 1.99}]),
            json!({"method": "flaky"}),
        ),
        order(
            "o-1008",
            "u-carol",
            8,
            json!([{"sku": "PEN-3", "qty": 1, "price": 1.99}, {"sku": "LAMP-7", "qty": 2, "price": 49.0}]),
            card("4242424242424242"),
        ),
    ]
}

/// Run the demo with the pipeline's components from `dir`, keeping state in a redb file in
/// `data_dir` (in memory when `None`).
pub(crate) fn run(
    runtime: &Runtime,
    dir: &Path,
    data_dir: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let backend: Box<dyn StateBackend> = match data_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            let path = d.join("sluice.redb");
            println!("State: {} (redb)", path.display());
            Box::new(Store::open(
                &path,
                StoreConfig {
                    tables: vec![orders_table()],
                    clock: Arc::new(SystemClock),
                    dedupe_retention: Duration::from_secs(7 * 24 * 3600),
                },
            )?)
        }
        None => {
            println!("State: in memory");
            Box::new(MemoryBackend::new(
                vec![orders_table()],
                Arc::new(SystemClock),
            ))
        }
    };
    seed_inventory(backend.as_ref())?;

    println!("Deploying the order pipeline from {}", dir.display());
    let mut workers = Vec::new();
    for name in PIPELINE {
        let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let config = StageConfig {
            grants: grants(name),
            ..StageConfig::default()
        };
        let stage = runtime.deploy(name, &bytes, config)?;
        println!(
            "  {name:<18} {:>7} KiB  {:?}",
            bytes.len() / 1024,
            stage.cache_outcome()
        );
        workers.push(Worker::new(stage, backend.session()));
    }

    println!("\n{:<8} {:<8} {:>10}  result", "order", "user", "total");
    let mut notifications = Vec::new();
    let started = Instant::now();
    let worker_index = |stage: &str| {
        PIPELINE
            .iter()
            .position(|s| *s == stage)
            .expect("a pipeline stage")
    };
    let mut delivered: Vec<(usize, Event)> = Vec::new();
    let orders = sample_orders();
    for (n, order) in orders.iter().enumerate() {
        let mut data = serde_json::to_vec(order)?;
        let mut total = String::from("-");
        let mut result = String::from("stored and notified");
        for (stage, worker) in PIPELINE.iter().zip(workers.iter_mut()) {
            let mut event = Event::json(format!("evt-{n}-{stage}"), &Value::Null);
            event.kind = "order.created".into();
            event.source = "demo".into();
            event.subject = format!("orders.{stage}");
            event.data = std::mem::take(&mut data);
            let inv = worker.invoke(&event);
            delivered.push((worker_index(stage), event));
            if inv.replayed.is_some() {
                result = format!(
                    "already processed (at {stage}: answered from its dedupe record, not run again)"
                );
                break;
            }
            notifications.extend(inv.emitted);
            match inv.outcome {
                Ok(out) => {
                    if let Some(cents) = serde_json::from_slice::<Value>(&out)?
                        .pointer("/totals/totalCents")
                        .and_then(Value::as_i64)
                    {
                        total = format!("${}.{:02}", cents / 100, cents % 100);
                    }
                    data = out;
                }
                Err(e) => {
                    let kind = if e.retryable {
                        "retryable"
                    } else {
                        "permanent"
                    };
                    result = format!("{} ({kind}, at {stage}): {}", e.name, e.cause);
                    break;
                }
            }
        }
        println!(
            "{:<8} {:<8} {total:>10}  {result}",
            order["orderId"].as_str().unwrap_or("?"),
            order["userId"].as_str().unwrap_or("?")
        );
    }
    let elapsed = started.elapsed();

    // Redeliver every event, as a broker does after a lost ack: committed events are answered
    // from their dedupe records; only events whose failure was retryable run again.
    let (mut replayed, mut reran) = (0, 0);
    for (i, event) in &delivered {
        let inv = workers[*i].invoke(event);
        if inv.replayed.is_some() {
            replayed += 1;
        } else {
            reran += 1;
        }
    }
    println!(
        "\nRedelivered all {} stage events: {replayed} answered from their dedupe records, {reran} ran again (their failure was retryable)",
        delivered.len()
    );

    println!("\nNotifications emitted (to be published after commit):");
    for n in &notifications {
        println!("  {} {}", n.subject, String::from_utf8_lossy(&n.data));
    }

    let mut s = backend.session();
    s.begin_event("demo-report");
    let count = read_i64(s.as_mut(), "stats", "orders/count")?;
    let revenue = read_i64(s.as_mut(), "stats", "revenue/cents")?;
    println!(
        "\nStats: {count} orders, revenue ${}.{:02}",
        revenue / 100,
        revenue % 100
    );
    println!(
        "Stock left: GPU-1 {}, LAMP-7 {}",
        read_i64(s.as_mut(), "inventory", "stock/GPU-1")?,
        read_i64(s.as_mut(), "inventory", "stock/LAMP-7")?
    );
    s.finish_event(false);
    s.rollback();

    // Read the orders back through the store stage's own query entry point. A query is an
    // event too; a per-run id keeps a later run's queries from being answered from this
    // run's dedupe records.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let store = workers
        .iter_mut()
        .find(|w| w.stage().name() == "store-order")
        .context("store-order")?;
    for user in ["u-alice", "u-carol"] {
        let q = json!({"query": {"index": "by-user", "pk": user, "forward": true, "limit": 10}});
        let inv = store.invoke(&Event::json(format!("query-{user}-{run_id}"), &q));
        let page: Value = serde_json::from_slice(&inv.outcome.map_err(anyhow::Error::new)?)?;
        let ids: Vec<&str> = page["items"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["orderId"].as_str()).collect())
            .unwrap_or_default();
        println!("Orders of {user} (index by-user, oldest first): {ids:?}");
    }
    let events = delivered.len();
    println!(
        "\n{} orders through {} stages in {:.1} ms ({events} stage invocations on warm instances, each committed with its dedupe record)",
        orders.len(),
        PIPELINE.len(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn seed_inventory(backend: &dyn StateBackend) -> anyhow::Result<()> {
    let mut s = backend.session();
    s.begin_event("demo-seed");
    // A second run over the same data directory keeps the stock the first run left.
    if s.kv_get("inventory", "stock/GPU-1")?.is_some() {
        s.rollback();
        return Ok(());
    }
    for (sku, n) in [("GPU-1", 2_i64), ("LAMP-7", 10), ("BOOK-1", 100)] {
        s.kv_set(
            "inventory",
            &format!("stock/{sku}"),
            n.to_le_bytes().to_vec(),
        )?;
    }
    s.finish_event(true);
    s.commit()?;
    Ok(())
}

pub(crate) fn read_i64(s: &mut dyn StateSession, bucket: &str, key: &str) -> anyhow::Result<i64> {
    Ok(match s.kv_get(bucket, key)? {
        Some(b) => i64::from_le_bytes(b.as_slice().try_into().context("not an i64")?),
        None => 0,
    })
}
