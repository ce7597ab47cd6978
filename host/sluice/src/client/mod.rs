//! The CLI's client commands: `sluice stage deploy|list|describe|delete|invoke|alias`,
//! `sluice workflow deploy|start|describe|list|history|stop|delete`, `sluice trigger
//! add|list|describe|delete`, `sluice publish` and `sluice token create|list|revoke` call a
//! running host's HTTP API.
//!
//! **Connection.** `--url` (else `$SLUICE_URL`, else `http://127.0.0.1:7420`, where
//! `sluice up` listens by default) and `--token` (else `$SLUICE_TOKEN`, else the file
//! `<data-dir>/admin.token` that `sluice up` writes; `--data-dir` else `$SLUICE_DATA_DIR`,
//! else `.sluice`). The environment is read here rather than through clap's `env` feature,
//! which the workspace does not enable.
//!
//! **Output.** Human-readable lines and tables on stdout by default; `--json` prints the
//! API's JSON answer as it is (pretty) for scripts (nothing for the answers without a body:
//! `stage delete`, `token revoke`), and on a refusal also the problem body on stdout. An invocation's output goes to stdout in both modes (JSON pretty, other bytes
//! raw). Errors go to stderr as `error: <detail>`; a stage's error names it
//! (`error: Input.Invalid: ...`).
//!
//! **Exit codes**, so scripts can tell what happened without reading the text:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the API refused the request: any 4xx (401, 403, 404, 409, 413, 429, ...), except a stage's named error |
//! | 2 | usage: clap's own errors, and local input or output the command cannot use (an unreadable file, DATA that is not JSON, no token, a malformed `--url`, a closed stdout) |
//! | 3 | the API could not be reached or failed: connection errors, time-outs, 5xx (500, 503) other than the sandbox's, an answer that is not the API's |
//! | 4 | the stage failed: it returned a named error (422 `stage-error`) or the sandbox stopped it (502/504 `sandbox-error`); or the execution `workflow start --wait` waited for ended FAILED, TIMED_OUT or ABORTED |
//!
//! A 422 or 502/504 counts as 4 only with the problem type that says so, so a proxy's bare
//! 502 is 3 and an invalid upload's 422 is 1.

mod human;
mod progress;
mod publish;
mod stage;
mod token;
mod trigger;
mod workflow;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;

pub(crate) use publish::PublishArgs;
pub(crate) use stage::StageCommand;
pub(crate) use token::TokenCommand;
pub(crate) use trigger::TriggerCommand;
pub(crate) use workflow::WorkflowCommand;

/// Where `sluice up` listens unless told otherwise.
const DEFAULT_URL: &str = "http://127.0.0.1:7420";
/// Where `sluice up` keeps its data (and the admin token) unless told otherwise.
const DEFAULT_DATA_DIR: &str = ".sluice";
/// Longer than the host's own bound on an upload (90 s), so the host's answer arrives first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How a client command reaches the API, and how it prints.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Connection and output")]
pub(crate) struct Remote {
    /// The host's API [default: $SLUICE_URL, else http://127.0.0.1:7420].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The bearer token [default: $SLUICE_TOKEN, else the file <data-dir>/admin.token].
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// The host's data directory, where `sluice up` wrote `admin.token`
    /// [default: $SLUICE_DATA_DIR, else .sluice].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print the API's JSON answer as it is, for scripts.
    #[arg(long)]
    json: bool,
}

/// A variable of the environment, when set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The exit codes of the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 1: the API refused the request.
    Refused,
    /// 2: the command cannot be made from its arguments.
    Usage,
    /// 3: the API cannot be reached, or it failed.
    Unavailable,
    /// 4: the stage returned a named error, or the sandbox stopped it; or an execution
    /// waited for did not succeed.
    Stage,
}

impl Exit {
    fn code(self) -> u8 {
        match self {
            Self::Refused => 1,
            Self::Usage => 2,
            Self::Unavailable => 3,
            Self::Stage => 4,
        }
    }
}

