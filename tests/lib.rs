//! Shared helpers for Sluice's integration tests and benchmarks: a runtime over a temporary
//! artifact cache, a log sink that records guest output, and order fixtures.

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Value, json};
use sluice_model::memory::MemoryBackend;
use sluice_model::state::{IndexDef, StateBackend, SystemClock, TableDef};
use sluice_model::{Event, StageOutcome};
use sluice_runtime::{EngineConfig, GuestLog, GuestLogSink, Runtime, Stage, StageConfig, Worker};

/// One recorded line of guest output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Stage name.
    pub stage: String,
    /// Event id.
    pub event_id: String,
    /// `stdout`, `stderr` or `log`.
    pub stream: String,
    /// The text.
    pub message: String,
}

/// A [`GuestLogSink`] that keeps every line for assertions.
#[derive(Debug, Default)]
pub struct RecordingSink(pub Mutex<Vec<Line>>);

impl GuestLogSink for RecordingSink {
    fn log(&self, l: &GuestLog<'_>) {
        self.0.lock().push(Line {
            stage: l.stage.into(),
            event_id: l.event_id.into(),
            stream: l.stream.into(),
            message: l.message.into(),
        });
    }
}

/// A runtime with its own temporary cache directory and a recording log sink.
pub struct Harness {
    /// The runtime.
    pub runtime: Runtime,
    /// Guest output.
    pub logs: Arc<RecordingSink>,
    /// State shared by the harness's workers.
    pub backend: MemoryBackend,
    /// Keeps the cache directory alive.
    pub dir: tempfile::TempDir,
}

