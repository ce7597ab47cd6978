//! Compiling a component within a time and a memory budget.
//!
//! Cranelift cannot be interrupted, and its memory grows with the size of the functions it
//! compiles: one crafted component with a huge function could hold a deploy for minutes and
//! take gigabytes of the host's memory. So a host compiles in a child process (the `sluice`
//! binary runs [`child_main`] under a hidden subcommand, given by
//! [`EngineConfig::compiler`]): the child watches its own resident memory and exits with
//! [`EXIT_OVER_MEMORY`] past the budget, the parent kills it past the time budget, and what
//! comes back on success is the serialized artifact, which the parent loads and caches as if
//! it had compiled it. Without a compiler command (library users, tests of this crate) the
//! compilation runs on a thread of this process: the time budget then only bounds the wait.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Engine, Error};

use crate::engine::{CompilerCommand, EngineConfig, wasmtime_config};

/// The child's exit code when it passed its memory budget.
pub const EXIT_OVER_MEMORY: u8 = 3;

/// How often the child looks at its resident memory. Cranelift allocates in bursts of a few
/// megabytes at most between two looks at this rate.
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// Why a compilation did not produce a component.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    /// The compilation took longer than its budget.
    #[error("compiling the component took longer than the budget of {0:?}")]
    Time(Duration),
    /// The compiler's resident memory passed its budget.
    #[error(
        "compiling the component needed more memory than the budget of {budget} bytes: {detail}"
    )]
    Memory {
        /// The budget.
        budget: usize,
        /// What the compiler saw.
        detail: String,
    },
    /// The component is invalid (or the compiler failed otherwise).
    #[error("{0}")]
    Invalid(String),
    /// The compiler child could not be run.
    #[error("running the compiler child: {0}")]
    Io(#[from] std::io::Error),
}

/// Compile `bytes` for `engine` within the budgets of `config`.
pub(crate) fn compile(
    engine: &Engine,
    config: &EngineConfig,
    bytes: &[u8],
) -> Result<Component, CompileError> {
    match &config.compiler {
        Some(command) => in_child(engine, config, command, bytes),
        None => on_thread(engine, bytes, config.compile_timeout),
    }
}

/// Compile on a thread of this process, waiting at most `budget`; a compilation past it runs
/// on in the background and its result is dropped.
fn on_thread(engine: &Engine, bytes: &[u8], budget: Duration) -> Result<Component, CompileError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (engine, bytes) = (engine.clone(), bytes.to_vec());
    std::thread::Builder::new()
        .name("sluice-compile".into())
        .spawn(move || {
            let _ = tx.send(Component::new(&engine, &bytes));
        })?;
    match rx.recv_timeout(budget) {
        Ok(result) => result.map_err(|e| CompileError::Invalid(format!("{e:#}"))),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(CompileError::Time(budget)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(CompileError::Invalid(
            "the compiler thread ended without a result (it panicked)".into(),
        )),
    }
}

fn in_child(
    engine: &Engine,
    config: &EngineConfig,
    command: &CompilerCommand,
    bytes: &[u8],
) -> Result<Component, CompileError> {
    let engine_config = serde_json::to_string(config)
        .map_err(|e| CompileError::Invalid(format!("encoding the engine configuration: {e}")))?;
    let mut child = Command::new(&command.program)
        .args(&command.args)
        .arg(engine_config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Feed and drain on threads of their own, so neither pipe can fill up and stall both.
    let mut stdin = child.stdin.take().expect("piped");
    let input = bytes.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + config.compile_timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            // Unlike a thread, a process can be stopped: the budget frees the CPU too.
            let _ = child.kill();
            let _ = child.wait();
            return Err(CompileError::Time(config.compile_timeout));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // A child that exits before reading everything (over memory, say) breaks the pipe: its
    // status says why, not the feeder.
    let _ = feeder.join();
    let artifact = reader
        .join()
        .map_err(|_| CompileError::Invalid("reading the compiler's output panicked".into()))??;
    let messages = errors.join().unwrap_or_default();
    let messages = messages.trim();
    match status.code() {
        Some(0) => {}
        Some(code) if code == i32::from(EXIT_OVER_MEMORY) => {
            return Err(CompileError::Memory {
                budget: config.max_compile_memory_bytes,
                detail: messages.to_owned(),
            });
        }
        _ => return Err(CompileError::Invalid(format!("{messages} ({status})"))),
    }
    // SAFETY: `deserialize` trusts the bytes to be an artifact of `Engine::precompile_component`
    // for a compatible engine. They come from our own compiler child, which built its engine
    // from this engine's configuration, over a pipe only it writes; wasmtime checks the
    // header and the engine's compatibility again.
    #[allow(
        unsafe_code,
        reason = "loading the artifact our own child compiled, see SAFETY"
    )]
    let component = unsafe { Component::deserialize(engine, &artifact) };
    component.map_err(|e| CompileError::Invalid(format!("loading the compiled artifact: {e:#}")))
}

/// The compiler child: read a component from stdin, compile it for an engine built from
/// `engine_config` (JSON of the parent's [`EngineConfig`]) and write the serialized artifact
/// to stdout. Exits with [`EXIT_OVER_MEMORY`] as soon as its resident memory passes the
/// configuration's `max_compile_memory_bytes`, 1 on any other failure, 0 on success.
pub fn child_main(engine_config: &str) -> u8 {
    let config: EngineConfig = match serde_json::from_str(engine_config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice compiler: bad engine configuration: {e}");
            return 1;
        }
    };
    let budget = config.max_compile_memory_bytes;
    std::thread::Builder::new()
        .name("sluice-compile-watch".into())
        .spawn(move || {
            loop {
                if let Some(rss) = resident_bytes().filter(|&rss| rss > budget) {
                    eprintln!(
                        "the compiler reached {rss} bytes resident, past its budget of {budget}"
                    );
                    std::process::exit(i32::from(EXIT_OVER_MEMORY));
                }
                std::thread::sleep(WATCH_EVERY);
            }
        })
        .expect("spawning the memory watch");
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("sluice compiler: reading the component: {e}");
        return 1;
    }
    let artifact = Engine::new(&wasmtime_config(&config))
        .and_then(|engine| engine.precompile_component(&bytes))
        .map_err(|e: Error| format!("{e:#}"));
    match artifact {
        Ok(artifact) => match std::io::stdout().write_all(&artifact) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("sluice compiler: writing the artifact: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// This process's resident memory, from `/proc/self/status` (Linux).
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<usize>()
        .ok()?;
    Some(kib * 1024)
}