/// Why a client command failed: its exit code, the line for stderr, and the problem body
/// the API answered (printed on stdout with `--json`).
#[derive(Debug)]
pub(crate) struct Failure {
    exit: Exit,
    message: String,
    problem: Option<Value>,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
            problem: None,
        }
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Unavailable,
            message: message.into(),
            problem: None,
        }
    }
}

/// An error with its sources, on one line (reqwest's own message alone says little more
/// than "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// Which exit a refusal is: by status, and for the stage's outcomes by the problem's type too.
fn classify(status: StatusCode, kind: Option<&str>) -> Exit {
    match (status.as_u16(), kind) {
        (422, Some("stage-error")) | (502 | 504, Some("sandbox-error")) => Exit::Stage,
        (400..=499, _) => Exit::Refused,
        _ => Exit::Unavailable,
    }
}

/// The failure a non-success answer is.
fn refusal(status: StatusCode, body: &[u8], token_source: &str) -> Failure {
    let problem = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| v.get("detail").is_some_and(Value::is_string));
    let Some(p) = problem else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let mut message = format!("the API answered {status}");
        if !text.is_empty() {
            message.push_str(": ");
            message.extend(text.chars().take(200));
        }
        return Failure {
            exit: classify(status, None),
            message,
            problem: None,
        };
    };
    let kind = p["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("urn:sluice:problem:"));
    let exit = classify(status, kind);
    let detail = p["detail"].as_str().unwrap_or_default();
    let mut message = match p["error"].as_str() {
        // The host's detail is "<error>: <cause>"; say the name even if that changes.
        Some(name) if !detail.starts_with(name) => format!("{name}: {detail}"),
        _ => detail.to_owned(),
    };
    if let Some(field) = p["field"].as_str() {
        message.push_str(&format!(" (field: {field})"));
    }
    if p["retryable"] == Value::Bool(true) {
        message.push_str(" (retryable)");
    }
    if status == StatusCode::UNAUTHORIZED {
        message.push_str(&format!(" (the token came from {token_source})"));
    }
    Failure {
        exit,
        message,
        problem: Some(p),
    }
}

/// The HTTP client of one command, with the connection settings resolved.
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
    /// Where the token came from, for the message of a 401.
    token_source: String,
    /// `--json`.
    json: bool,
}

impl Client {
    fn new(remote: &Remote) -> Result<Self, Failure> {
        let url = remote
            .url
            .clone()
            .or_else(|| env("SLUICE_URL"))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let base = Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "'{url}' is not an http URL such as {DEFAULT_URL} (--url or SLUICE_URL)"
                ))
            })?;
        let (token, token_source) = token(remote)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Failure::unavailable(format!("making the HTTP client: {}", chain(&e))))?;
        Ok(Self {
            http,
            base,
            token,
            token_source,
            json: remote.json,
        })
    }

    /// Whether `--json` was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// A request to the API path made of `segments` (each percent-encoded as it needs).
    pub(crate) fn request(&self, method: reqwest::Method, segments: &[&str]) -> RequestBuilder {
        self.request_query(method, segments, &[])
    }

    /// Like [`Client::request`], with the query `pairs` (percent-encoded here: the HTTP
    /// client's own query builder is a feature the binary does not enable).
    pub(crate) fn request_query(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        pairs: &[(&str, &str)],
    ) -> RequestBuilder {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked to be a base URL")
            .pop_if_empty()
            .extend(segments);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// Send `request`; a success answer, or the failure it is. With `progress`, a spinner
    /// says so on stderr while it runs (on a terminal, past a moment).
    pub(crate) async fn send(
        &self,
        request: RequestBuilder,
        progress: Option<String>,
    ) -> Result<Response, Failure> {
        let spinner = progress.map(progress::Progress::start);
        let answer = self.answer(request).await;
        drop(spinner);
        answer
    }

    async fn answer(&self, request: RequestBuilder) -> Result<Response, Failure> {
        let r = request.send().await.map_err(|e| self.unreachable(&e))?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        let body = r.bytes().await.map_err(|e| self.unreachable(&e))?;
        Err(refusal(status, &body, &self.token_source))
    }

    fn unreachable(&self, e: &reqwest::Error) -> Failure {
        let what = if e.is_timeout() {
            "the API did not answer in time"
        } else if e.is_connect() {
            "cannot reach the API"
        } else {
            "the request to the API failed"
        };
        Failure::unavailable(format!("{what} at {}: {}", self.base, chain(e)))
    }

    /// Send `request` and read its JSON answer.
    pub(crate) async fn json_of(
        &self,
        request: RequestBuilder,
        progress: Option<String>,
    ) -> Result<Value, Failure> {
        let r = self.send(request, progress).await?;
        body_json(r).await
    }
}

