//! `sluice trigger add|list|describe|delete`: the host's triggers (a stream's subjects bound
//! to a stage or a workflow), through `/v1/triggers`. A trigger added here consumes at once
//! and is recorded, so a restarted host runs it again.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::Value;

use super::human::table;
use super::{Client, Failure, Remote};

/// The trigger commands.
#[derive(Subcommand)]
pub(crate) enum TriggerCommand {
    /// Add a trigger from its definition and start it.
    ///
    /// The definition is a JSON object with `name`, `stream`, `stream_subjects`,
    /// `filter_subject`, `stage` or `workflow`, and optionally `batch_size`,
    /// `output_subject`, `dead_letter_subject`, `max_deliver`, `pattern`, `partitions`, ...
    Add {
        /// The definition (JSON), or `-` for stdin.
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the triggers and what each runs.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a trigger: its definition, status, and its consumer's position and lag.
    Describe {
        /// The trigger.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a trigger: it finishes the batches it holds and stops; its consumer (its
    /// position in the stream) is removed.
    Delete {
        /// The trigger.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// A trigger as the API answers it.
#[derive(Deserialize)]
struct Info {
    name: String,
    status: String,
    error: Option<String>,
    definition: Value,
    consumer: Option<Consumer>,
}

/// Its durable consumer's state.
#[derive(Deserialize)]
struct Consumer {
    pending: u64,
    ack_pending: u64,
    redelivered: u64,
    delivered_seq: u64,
    ack_floor_seq: u64,
}

#[derive(Deserialize)]
struct TriggerList {
    triggers: Vec<Info>,
}

/// A string member of a definition (`-` when absent).
fn member(d: &Value, key: &str) -> String {
    d[key].as_str().unwrap_or("-").to_owned()
}

/// What a trigger runs: `stage NAME` or `workflow NAME`.
fn runs(d: &Value) -> String {
    match (d["stage"].as_str(), d["workflow"].as_str()) {
        (Some(s), _) => format!("stage {s}"),
        (None, Some(w)) => format!("workflow {w}"),
        (None, None) => "-".into(),
    }
}

/// Its status, with the reason when it failed.
fn state(i: &Info) -> String {
    match &i.error {
        Some(e) => format!("{} ({e})", i.status),
        None => i.status.clone(),
    }
}

impl TriggerCommand {
    /// Run the command against the host; its exit code.
    pub(crate) fn run(self) -> std::process::ExitCode {
        let remote = match &self {
            Self::Add { remote, .. }
            | Self::List { remote }
            | Self::Describe { remote, .. }
            | Self::Delete { remote, .. } => remote.clone(),
        };
        super::run(&remote, async |c| self.call(c).await)
    }

    async fn call(self, c: &Client) -> Result<(), Failure> {
        match self {
            Self::Add { file, .. } => add(c, &file).await,
            Self::List { .. } => list(c).await,
            Self::Describe { name, .. } => describe(c, &name).await,
            Self::Delete { name, .. } => {
                c.send(c.request(Method::DELETE, &["v1", "triggers", &name]), None)
                    .await?;
                if !c.json() {
                    println!("{name}: deleted");
                }
                Ok(())
            }
        }
    }
}

async fn add(c: &Client, file: &std::path::Path) -> Result<(), Failure> {
    let (bytes, from) = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Failure::usage(format!("reading the definition from stdin: {e}")))?;
        (buf, "stdin".to_owned())
    } else {
        let buf = std::fs::read(file)
            .map_err(|e| Failure::usage(format!("reading {}: {e}", file.display())))?;
        (buf, file.display().to_string())
    };
    // Checked here, so a slip in the file is a usage error, not the API's 400.
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| Failure::usage(format!("the definition in {from} is not JSON: {e}")))?;
    let req = c
        .request(Method::POST, &["v1", "triggers"])
        .header(CONTENT_TYPE, "application/json")
        .body(bytes);
    let v = c.json_of(req, None).await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let i: Info = super::parse(&v)?;
    let d = &i.definition;
    println!(
        "{}: {}, {} on {} of stream {}",
        i.name,
        state(&i),
        runs(d),
        member(d, "filter_subject"),
        member(d, "stream")
    );
    Ok(())
}

async fn list(c: &Client) -> Result<(), Failure> {
    let v = c
        .json_of(c.request(Method::GET, &["v1", "triggers"]), None)
        .await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let l: TriggerList = super::parse(&v)?;
    if l.triggers.is_empty() {
        println!("no triggers");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = l
        .triggers
        .iter()
        .map(|i| {
            let d = &i.definition;
            vec![
                i.name.clone(),
                runs(d),
                member(d, "stream"),
                member(d, "filter_subject"),
                member(d, "output_subject"),
                state(i),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["NAME", "RUNS", "STREAM", "FILTER", "OUTPUT", "STATUS"],
            &rows
        )
    );
    Ok(())
}

async fn describe(c: &Client, name: &str) -> Result<(), Failure> {
    let v = c
        .json_of(c.request(Method::GET, &["v1", "triggers", name]), None)
        .await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let i: Info = super::parse(&v)?;
    let d = &i.definition;
    let subjects: Vec<&str> = d["stream_subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!("trigger:  {}", i.name);
    println!("status:   {}", state(&i));
    println!("runs:     {}", runs(d));
    println!(
        "stream:   {} (subjects {})",
        member(d, "stream"),
        if subjects.is_empty() {
            "-".into()
        } else {
            subjects.join(", ")
        }
    );
    println!("filter:   {}", member(d, "filter_subject"));
    println!("output:   {}", member(d, "output_subject"));
    match &i.consumer {
        Some(s) => println!(
            "consumer: {} pending, {} awaiting ack, {} redelivered; delivered up to seq {}, \
             acknowledged up to seq {}",
            s.pending, s.ack_pending, s.redelivered, s.delivered_seq, s.ack_floor_seq
        ),
        // The broker did not answer for it (the stream or consumer is gone, or it is down).
        None => println!("consumer: unknown (the broker did not describe it)"),
    }
    println!("definition:");
    super::print_json(d);
    Ok(())
}
