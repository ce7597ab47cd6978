//! The order pipeline through `sluice up` on a real nats-server, two ways in the same run:
//! the seven stages chained through subjects (`pipelines/orders.json`: seven triggers, each
//! its own consumer, commit and ack per batch), and the same stages as one durable workflow
//! behind one trigger (`pipelines/orders-workflow.json`: one execution per order, every step
//! committed with its Tasks' effects), and that workflow again as EXPRESS (only its start and
//! end persisted). Each round publishes N good orders to a fresh host and server and times
//! them until the last notification is out.
//!
//! Run: `cargo bench -p sluice --bench pipelines -- [--orders N] [--rounds R]`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use sluice_test_artifacts as guests;
use sluice_tests::{KillOnDrop, NatsServer, UpArgs, create_stream, messages_in, order, start_up};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start_host(declaration: &Path, dir: &Path, nats: &str) -> KillOnDrop {
    start_up(
        Path::new(env!("CARGO_BIN_EXE_sluice")),
        &UpArgs {
            cache: &dir.join("cache"),
            config: Some(declaration),
            components: Path::new(guests::VALIDATE_ORDER).parent(),
            data: &dir.join("data"),
            nats,
        },
    )
}

/// CPU seconds (user and system, every thread) process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    cpu_seconds_of(&format!("/proc/{pid}/stat"))
}

/// CPU seconds in a `stat` file of proc(5).
fn cpu_seconds_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // After "pid (comm) ": state is field 3, utime 14 and stime 15 (proc(5)).
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clock_ticks()
}

/// CPU seconds the living threads of `pid` other than the workflow executors (named
/// `sluice-executor`, with the threads they fan out to) have used: the triggers, the relay
/// and the NATS client, on tokio's workers. Executor threads that ended are in neither sum,
/// so the executors' share is the process's total minus this.
fn io_cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() != "sluice-executor")
        })
        .map(|t| {
            let tid: u32 = t.file_name().to_string_lossy().parse().unwrap_or(0);
            cpu_seconds_of(&format!("/proc/{pid}/task/{tid}/stat"))
        })
        .sum()
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// One timed round: its seconds, and the CPU seconds the host and nats-server used in it.
#[derive(Clone, Copy)]
struct Round {
    secs: f64,
    host_cpu: f64,
    /// Of `host_cpu`: the threads other than the workflow executors.
    io_cpu: f64,
    nats_cpu: f64,
}