/// A success answer's JSON body.
pub(crate) async fn body_json(r: Response) -> Result<Value, Failure> {
    let bytes = r
        .bytes()
        .await
        .map_err(|e| Failure::unavailable(format!("reading the API's answer: {}", chain(&e))))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure::unavailable(format!(
            "the answer is not the API's JSON ({e}): is --url a sluice host?"
        ))
    })
}

/// Parse a success answer as `T` (its fields, for the human output).
pub(crate) fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, Failure> {
    T::deserialize(v).map_err(|e| {
        Failure::unavailable(format!(
            "the API's answer has an unexpected shape ({e}): is the host of another version?"
        ))
    })
}

/// The bearer token and where it came from: `--token`, `$SLUICE_TOKEN`, or the admin token
/// file in the data directory.
fn token(remote: &Remote) -> Result<(String, String), Failure> {
    if let Some(t) = remote.token.as_deref().filter(|t| !t.trim().is_empty()) {
        return Ok((t.trim().to_owned(), "--token".into()));
    }
    if let Some(t) = env("SLUICE_TOKEN") {
        return Ok((t.trim().to_owned(), "SLUICE_TOKEN".into()));
    }
    let dir = remote
        .data_dir
        .clone()
        .or_else(|| env("SLUICE_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let file = dir.join("admin.token");
    match std::fs::read_to_string(&file) {
        Ok(t) if !t.trim().is_empty() => Ok((t.trim().to_owned(), file.display().to_string())),
        Ok(_) => Err(Failure::usage(format!(
            "the token file {} is empty",
            file.display()
        ))),
        Err(e) => Err(Failure::usage(format!(
            "no token: pass --token TOKEN, set SLUICE_TOKEN, or point --data-dir (or \
             SLUICE_DATA_DIR) at the data directory of `sluice up`, whose admin.token is \
             used (reading {}: {e})",
            file.display()
        ))),
    }
}

/// Print `v` as pretty JSON on stdout.
pub(crate) fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("a JSON value serializes")
    );
}

/// Write `bytes` to stdout as they are.
pub(crate) fn print_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::usage(format!("writing to stdout: {e}")))
}

/// Where a command's event data comes from.
pub(crate) enum Data {
    /// The JSON to send.
    Json(Vec<u8>),
    /// Bytes that are not JSON, from a file or stdin.
    Bytes(Vec<u8>),
}

/// Read DATA: JSON text, `@FILE`, or `-` for stdin (none: `{}`). Text given on the command
/// line must be JSON (anything else is more likely a quoting slip than an intended body);
/// from a file or stdin other bytes are taken when `bytes_ok`.
pub(crate) fn read_data(arg: Option<&str>, bytes_ok: bool) -> Result<Data, Failure> {
    let (bytes, from) = match arg {
        None => return Ok(Data::Json(b"{}".to_vec())),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Failure::usage(format!("reading DATA from stdin: {e}")))?;
            (buf, Some("stdin".to_owned()))
        }
        Some(a) if a.starts_with('@') => {
            let path = Path::new(&a[1..]);
            let buf = std::fs::read(path)
                .map_err(|e| Failure::usage(format!("reading {}: {e}", path.display())))?;
            (buf, Some(path.display().to_string()))
        }
        Some(a) => (a.as_bytes().to_vec(), None),
    };
    match (
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes),
        from,
    ) {
        (Ok(_), _) => Ok(Data::Json(bytes)),
        (Err(_), Some(_)) if bytes_ok => Ok(Data::Bytes(bytes)),
        (Err(e), Some(from)) => Err(Failure::usage(format!(
            "the data in {from} is not JSON: {e}"
        ))),
        (Err(e), None) => Err(Failure::usage(format!(
            "DATA is not JSON ({e}): give JSON such as '{{\"a\": 1}}', @FILE, or - for stdin"
        ))),
    }
}

