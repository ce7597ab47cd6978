//! `sluice workflow`: Amazon States Language workflows on Sluice stages, in-process.
//!
//! - `validate DEF.json`: every problem of a definition, or `OK`;
//! - `run DEF.json --input IN.json --components DIR`: one execution on the wall clock, its
//!   Tasks run on real stage components ([`tasks::StageTasks`]), its ItemReaders reading
//!   files of `--objects DIR` ([`objects::DirObjects`]);
//! - `conformance DIR --components DIR`: a corpus of recorded AWS cases ([`conformance`]);
//!
//! and, flattened into the same group, the commands that call a running host's API
//! (`deploy`, `start`, `describe`, `list`, `history`, `stop`, `delete`:
//! [`crate::client::WorkflowCommand`]).

mod conformance;
mod history;
mod objects;
pub(crate) mod tasks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;
use sluice_runtime::Runtime;
use sluice_workflow::env::{NoObjects, Objects, SplitMix, uuid_v4};
use sluice_workflow::machine::Status;
use sluice_workflow::run::{WallClock, World};

use tasks::StageTasks;

/// The `workflow` subcommands.
#[derive(Subcommand)]
pub(crate) enum WorkflowCommand {
    /// Check a definition: prints `OK`, or each problem on its own line (exit 1).
    Validate {
        /// The definition (ASL JSON).
        file: PathBuf,
    },
    /// Run one execution in-process and print its output, or its error and cause (exit 1).
    Run {
        /// The definition (ASL JSON).
        file: PathBuf,
        /// The execution's input (JSON).
        #[arg(long)]
        input: PathBuf,
        /// Directory of stage components: a Task's stage is a component's file stem
        /// (`validate_order.wasm` is `validate_order` and `validate-order`), or a stage of
        /// `--config`, whose component paths start here.
        #[arg(long)]
        components: PathBuf,
        /// A declaration file (the `sluice up` format) naming the stages, their components,
        /// limits and grants; its triggers are ignored.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print every history event, one JSON object a line, before the result.
        #[arg(long)]
        history: bool,
        /// Directory of objects a Map's ItemReader reads (`arn:aws:states:::s3:getObject`):
        /// the object KEY of bucket BUCKET is the file DIR/BUCKET/KEY.
        #[arg(long)]
        objects: Option<PathBuf>,
    },
    /// Run every recorded case of a corpus directory and count those that behave as AWS did.
    Conformance {
        /// Directory of case files (`*.json`).
        dir: PathBuf,
        /// Directory of stage components standing in for the cases' Lambda functions.
        #[arg(long)]
        components: PathBuf,
    },
    /// The commands that call a running host's API.
    #[command(flatten)]
    Remote(crate::client::WorkflowCommand),
}

/// Run a `workflow` subcommand.
pub(crate) fn run(runtime: &Runtime, command: WorkflowCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkflowCommand::Validate { file } => validate(&file),
        WorkflowCommand::Run {
            file,
            input,
            components,
            config,
            history,
            objects,
        } => {
            let tasks = match &config {
                Some(c) => StageTasks::from_declaration(runtime, c, Some(&components))?,
                None => StageTasks::from_dir(runtime, &components)?,
            };
            let objects: Box<dyn Objects> = match &objects {
                Some(dir) => Box::new(objects::DirObjects::new(dir)),
                None => Box::new(NoObjects),
            };
            execute(&file, &input, &tasks, objects.as_ref(), history)
        }
        WorkflowCommand::Conformance { dir, components } => {
            let tasks = StageTasks::from_dir(runtime, &components)?;
            conformance::run(&dir, &tasks)
        }
        // main dispatches it before making the engine it does not need; this is for
        // completeness.
        WorkflowCommand::Remote(c) => Ok(c.run()),
    }
}

/// The definition in `file` as JSON; a file that is not JSON is reported as AWS reports it.
fn read_json(file: &Path) -> anyhow::Result<Result<Value, String>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("INVALID_JSON_DESCRIPTION: {e}")))
}

/// `workflow validate`.
pub(crate) fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    let def = match read_json(file)? {
        Ok(d) => d,
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    match sluice_workflow::definition::parse(&def) {
        Ok(_) => {
            println!("OK");
            Ok(ExitCode::SUCCESS)
        }
        Err(invalid) => {
            for p in &invalid.0 {
                println!("{p}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn execute(
    file: &Path,
    input: &Path,
    tasks: &StageTasks,
    objects: &dyn Objects,
    history: bool,
) -> anyhow::Result<ExitCode> {
    let def = read_json(file)?.map_err(anyhow::Error::msg)?;
    let machine = sluice_workflow::definition::parse(&def)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let input_text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let input: Value = serde_json::from_str(&input_text)
        .with_context(|| format!("parsing the input {}", input.display()))?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let random = SplitMix::new(seed);
    let workflow = file
        .file_stem()
        .map_or_else(|| "workflow".into(), |s| s.to_string_lossy().into_owned());
    // Task ids start with the execution's name: a fresh one per run keeps them unique.
    let name = uuid_v4(&random);
    let exec = sluice_workflow::run::run_with(
        &machine,
        &workflow,
        &name,
        input,
        &World {
            tasks,
            clock: &WallClock,
            random: &random,
            objects,
        },
    );
    if history {
        for e in &exec.history {
            println!("{}", history::event_json(e));
        }
    }
    match exec.status {
        Status::Succeeded => {
            println!("{}", exec.output.unwrap_or(Value::Null));
            Ok(ExitCode::SUCCESS)
        }
        status => {
            let (error, cause) = exec
                .error
                .map(|e| (e.error, e.cause))
                .unwrap_or_else(|| (format!("{status:?}"), String::new()));
            println!("error: {error}");
            println!("cause: {cause}");
            Ok(ExitCode::from(1))
        }
    }
}