impl Harness {
    /// A fresh runtime over a new temporary directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::in_dir(dir)
    }

    /// A runtime whose artifact cache lives in `dir` (to test restarts).
    pub fn in_dir(dir: tempfile::TempDir) -> Self {
        let logs = Arc::new(RecordingSink::default());
        let runtime = Runtime::with_log_sink(
            &EngineConfig::new(dir.path().join("artifacts")),
            logs.clone(),
        )
        .expect("runtime");
        Self {
            runtime,
            logs,
            backend: MemoryBackend::new(vec![orders_table()], Arc::new(SystemClock)),
            dir,
        }
    }

    /// Deploy the guest at `path` as `name`.
    pub fn deploy(&self, name: &str, path: &str, config: StageConfig) -> Arc<Stage> {
        self.runtime
            .deploy(name, &sluice_test_artifacts::read(path), config)
            .unwrap_or_else(|e| panic!("deploying {name}: {e}"))
    }

    /// The `kv-counter` guest, granted the `counters` bucket.
    pub fn kv_counter(&self) -> Arc<Stage> {
        self.deploy(
            "kv-counter",
            sluice_test_artifacts::KV_COUNTER,
            StageConfig {
                grants: sluice_runtime::Grants {
                    kv_buckets: vec!["counters".into()],
                    ..sluice_runtime::Grants::default()
                },
                ..StageConfig::default()
            },
        )
    }

    /// A worker for `stage` over the harness's shared state.
    pub fn worker(&self, stage: Arc<Stage>) -> Worker {
        Worker::new(stage, self.backend.session())
    }

    /// Deploy `path` with `config` and return a worker for it.
    pub fn worker_for(&self, name: &str, path: &str, config: StageConfig) -> Worker {
        self.worker(self.deploy(name, path, config))
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// The orders table with its `by-user` and `by-status` indexes, as the `store-order` guest uses it.
pub fn orders_table() -> TableDef {
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

/// A valid order: 3 items (the benchmark's 192-byte event).
pub fn order(id: &str, user: &str) -> Value {
    json!({
        "orderId": id,
        "userId": user,
        "createdAt": "2026-11-26T10:00:00Z",
        "items": [
            {"sku": "BOOK-1", "qty": 2, "price": 12.5},
            {"sku": "PEN-3", "qty": 3, "price": 1.99},
            {"sku": "LAMP-7", "qty": 1, "price": 49.0}
        ],
        "payment": {"method": "card", "card": "4242424242424242"}
    })
}

/// An event carrying `data` as JSON.
pub fn event(id: &str, data: &Value) -> Event {
    let mut e = Event::json(id, data);
    e.kind = "order.created".into();
    e.source = "tests".into();
    e.subject = "orders.created".into();
    e.time = "2026-11-26T10:00:00Z".into();
    e
}

/// The JSON output of a successful outcome; panics with the error otherwise.
pub fn ok_json(outcome: &StageOutcome) -> Value {
    match outcome {
        Ok(bytes) => serde_json::from_slice(bytes).expect("output is JSON"),
        Err(e) => panic!("expected success, got {e}"),
    }
}

/// The error name of a failed outcome; panics on success.
pub fn err_name(outcome: &StageOutcome) -> &str {
    match outcome {
        Ok(bytes) => panic!("expected an error, got {}", String::from_utf8_lossy(bytes)),
        Err(e) => &e.name,
    }
}

/// A nats-server on 127.0.0.1 (ephemeral port, temporary store), stopped by process id when
/// dropped.
pub struct NatsServer {
    server: sluice_nats::LocalNatsServer,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Start a server on an ephemeral port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = sluice_nats::LocalNatsServer::start(dir.path(), None).expect("nats-server");
        Self {
            url: server.url(),
            server,
            _dir: dir,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Kill the server (SIGKILL) and start it again on the same port and store.
    pub fn restart(&mut self) {
        self.server.restart().expect("restarting nats-server");
    }
}

/// Publish `body` to `subject` with `Nats-Msg-Id: id` and wait for JetStream's ack.
pub async fn publish_with_id(
    js: &async_nats::jetstream::Context,
    subject: &str,
    id: &str,
    body: Vec<u8>,
) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    js.publish_with_headers(subject.to_owned(), headers, body.into())
        .await
        .expect("publishing")
        .await
        .expect("JetStream's publish ack");
}

/// Messages in `stream` (0 when it does not exist yet).
pub async fn messages_in(js: &async_nats::jetstream::Context, stream: &str) -> u64 {
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Every stream on the server with its state and its consumers' positions, one line each:
/// what a test prints when a pipeline did not drain, to say where the messages stopped.
pub async fn describe_streams(js: &async_nats::jetstream::Context) -> String {
    use futures::TryStreamExt;
    let mut out = String::new();
    let names: Vec<String> = match js.stream_names().try_collect().await {
        Ok(n) => n,
        Err(e) => return format!("listing streams failed: {e}"),
    };
    for name in names {
        let Ok(mut stream) = js.get_stream(&name).await else {
            out += &format!("stream {name}: not readable\n");
            continue;
        };
        match stream.info().await {
            Ok(i) => {
                out += &format!(
                    "stream {name} {:?}: {} messages, seq {}..{}\n",
                    i.config.subjects,
                    i.state.messages,
                    i.state.first_sequence,
                    i.state.last_sequence
                )
            }
            Err(e) => out += &format!("stream {name}: info failed: {e}\n"),
        }
        let consumers: Vec<String> = stream
            .consumer_names()
            .try_collect()
            .await
            .unwrap_or_default();
        for c in consumers {
            let info = stream
                .consumer_info(&c)
                .await
                .map(|i| {
                    format!(
                        "delivered {} acked {} pending {} ack-pending {} redelivered {} waiting {}",
                        i.delivered.stream_sequence,
                        i.ack_floor.stream_sequence,
                        i.num_pending,
                        i.num_ack_pending,
                        i.num_redelivered,
                        i.num_waiting
                    )
                })
                .unwrap_or_else(|e| format!("info failed: {e}"));
            out += &format!("  consumer {c}: {info}\n");
        }
    }
    out
}

/// Create `name` capturing `subjects` if missing.
pub async fn create_stream(js: &async_nats::jetstream::Context, name: &str, subjects: &str) {
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        ..Default::default()
    })
    .await
    .expect("create stream");
}

/// Wait (at most 60 s) until `stream` exists, e.g. until a trigger has created it.
pub async fn wait_for_stream(js: &async_nats::jetstream::Context, stream: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while js.get_stream(stream).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "stream {stream} never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Up to `max` messages of `stream`, read with a fresh ephemeral consumer (acknowledging
/// nothing, so the server's pending-ack limit does not cut the read at 1000).
pub async fn read_stream(
    js: &async_nats::jetstream::Context,
    stream: &str,
    max: usize,
) -> Vec<async_nats::jetstream::Message> {
    use futures::StreamExt;
    let s = js.get_stream(stream).await.expect("stream");
    let consumer = s
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(max)
        .expires(std::time::Duration::from_secs(2))
        .messages()
        .await
        .expect("fetch");
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        out.push(m.expect("message"));
        if out.len() == max {
            break;
        }
    }
    out
}

/// The `counters`/`hits` value the `kv-counter` guest keeps in `store` (0 when unset).
pub fn hits(store: &sluice_store::Store) -> i64 {
    use sluice_model::state::StateSession as _;
    let mut s = store.open_session();
    let v = s.kv_get("counters", "hits").expect("reading the counter");
    s.rollback();
    v.map_or(0, |b| {
        i64::from_le_bytes(b.try_into().expect("an 8-byte counter"))
    })
}

/// A redb store at `dir/state.redb` with `tables` and the system clock.
pub fn open_store(dir: &std::path::Path, tables: Vec<TableDef>) -> sluice_store::Store {
    sluice_store::Store::open(
        &dir.join("state.redb"),
        sluice_store::StoreConfig {
            tables,
            clock: Arc::new(SystemClock),
            dedupe_retention: std::time::Duration::from_secs(3600),
        },
    )
    .expect("open store")
}

/// A child process that is killed when dropped (by its process id, through
/// [`std::process::Child::kill`]), so that a failing test does not leave it running.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // After a successful `wait` these do nothing: std knows the child is gone and sends
        // no signal to a process id that may have been reused.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many orders `store`'s `orders` table holds with status `stored`, read page by page
/// through the `by-status` index (off the async threads: redb blocks).
pub async fn stored_orders(store: &sluice_store::Store) -> usize {
    use sluice_model::state::{Query, SortKeyCondition, StateSession};
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = store.open_session();
        let mut q = Query {
            index: Some("by-status".into()),
            pk: "stored".into(),
            sk: SortKeyCondition::Any,
            forward: true,
            limit: 1000,
            cursor: None,
        };
        let mut n = 0;
        loop {
            let page = s
                .table_query("orders", &q)
                .expect("querying the orders table");
            n += page.items.len();
            match page.cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        s.rollback();
        n
    })
    .await
    .expect("the query task")
}

