//! In-memory state transitions per second of the ASL interpreter, with no stage behind it:
//! a chain of Pass states, the same chain with JSONPath processing on every state, and a
//! Map over 10,000 items. The baseline, measured in the same run, is what any interpreter
//! pays at least per state: one clone of the state's input (the machine keeps every
//! transition's input and output in its history).
//!
//! Run: `cargo bench -p sluice-workflow --bench engine` (`-- --rounds N`, default 5).

use std::time::Instant;

use serde_json::{Value, json};
use sluice_workflow::definition;
use sluice_workflow::env::{SplitMix, TaskRequest, TaskRunner};
use sluice_workflow::error::StatesError;
use sluice_workflow::run::{ManualClock, run};

struct NoTasks;
impl TaskRunner for NoTasks {
    fn run(&self, req: &TaskRequest) -> Result<Value, StatesError> {
        Ok(req.input.clone())
    }
}

fn chain(n: usize, processing: bool) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass"});
        if processing {
            s["Parameters"] = json!({"order.$": "$.order", "step.$": "States.MathAdd($.step, 1)"});
        }
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S0", "States": states})
}

fn map(items: usize) -> (Value, Value) {
    let def = json!({
        "StartAt": "M",
        "States": {"M": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 40,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": true}}},
            "End": true
        }}
    });
    let input = json!({"items": (0..items).map(|n| json!({"n": n})).collect::<Vec<_>>()});
    (def, input)
}

/// Median of `rounds` runs of `f`, in seconds, and what it returned (transitions).
fn median(rounds: usize, mut f: impl FnMut() -> u64) -> (f64, u64) {
    let mut times = Vec::with_capacity(rounds);
    let mut n = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        n = f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[rounds / 2], n)
}

fn execute(m: &definition::Machine, input: &Value) -> u64 {
    let clock = ManualClock::new(0);
    let e = run(
        m,
        "bench",
        "e",
        input.clone(),
        &NoTasks,
        &clock,
        &SplitMix::new(1),
    );
    assert!(e.output.is_some(), "{:?}", e.error);
    e.transitions()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    let input = json!({"order": {"id": "o-1", "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}], "total": 4200}, "step": 0});
    let (base, _) = median(rounds, || {
        let mut v = input.clone();
        for _ in 0..1000 {
            v = std::hint::black_box(v.clone());
        }
        1000
    });
    println!(
        "{:<44} {:>14} {:>10}",
        "case (median of rounds)", "transitions/s", "vs clone"
    );
    let per_clone = base / 1000.0;
    let row = |name: &str, secs: f64, n: u64| {
        let per = secs / n as f64;
        println!("{name:<44} {:>14.0} {:>9.1}x", 1.0 / per, per / per_clone);
    };
    println!(
        "{:<44} {:>14.0} {:>10}",
        "baseline: clone the input once",
        1.0 / per_clone,
        "1.0x"
    );
    let parse = |v: &Value| definition::parse(v).expect("a valid definition");
    let plain = parse(&chain(1000, false));
    let (t, n) = median(rounds, || execute(&plain, &input));
    row("Pass chain, 1000 states", t, n);
    let processed = parse(&chain(1000, true));
    let (t, n) = median(rounds, || execute(&processed, &input));
    row("Pass chain + Parameters/intrinsic, 1000", t, n);
    let (mdef, minput) = map(10_000);
    let mdef = parse(&mdef);
    let (t, n) = median(rounds, || execute(&mdef, &minput));
    row("Map over 10,000 items (Pass processor)", t, n);
    println!("Map over 10,000 items: {:.0} ms per execution", t * 1000.0);
    let mut tdef: Value = serde_json::to_value(map(10_000).0).unwrap();
    tdef["States"]["M"]["ItemProcessor"]["States"]["P"] =
        json!({"Type": "Task", "Resource": "identity", "End": true});
    let tdef = parse(&tdef);
    let (t, n) = median(rounds, || execute(&tdef, &minput));
    row("Map over 10,000 items, a Task each (in-memory)", t, n);
    let big = chain(1000, true);
    let (t, _) = median(rounds, || {
        std::hint::black_box(parse(&big));
        1
    });
    println!(
        "parsing and validating the 1000-state chain: {:.2} ms",
        t * 1000.0
    );
}
