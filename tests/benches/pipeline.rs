//! End-to-end throughput on a real nats-server: stream → stage → commit → ack, against the
//! raw JetStream pull-consume rate of the same messages in the same run, plus latency from
//! publish to the stage's output being published (which is after the commit).
//!
//! Run: `cargo bench -p sluice-tests --bench pipeline` (options at [`main`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use sluice_nats::{OutboxRelay, PartitionKey, Trigger, TriggerConfig};
use sluice_runtime::StageConfig;
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, NatsServer, open_store, order};

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

/// How the raw consumer acknowledges.
#[derive(Clone, Copy)]
enum RawAck {
    /// One ack per message, as a trigger does (it must NAK or terminate single messages).
    EachMessage,
    /// `AckPolicy::All` and one ack per 1000 messages: the broker-side ceiling.
    OnePerBatch,
}

/// Pull-consume `n` messages with a continuous pull of batch 1000 (the same client path a
/// trigger uses), acknowledging per `ack`: no stage, no commit.
async fn raw_rate(js: &jetstream::Context, n: usize, body: &[u8], ack: RawAck, tag: &str) -> Rate {
    let name = format!("RAW{tag}");
    let subject = format!("raw{tag}.in");
    stream(js, &name, &format!("raw{tag}.>")).await;
    publish(js, &subject, n, body, &format!("raw{tag}")).await;
    let s = js.get_stream(&name).await.unwrap();
    let c = s
        .create_consumer(pull::Config {
            durable_name: Some("raw".into()),
            max_ack_pending: 10_000,
            ack_policy: match ack {
                RawAck::EachMessage => jetstream::consumer::AckPolicy::Explicit,
                RawAck::OnePerBatch => jetstream::consumer::AckPolicy::All,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    let span = Span::start();
    let mut messages = c
        .stream()
        .max_messages_per_batch(1000)
        .messages()
        .await
        .unwrap();
    for got in 1..=n {
        let m = messages.next().await.unwrap().unwrap();
        if matches!(ack, RawAck::EachMessage) || got % 1000 == 0 || got == n {
            m.ack().await.unwrap();
        }
    }
    // The acks are only sent; wait until the server has them all, as the trigger runs do.
    let mut c = c;
    while c.info().await.unwrap().num_ack_pending > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = span.end(n);
    drop(messages);
    js.delete_stream(&name).await.unwrap();
    rate
}

/// Events per second through a trigger running `stage_path` with `batch` and `partitions`;
/// with `output`, each event's output is also published (through the outbox) and counted
/// before the clock stops.
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
    output: bool,
    n: usize,
    body: &[u8],
    tag: &str,
) -> Rate {
    let stream_name = format!("E2E{tag}");
    let subject = format!("e2e{tag}.in");
    stream(js, &stream_name, &format!("e2e{tag}.>")).await;
    publish(js, &subject, n, body, tag).await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), vec![]);
    let stage = h.deploy("stage", stage_path, StageConfig::default());
    let mut t = TriggerConfig::new(
        &format!("t{tag}"),
        &stream_name,
        &[&format!("e2e{tag}.>")],
        &subject,
    );
    t.batch_size = batch;
    t.partitions = partitions;
    if output {
        t.output_subject = Some(format!("e2e{tag}.out"));
    }
    t.partition_key = PartitionKey::EventId;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = OutboxRelay::new(js.clone(), store.clone());
    perf_control("enable");
    let span = Span::start();
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
        // Each look is a JetStream API request the server must serve: look rarely while much
        // is left, often near the end (where the finishing time is decided).
        let left = n.saturating_sub(info.ack_floor.stream_sequence as usize);
        let wait = match left {
            0..=2_000 => 1,
            2_001..=20_000 => 5,
            _ => 40,
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    // The outputs land in the same stream, after the inputs.
    while output && (sluice_tests::messages_in(js, &stream_name).await as usize) < 2 * n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = span.end(n);
    perf_control("disable");
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
    let store = open_store(dir.path(), vec![]);
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

/// CPU seconds (user + system) that process `pid` ("self" for this one) has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// With `PERF_CTL_FIFO` set, switch a `perf record --control fifo:$PERF_CTL_FIFO -D -1`
/// on for the trigger runs only, so a profile shows the pipeline without the publishing.
fn perf_control(command: &str) {
    if let Some(fifo) = std::env::var_os("PERF_CTL_FIFO") {
        let _ = std::fs::write(fifo, format!("{command}\n"));
    }
}

/// The nats-server's process id, for its CPU time.
static SERVER_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// A measured stretch: wall time and the CPU time of this process and of the nats-server.
struct Span {
    wall: Instant,
    host: f64,
    server: f64,
}

/// What one case measured.
#[derive(Clone, Copy)]
struct Rate {
    events_per_s: f64,
    /// CPU microseconds per event spent by this process (client, stage, commit).
    host_us: f64,
    /// CPU microseconds per event spent by nats-server.
    server_us: f64,
}

impl Span {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            host: cpu_seconds("self"),
            server: cpu_seconds(&SERVER_PID.get().copied().unwrap_or(0).to_string()),
        }
    }

    fn end(&self, events: usize) -> Rate {
        let now = Self::start();
        let per = |d: f64| d * 1e6 / events as f64;
        Rate {
            events_per_s: events as f64 / self.wall.elapsed().as_secs_f64(),
            host_us: per(now.host - self.host),
            server_us: per(now.server - self.server),
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// `-- --quick` runs 20k events per case; `-- --rounds R` (default 3) repeats every case,
/// raw baselines included, and reports medians; `-- --only TEXT` runs the cases whose name
/// contains TEXT (the raw baselines always run; `--only latency` runs the latency case alone).
fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds: usize = arg("--rounds").unwrap_or(3).max(1);
    let only: Option<String> = arg("--only");
    let n = if quick { 20_000 } else { 100_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let nats = NatsServer::start();
        SERVER_PID.set(nats.pid()).unwrap();
        let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
        let h = Harness::new();
        let body = serde_json::to_vec(&order("o-1", "u-1")).unwrap();
        type Case = (&'static str, &'static str, usize, usize, bool);
        let cases: Vec<Case> = vec![
            ("trivial (passthrough), batch 1", guests::PASSTHROUGH, 1, 1, false),
            ("trivial (passthrough), batch 100", guests::PASSTHROUGH, 100, 1, false),
            ("trivial (passthrough), batch 1000", guests::PASSTHROUGH, 1000, 1, false),
            ("order (process-order), batch 1", guests::PROCESS_ORDER, 1, 1, false),
            ("order (process-order), batch 100", guests::PROCESS_ORDER, 100, 1, false),
            ("order (process-order), batch 1000", guests::PROCESS_ORDER, 1000, 1, false),
            ("order, batch 1000, 2 partitions", guests::PROCESS_ORDER, 1000, 2, false),
            ("order, batch 1000, output published", guests::PROCESS_ORDER, 1000, 1, true),
        ];
        let cases: Vec<Case> = cases
            .into_iter()
            .filter(|c| only.as_deref().is_none_or(|o| c.0.contains(o)))
            .collect();
        // Every round measures the baselines and every case once, interleaved, so a noisy
        // stretch of the machine hits them alike; ratios are taken per round.
        let mut raw_each: Vec<Rate> = Vec::new();
        let mut raw_all: Vec<Rate> = Vec::new();
        let mut rates: Vec<Vec<Rate>> = vec![Vec::new(); cases.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
        let mut tag = 0;
        for round in 0..rounds {
            tag += 1;
            let raw = raw_rate(&js, n, &body, RawAck::EachMessage, &tag.to_string()).await;
            raw_each.push(raw);
            tag += 1;
            raw_all.push(raw_rate(&js, n, &body, RawAck::OnePerBatch, &tag.to_string()).await);
            for (i, (_, path, batch, partitions, output)) in cases.iter().enumerate() {
                // Batch 1 commits (and fsyncs) per event: fewer events keep it short.
                let events = if *batch == 1 { n / 20 } else { n };
                tag += 1;
                let r = trigger_rate(&js, &h, path, *batch, *partitions, *output, events, &body, &tag.to_string()).await;
                ratios[i].push(r.events_per_s / raw.events_per_s);
                rates[i].push(r);
            }
            eprintln!("round {}/{rounds} done", round + 1);
        }
        println!("\npipeline: {n} events of {} bytes per case, file stream, one nats-server on loopback, medians of {rounds} rounds", body.len());
        println!("{:<44} {:>10} {:>8} {:>12} {:>12}", "variant", "events/s", "of raw", "host µs/ev", "server µs/ev");
        let row = |name: &str, rs: &[Rate], ratio: f64| {
            let m = |f: fn(&Rate) -> f64| median(rs.iter().map(f).collect());
            println!(
                "{name:<44} {:>10.0} {:>7.0}% {:>12.2} {:>12.2}",
                m(|r| r.events_per_s),
                100.0 * ratio,
                m(|r| r.host_us),
                m(|r| r.server_us)
            );
        };
        row("raw pull + ack each message (baseline)", &raw_each, 1.0);
        let ceiling = median(raw_all.iter().zip(&raw_each).map(|(a, e)| a.events_per_s / e.events_per_s).collect());
        row("raw pull, ack-all per 1000 (broker ceiling)", &raw_all, ceiling);
        for (i, (name, ..)) in cases.iter().enumerate() {
            row(name, &rates[i], median(ratios[i].clone()));
        }
        if only.as_deref().is_none_or(|o| o == "latency") {
            let (p50, p99) = latency(&js, &h, 5_000, if quick { 2 } else { 4 }).await;
            println!("\npublish → output published (passthrough, 5k events/s paced): p50 {:.2} ms, p99 {:.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
        }
    });
}
