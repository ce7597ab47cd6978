//! `sluice workflow deploy|start|describe|list|history|stop|delete`: Amazon States Language
//! workflows and their executions on a running host, through `/v1/workflows`.
//!
//! They sit beside the local `workflow validate|run|conformance` (flattened into the same
//! group, as the remote stage verbs sit beside `stage run`). An execution is named by its
//! workflow and its own name (`order-pipeline 1b2c...`); the API's ids are
//! `<workflow>/<name>`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_durable::{Description, ExecutionType};
use sluice_workflow::machine::{HistoryEvent, Status};

use super::human::{compact, duration, table, utc, utc_millis};
use super::progress::Progress;
use super::{Client, Data, Exit, Failure, Remote};

/// The statuses an execution can have, as the API names them.
const STATUSES: [&str; 5] = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
/// The largest page the API gives: listings follow `next` with as few requests as it takes.
const PAGE: &str = "1000";
/// How often `start --wait` asks at first, and at most: a short execution is seen to end at
/// once, a long one is not polled more than once a second.
const POLL_FIRST: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_secs(1);

/// The workflow commands that call a host's API.
#[derive(Subcommand)]
pub(crate) enum WorkflowCommand {
    /// Create or replace a workflow from its definition; every problem of an invalid one is
    /// printed (exit 1).
    Deploy {
        /// The workflow's name.
        name: String,
        /// The definition (ASL JSON).
        file: PathBuf,
        /// STANDARD (every step persisted, history kept) or EXPRESS [default: STANDARD].
        #[arg(long = "type", value_name = "TYPE", value_parser = kind)]
        kind: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start an execution; with --wait, wait for it to end and print its output (exit 4
    /// when it fails, times out or is aborted).
    Start {
        /// The workflow.
        name: String,
        /// The execution's input: JSON, `@FILE`, or `-` for stdin [default: {}].
        input: Option<String>,
        /// The execution's name (1 to 80 letters, digits, '-' and '_'): starting it again
        /// with the same input while it runs answers the running one [default: a fresh one].
        #[arg(long = "name", value_name = "EXEC")]
        execution: Option<String>,
        /// Wait until the execution ends, then print its output, or its error and cause.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show an execution: status, input, output or error, and times.
    Describe {
        /// The workflow.
        name: String,
        /// The execution's name.
        execution: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List a workflow's executions, newest first (every status unless --status).
    List {
        /// The workflow.
        name: String,
        /// Only executions of this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
        #[arg(long, value_parser = status)]
        status: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print an execution's history events, oldest first.
    History {
        /// The workflow.
        name: String,
        /// The execution's name.
        execution: String,
        /// Newest first.
        #[arg(long)]
        reverse: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop a running execution: it ends ABORTED.
    Stop {
        /// The workflow.
        name: String,
        /// The execution's name.
        execution: String,
        /// The error name it ends with.
        #[arg(long)]
        error: Option<String>,
        /// The cause it ends with.
        #[arg(long)]
        cause: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a workflow (refused while an execution of it runs or a trigger starts it).
    Delete {
        /// The workflow.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// A workflow type, as the API names it.
fn kind(s: &str) -> Result<String, String> {
    let k = s.to_ascii_uppercase();
    if matches!(k.as_str(), "STANDARD" | "EXPRESS") {
        Ok(k)
    } else {
        Err(format!("'{s}' is not a type: STANDARD or EXPRESS"))
    }
}

/// An execution status, as the API names it.
fn status(s: &str) -> Result<String, String> {
    let k = s.to_ascii_uppercase();
    if STATUSES.contains(&k.as_str()) {
        Ok(k)
    } else {
        Err(format!("'{s}' is not a status: {}", STATUSES.join(", ")))
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Running => "RUNNING",
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
        Status::Aborted => "ABORTED",
    }
}

fn kind_name(k: ExecutionType) -> &'static str {
    match k {
        ExecutionType::Standard => "STANDARD",
        ExecutionType::Express => "EXPRESS",
    }
}

impl WorkflowCommand {
    /// Run the command against the host; its exit code.
    pub(crate) fn run(self) -> std::process::ExitCode {
        let remote = match &self {
            Self::Deploy { remote, .. }
            | Self::Start { remote, .. }
            | Self::Describe { remote, .. }
            | Self::List { remote, .. }
            | Self::History { remote, .. }
            | Self::Stop { remote, .. }
            | Self::Delete { remote, .. } => remote.clone(),
        };
        super::run(&remote, async |c| self.call(c).await)
    }

    async fn call(self, c: &Client) -> Result<(), Failure> {
        match self {
            Self::Deploy {
                name, file, kind, ..
            } => deploy(c, &name, &file, kind).await,
            Self::Start {
                name,
                input,
                execution,
                wait,
                ..
            } => start(c, &name, input.as_deref(), execution, wait).await,
            Self::Describe {
                name, execution, ..
            } => {
                let d = describe(c, &name, &execution).await?;
                if c.json() {
                    super::print_json(&d.0);
                } else {
                    print_description(&d.1);
                }
                Ok(())
            }
            Self::List { name, status, .. } => list(c, &name, status.as_deref()).await,
            Self::History {
                name,
                execution,
                reverse,
                ..
            } => history(c, &name, &execution, reverse).await,
            Self::Stop {
                name,
                execution,
                error,
                cause,
                ..
            } => stop(c, &name, &execution, error, cause).await,
            Self::Delete { name, .. } => {
                c.send(c.request(Method::DELETE, &["v1", "workflows", &name]), None)
                    .await?;
                if !c.json() {
                    println!("{name}: deleted");
                }
                Ok(())
            }
        }
    }
}

/// A workflow put, as `PUT /v1/workflows/{name}` answers it.
#[derive(Deserialize)]
struct Put {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

async fn deploy(
    c: &Client,
    name: &str,
    file: &std::path::Path,
    kind: Option<String>,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("reading {}: {e}", file.display())))?;
    let definition: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "the definition in {} is not JSON: {e}",
            file.display()
        ))
    })?;
    let req = c
        .request(Method::PUT, &["v1", "workflows", name])
        .json(&json!({ "definition": definition, "type": kind }));
    let r = c.send(req, None).await.map_err(with_problems)?;
    let created = r.status() == StatusCode::CREATED;
    let v = super::body_json(r).await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let p: Put = super::parse(&v)?;
    let what = if created { "created" } else { "replaced" };
    println!("{}: {what} ({})", p.name, p.kind);
    Ok(())
}

/// An invalid definition's failure, with every problem on a line of its own under the first
/// (the API's `detail` and `field` name only the first).
fn with_problems(mut f: Failure) -> Failure {
    let problems = f
        .problem
        .as_ref()
        .and_then(|p| p["problems"].as_array())
        .filter(|list| !list.is_empty())
        .cloned();
    if let Some(list) = problems {
        let n = list.len();
        f.message = format!(
            "the definition is invalid ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        );
        for p in &list {
            let s = |k: &str| p[k].as_str().unwrap_or("?").to_owned();
            f.message.push_str(&format!(
                "\n  {}: {}: {}",
                s("pointer"),
                s("code"),
                s("message")
            ));
        }
    }
    f
}

/// What `POST .../executions` answers.
#[derive(Deserialize)]
struct Started {
    id: String,
    created: bool,
}

async fn start(
    c: &Client,
    workflow: &str,
    input: Option<&str>,
    execution: Option<String>,
    wait: bool,
) -> Result<(), Failure> {
    let Data::Json(bytes) = super::read_data(input, false)? else {
        unreachable!("read_data takes only JSON without bytes_ok")
    };
    let input: Value = serde_json::from_slice(&bytes).expect("read_data checked it is JSON");
    let req = c
        .request(Method::POST, &["v1", "workflows", workflow, "executions"])
        .json(&json!({ "name": execution, "input": input }));
    let v = c.json_of(req, None).await?;
    let s: Started = super::parse(&v)?;
    if !wait {
        if c.json() {
            super::print_json(&v);
        } else if s.created {
            println!("{}: started", s.id);
        } else {
            println!(
                "{}: already running with this input (nothing new started)",
                s.id
            );
        }
        return Ok(());
    }
    let name = s
        .id
        .strip_prefix(&format!("{workflow}/"))
        .map(str::to_owned)
        .or(execution)
        .ok_or_else(|| {
            Failure::unavailable(format!(
                "the execution id '{}' is not <workflow>/<name>: is the host of another version?",
                s.id
            ))
        })?;
    if !c.json() {
        // On stderr, so stdout is the output alone.
        let how = if s.created {
            "started"
        } else {
            "already running"
        };
        eprintln!("{}: {how}, waiting for it to end", s.id);
    }
    let (raw, d) = closed(c, workflow, &name).await?;
    finish(c, raw, &d)
}

/// Poll the execution until it leaves RUNNING, with the spinner; its description.
async fn closed(c: &Client, workflow: &str, name: &str) -> Result<(Value, Description), Failure> {
    let _spinner = Progress::start(format!("waiting for {workflow}/{name}"));
    let mut pause = POLL_FIRST;
    loop {
        let (raw, d) = describe(c, workflow, name).await?;
        if d.status != Status::Running {
            return Ok((raw, d));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// The end of `start --wait`: the output (exit 0), or the error and cause (exit 4).
fn finish(c: &Client, raw: Value, d: &Description) -> Result<(), Failure> {
    let took = d.stopped_ms.map(|t| duration(t - d.started_ms));
    let took = took.map_or_else(String::new, |t| format!(" in {t}"));
    if d.status == Status::Succeeded {
        if c.json() {
            super::print_json(&raw);
        } else {
            eprintln!("{}: SUCCEEDED{took}", d.id);
            super::print_json(d.output.as_ref().unwrap_or(&Value::Null));
        }
        return Ok(());
    }
    let mut message = format!("{} {}{took}", d.id, status_name(d.status));
    if let Some(e) = &d.error {
        message.push_str(&format!(": {}", e.error));
        if !e.cause.is_empty() {
            message.push_str(&format!(": {}", e.cause));
        }
    }
    // The description is the "problem" --json prints on stdout.
    Err(Failure {
        exit: Exit::Stage,
        message,
        problem: Some(raw),
    })
}

/// `GET .../executions/{name}`: the answer as it is, and parsed.
async fn describe(c: &Client, workflow: &str, name: &str) -> Result<(Value, Description), Failure> {
    let req = c.request(
        Method::GET,
        &["v1", "workflows", workflow, "executions", name],
    );
    let v = c.json_of(req, None).await?;
    let d = super::parse(&v)?;
    Ok((v, d))
}

fn print_description(d: &Description) {
    println!("execution: {}", d.id);
    println!("status:    {}", status_name(d.status));
    println!("type:      {}", kind_name(d.kind));
    println!("started:   {} UTC", utc(d.started_ms));
    match d.stopped_ms {
        Some(t) => println!(
            "stopped:   {} UTC (after {})",
            utc(t),
            duration(t - d.started_ms)
        ),
        None => println!("stopped:   - (running)"),
    }
    println!("input:     {}", d.input);
    if let Some(out) = &d.output {
        println!("output:    {out}");
    }
    if let Some(e) = &d.error {
        println!("error:     {}", e.error);
        println!("cause:     {}", e.cause);
    }
}

/// One page of `GET .../executions`.
#[derive(Deserialize)]
struct ExecutionPage {
    executions: Vec<Value>,
    next: Option<String>,
}

/// Every execution of `status`, following `next` to the last page.
async fn executions(c: &Client, workflow: &str, status: &str) -> Result<Vec<Value>, Failure> {
    let mut all = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut q = vec![("status", status), ("limit", PAGE)];
        if let Some(n) = &next {
            q.push(("next", n));
        }
        let req = c.request_query(
            Method::GET,
            &["v1", "workflows", workflow, "executions"],
            &q,
        );
        let page: ExecutionPage = super::parse(&c.json_of(req, None).await?)?;
        all.extend(page.executions);
        match page.next {
            Some(n) => next = Some(n),
            None => return Ok(all),
        }
    }
}

async fn list(c: &Client, workflow: &str, status: Option<&str>) -> Result<(), Failure> {
    let statuses: Vec<&str> = status.map_or_else(|| STATUSES.to_vec(), |s| vec![s]);
    let mut all = Vec::new();
    for s in statuses {
        all.extend(executions(c, workflow, s).await?);
    }
    let mut parsed: Vec<(Value, Description)> = Vec::with_capacity(all.len());
    for v in all {
        let d = super::parse(&v)?;
        parsed.push((v, d));
    }
    // Newest start first across the statuses, as the API orders each one.
    parsed.sort_by(|a, b| (b.1.started_ms, &b.1.name).cmp(&(a.1.started_ms, &a.1.name)));
    if c.json() {
        let executions: Vec<Value> = parsed.into_iter().map(|(v, _)| v).collect();
        super::print_json(&json!({ "executions": executions }));
        return Ok(());
    }
    if parsed.is_empty() {
        match status {
            Some(s) => println!("no {s} executions of {workflow}"),
            None => println!("no executions of {workflow}"),
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = parsed
        .iter()
        .map(|(_, d)| {
            vec![
                d.name.clone(),
                status_name(d.status).to_owned(),
                utc(d.started_ms),
                d.stopped_ms
                    .map_or_else(|| "-".into(), |t| duration(t - d.started_ms)),
                d.error
                    .as_ref()
                    .map_or_else(|| "-".into(), |e| e.error.clone()),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["NAME", "STATUS", "STARTED (UTC)", "DURATION", "ERROR"],
            &rows
        )
    );
    Ok(())
}

/// One page of `GET .../history`.
#[derive(Deserialize)]
struct HistoryPage {
    events: Vec<Value>,
    next: Option<String>,
}

async fn history(c: &Client, workflow: &str, name: &str, reverse: bool) -> Result<(), Failure> {
    let mut events = Vec::new();
    let mut next: Option<String> = None;
    let reverse = if reverse { "true" } else { "false" };
    loop {
        let mut q = vec![("limit", PAGE), ("reverse", reverse)];
        if let Some(n) = &next {
            q.push(("next", n));
        }
        let req = c.request_query(
            Method::GET,
            &["v1", "workflows", workflow, "executions", name, "history"],
            &q,
        );
        let page: HistoryPage = super::parse(&c.json_of(req, None).await?)?;
        events.extend(page.events);
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    if c.json() {
        super::print_json(&json!({ "events": events }));
        return Ok(());
    }
    let mut rows = Vec::with_capacity(events.len());
    for v in &events {
        let e: HistoryEvent = super::parse(v)?;
        rows.push(vec![
            e.id.to_string(),
            utc_millis(e.timestamp_ms),
            e.kind,
            compact(&e.details, 100),
        ]);
    }
    print!("{}", table(&["ID", "TIME (UTC)", "TYPE", "DETAILS"], &rows));
    Ok(())
}

async fn stop(
    c: &Client,
    workflow: &str,
    name: &str,
    error: Option<String>,
    cause: Option<String>,
) -> Result<(), Failure> {
    let req = c
        .request(
            Method::POST,
            &["v1", "workflows", workflow, "executions", name, "stop"],
        )
        .json(&json!({ "error": error, "cause": cause }));
    let v = c.json_of(req, None).await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let d: Description = super::parse(&v)?;
    if d.status == Status::Aborted {
        println!("{}: stopped (ABORTED)", d.id);
    } else {
        // The API answers an execution that had already ended as it is.
        println!(
            "{}: had already ended {} (nothing stopped)",
            d.id,
            status_name(d.status)
        );
    }
    Ok(())
}
