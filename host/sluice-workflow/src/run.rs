//! An in-memory driver: runs an execution to its end, its Tasks on a small thread pool,
//! its timers on a clock that either sleeps or (in tests) jumps.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::Value;

use crate::definition::Machine;
use crate::env::{Clock, Random, TaskRequest, TaskRunner};
use crate::error::StatesError;
use crate::machine::{Env, Execution};

/// A clock the driver can wait on.
pub trait Timer: Clock {
    /// Return once `due_ms` has come.
    fn wait_until(&self, due_ms: i64);
}

/// The wall clock; waiting sleeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

impl Timer for WallClock {
    fn wait_until(&self, due_ms: i64) {
        let now = self.now_ms();
        if due_ms > now {
            std::thread::sleep(std::time::Duration::from_millis(
                u64::try_from(due_ms - now).unwrap_or(0),
            ));
        }
    }
}

/// A clock that only moves when waited on: Wait states and retry delays take no time.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Timer for ManualClock {
    fn wait_until(&self, due_ms: i64) {
        self.0.fetch_max(due_ms, Ordering::SeqCst);
    }
}

/// How many Tasks the driver runs at once.
pub const TASK_THREADS: usize = 8;

/// Run an execution of `def` to its end and return it (status, output or error, history).
pub fn run(
    def: &Machine,
    workflow: &str,
    name: &str,
    input: Value,
    tasks: &dyn TaskRunner,
    clock: &dyn Timer,
    random: &dyn Random,
) -> Execution {
    let env = Env {
        clock: as_clock(clock),
        random,
    };
    let mut exec = Execution::start(def, workflow, name, input, &env);
    loop {
        let requests = exec.advance(def, &env);
        if exec.is_done() {
            break;
        }
        if !requests.is_empty() {
            for (id, result) in run_tasks(tasks, requests) {
                exec.deliver(&id, result);
            }
            continue;
        }
        match exec.next_due_ms() {
            Some(due) => clock.wait_until(due),
            // Nothing runnable, no Task out, no timer: cannot happen for a validated
            // definition; stop rather than spin.
            None => break,
        }
    }
    exec
}

fn as_clock(t: &dyn Timer) -> &dyn Clock {
    t
}

/// Run `requests` on up to [`TASK_THREADS`] threads; results in any order.
fn run_tasks(
    tasks: &dyn TaskRunner,
    requests: Vec<TaskRequest>,
) -> Vec<(String, Result<Value, StatesError>)> {
    if requests.len() == 1 {
        let r = &requests[0];
        return vec![(r.id.clone(), tasks.run(r))];
    }
    let queue = Mutex::new(requests.into_iter().collect::<VecDeque<_>>());
    let results = Mutex::new(Vec::new());
    let threads = TASK_THREADS.min(queue.lock().map_or(1, |q| q.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(r) = next else { break };
                    let out = tasks.run(&r);
                    if let Ok(mut v) = results.lock() {
                        v.push((r.id, out));
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_default()
}