/// Run one client command to its exit code: resolve the connection, run `command` on a
/// runtime of its own, and print a failure.
pub(crate) fn run(
    remote: &Remote,
    command: impl AsyncFnOnce(&Client) -> Result<(), Failure>,
) -> ExitCode {
    let outcome = Client::new(remote).and_then(|client| {
        // One thread: a command makes one request at a time.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::unavailable(format!("starting the runtime: {e}")))?;
        rt.block_on(command(&client))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if remote.json
                && let Some(p) = &f.problem
            {
                print_json(p);
            }
            eprintln!("error: {}", f.message);
            ExitCode::from(f.exit.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_exit_codes() {
        let cases = [
            (422, Some("stage-error"), Exit::Stage),
            (502, Some("sandbox-error"), Exit::Stage),
            (504, Some("sandbox-error"), Exit::Stage),
            (422, Some("invalid-component"), Exit::Refused),
            (404, Some("not-found"), Exit::Refused),
            (429, Some("too-many-invocations"), Exit::Refused),
            (401, None, Exit::Refused),
            (502, None, Exit::Unavailable),
            (503, Some("unavailable"), Exit::Unavailable),
            (500, Some("internal"), Exit::Unavailable),
        ];
        for (status, kind, want) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(classify(status, kind), want, "{status} {kind:?}");
        }
    }

    #[test]
    fn a_problem_becomes_its_line() {
        let body = br#"{"type":"urn:sluice:problem:stage-error","title":"Unprocessable Entity",
            "status":422,"detail":"Input.Invalid: no bucket","error":"Input.Invalid",
            "cause":"no bucket","retryable":false}"#;
        let f = refusal(StatusCode::UNPROCESSABLE_ENTITY, body, "--token");
        assert_eq!(f.exit, Exit::Stage);
        assert_eq!(f.message, "Input.Invalid: no bucket");
        let f = refusal(
            StatusCode::BAD_GATEWAY,
            b"<html>bad gateway</html>",
            "--token",
        );
        assert_eq!(f.exit, Exit::Unavailable);
        assert!(f.message.contains("502"), "{}", f.message);
        let body = br#"{"type":"urn:sluice:problem:unauthorized","status":401,"detail":"no"}"#;
        let f = refusal(StatusCode::UNAUTHORIZED, body, "SLUICE_TOKEN");
        assert_eq!(
            (f.exit, f.message.as_str()),
            (Exit::Refused, "no (the token came from SLUICE_TOKEN)")
        );
    }

    #[test]
    fn data_must_be_json_on_the_command_line() {
        assert!(matches!(read_data(None, true), Ok(Data::Json(b)) if b == b"{}"));
        assert!(matches!(
            read_data(Some(r#"{"a":1}"#), false),
            Ok(Data::Json(_))
        ));
        let f = read_data(Some("{a:1}"), true).err().unwrap();
        assert_eq!(f.exit, Exit::Usage);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("raw");
        std::fs::write(&file, b"\x00 not json").unwrap();
        let arg = format!("@{}", file.display());
        assert!(matches!(read_data(Some(&arg), true), Ok(Data::Bytes(_))));
        assert_eq!(
            read_data(Some(&arg), false).err().unwrap().exit,
            Exit::Usage
        );
    }
}
