//! Workflows on real stages, through the `sluice` binary: the order pipeline
//! (`workflows/order-pipeline.asl.json`, 12 state transitions and 8 Tasks per order) run as
//! the processor of a Map over N orders, against a baseline measured in the same run: the
//! same Map over the same orders with a one-Pass processor (process start, deploy, the Map
//! itself). Fixed costs cancel out by taking the difference between N orders and 1 order.
//! With `--cases DIR` it also times a whole conformance run.
//!
//! Run: `cargo bench -p sluice --bench workflow -- [--orders N] [--rounds R] [--cases DIR]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use sluice_test_artifacts as guests;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Map over `n` orders whose processor is `processor` (a machine).
fn over_orders(processor: &Value, n: usize) -> (Value, Value) {
    let def = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 8, "ItemsPath": "$.orders",
        "ItemProcessor": processor, "ResultSelector": {"n.$": "States.ArrayLength($)"}, "End": true
    }}});
    let orders: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "orderId": format!("o-{i}"), "userId": format!("u-{}", i % 10),
                "createdAt": "2026-12-01T10:00:00Z",
                "items": [{"sku": "BOOK-1", "qty": 2, "price": 12.5}, {"sku": "PEN-3", "qty": 3, "price": 1.99}],
                "payment": {"method": "card", "card": "4242424242424242"}
            })
        })
        .collect();
    (def, json!({"orders": orders}))
}

/// Seconds for one `sluice workflow run` of `def` on `input`.
fn run_once(dir: &Path, def: &Value, input: &Value) -> f64 {
    let d = dir.join("def.json");
    let i = dir.join("input.json");
    std::fs::write(&d, serde_json::to_vec(def).unwrap()).unwrap();
    std::fs::write(&i, serde_json::to_vec(input).unwrap()).unwrap();
    let components = Path::new(guests::PASSTHROUGH).parent().unwrap();
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(["workflow", "run"])
        .arg(&d)
        .arg("--input")
        .arg(&i)
        .arg("--components")
        .arg(components)
        .arg("--config")
        .arg(repo().join("pipelines/orders.json"))
        .output()
        .expect("running sluice");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--orders")
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let rounds: usize = arg(&args, "--rounds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let pipeline: Value = serde_json::from_slice(
        &std::fs::read(repo().join("workflows/order-pipeline.asl.json")).unwrap(),
    )
    .unwrap();
    let pass = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    // Warm the compile cache first: a cold compile is a deploy cost, not a workflow one.
    let (d, i) = over_orders(&pipeline, 1);
    run_once(dir.path(), &d, &i);
    let per_order = |processor: &Value| {
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let (d1, i1) = over_orders(processor, 1);
            let (dn, i_n) = over_orders(processor, n);
            let one = run_once(dir.path(), &d1, &i1);
            let many = run_once(dir.path(), &dn, &i_n);
            samples.push((many - one) / (n - 1) as f64);
        }
        median(samples)
    };
    let base = per_order(&pass);
    let full = per_order(&pipeline);
    println!("orders per run: {n}; median of {rounds} rounds; per order = (T(N) - T(1)) / (N - 1)");
    println!(
        "{:<58} {:>12} {:>10} {:>8}",
        "case", "µs/order", "orders/s", "ratio"
    );
    println!(
        "{:<58} {:>12.1} {:>10.0} {:>8}",
        "baseline: Map over the orders, one Pass state each",
        base * 1e6,
        1.0 / base,
        "1.0x"
    );
    println!(
        "{:<58} {:>12.1} {:>10.0} {:>7.1}x",
        "order pipeline: 12 transitions, 8 Tasks on 7 real stages",
        full * 1e6,
        1.0 / full,
        full / base
    );
    println!(
        "order pipeline: {:.0} transitions/s with real stages",
        12.0 / full
    );
    if let Some(cases) = arg(&args, "--cases") {
        let components = Path::new(guests::PASSTHROUGH).parent().unwrap();
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(["workflow", "conformance", &cases, "--components"])
            .arg(components)
            .output()
            .expect("running sluice");
        let text = String::from_utf8_lossy(&out.stdout);
        println!(
            "conformance run: {:.2} s wall, {}",
            t.elapsed().as_secs_f64(),
            text.lines().last().unwrap_or("")
        );
    }
}
