//! An in-memory driver: runs an execution to its end, its Tasks on a small thread pool,
//! its timers on a clock that either sleeps or (in tests) jumps.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use crate::definition::Machine;
use crate::env::{Clock, NoObjects, Objects, Random, TaskRequest, TaskRunner};
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
            std::thread::sleep(Duration::from_millis(
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
///
/// Tasks run on [`TASK_THREADS`] threads for the whole execution. The machine is advanced as
/// soon as any Task returns, so a Map's next iteration starts when one ends rather than when
/// the slowest of a round does.
pub fn run(
    def: &Machine,
    workflow: &str,
    name: &str,
    input: Value,
    tasks: &dyn TaskRunner,
    clock: &dyn Timer,
    random: &dyn Random,
) -> Execution {
    run_with(
        def,
        workflow,
        name,
        input,
        &World {
            tasks,
            clock,
            random,
            objects: &NoObjects,
        },
    )
}

/// Everything an in-memory execution reaches: its Tasks, time, randomness, objects.
#[derive(Clone, Copy)]
pub struct World<'a> {
    /// Runs the Tasks.
    pub tasks: &'a dyn TaskRunner,
    /// Time, and waiting for it.
    pub clock: &'a dyn Timer,
    /// Randomness.
    pub random: &'a dyn Random,
    /// What ItemReaders read.
    pub objects: &'a dyn Objects,
}

/// [`run`], with the objects a Map's ItemReader reads.
pub fn run_with(
    def: &Machine,
    workflow: &str,
    name: &str,
    input: Value,
    world: &World<'_>,
) -> Execution {
    let World {
        tasks,
        clock,
        random,
        objects,
    } = *world;
    let env = Env {
        clock: as_clock(clock),
        random,
        objects,
    };
    let mut exec = Execution::start(def, workflow, name, input, &env);
    let (to_workers, work) = mpsc::channel::<TaskRequest>();
    let work = Mutex::new(work);
    let (done, results) = mpsc::channel::<(String, Result<Value, StatesError>)>();
    std::thread::scope(|s| {
        for _ in 0..TASK_THREADS {
            let done = done.clone();
            let work = &work;
            s.spawn(move || {
                loop {
                    // The lock is held only to take the next request.
                    let next = work.lock().ok().and_then(|rx| rx.recv().ok());
                    let Some(req) = next else { break };
                    let out = tasks.run(&req);
                    if done.send((req.id, out)).is_err() {
                        break;
                    }
                }
            });
        }
        let mut outstanding = 0_usize;
        loop {
            for r in exec.advance(def, &env) {
                if to_workers.send(r).is_ok() {
                    outstanding += 1;
                }
            }
            if exec.is_done() {
                break;
            }
            let due = exec.next_due_ms();
            if outstanding > 0 {
                let got = match due {
                    None => results
                        .recv()
                        .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                    Some(due) => {
                        let wait = u64::try_from(due.saturating_sub(clock.now_ms())).unwrap_or(0);
                        results.recv_timeout(Duration::from_millis(wait))
                    }
                };
                match got {
                    Ok((id, result)) => {
                        outstanding -= 1;
                        exec.deliver(&id, result);
                        while let Ok((id, result)) = results.try_recv() {
                            outstanding -= 1;
                            exec.deliver(&id, result);
                        }
                    }
                    // A timer came due first: let it fire.
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some(due) = due {
                            clock.wait_until(due);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                continue;
            }
            match due {
                Some(due) => clock.wait_until(due),
                // Nothing runnable, no Task out, no timer: cannot happen for a validated
                // definition; stop rather than spin.
                None => break,
            }
        }
        // Closing the queue ends the workers; results still in flight are dropped with it.
        drop(to_workers);
    });
    exec
}

fn as_clock(t: &dyn Timer) -> &dyn Clock {
    t
}
