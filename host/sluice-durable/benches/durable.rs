//! Durable state transitions per second: many executions at once on a real redb file, every
//! step committed (Standard) or only the start and the end (Express), with group commit (one
//! transaction per batch of executions). Three loads: a chain of Pass states, a distributed
//! Map of a Pass over 10,000 items, and a chain of Tasks on a stage that adds to a counter in
//! the store (its write commits with the step). The baseline, in the same run: the in-memory
//! driver on the same Pass chain, which persists nothing.
//!
//! Run: `cargo bench -p sluice-durable --bench durable` (`-- --executions N --rounds N`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_durable::{Config, Engine, ExecutionType, SessionTasks, Start};
use sluice_model::state::{RecordedOutcome, StateSession, SystemClock};
use sluice_store::{Store, StoreConfig};
use sluice_workflow::definition::{Machine, parse};
use sluice_workflow::env::{SplitMix, TaskRequest, TaskRunner};
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::Status;
use sluice_workflow::run::{ManualClock, WallClock, run};

/// A stage that adds one to a counter (its state write commits with the step).
struct Counter;
impl SessionTasks for Counter {
    fn run(
        &self,
        s: &mut Box<dyn StateSession>,
        event: &str,
        req: &TaskRequest,
    ) -> Result<Result<Value, StatesError>, String> {
        s.begin_event(event);
        s.kv_increment("bench", "n", 1).map_err(|e| e.to_string())?;
        s.finish_event(true);
        s.record_outcome(
            event,
            RecordedOutcome::Succeeded {
                output_digest: "-".into(),
            },
        );
        Ok(Ok(req.input.clone()))
    }
}

struct Identity;
impl TaskRunner for Identity {
    fn run(&self, req: &TaskRequest) -> Result<Value, StatesError> {
        Ok(req.input.clone())
    }
}

fn chain(n: usize, task: bool) -> Machine {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = if task {
            json!({"Type": "Task", "Resource": "count"})
        } else {
            json!({"Type": "Pass"})
        };
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    parse(&json!({"StartAt": "S0", "States": states})).unwrap()
}

fn map() -> Machine {
    parse(&json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1000,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}
        },
        "End": true
    }}}))
    .unwrap()
}

/// Run `executions` of `machine` on a fresh store; (seconds, state transitions).
fn durable(machine: &Machine, kind: ExecutionType, executions: usize, input: &Value) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("b.redb"),
        StoreConfig {
            tables: vec![],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let engine = Engine::open(
        Arc::new(store),
        Arc::new(Counter),
        Arc::new(WallClock),
        Config {
            batch: 256,
            max_history: u64::MAX,
            ..Config::default()
        },
    )
    .unwrap();
    engine.register("b", machine.clone(), kind).unwrap();
    let started = Instant::now();
    for chunk in (0..executions).collect::<Vec<_>>().chunks(500) {
        let starts = chunk
            .iter()
            .map(|i| Start {
                name: format!("e{i}"),
                input: input.clone(),
                completion: None,
            })
            .collect();
        for r in engine.start_many("b", starts).unwrap() {
            r.unwrap();
        }
    }
    while engine.open_executions() > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = started.elapsed().as_secs_f64();
    let d = engine.describe("b/e0").unwrap();
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    engine.shutdown();
    // Transitions per execution, from the in-memory run of the same machine (the durable
    // history of an Express execution is not kept).
    let per = run(
        machine,
        "b",
        "e",
        input.clone(),
        &Identity,
        &ManualClock::new(0),
        &SplitMix::new(1),
    )
    .transitions();
    (secs, per * executions as u64)
}

fn median(rounds: usize, mut f: impl FnMut() -> (f64, u64)) -> (f64, u64) {
    let mut all: Vec<(f64, u64)> = (0..rounds).map(|_| f()).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all[all.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let executions = arg("--executions", 1000);
    let rounds = arg("--rounds", 3);
    let pass = chain(50, false);
    let tasks = chain(10, true);
    let items = json!({"items": (0..10_000).collect::<Vec<_>>()});
    let empty = json!({});

    let (base_s, base_n) = median(rounds, || {
        let t = Instant::now();
        let mut n = 0;
        for _ in 0..executions {
            n += run(
                &pass,
                "b",
                "e",
                empty.clone(),
                &Identity,
                &ManualClock::new(0),
                &SplitMix::new(1),
            )
            .transitions();
        }
        (t.elapsed().as_secs_f64(), n)
    });
    let base = base_n as f64 / base_s;
    println!(
        "{executions} executions at once (Map: 1 execution of 10,000 items); median of {rounds} runs; 2 executor threads, batches of up to 256"
    );
    println!("{:<62} {:>12} {:>8}", "case", "transitions/s", "ratio");
    println!(
        "{:<62} {:>12.0} {:>7.2}x",
        "baseline: in-memory driver, 50 Pass states, nothing persisted", base, 1.0
    );
    for (label, machine, input, n) in [
        ("Pass chain (50 states)", &pass, &empty, executions),
        (
            "Task chain (10 Tasks, each a committed counter write)",
            &tasks,
            &empty,
            executions,
        ),
        (
            "distributed Map of a Pass over 10,000 items",
            &map(),
            &items,
            1,
        ),
    ] {
        for kind in [ExecutionType::Standard, ExecutionType::Express] {
            let (s, t) = median(rounds, || durable(machine, kind, n, input));
            let rate = t as f64 / s;
            println!(
                "{:<62} {:>12.0} {:>7.2}x",
                format!(
                    "{} {label}",
                    if kind == ExecutionType::Standard {
                        "STANDARD"
                    } else {
                        "EXPRESS "
                    }
                ),
                rate,
                rate / base
            );
        }
    }
}
