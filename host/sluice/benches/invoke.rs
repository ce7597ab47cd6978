//! `POST /v1/stages/{name}/invoke` against the HTTP floor, in the same run, in alternating
//! rounds:
//!
//! 1. a bare axum handler (a `POST` route that answers its body), in a child process of this
//!    bench on 127.0.0.1:0: what HTTP alone costs on this machine;
//! 2. `invoke` of the `passthrough` stage on a real `sluice up` (own process, real redb
//!    store, nats-server beside it), without a key: one event id per request, committed by
//!    the stage version's lane in group commits;
//! 3. the same with an `Idempotency-Key`, unique per request (the outcome is kept too);
//! 4. the same stage in-process, no HTTP: `Worker::invoke` per event, each with its own
//!    commit, and `Worker::invoke_batch` of 32 events with one commit, over a redb store of
//!    the bench's own (same durability; random event ids, as the host's), and that batch
//!    again with ids in ascending order, to price where a commit's time goes.
//!
//! 1 to 3 use one load generator: `--concurrency` tokio tasks in this process, each looping
//! requests on its own keep-alive reqwest client for `--seconds` after a warm-up, timing each
//! request. It prints requests/s, p50 and p99 latency (medians over the rounds), invoke's
//! requests/s over the bare handler's, and where the time goes: the CPU each process used
//! per request (generator and server share the machine's cores), the host's requests per
//! store commit and a commit's time (from its `/metrics`), and how busy other processes kept
//! the machine meanwhile (the noise).
//!
//! Run: `cargo bench -p sluice --bench invoke -- [--rounds R] [--seconds S] [--concurrency N]
//! [--client-threads T]`.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_model::state::StateBackend;
use sluice_runtime::{StageConfig, Worker};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, KillOnDrop, NatsServer};

/// The allocator `sluice` itself runs on, for the bare server (this binary re-executed) and
/// the in-process rows, so that no row wins or loses by its allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The argument that makes this binary the bare HTTP server instead of the benchmark.
const SERVE_BARE: &str = "--serve-bare";
/// Events per `invoke_batch` call of the in-process batch row.
const BATCH: usize = 32;
/// Requests before the timed window, uncounted: they open the keep-alive connections and
/// warm the server (its lane thread and instance, its allocator's caches).
const WARMUP: Duration = Duration::from_secs(1);

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The event every request carries: the order of the other benchmarks (`order`).
fn body() -> &'static [u8] {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BODY.get_or_init(|| serde_json::to_vec(&sluice_tests::order("o-1", "u-1")).unwrap())
}

/// The bare server: the process this binary becomes with [`SERVE_BARE`]. One route of the
/// invoke route's shape that answers its body as JSON, on a multi-threaded tokio runtime
/// with the default worker count, as `sluice up` builds its own; prints its address on
/// stdout and serves until killed.
fn serve_bare() {
    use axum::http::header;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = axum::Router::new().route(
            "/v1/stages/{name}/invoke",
            axum::routing::post(|body: axum::body::Bytes| async move {
                ([(header::CONTENT_TYPE, "application/json")], body)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

/// Start the bare server (this binary again) and return it with its base URL.
fn start_bare() -> (KillOnDrop, String) {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .arg(SERVE_BARE)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the bare server"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the bare server's address");
    let url = format!("http://{}/v1/stages/bare/invoke", line.trim());
    (child, url)
}

/// `sluice up` on a fresh data directory in `dir` and the NATS server at `nats`; returns it
/// with the API's base URL (`http://ADDR/v1`), read from the line it prints on stderr.
fn start_sluice(dir: &Path, nats: &str) -> (KillOnDrop, String) {
    let mut host = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("up")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--nats", nats, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting sluice up"),
    );
    let stderr = host.0.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    // Read on a thread of its own for the host's whole life, so it never blocks on a full
    // pipe; its warnings and errors are shown (a failing request says why there).
    std::thread::spawn(move || {
        let mut api = None;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("api on ").nth(1) {
                api = rest.split_whitespace().next().map(str::to_owned);
            }
            if line.contains("sluice is up") {
                let _ = tx.send(api.take());
            }
            if line.contains("WARN") || line.contains("ERROR") || line.contains("panicked") {
                eprintln!("host: {line}");
            }
        }
    });
    let api = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("sluice came up")
        .expect("sluice printed its API address");
    (host, api)
}

/// A client as the load generator uses it: HTTP/1.1 keep-alive, no proxy look-up (the
/// environment's proxy settings would otherwise be read per request), Nagle off.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

