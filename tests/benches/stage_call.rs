//! Per-event cost of one call through the stage world, against the same logic compiled
//! natively, measured in the same run.
//!
//! Run: `cargo bench -p sluice-tests --bench stage_call` (add `-- --quick` for a short run).
//! Prints a table of medians over several rounds and ratios against native. The stage is
//! `process-order` (parse a 3-item order with serde_json, compute totals, serialize); the
//! native baseline calls the very same `sluice-order-logic` function the guest calls.
//!
//! The workers run over [`NullSession`], a state session that keeps nothing: these stages
//! touch no state, and what a call through the stage world costs should not include a state
//! store's bookkeeping (the store's commit has its own benchmark, and the pipeline benchmark
//! measures everything together). Every event has a fresh id; a repeated one would be a
//! redelivery.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_model::Event;
use sluice_model::state::{
    CommitError, Condition, Emitted, Item, KeyPage, KvError, Query, QueryPage, Recorded,
    RecordedOutcome, StateSession, StoreError, TableError,
};
use sluice_runtime::{CacheOutcome, Limits, StageConfig};
use sluice_runtime::{Stage, Worker};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, event, order};

/// A session for stateless stages: write sets and outcomes are dropped at once, commits are
/// free, and state calls fail.
#[derive(Default)]
struct NullSession {
    emitted: Vec<Emitted>,
}

fn no_state() -> String {
    "the benchmark's stages have no state".into()
}

impl StateSession for NullSession {
    fn begin_event(&mut self, _: &str) {
        self.emitted.clear();
    }
    fn finish_event(&mut self, keep: bool) -> Vec<Emitted> {
        let emitted = std::mem::take(&mut self.emitted);
        if keep { emitted } else { Vec::new() }
    }
    fn record_outcome(&mut self, _: &str, outcome: RecordedOutcome) {
        black_box(outcome);
    }
    fn recorded(&mut self, _: &str) -> Result<Option<Recorded>, StoreError> {
        Ok(None)
    }
    fn commit(&mut self) -> Result<(), CommitError> {
        Ok(())
    }
    fn rollback(&mut self) {}
    fn kv_get(&mut self, _: &str, _: &str) -> Result<Option<Vec<u8>>, KvError> {
        Err(KvError::Store(no_state()))
    }
    fn kv_set(&mut self, _: &str, _: &str, _: Vec<u8>) -> Result<(), KvError> {
        Err(KvError::Store(no_state()))
    }
    fn kv_delete(&mut self, _: &str, _: &str) -> Result<(), KvError> {
        Err(KvError::Store(no_state()))
    }
    fn kv_list(&mut self, _: &str, _: &str, _: Option<&str>, _: usize) -> Result<KeyPage, KvError> {
        Err(KvError::Store(no_state()))
    }
    fn table_put(
        &mut self,
        _: &str,
        _: &str,
        _: &str,
        _: Value,
        _: Condition,
        _: Option<u64>,
    ) -> Result<u64, TableError> {
        Err(TableError::Store(no_state()))
    }
    fn table_get(&mut self, _: &str, _: &str, _: &str) -> Result<Option<Item>, TableError> {
        Err(TableError::Store(no_state()))
    }
    fn table_delete(
        &mut self,
        _: &str,
        _: &str,
        _: &str,
        _: Condition,
    ) -> Result<bool, TableError> {
        Err(TableError::Store(no_state()))
    }
    fn table_update(
        &mut self,
        _: &str,
        _: &str,
        _: &str,
        _: &Value,
        _: Condition,
    ) -> Result<Item, TableError> {
        Err(TableError::Store(no_state()))
    }
    fn table_query(&mut self, _: &str, _: &Query) -> Result<QueryPage, TableError> {
        Err(TableError::Store(no_state()))
    }
    fn emit(&mut self, event: Emitted) {
        self.emitted.push(event);
    }
}

/// Run `n` events through `w` one `invoke` each, every one with a fresh id.
fn one_by_one(
    w: &mut Worker,
    events: &mut [Event],
    fresh_ids: &mut impl FnMut(&mut [Event]),
    n: usize,
) {
    for i in 0..n {
        let e = &mut events[i % events.len()];
        fresh_ids(std::slice::from_mut(e));
        let inv = w.invoke(e);
        assert!(inv.outcome.is_ok() && inv.replayed.is_none());
    }
}

/// Run `n` events through `w` in `invoke_batch` calls of `events.len()`, with fresh ids.
fn in_batches(
    w: &mut Worker,
    events: &mut [Event],
    fresh_ids: &mut impl FnMut(&mut [Event]),
    n: usize,
) {
    for _ in 0..n / events.len() {
        fresh_ids(events);
        let out = w.invoke_batch(events);
        assert!(
            out.iter()
                .all(|r| r.outcome.is_ok() && r.replayed.is_none())
        );
    }
}

fn worker(stage: std::sync::Arc<Stage>) -> Worker {
    Worker::new(stage, Box::new(NullSession::default()))
}

/// Rows whose name contains a non-flag command-line argument run; all run when there is none.
/// Native always runs: it is the baseline.
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    (name.starts_with("native") && std::env::var_os("SKIP_NATIVE").is_none())
        || filters.is_empty()
        || filters.iter().any(|f| name.contains(f.as_str()))
}

