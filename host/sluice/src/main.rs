//! `sluice`: the one binary of the Sluice platform.
//!
//! It runs a stage component on one event (`sluice stage run`), the in-process demo of the
//! order pipeline (`sluice demo`), the long-lived host (`sluice up`), and Amazon States
//! Language workflows on stages (`sluice workflow`). Its client commands (`sluice stage
//! deploy|list|describe|delete|invoke|alias`, `sluice workflow
//! deploy|start|describe|list|history|stop|delete`, `sluice trigger`, `sluice publish`,
//! `sluice token`) call a running host's HTTP API; [`client`] documents their connection
//! settings and exit codes.

mod api;
mod client;
mod demo;
mod demo_nats;
mod metrics;
mod registry;
mod stages;
mod triggers;
mod up;
mod workflow;
mod workflows;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_model::Event;
use sluice_model::memory::MemoryBackend;
use sluice_model::state::{StateBackend, SystemClock};
use sluice_runtime::{EngineConfig, Runtime, StageConfig, Worker};

/// mimalloc, not glibc's allocator: the host's hot paths (the durable engine's JSON snapshots
/// and history, the stages' event buffers) allocate and free small blocks across threads,
/// where glibc's malloc spent ~40% of the executors' time in a profile of the order workflow.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "WebAssembly stages for event pipelines, exactly once"
)]
struct Cli {
    /// Where compiled stage artifacts are cached (default: $XDG_CACHE_HOME/sluice or ~/.cache/sluice).
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Most resident memory a component's compilation may use, in MiB (it runs in a child
    /// process, which is stopped past it).
    #[arg(long, global = true, default_value_t = 1024)]
    compile_memory_mib: usize,
    /// Longest a component's compilation may take, in milliseconds (the child is killed past it).
    #[arg(long, global = true, default_value_t = 60_000)]
    compile_timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with stage components.
    Stage {
        #[command(subcommand)]
        command: StageCommand,
    },
    /// Run the host: deploy the stages and start the triggers of a declaration, until
    /// SIGTERM or Ctrl-C.
    Up {
        /// The declaration file (JSON: stages, tables, triggers). It is recorded in the data
        /// directory; without it, the host runs the declaration recorded last.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where relative component paths start (default: the declaration file's folder).
        #[arg(long)]
        components: Option<PathBuf>,
        /// Directory for the state (`sluice.redb`), the registry, the admin token and the
        /// managed nats-server's store.
        #[arg(long, default_value = ".sluice")]
        data_dir: PathBuf,
        /// The NATS server (with JetStream). Without it, the host starts a nats-server of
        /// its own (found on PATH), storing in `<data-dir>/nats`, and stops it on exit.
        #[arg(long)]
        nats: Option<String>,
        /// Where the HTTP API listens (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:7420")]
        listen: std::net::SocketAddr,
    },
    /// Push sample orders through the order pipeline in-process and print what happened.
    Demo {
        /// Directory holding the pipeline's components (`validate_order.wasm`, ...).
        #[arg(long)]
        components: PathBuf,
        /// Keep state in `DIR/sluice.redb` (default: in memory). Run twice on the same
        /// directory to see every event answered from its dedupe record.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Run the pipeline as it really runs: start a nats-server and the host, publish the
        /// orders over NATS (needs `--data-dir`).
        #[arg(long, requires = "data_dir")]
        nats: bool,
    },
    /// Publish an event to JetStream through a running host's API.
    Publish(client::PublishArgs),
    /// Create, list and revoke a running host's bearer tokens.
    Token {
        #[command(subcommand)]
        command: client::TokenCommand,
    },
    /// Add, list, describe and delete a running host's triggers (streams bound to stages or
    /// workflows).
    Trigger {
        #[command(subcommand)]
        command: client::TriggerCommand,
    },
    /// Amazon States Language workflows: validate a definition, run one execution on stage
    /// components, run a conformance corpus; deploy, start and follow them on a running host.
    Workflow {
        #[command(subcommand)]
        command: workflow::WorkflowCommand,
    },
    /// Internal: the compiler child (a component on stdin, its compiled artifact on stdout).
    #[command(name = COMPILER_SUBCOMMAND, hide = true)]
    CompileComponent {
        /// The parent's engine configuration, as JSON.
        engine_config: String,
    },
}

/// The hidden subcommand under which this binary compiles components for its own host.
const COMPILER_SUBCOMMAND: &str = "__compile-component";