/// Upload the passthrough stage to the host at `api` and check one invocation each way.
async fn deploy_passthrough(api: &str, auth: &str) {
    let c = client();
    let r = c
        .put(format!("{api}/stages/passthrough"))
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .body(guests::read(guests::PASSTHROUGH))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "upload: {}", r.text().await.unwrap());
    for key in [None, Some("check-1")] {
        let mut rb = c
            .post(format!("{api}/stages/passthrough/invoke"))
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body());
        if let Some(k) = key {
            rb = rb.header("idempotency-key", k);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), body(), "passthrough");
    }
}

/// What one HTTP case sends.
struct Target<'a> {
    url: &'a str,
    /// The `Authorization` header's value, when the server checks one.
    auth: Option<&'a str>,
    /// A unique `Idempotency-Key` per request, prefixed with this.
    keys: Option<&'a str>,
    /// The server's Prometheus text, to read its commits from.
    metrics: Option<&'a str>,
    /// `GET` without a body instead of `POST`ing the event.
    get: bool,
}

/// The count and total seconds of the store's commits (`sluice_commit_seconds`) the host at
/// `url` reports; `None` without the metric.
async fn commits(url: Option<&str>) -> Option<(f64, f64)> {
    let text = client().get(url?).send().await.ok()?.text().await.ok()?;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((
        value("sluice_commit_seconds_count")?,
        value("sluice_commit_seconds_sum")?,
    ))
}