struct Row {
    name: &'static str,
    per_event: Vec<Duration>,
}

impl Row {
    fn median(&self) -> Duration {
        let mut v = self.per_event.clone();
        v.sort();
        v[v.len() / 2]
    }
}

/// Time `rounds` rounds of `events` events each; `run` handles `events` events per call.
fn measure(name: &'static str, rounds: usize, events: usize, mut run: impl FnMut(usize)) -> Row {
    if !selected(name) {
        return Row {
            name,
            per_event: vec![Duration::ZERO],
        };
    }
    run(events.min(1000)); // warm up
    let per_event = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            run(events);
            start.elapsed() / u32::try_from(events).expect("event count fits u32")
        })
        .collect();
    Row { name, per_event }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, scale) = if quick { (3, 1) } else { (7, 4) };
    let data = serde_json::to_vec(&order("o-1", "u-1")).expect("json");
    let h = Harness::new();

    // Compile vs reload from the artifact cache.
    let compile_stage = h.deploy(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let compiled = compile_stage.cache_outcome();
    let reloaded = h
        .deploy(
            "process-order",
            guests::PROCESS_ORDER,
            StageConfig::default(),
        )
        .cache_outcome();

    let template = event("e", &order("o-1", "u-1"));
    let mut events: Vec<Event> = (0..1000)
        .map(|i| Event {
            id: format!("evt-{i}"),
            ..template.clone()
        })
        .collect();
    // Every event gets a fresh id, as on a real stream: a repeated id is a redelivery, which
    // the dedupe record answers (and which costs a failed commit and a look-up).
    let mut next_id = 0_u64;
    let mut fresh_ids = move |events: &mut [Event]| {
        for e in events {
            use std::fmt::Write as _;
            e.id.clear();
            write!(e.id, "evt-{next_id:012}").expect("writing to a String");
            next_id += 1;
        }
    };

    let native = measure(
        "native (same logic, no wasm)",
        rounds,
        50_000 * scale,
        |n| {
            for _ in 0..n {
                black_box(
                    sluice_order_logic::process_order(black_box(&data)).expect("valid order"),
                );
            }
        },
    );

    let mut reused = worker(compile_stage.clone());
    let reused_row = measure(
        "wasm, reused instance (handle)",
        rounds,
        20_000 * scale,
        |n| one_by_one(&mut reused, &mut events, &mut fresh_ids, n),
    );

    let mut batched = worker(compile_stage);
    let batch_row = measure(
        "wasm, batch export (1000/call)",
        rounds,
        20_000 * scale,
        |n| in_batches(&mut batched, &mut events, &mut fresh_ids, n),
    );
    assert_eq!(batched.stats().batch_fallbacks, 0);

    let trivial = h.deploy("passthrough", guests::PASSTHROUGH, StageConfig::default());
    let mut trivial_single = worker(trivial.clone());
    let trivial_row = measure(
        "platform only: passthrough, reused",
        rounds,
        20_000 * scale,
        |n| one_by_one(&mut trivial_single, &mut events, &mut fresh_ids, n),
    );
    let mut trivial_batch = worker(trivial);
    let trivial_batch_row = measure(
        "platform only: passthrough, batch",
        rounds,
        20_000 * scale,
        |n| in_batches(&mut trivial_batch, &mut events, &mut fresh_ids, n),
    );

    let fresh_stage = h.deploy(
        "process-order-fresh",
        guests::PROCESS_ORDER,
        StageConfig {
            limits: Limits {
                fresh_instance_per_event: true,
                ..Limits::default()
            },
            ..StageConfig::default()
        },
    );
    let mut fresh = worker(fresh_stage);
    let fresh_row = measure(
        "wasm, fresh pooled instance per event",
        rounds,
        2_000 * scale,
        |n| one_by_one(&mut fresh, &mut events, &mut fresh_ids, n),
    );
    assert!(!selected(fresh_row.name) || fresh.stats().instantiations as usize >= 2_000 * scale);

    let base = native.median().as_secs_f64();
    println!(
        "\nstage_call: process-order on a {}-byte 3-item order, {rounds} rounds, medians",
        data.len()
    );
    println!(
        "{:<40} {:>12} {:>12} {:>10}",
        "variant", "per event", "events/s", "x native"
    );
    for row in [
        &native,
        &reused_row,
        &batch_row,
        &fresh_row,
        &trivial_row,
        &trivial_batch_row,
    ] {
        let m = row.median();
        println!(
            "{:<40} {:>10.0}ns {:>12.0} {:>9.2}x",
            row.name,
            m.as_secs_f64() * 1e9,
            1.0 / m.as_secs_f64(),
            m.as_secs_f64() / base
        );
    }
    let show = |o: CacheOutcome| match o {
        CacheOutcome::Compiled(d) => format!("compiled in {:.1} ms", d.as_secs_f64() * 1e3),
        CacheOutcome::Hit(d) => format!("loaded from cache in {:.2} ms", d.as_secs_f64() * 1e3),
    };
    println!(
        "\ndeploy: first {}; again {}",
        show(compiled),
        show(reloaded)
    );
}