#[derive(Subcommand)]
enum StageCommand {
    /// Run a component on one event and print its output or its named error.
    Run {
        /// The stage component (`.wasm`, built for wasm32-wasip2).
        file: PathBuf,
        /// The event as JSON: `{"id": "...", "type": "...", "data": {...}}`.
        #[arg(long)]
        event: PathBuf,
        /// Stage configuration as JSON (limits and grants); default: default limits, no grants.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The commands that call a running host's API.
    #[command(flatten)]
    Remote(client::StageCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::CompileComponent { engine_config } = &cli.command {
        return ExitCode::from(sluice_runtime::compile::child_main(engine_config));
    }
    // Guest output is the point of `stage run`; in the demos it would drown the results.
    let default_filter = match cli.command {
        Command::Demo { .. } => "warn",
        _ => "warn,sluice::guest=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("sluice")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Validating needs no engine.
    if let Command::Workflow {
        command: workflow::WorkflowCommand::Validate { file },
    } = &cli.command
    {
        return workflow::validate(file);
    }
    // Nor do the API's client commands: the host they call runs the stages.
    let command = match cli.command {
        Command::Stage {
            command: StageCommand::Remote(c),
        } => return Ok(c.run()),
        Command::Publish(p) => return Ok(p.run()),
        Command::Token { command } => return Ok(command.run()),
        Command::Trigger { command } => return Ok(command.run()),
        Command::Workflow {
            command: workflow::WorkflowCommand::Remote(c),
        } => return Ok(c.run()),
        other => other,
    };
    let cache_dir = cli.cache_dir.unwrap_or_else(default_cache_dir);
    let mut engine = EngineConfig::new(cache_dir.join("artifacts"));
    // Compile in a child process of this binary, so a component's compilation is bounded
    // in memory and can be stopped at its time budget.
    engine.compiler = Some(sluice_runtime::CompilerCommand {
        program: std::env::current_exe().context("finding this executable")?,
        args: vec![COMPILER_SUBCOMMAND.to_owned()],
    });
    engine.max_compile_memory_bytes = cli.compile_memory_mib.saturating_mul(1 << 20);
    engine.compile_timeout = std::time::Duration::from_millis(cli.compile_timeout_ms);
    let runtime = Runtime::new(&engine)?;
    match command {
        Command::Stage {
            command:
                StageCommand::Run {
                    file,
                    event,
                    config,
                },
        } => stage_run(&runtime, &file, &event, config.as_deref()),
        Command::Up {
            config,
            components,
            data_dir,
            nats,
            listen,
        } => up::run(
            &runtime,
            config.as_deref(),
            components.as_deref(),
            &data_dir,
            (nats.as_deref(), listen),
        ),
        Command::Demo {
            components,
            data_dir,
            nats: true,
        } => demo_nats::run(
            &runtime,
            &components,
            data_dir.as_deref().unwrap_or(std::path::Path::new(".")),
        ),
        Command::Demo {
            components,
            data_dir,
            nats: false,
        } => demo::run(&runtime, &components, data_dir.as_deref()),
        Command::Workflow { command } => workflow::run(&runtime, command),
        Command::CompileComponent { .. } => unreachable!("handled in main"),
        Command::Stage {
            command: StageCommand::Remote(_),
        }
        | Command::Publish(_)
        | Command::Token { .. }
        | Command::Trigger { .. } => unreachable!("handled above"),
    }
}

fn stage_run(
    runtime: &Runtime,
    file: &std::path::Path,
    event: &std::path::Path,
    config: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let event: Event = serde_json::from_slice(
        &std::fs::read(event).with_context(|| format!("reading {}", event.display()))?,
    )
    .with_context(|| format!("parsing the event in {}", event.display()))?;
    let config: StageConfig = match config {
        Some(p) => serde_json::from_slice(&std::fs::read(p)?)
            .with_context(|| format!("parsing the stage configuration in {}", p.display()))?,
        None => StageConfig::default(),
    };
    let name = file
        .file_stem()
        .map_or_else(|| "stage".into(), |s| s.to_string_lossy().into_owned());
    let backend = MemoryBackend::new(config.grants.tables.clone(), Arc::new(SystemClock));
    let stage = runtime.deploy(&name, &bytes, config)?;
    let mut worker = Worker::new(stage, backend.session());
    let inv = worker.invoke(&event);
    for e in &inv.emitted {
        eprintln!(
            "emitted to {}: {}",
            e.subject,
            String::from_utf8_lossy(&e.data)
        );
    }
    match inv.outcome {
        Ok(out) => {
            match serde_json::from_slice::<serde_json::Value>(&out) {
                Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
                Err(_) => println!("{}", String::from_utf8_lossy(&out)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"error": e.name, "cause": e.cause, "retryable": e.retryable})
            );
            Ok(ExitCode::from(1))
        }
    }
}
