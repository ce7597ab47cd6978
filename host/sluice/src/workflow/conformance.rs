//! `sluice workflow conformance`: the recorded Step Functions cases of a corpus directory,
//! run on real stages, each compared with what AWS produced.
//!
//! A case's Lambda functions are LocalStack test handlers; [`LAMBDA_STAGES`] names the guest
//! that behaves as each one does (its visible result: output, error and cause).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;
use sluice_workflow::conformance::{Case, CorpusObjects, Verdict, check, load, substitute};
use sluice_workflow::env::{TaskRequest, TaskRunner};
use sluice_workflow::error::StatesError;

use super::tasks::StageTasks;

/// The objects the corpus's ItemReader cases read (their tests uploaded them to S3 first),
/// copied from those tests; built in so the command needs nothing beside the corpus.
const ITEM_READER_OBJECTS: &str =
    include_str!("../../../../workflows/conformance/item-reader-objects.json");

/// LocalStack Lambda handler (file name of its source) → the stage that mimics it.
const LAMBDA_STAGES: &[(&str, &str)] = &[
    ("id_function.py", "passthrough"),
    ("raise_exception.py", "lambda-raise"),
    ("wait_60_seconds.py", "lambda-sleep"),
    ("return_bytes_str.py", "lambda-return-bytes"),
];

/// The stage standing in for the handler at repository path `source`, if one does and the
/// components hold it.
fn stage_for(source: &str, tasks: &StageTasks) -> Option<String> {
    let file = source.rsplit('/').next().unwrap_or(source);
    LAMBDA_STAGES
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, s)| (*s).to_owned())
        .filter(|s| tasks.knows(s))
}

/// The runner of one case: the shared stages, with the case's own event ids and stage names.
struct CaseTasks<'a> {
    inner: &'a StageTasks,
    /// Every case's execution is named alike, so its Task ids would meet the dedupe records of
    /// an earlier case's Tasks: each case prefixes its own.
    prefix: String,
    /// `lambda:invoke` cases name their function by a `FunctionName` in the input or the
    /// Parameters ("lambda_function_name"), which `substitute` cannot see as an ARN the test
    /// created: any stage the case names that the components do not hold is taken to be its
    /// (first) Lambda function.
    fallback: Option<String>,
}

impl TaskRunner for CaseTasks<'_> {
    fn run(&self, req: &TaskRequest) -> Result<Value, StatesError> {
        let Some(stage) = req.stage() else {
            return self.inner.run(req);
        };
        let stage = match &self.fallback {
            Some(f) if !self.inner.knows(stage) => f.as_str(),
            _ => stage,
        };
        let id = format!("{}{}", self.prefix, req.id);
        self.inner.run_event(
            stage,
            &id,
            &req.input,
            req.timeout_seconds,
            req.heartbeat_seconds,
        )
    }
}

/// Run every case in `dir`; print each failure and skip, then the counts.
pub(crate) fn run(dir: &Path, tasks: &StageTasks) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let cases = load(dir).with_context(|| format!("reading the cases in {}", dir.display()))?;
    let objects =
        CorpusObjects::parse(ITEM_READER_OBJECTS).context("the built-in ItemReader objects")?;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (i, case) in cases.iter().enumerate() {
        match verdict(i, case, tasks, &objects) {
            Verdict::Passed => passed += 1,
            Verdict::Failed(d) => {
                failed += 1;
                println!("FAIL {}: {d}", case.name);
            }
            Verdict::Skipped(r) => {
                skipped += 1;
                println!("SKIP {}: {r}", case.name);
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    eprintln!(
        "{} cases in {:.2} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn verdict(i: usize, case: &Case, tasks: &StageTasks, objects: &CorpusObjects) -> Verdict {
    let def = match substitute(case, &|s| stage_for(s, tasks)) {
        Ok(d) => d,
        Err(e) => return Verdict::Skipped(e),
    };
    let source = case
        .task_behaviour
        .as_ref()
        .and_then(|t| t.lambda_sources.first());
    let fallback = match source {
        Some(s) => match stage_for(s, tasks) {
            Some(stage) => Some(stage),
            None => return Verdict::Skipped(format!("no stage behaves like {s}")),
        },
        None => None,
    };
    let runner = CaseTasks {
        inner: tasks,
        prefix: format!("case-{i}/"),
        fallback,
    };
    check(case, &def, &runner, &objects.for_case(case))
}
