//! `sluice stage deploy|list|describe|delete|invoke|alias`: stages on a running host, through
//! `/v1/stages`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::Value;
use sluice_api::Version;

use super::human::{aliases, grants, names, short_sha, size, table, utc};
use super::{Client, Data, Failure, Remote};

/// The stage commands that call a host's API.
#[derive(Subcommand)]
pub(crate) enum StageCommand {
    /// Upload a component as the stage's next version and make it live (compiling it takes
    /// a few seconds).
    Deploy {
        /// The stage's name (lower-case letters, digits, '-' and '_', starting with a letter).
        name: String,
        /// The component (`.wasm`, built for wasm32-wasip2).
        file: PathBuf,
        /// The version's configuration (JSON: limits and grants); default: the live version's.
        #[arg(long, value_name = "CONFIG.json")]
        config: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the host's stages with their newest version and aliases.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a stage's versions, aliases, and the triggers and workflows that use it.
    Describe {
        /// The stage.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a stage and every version (refused while a trigger or workflow uses it).
    Delete {
        /// The stage.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run one event through a stage on the host and print its output.
    Invoke {
        /// `NAME`, `NAME:VERSION` or `NAME:ALIAS` (default: the `live` alias).
        target: String,
        /// The event's data: JSON, `@FILE`, or `-` for stdin [default: {}].
        data: Option<String>,
        /// An idempotency key (the event's id): a repeat answers the first outcome and
        /// applies no state twice.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Point an alias of a stage at one of its versions (`live` is what triggers,
    /// workflows and unqualified invocations run: pointing it back is a rollback).
    Alias {
        /// The stage.
        name: String,
        /// The alias.
        alias: String,
        /// The version it points at.
        version: u64,
        #[command(flatten)]
        remote: Remote,
    },
}

impl StageCommand {
    /// Run the command against the host; its exit code.
    pub(crate) fn run(self) -> std::process::ExitCode {
        let remote = match &self {
            Self::Deploy { remote, .. }
            | Self::List { remote }
            | Self::Describe { remote, .. }
            | Self::Delete { remote, .. }
            | Self::Invoke { remote, .. }
            | Self::Alias { remote, .. } => remote.clone(),
        };
        super::run(&remote, async |c| self.call(c).await)
    }

    async fn call(self, c: &Client) -> Result<(), Failure> {
        match self {
            Self::Deploy {
                name, file, config, ..
            } => deploy(c, &name, file, config).await,
            Self::List { .. } => list(c).await,
            Self::Describe { name, .. } => describe(c, &name).await,
            Self::Delete { name, .. } => {
                c.send(c.request(Method::DELETE, &["v1", "stages", &name]), None)
                    .await?;
                if !c.json() {
                    println!("{name}: deleted");
                }
                Ok(())
            }
            Self::Invoke {
                target, data, key, ..
            } => invoke(c, &target, data.as_deref(), key.as_deref()).await,
            Self::Alias {
                name,
                alias,
                version,
                ..
            } => {
                let req = c
                    .request(Method::PUT, &["v1", "stages", &name, "aliases", &alias])
                    .json(&serde_json::json!({ "version": version }));
                let v = c.json_of(req, None).await?;
                if c.json() {
                    super::print_json(&v);
                } else {
                    println!("{name}: alias {alias} → version {version}");
                }
                Ok(())
            }
        }
    }
}

/// A version made, as `PUT /v1/stages/{name}` answers it.
#[derive(Deserialize)]
struct Deployed {
    #[serde(flatten)]
    version: Version,
    alias: String,
}

async fn deploy(
    c: &Client,
    name: &str,
    file: PathBuf,
    config: Option<PathBuf>,
) -> Result<(), Failure> {
    let component = std::fs::read(&file)
        .map_err(|e| Failure::usage(format!("reading {}: {e}", file.display())))?;
    let req = c.request(Method::PUT, &["v1", "stages", name]);
    let req = match config {
        // Without a configuration the raw upload: the live version's configuration stays.
        None => req.header(CONTENT_TYPE, "application/wasm").body(component),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::usage(format!("reading {}: {e}", path.display())))?;
            // Checked here, so a slip in the file is a usage error before a long upload.
            serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| {
                Failure::usage(format!(
                    "the configuration in {} is not JSON: {e}",
                    path.display()
                ))
            })?;
            let file_name = file.file_name().map_or_else(
                || "component.wasm".into(),
                |n| n.to_string_lossy().into_owned(),
            );
            let part = reqwest::multipart::Part::bytes(component)
                .file_name(file_name)
                .mime_str("application/wasm")
                .expect("a valid media type");
            let form = reqwest::multipart::Form::new()
                .part("component", part)
                .text("config", text);
            req.multipart(form)
        }
    };
    let v = c
        .json_of(req, Some(format!("uploading and compiling {name}")))
        .await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let d: Deployed = super::parse(&v)?;
    let ver = &d.version;
    println!(
        "{}: version {} (sha256 {}, {}, {}) is {}",
        ver.stage,
        ver.version,
        short_sha(&ver.sha256),
        size(ver.size),
        ver.world,
        d.alias
    );
    Ok(())
}

/// A stage in `GET /v1/stages`.
#[derive(Deserialize)]
struct Summary {
    name: String,
    latest: u64,
    aliases: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct StageList {
    stages: Vec<Summary>,
}

async fn list(c: &Client) -> Result<(), Failure> {
    let v = c
        .json_of(c.request(Method::GET, &["v1", "stages"]), None)
        .await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let l: StageList = super::parse(&v)?;
    if l.stages.is_empty() {
        println!("no stages");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = l
        .stages
        .iter()
        .map(|s| vec![s.name.clone(), s.latest.to_string(), aliases(&s.aliases)])
        .collect();
    print!("{}", table(&["NAME", "LATEST", "ALIASES"], &rows));
    Ok(())
}

/// `GET /v1/stages/{name}`.
#[derive(Deserialize)]
struct Description {
    name: String,
    versions: Vec<Version>,
    aliases: BTreeMap<String, u64>,
    triggers: Vec<String>,
    workflows: Vec<String>,
}

async fn describe(c: &Client, name: &str) -> Result<(), Failure> {
    let v = c
        .json_of(c.request(Method::GET, &["v1", "stages", name]), None)
        .await?;
    if c.json() {
        super::print_json(&v);
        return Ok(());
    }
    let d: Description = super::parse(&v)?;
    println!("stage:     {}", d.name);
    println!("aliases:   {}", aliases(&d.aliases));
    println!("triggers:  {}", names(&d.triggers));
    println!("workflows: {}", names(&d.workflows));
    println!();
    let rows: Vec<Vec<String>> = d
        .versions
        .iter()
        .map(|ver| {
            let at: Vec<&str> = d
                .aliases
                .iter()
                .filter(|(_, n)| **n == ver.version)
                .map(|(a, _)| a.as_str())
                .collect();
            vec![
                ver.version.to_string(),
                short_sha(&ver.sha256),
                size(ver.size),
                ver.world.clone(),
                utc(ver.created_ms),
                if at.is_empty() {
                    "-".into()
                } else {
                    at.join(",")
                },
                grants(&ver.config),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "VERSION",
                "SHA256",
                "SIZE",
                "WORLD",
                "CREATED (UTC)",
                "ALIASES",
                "GRANTS"
            ],
            &rows
        )
    );
    Ok(())
}

async fn invoke(
    c: &Client,
    target: &str,
    data: Option<&str>,
    key: Option<&str>,
) -> Result<(), Failure> {
    let (body, media) = match super::read_data(data, true)? {
        Data::Json(b) => (b, "application/json"),
        Data::Bytes(b) => (b, "application/octet-stream"),
    };
    let mut req = c
        .request(Method::POST, &["v1", "stages", target, "invoke"])
        .header(CONTENT_TYPE, media)
        .body(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let r = c.send(req, Some(format!("invoking {target}"))).await?;
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let version = header("sluice-version").unwrap_or_else(|| "?".into());
    let event = header("sluice-event-id").unwrap_or_else(|| "?".into());
    let replayed = header("idempotent-replayed").as_deref() == Some("true");
    let is_json = header(CONTENT_TYPE.as_str())
        .is_some_and(|m| m.split(';').next().unwrap_or("").trim() == "application/json");
    let output = r.bytes().await.map_err(|e| {
        Failure::unavailable(format!("reading the stage's output: {}", super::chain(&e)))
    })?;
    if !c.json() {
        // On stderr, so stdout is the output alone.
        let how = if replayed {
            ", replayed: the first outcome of this key (nothing ran again)"
        } else {
            ""
        };
        eprintln!("{target}: version {version}, event {event}{how}");
    }
    match serde_json::from_slice::<Value>(&output) {
        Ok(v) if is_json => super::print_json(&v),
        _ => super::print_bytes(&output)?,
    }
    Ok(())
}
