//! What the engine's test binaries share: a clock moved by hand, stages with effects in the
//! store, a real redb store, and bounded waits.

#![allow(dead_code, reason = "each test binary uses its own part of these")]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_durable::{Config, Engine, SessionTasks};
use sluice_model::state::{RecordedOutcome, StateSession, SystemClock};
use sluice_store::{Store, StoreConfig};
use sluice_workflow::env::{Clock, TaskRequest};
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::Status;

/// The tests' start of time.
pub const T0: i64 = 1_800_000_000_000;

/// A clock tests move by hand.
pub struct Manual(pub AtomicI64);
impl Clock for Manual {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Stages as the engine's tests need them: `count` adds one to a counter in the store (its
/// effect, which must happen once per Task), `boom` fails, `flaky` fails its first attempts.
#[derive(Default)]
pub struct Stages {
    pub runs: AtomicU32,
    /// Platform faults to report before running anything.
    pub faults: AtomicU32,
}

impl SessionTasks for Stages {
    fn run(
        &self,
        s: &mut Box<dyn StateSession>,
        event: &str,
        req: &TaskRequest,
    ) -> Result<Result<Value, StatesError>, String> {
        if self
            .faults
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("the store is down".into());
        }
        self.runs.fetch_add(1, Ordering::SeqCst);
        s.begin_event(event);
        match req.stage().unwrap_or_default() {
            "count" => {
                let n = s
                    .kv_increment("counts", "n", 1)
                    .map_err(|e| e.to_string())?;
                s.finish_event(true);
                s.record_outcome(
                    event,
                    RecordedOutcome::Succeeded {
                        output_digest: "-".into(),
                    },
                );
                Ok(Ok(json!({"n": n, "in": req.input})))
            }
            "flaky" if !event.ends_with("/3") => {
                s.finish_event(false);
                Ok(Err(StatesError::new("Flaky", "not yet")))
            }
            "flaky" => {
                s.finish_event(true);
                Ok(Ok(json!("third time")))
            }
            _ => {
                s.finish_event(false);
                s.record_outcome(
                    event,
                    RecordedOutcome::Failed {
                        name: "Boom".into(),
                        cause: "it blew".into(),
                    },
                );
                Ok(Err(StatesError::new("Boom", "it blew")))
            }
        }
    }
}

pub fn store(path: &std::path::Path) -> Arc<Store> {
    Arc::new(
        Store::open(
            path,
            StoreConfig {
                tables: vec![],
                clock: Arc::new(SystemClock),
                dedupe_retention: Duration::from_secs(3600),
            },
        )
        .unwrap(),
    )
}

pub fn engine(
    store: &Arc<Store>,
    stages: &Arc<Stages>,
    clock: &Arc<Manual>,
    config: Config,
) -> Engine {
    Engine::open(store.clone(), stages.clone(), clock.clone(), config).unwrap()
}

pub fn counter(store: &Store) -> i64 {
    let mut s = store.open_session();
    s.kv_get("counts", "n")
        .unwrap()
        .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()))
}

/// Wait (bounded) until `id` is no longer running.
pub fn ended(e: &Engine, id: &str) -> sluice_durable::Description {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let d = e.describe(id).unwrap();
        if d.status != Status::Running {
            return d;
        }
        assert!(Instant::now() < until, "{id} did not end: {d:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Wait (bounded) until `f` holds.
pub fn eventually(what: &str, f: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
