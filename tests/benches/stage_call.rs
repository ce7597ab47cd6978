//! Per-event cost of one call through the stage world, against the same logic compiled
//! natively, measured in the same run.
//!
//! Run: `cargo bench -p sluice-tests --bench stage_call` (add `-- --quick` for a short run).
//! Prints a table of medians over several rounds and ratios against native; every round
//! times each row once, native first, and the ratios are taken per round. The stage is
//! `process-order` (parse a 3-item order with serde_json, compute totals, serialize); the
//! native baseline calls the very same `sluice-order-logic` function the guest calls.
//!
//! The workers run over [`NullSession`], a state session that keeps nothing: these stages
//! touch no state, and what a call through the stage world costs should not include a state
//! store's bookkeeping (the store's commit has its own benchmark, and the pipeline benchmark
//! measures everything together). Every event has a fresh id; a repeated one would be a
//! redelivery.
//!
//! The `wasm logic alone` row runs the order logic 1000 times inside one call of the
//! `order-logic-loop` guest: the cost of the logic compiled to wasm, without the stage
//! boundary, which no host-side change can go below.

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
fn one_by_one(w: &mut Worker, events: &mut [Event], n: usize) {
    for i in 0..n {
        let e = &mut events[i % events.len()];
        fresh_ids(std::slice::from_mut(e));
        let inv = w.invoke(e);
        assert!(inv.outcome.is_ok() && inv.replayed.is_none());
    }
}

/// Run `n` events through `w` in `invoke_batch` calls of `events.len()`, with fresh ids.
fn in_batches(w: &mut Worker, events: &mut [Event], n: usize) {
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

/// A thread-local source of fresh event ids shared by all rows (ids never repeat in a run).
fn fresh_ids(events: &mut [Event]) {
    use std::cell::Cell;
    use std::fmt::Write as _;
    thread_local!(static NEXT: Cell<u64> = const { Cell::new(0) });
    for e in events {
        let n = NEXT.get();
        NEXT.set(n + 1);
        e.id.clear();
        write!(e.id, "evt-{n:012}").expect("writing to a String");
    }
}

/// One row of the table: `run(n)` handles `n` events; a round runs `events` of them.
struct Row<'a> {
    name: &'static str,
    events: usize,
    run: Box<dyn FnMut(usize) + 'a>,
    per_event: Vec<Duration>,
    ratio: Vec<f64>,
}

impl<'a> Row<'a> {
    fn new(name: &'static str, events: usize, run: impl FnMut(usize) + 'a) -> Self {
        Self {
            name,
            events,
            run: Box::new(run),
            per_event: Vec::new(),
            ratio: Vec::new(),
        }
    }

    fn time_one_round(&mut self) -> Duration {
        let start = Instant::now();
        (self.run)(self.events);
        start.elapsed() / u32::try_from(self.events).expect("event count fits u32")
    }
}

fn median<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// Run `rounds` rounds; each round times every row once, native first, so that every ratio
/// compares figures taken seconds apart (this machine's speed drifts over a run).
fn measure(rows: &mut [Row<'_>], rounds: usize) {
    for row in rows.iter_mut() {
        (row.run)(row.events.min(1000)); // warm up
    }
    for _ in 0..rounds {
        let mut native = None;
        for row in rows.iter_mut() {
            let t = row.time_one_round();
            let base = *native.get_or_insert(t);
            row.per_event.push(t);
            row.ratio.push(t.as_secs_f64() / base.as_secs_f64());
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, scale) = if quick { (3, 1) } else { (9, 2) };
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

    // Every event gets a fresh id, as on a real stream: a repeated id is a redelivery, which
    // the dedupe record answers (and which costs a failed commit and a look-up).
    let template = event("e", &order("o-1", "u-1"));
    let events = || -> Vec<Event> { vec![template.clone(); 1000] };

    let mut rows = Vec::new();
    rows.push(Row::new(
        "native (same logic, no wasm)",
        50_000 * scale,
        |n| {
            for _ in 0..n {
                black_box(
                    sluice_order_logic::process_order(black_box(&data)).expect("valid order"),
                );
            }
        },
    ));

    let mut reused = worker(compile_stage.clone());
    let mut reused_events = events();
    rows.push(Row::new(
        "wasm, reused instance (handle)",
        20_000 * scale,
        move |n| one_by_one(&mut reused, &mut reused_events, n),
    ));

    let mut batched = worker(compile_stage);
    let mut batched_events = events();
    rows.push(Row::new(
        "wasm, batch export (1000/call)",
        20_000 * scale,
        move |n| {
            in_batches(&mut batched, &mut batched_events, n);
            assert_eq!(batched.stats().batch_fallbacks, 0);
        },
    ));

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
    let mut fresh_events = events();
    rows.push(Row::new(
        "wasm, fresh pooled instance per event",
        2_000 * scale,
        move |n| {
            let before = fresh.stats().instantiations;
            one_by_one(&mut fresh, &mut fresh_events, n);
            assert_eq!((fresh.stats().instantiations - before) as usize, n);
        },
    ));

    // The order logic alone in wasm: one call runs it LOOP times, so the boundary's cost
    // per repetition vanishes. What is left is the wasm code itself (Cranelift's code, 32-bit
    // words, the guest's allocator, deadline checks): the floor under the rows above.
    const LOOP: usize = 1000;
    let looped = h.deploy(
        "order-logic-loop",
        guests::ORDER_LOGIC_LOOP,
        StageConfig::default(),
    );
    let mut looper = worker(looped);
    let mut loop_event = Event {
        headers: vec![("repeat".to_owned(), LOOP.to_string())],
        ..template.clone()
    };
    let expected = sluice_order_logic::process_order(&data).expect("valid order");
    rows.push(Row::new(
        "wasm logic alone (1000 runs in 1 call)",
        20_000 * scale,
        move |n| {
            for _ in 0..n.div_ceil(LOOP) {
                fresh_ids(std::slice::from_mut(&mut loop_event));
                let inv = looper.invoke(&loop_event);
                assert_eq!(inv.outcome.as_deref().ok(), Some(expected.as_slice()));
            }
        },
    ));

    let trivial = h.deploy("passthrough", guests::PASSTHROUGH, StageConfig::default());
    let mut trivial_single = worker(trivial.clone());
    let mut trivial_events = events();
    rows.push(Row::new(
        "platform only: passthrough, reused",
        20_000 * scale,
        move |n| one_by_one(&mut trivial_single, &mut trivial_events, n),
    ));
    let mut trivial_batch = worker(trivial);
    let mut trivial_batch_events = events();
    rows.push(Row::new(
        "platform only: passthrough, batch",
        20_000 * scale,
        move |n| in_batches(&mut trivial_batch, &mut trivial_batch_events, n),
    ));

    rows.retain(|r| selected(r.name));
    measure(&mut rows, rounds);

    println!(
        "\nstage_call: process-order on a {}-byte 3-item order, {rounds} rounds, medians \
         (ratios taken per round)",
        data.len()
    );
    println!(
        "{:<40} {:>12} {:>12} {:>10}",
        "variant", "per event", "events/s", "x native"
    );
    for row in &rows {
        let m = median(&row.per_event);
        println!(
            "{:<40} {:>10.0}ns {:>12.0} {:>9.2}x",
            row.name,
            m.as_secs_f64() * 1e9,
            1.0 / m.as_secs_f64(),
            median(&row.ratio)
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