/// A round of `n` orders through the declaration `file` (relative to the repository, or
/// absolute), published to `subject`.
async fn round(file: &str, subject: &str, n: usize, cache: &Path) -> Round {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "NOTIFY", "notifications.>").await;
    create_stream(&js, "WF_RESULTS", "wf.results.>").await;
    let dir = tempfile::tempdir().unwrap();
    // One artifact cache for every round, so no round pays for compiling.
    std::os::unix::fs::symlink(cache, dir.path().join("cache")).unwrap();
    let declaration: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(file);
    let mut host = start_host(&declaration, dir.path(), &nats.url);
    let stream = if subject.starts_with("wf.") {
        "ORDERS_WF"
    } else {
        "ORDERS"
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while js.get_stream(stream).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the trigger did not create {stream}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let (host_cpu, nats_cpu) = (cpu_seconds(host.id()), cpu_seconds(nats.pid()));
    let io_cpu = io_cpu_seconds(host.id());
    // Pipelined, in windows: async-nats holds at most 5,000 publish acks in flight, and a
    // publish beyond that waits for one to be awaited (here: for ever, past 5,000 orders).
    let mut acks: std::collections::VecDeque<jetstream::context::PublishAckFuture> =
        std::collections::VecDeque::with_capacity(1000);
    for i in 0..n {
        if acks.len() == 1000 {
            acks.pop_front().expect("a full window").await.unwrap();
        }
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("bench-{i}").as_str());
        let body = serde_json::to_vec(&order(&format!("o-{i}"), &format!("u-{}", i % 10))).unwrap();
        acks.push_back(
            js.publish_with_headers(subject.to_owned(), h, body.into())
                .await
                .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while messages_in(&js, "NOTIFY").await < n as u64 {
        assert!(
            Instant::now() < deadline,
            "{file}: the orders did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let host_cpu = cpu_seconds(host.id()) - host_cpu;
    let nats_cpu = cpu_seconds(nats.pid()) - nats_cpu;
    let io_cpu = io_cpu_seconds(host.id()) - io_cpu;
    host.kill().unwrap();
    host.wait().unwrap();
    Round {
        secs,
        host_cpu,
        io_cpu,
        nats_cpu,
    }
}

/// The median round (by seconds).
fn median(mut xs: Vec<Round>) -> Round {
    xs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    xs[xs.len() / 2]
}

/// State transitions of one good order through `workflows/order-pipeline.asl.json`.
const TRANSITIONS_PER_ORDER: f64 = 12.0;

/// `pipelines/orders-workflow.json` with its workflow's type EXPRESS, written to `dir`.
fn express_declaration(dir: &Path) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repo.join("pipelines/orders-workflow.json")).unwrap();
    let mut decl: serde_json::Value = serde_json::from_str(&text).unwrap();
    let wf = &mut decl["workflows"][0];
    let definition = repo
        .join("pipelines")
        .join(wf["definition"].as_str().unwrap());
    wf["definition"] = definition.to_str().unwrap().into();
    wf["type"] = "EXPRESS".into();
    let path = dir.join("orders-workflow-express.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&decl).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn main() {
    let n = arg("--orders", 2000);
    let rounds = arg("--rounds", 3);
    let express_dir = tempfile::tempdir().unwrap();
    let express = express_declaration(express_dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut chained = Vec::new();
    let mut workflow = Vec::new();
    let mut express_runs = Vec::new();
    rt.block_on(async {
        // A first, untimed round compiles the stages into the shared cache.
        round("pipelines/orders.json", "orders.new", 10, cache.path()).await;
        for _ in 0..rounds {
            chained.push(round("pipelines/orders.json", "orders.new", n, cache.path()).await);
            workflow.push(
                round(
                    "pipelines/orders-workflow.json",
                    "wf.orders.new",
                    n,
                    cache.path(),
                )
                .await,
            );
            express_runs.push(round(&express, "wf.orders.new", n, cache.path()).await);
        }
    });
    let (c, w, x) = (median(chained), median(workflow), median(express_runs));
    println!(
        "{n} good orders per round, published at once; median of {rounds} rounds, alternating"
    );
    println!(
        "{:<66} {:>9} {:>10} {:>7} {:>9} {:>9} {:>9}",
        "case", "seconds", "orders/s", "ratio", "host", "of it io", "nats"
    );
    let row = |name: &str, r: Round| {
        println!(
            "{:<66} {:>9.2} {:>10.0} {:>6.2}x {:>9.3} {:>9.3} {:>9.3}",
            name,
            r.secs,
            n as f64 / r.secs,
            c.secs / r.secs,
            1000.0 * r.host_cpu / n as f64,
            1000.0 * r.io_cpu / n as f64,
            1000.0 * r.nats_cpu / n as f64,
        );
    };
    row(
        "baseline: 7 stages chained through subjects (pipelines/orders.json)",
        c,
    );
    row(
        "one durable workflow per order (pipelines/orders-workflow.json)",
        w,
    );
    row("the same workflow, type EXPRESS", x);
    println!(
        "host, of it io, nats: ms of CPU per order (user + system) of the host's process, of its threads other than the workflow executors (triggers, relay, NATS client), of nats-server"
    );
    println!(
        "durable state transitions/s, {TRANSITIONS_PER_ORDER} per order: STANDARD {:.0}, EXPRESS {:.0}",
        TRANSITIONS_PER_ORDER * n as f64 / w.secs,
        TRANSITIONS_PER_ORDER * n as f64 / x.secs
    );
}