/// What one timed run measured.
#[derive(Default, Clone)]
struct Sample {
    /// Completed per second in the timed window (requests, or events in-process).
    per_sec: f64,
    /// Latency of a request (in-process: of a call), ms.
    p50: f64,
    p99: f64,
    /// Answers other than 200 (in-process: failed events).
    errors: u64,
    /// CPU ms per request: this process (the load generator), the server's process, and of
    /// the server's the named threads (sluice's invocation lane).
    gen_cpu: f64,
    server_cpu: f64,
    lane_cpu: f64,
    /// Of the machine's cores, the share generator and server kept busy together.
    busy: f64,
    /// Of the machine's cores, the share every other process kept busy (noise).
    others: f64,
    /// Requests per store commit (the lane's mean batch), and a commit's mean wall time in
    /// ms (writing the batch and syncing it); NaN where the server reports no commits.
    batch: f64,
    commit_ms: f64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

/// Drive `target` with `concurrency` tasks for the warm-up and then `secs` seconds; the
/// server is process `server`, whose threads named `lane*` are counted apart.
async fn load(target: &Target<'_>, concurrency: usize, secs: f64, server: u32) -> Sample {
    let start = Instant::now() + WARMUP;
    let end = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let url = target.url.to_owned();
            let auth = target.auth.map(str::to_owned);
            let keys = target.keys.map(str::to_owned);
            let get = target.get;
            tokio::spawn(async move {
                // A client per task, so tasks do not share one pool's lock; each keeps one
                // connection open.
                let c = client();
                let mut latencies: Vec<u32> = Vec::with_capacity(64 * 1024);
                let mut errors = 0_u64;
                for i in 0_u64.. {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let mut rb = if get {
                        c.get(&url)
                    } else {
                        c.post(&url)
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(body())
                    };
                    if let Some(a) = &auth {
                        rb = rb.header(reqwest::header::AUTHORIZATION, a);
                    }
                    if let Some(k) = &keys {
                        rb = rb.header("idempotency-key", format!("{k}-{t}-{i}"));
                    }
                    let ok = match rb.send().await {
                        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    let done = Instant::now();
                    // Only requests wholly inside the window count.
                    if sent >= start && done <= end {
                        if ok {
                            let us = (done - sent).as_micros();
                            latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                        } else {
                            errors += 1;
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let commits0 = commits(target.metrics).await;
    let (gen0, server0, lane0, machine0) = (
        cpu_seconds("self"),
        cpu_seconds(&server.to_string()),
        lane_cpu_seconds(server),
        machine_busy_seconds(),
    );
    tokio::time::sleep_until(end.into()).await;
    let commits1 = commits(target.metrics).await;
    let (gen1, server1, lane1, machine1) = (
        cpu_seconds("self"),
        cpu_seconds(&server.to_string()),
        lane_cpu_seconds(server),
        machine_busy_seconds(),
    );
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let n = all.len().max(1) as f64;
    let (batch, commit_ms) = match (commits0, commits1) {
        (Some((c0, s0)), Some((c1, s1))) if c1 > c0 => {
            (all.len() as f64 / (c1 - c0), 1000.0 * (s1 - s0) / (c1 - c0))
        }
        _ => (f64::NAN, f64::NAN),
    };
    Sample {
        per_sec: all.len() as f64 / secs,
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        errors,
        gen_cpu: 1000.0 * (gen1 - gen0) / n,
        server_cpu: 1000.0 * (server1 - server0) / n,
        lane_cpu: 1000.0 * (lane1 - lane0) / n,
        busy: (gen1 - gen0 + server1 - server0) / (secs * cores()),
        others: (machine1 - machine0 - (gen1 - gen0) - (server1 - server0)).max(0.0)
            / (secs * cores()),
        batch,
        commit_ms,
    }
}

/// The passthrough stage in-process: `batch` events per `invoke_batch` call (1: `invoke`,
/// one commit per event) for `secs` seconds, on this thread, through `worker`; the events'
/// ids from `id`.
fn in_process(worker: &mut Worker, batch: usize, secs: f64, id: fn() -> String) -> Sample {
    let data: serde_json::Value = serde_json::from_slice(body()).unwrap();
    let mut latencies = Vec::new();
    let mut events_done = 0_usize;
    let mut errors = 0;
    let make = |n: usize| {
        (0..n)
            .map(|_| sluice_tests::event(&id(), &data))
            .collect::<Vec<_>>()
    };
    // Warm the instance and the store's pages outside the window.
    let warm_until = Instant::now() + WARMUP;
    while Instant::now() < warm_until {
        worker.invoke_batch(&make(batch));
    }
    let (cpu0, machine0) = (cpu_seconds("thread-self"), machine_busy_seconds());
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let events = make(batch);
        let t = Instant::now();
        let results = if batch == 1 {
            vec![worker.invoke(&events[0])]
        } else {
            worker.invoke_batch(&events)
        };
        let us = t.elapsed().as_micros();
        latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
        events_done += results.len();
        errors += results.iter().filter(|r| r.outcome.is_err()).count() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds("thread-self") - cpu0;
    let machine = machine_busy_seconds() - machine0;
    latencies.sort_unstable();
    Sample {
        per_sec: events_done as f64 / elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        errors,
        gen_cpu: f64::NAN,
        server_cpu: 1000.0 * cpu / events_done.max(1) as f64,
        lane_cpu: f64::NAN,
        busy: cpu / (elapsed * cores()),
        others: (machine - cpu).max(0.0) / (elapsed * cores()),
        batch: batch as f64,
        // The bench installs no metrics recorder, so the store's commit timer records nothing.
        commit_ms: f64::NAN,
    }
}

/// An event id shaped as the host's own for an invocation without a key (`inv-` and 128
/// bits in hex), scattered as random ones are: the dedupe records are keyed by it, and
/// sequential ids would land in one B-tree leaf where the host's random ones touch a page
/// each, which is most of what a commit costs.
fn random_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // splitmix64's finaliser: a bijection, so distinct counters give distinct ids.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("inv-{:016x}{:016x}", mix(n), mix(!n))
}

/// Event ids in ascending order (`inv-` and a 128-bit count in hex): each batch's dedupe
/// records land side by side at the end of the B-tree, the comparison that prices the
/// random ids' scattered pages.
fn sequential_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("inv-{n:032x}")
}

/// CPU seconds the whole machine spent busy (every process, every core) so far, from the
/// first line of /proc/stat: what the noise of other work on the machine is read from.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| ticks.get(*i))
        .sum();
    busy / clock_ticks()
}

/// CPU seconds (user and system) of `/proc/{who}`: a process id, `self` or `thread-self`.
fn cpu_seconds(who: &str) -> f64 {
    cpu_seconds_of(&format!("/proc/{who}/stat"))
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

/// CPU seconds of `pid`'s threads named `invoke-*`: sluice's invocation lanes (the thread
/// that runs the batch in the stage and commits it), as opposed to its tokio workers (HTTP,
/// routing, auth, the hand-off to the lane).
fn lane_cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("invoke-"))
        })
        .map(|t| cpu_seconds_of(&t.path().join("stat").to_string_lossy()))
        .sum()
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// The median of `xs` by `f` (the middle round; of an even count, the upper middle).
fn median(xs: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == SERVE_BARE) {
        serve_bare();
        return;
    }
    let rounds = arg("--rounds", 3).max(1);
    let secs = arg("--seconds", 5) as f64;
    let concurrency = arg("--concurrency", 32);
    let client_threads = arg("--client-threads", cores() as usize);

    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let (bare, bare_url) = start_bare();
    let (host, api) = start_sluice(dir.path(), &nats.url);
    let token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let invoke_url = format!("{api}/stages/passthrough/invoke");
    let metrics = format!("{}/metrics", api.trim_end_matches("/v1"));
    let health_url = format!("{}/healthz", api.trim_end_matches("/v1"));

    // In-process: the same component, over a redb store of its own (the host's is its own
    // process's), with the commit durability the host's has.
    let harness = Harness::new();
    let store = sluice_tests::open_store(harness.dir.path(), vec![]);
    let stage = harness.deploy("passthrough", guests::PASSTHROUGH, StageConfig::default());
    let mut worker = Worker::new(stage, store.session());

    // The generator's runtime: `--client-threads` workers (default: one per core, as the
    // servers' runtimes have; fewer would cap the bare handler's row first).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads.max(1))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(deploy_passthrough(&api, &auth));

    let names = [
        "bare axum handler (HTTP floor)",
        "sluice up, GET /healthz (its HTTP stack)",
        "invoke over HTTP, no key",
        "invoke over HTTP, Idempotency-Key",
        "in-process invoke, 1 event per commit",
        "in-process invoke_batch, 32 per commit",
        "  the same, ids in ascending order",
    ];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); names.len()];
    for r in 0..rounds {
        let keys = format!("bench-r{r}");
        let targets = [
            (
                Target {
                    url: &bare_url,
                    auth: None,
                    keys: None,
                    metrics: None,
                    get: false,
                },
                bare.id(),
            ),
            (
                Target {
                    url: &health_url,
                    auth: None,
                    keys: None,
                    metrics: None,
                    get: true,
                },
                host.id(),
            ),
            (
                Target {
                    url: &invoke_url,
                    auth: Some(&auth),
                    keys: None,
                    metrics: Some(&metrics),
                    get: false,
                },
                host.id(),
            ),
            (
                Target {
                    url: &invoke_url,
                    auth: Some(&auth),
                    keys: Some(&keys),
                    metrics: Some(&metrics),
                    get: false,
                },
                host.id(),
            ),
        ];
        for (i, (target, pid)) in targets.iter().enumerate() {
            samples[i].push(rt.block_on(load(target, concurrency, secs, *pid)));
        }
        samples[4].push(in_process(&mut worker, 1, secs, random_id));
        samples[5].push(in_process(&mut worker, BATCH, secs, random_id));
        samples[6].push(in_process(&mut worker, BATCH, secs, sequential_id));
        // Each round's figures on stderr, to see how far the rounds spread on a noisy machine.
        let per_sec: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.0}", s[r].per_sec))
            .collect();
        eprintln!("round {} of {rounds}: per s {}", r + 1, per_sec.join(" / "));
    }

    let bare_rps = median(&samples[0], |s| s.per_sec);
    println!(
        "passthrough, {}-byte JSON event; {concurrency} concurrent keep-alive connections, \
         {client_threads} generator threads, {secs} s per case after {} s warm-up; \
         medians of {rounds} alternating rounds; {} cores shared by generator and server",
        body().len(),
        WARMUP.as_secs(),
        cores()
    );
    println!(
        "{:<38} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6} {:>6}",
        "case",
        "req/s",
        "p50",
        "p99",
        "÷bare",
        "gen",
        "server",
        "lane",
        "batch",
        "commit",
        "busy",
        "others",
        "errors"
    );
    let fixed = |v: f64, places: usize| {
        if v.is_nan() {
            "-".to_owned()
        } else {
            format!("{v:.places$}")
        }
    };
    for (name, s) in names.iter().zip(&samples) {
        let per_sec = median(s, |x| x.per_sec);
        let ratio = if !name.starts_with("bare")
            && !name.starts_with("invoke")
            && !name.starts_with("sluice")
        {
            "-".into()
        } else {
            format!("{:.0}%", 100.0 * per_sec / bare_rps)
        };
        println!(
            "{:<38} {:>7.0} {:>6.2} {:>6.2} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4.0}% {:>5.0}% {:>6}",
            name,
            per_sec,
            median(s, |x| x.p50),
            median(s, |x| x.p99),
            ratio,
            fixed(median(s, |x| x.gen_cpu), 3),
            fixed(median(s, |x| x.server_cpu), 3),
            fixed(median(s, |x| x.lane_cpu), 3),
            fixed(median(s, |x| x.batch), 1),
            fixed(median(s, |x| x.commit_ms), 2),
            100.0 * median(s, |x| x.busy),
            100.0 * median(s, |x| x.others),
            s.iter().map(|x| x.errors).sum::<u64>(),
        );
    }
    println!(
        "p50, p99: latency of a request, ms; in-process rows: events/s, and p50/p99 of one \
         call (of {BATCH} events for the batch row), their server column the calling thread's CPU"
    );
    println!(
        "gen, server, lane: CPU ms per request (user + system) of the load generator (this \
         process), of the server's process, and of sluice's invocation lane thread in it; \
         batch: requests per store commit; commit: ms per commit (write and sync, from the \
         host's sluice_commit_seconds); busy: generator + server CPU over all cores' time; \
         others: every other process's (noise)"
    );
    println!(
        "invoke ÷ bare requests/s: {:.0}% without a key, {:.0}% with one (target: at least 70%)",
        100.0 * median(&samples[2], |s| s.per_sec) / bare_rps,
        100.0 * median(&samples[3], |s| s.per_sec) / bare_rps
    );
    drop(host);
    drop(bare);
    drop(nats);
}