/// What `sluice up` runs on: its artifact cache, declaration (none: resume from the
/// registry), component folder (none: the declaration's), data directory and NATS server.
pub struct UpArgs<'a> {
    /// `--cache-dir`: compiled artifacts.
    pub cache: &'a std::path::Path,
    /// `--config`: the declaration to apply.
    pub config: Option<&'a std::path::Path>,
    /// `--components`: where the declaration's component files are.
    pub components: Option<&'a std::path::Path>,
    /// `--data-dir`: the store and the registry.
    pub data: &'a std::path::Path,
    /// `--nats`: the server's URL.
    pub nats: &'a str,
}

/// Start `sluice up` (the binary at `bin`) on `up`, as [`start_sluice_up`] does.
pub fn start_up(bin: &std::path::Path, up: &UpArgs<'_>) -> KillOnDrop {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--cache-dir".as_ref(),
        up.cache.as_os_str(),
        "up".as_ref(),
        "--data-dir".as_ref(),
        up.data.as_os_str(),
        "--nats".as_ref(),
        up.nats.as_ref(),
        // Any free port: hosts of concurrent tests must not meet on the default.
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ];
    if let Some(c) = up.config {
        args.extend(["--config".as_ref(), c.as_os_str()]);
    }
    if let Some(c) = up.components {
        args.extend(["--components".as_ref(), c.as_os_str()]);
    }
    start_sluice_up(bin, &args)
}

/// Start `sluice` (the binary at `bin`) with `args` (e.g. `--cache-dir D up --config F ...`)
/// and wait, at most two minutes, until it says `sluice is up`; its stderr is read on a
/// thread of its own so the host never blocks on it.
pub fn start_sluice_up(bin: &std::path::Path, args: &[&std::ffi::OsStr]) -> KillOnDrop {
    use std::io::BufRead;
    let mut host = KillOnDrop(
        std::process::Command::new(bin)
            .args(args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting sluice"),
    );
    let stderr = host.0.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The host's warnings and errors go to the test's output (libtest shows it when the
        // test fails), at most 300 of them; with SLUICE_TEST_HOST_LOG set, every line.
        let mut shown = 0;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("sluice is up") {
                let _ = tx.send(());
            }
            if std::env::var_os("SLUICE_TEST_HOST_LOG").is_some()
                || ((line.contains("WARN") || line.contains("ERROR") || line.contains("panicked"))
                    && shown < 300)
            {
                shown += 1;
                eprintln!("host: {line}");
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("host came up");
    host
}
