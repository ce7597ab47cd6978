//! Shared helpers: an in-memory fake of the Task runner (the real stage runner is tested
//! elsewhere), parsing and running definitions on a manual clock.

#![allow(dead_code, reason = "each module uses its own part of the helpers")]

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use sluice_workflow::definition::{Machine, parse};
use sluice_workflow::env::{SplitMix, Target, TaskRequest, TaskRunner};
use sluice_workflow::error::StatesError;
use sluice_workflow::machine::{Execution, Status};
use sluice_workflow::run::{ManualClock, run};

/// The manual clock's start: 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000_000;

/// What a fake stage does.
#[derive(Debug, Clone)]
pub enum Stage {
    /// Returns its input.
    Identity,
    /// Returns this value.
    Fixed(Value),
    /// Fails with (error, cause) the first `n` calls, then returns its input.
    Flaky(String, String, u32),
    /// Fails with (error, cause) the first `n` calls, then returns the value.
    FlakyFixed(String, String, u32, Value),
    /// Always fails with (error, cause).
    Failing(String, String),
    /// Fails with (error, cause) when its input has `"fail": true`, else returns its input.
    FailIf(String, String),
}

/// A fake Task runner: stages by name (unknown names behave as [`Stage::Identity`]); every
/// call is recorded, in the order the runner saw them.
#[derive(Debug, Default)]
pub struct Fake {
    stages: HashMap<String, Stage>,
    calls: Mutex<Vec<TaskRequest>>,
    counts: Mutex<HashMap<String, u32>>,
}

impl Fake {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stage(mut self, name: &str, s: Stage) -> Self {
        self.stages.insert(name.to_owned(), s);
        self
    }

    pub fn fixed(self, name: &str, v: Value) -> Self {
        self.stage(name, Stage::Fixed(v))
    }

    pub fn flaky(self, name: &str, error: &str, cause: &str, n: u32) -> Self {
        self.stage(name, Stage::Flaky(error.into(), cause.into(), n))
    }

    pub fn failing(self, name: &str, error: &str, cause: &str) -> Self {
        self.stage(name, Stage::Failing(error.into(), cause.into()))
    }

    pub fn fail_if(self, name: &str, error: &str, cause: &str) -> Self {
        self.stage(name, Stage::FailIf(error.into(), cause.into()))
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<TaskRequest> {
        self.calls.lock().unwrap().clone()
    }

    /// The ids of every request so far.
    pub fn ids(&self) -> Vec<String> {
        self.calls().into_iter().map(|r| r.id).collect()
    }
}

impl TaskRunner for Fake {
    fn run(&self, req: &TaskRequest) -> Result<Value, StatesError> {
        self.calls.lock().unwrap().push(req.clone());
        // A publication "publishes" by answering its message ids, as the engine would.
        let stage = match &req.target {
            Target::Stage(s) => s.clone(),
            Target::Publish(m) => {
                return Ok((0..m.len())
                    .map(|n| Value::String(format!("{}/{n}", req.id)))
                    .collect());
            }
        };
        let n = {
            let mut c = self.counts.lock().unwrap();
            let e = c.entry(stage.clone()).or_insert(0);
            *e += 1;
            *e
        };
        match self.stages.get(&stage).unwrap_or(&Stage::Identity) {
            Stage::Identity => Ok(req.input.clone()),
            Stage::Fixed(v) => Ok(v.clone()),
            Stage::Flaky(e, c, times) if n <= *times => Err(StatesError::new(e, c)),
            Stage::Flaky(..) => Ok(req.input.clone()),
            Stage::FlakyFixed(e, c, times, _) if n <= *times => Err(StatesError::new(e, c)),
            Stage::FlakyFixed(.., v) => Ok(v.clone()),
            Stage::Failing(e, c) => Err(StatesError::new(e, c)),
            Stage::FailIf(e, c) if req.input.get("fail") == Some(&Value::Bool(true)) => {
                Err(StatesError::new(e, c))
            }
            Stage::FailIf(..) => Ok(req.input.clone()),
        }
    }
}

/// Parse a definition that must be valid.
pub fn machine(def: &Value) -> Machine {
    match parse(def) {
        Ok(m) => m,
        Err(e) => panic!("definition should be valid: {e}"),
    }
}

/// The Display strings of every problem of a definition that must be invalid.
pub fn problems(def: &Value) -> Vec<String> {
    match parse(def) {
        Ok(_) => panic!("definition should be invalid: {def}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Run `def` on `input` with `tasks` on a manual clock at [`T0`]; the execution and the clock's
/// time at its end.
pub fn run_on(def: &Value, input: Value, tasks: &Fake) -> (Execution, i64) {
    let m = machine(def);
    let clock = ManualClock::new(T0);
    let random = SplitMix::new(42);
    let e = run(&m, "wf", "exec", input, tasks, &clock, &random);
    use sluice_workflow::env::Clock;
    (e, clock.now_ms())
}

/// Run `def` on `input` with identity stages.
pub fn exec(def: &Value, input: Value) -> Execution {
    run_on(def, input, &Fake::new()).0
}

/// Run `def` on `input` with identity stages; it must succeed; its output.
pub fn output(def: &Value, input: Value) -> Value {
    let e = exec(def, input);
    succeeded(&e)
}

/// The output of a succeeded execution.
pub fn succeeded(e: &Execution) -> Value {
    assert_eq!(
        e.status,
        Status::Succeeded,
        "execution should succeed, error {:?}",
        e.error
    );
    e.output
        .clone()
        .expect("a succeeded execution has an output")
}

/// The (error, cause) of a failed execution.
pub fn failed(e: &Execution) -> (String, String) {
    assert_eq!(
        e.status,
        Status::Failed,
        "execution should fail, output {:?}",
        e.output
    );
    let err = e.error.clone().expect("a failed execution has an error");
    (err.error, err.cause)
}

/// The history's event types, in order.
pub fn event_types(e: &Execution) -> Vec<&str> {
    e.history.iter().map(|h| h.kind.as_str()).collect()
}

/// Timestamps (ms after [`T0`]) of the events of type `kind`.
pub fn times_of(e: &Execution, kind: &str) -> Vec<i64> {
    e.history
        .iter()
        .filter(|h| h.kind == kind)
        .map(|h| h.timestamp_ms - T0)
        .collect()
}
