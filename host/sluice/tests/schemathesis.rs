//! A schema-driven fuzz run over the API's own OpenAPI document: schemathesis (PyPI, 4.x)
//! reads `/v1/openapi.json` from a real `sluice up` (managed nats-server, real redb files, a
//! stage, a workflow with an execution and a trigger with its stream behind the routes) and
//! sends every operation generated requests, valid and invalid, for a bounded time. No
//! answer may be a 5xx, and every answer must be one the document promises: a documented
//! status, of the documented media type, with a body that matches the documented schema,
//! and a method the path does not document is a 405. Before it, a few requests no generator
//! makes (parameters that are not UTF-8, bodies past the limit) are judged by the same
//! document.
//!
//! Why: the document is what clients are generated from, so an answer it does not describe
//! (a bare 405 fallback, an undocumented 413, a rejection in plain text) breaks them as surely
//! as a 500 does, and hand-written tests only try the inputs someone thought of.
//!
//! Bounded: each run has schemathesis' `--max-time` and is killed if it overruns; the whole
//! test takes about 100 s on 2 cores. The seed is fixed, so a failure reproduces
//! (`SLUICE_SCHEMATHESIS_SEED` picks another; `SLUICE_SCHEMATHESIS_VERBOSE` prints every
//! run's report, not only a failed one's).
//!
//! schemathesis is installed by `bash scripts/setup.sh`; without it this test fails (it does
//! not skip), naming that script.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_test_artifacts as guests;

mod common;
use common::Host;

/// The checks every answer must pass. `not_a_server_error`: no 5xx;
/// `response_schema_conformance`: the body matches the documented schema;
/// `status_code_conformance`: the status is one the operation documents;
/// `content_type_conformance`: the media type is the one documented for that status;
/// `unsupported_method`: a method the path does not document answers 405 with `Allow`.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,status_code_conformance,\
                      content_type_conformance,unsupported_method";

/// How long past its own `--max-time` a run may take (its start, the last requests, the
/// report) before it is killed as hung.
const GRACE: Duration = Duration::from_secs(45);

/// The fixed seed of a run, so a failure in CI reproduces locally (set
/// `SLUICE_SCHEMATHESIS_SEED` to explore others).
const DEFAULT_SEED: &str = "20261202";

/// A schemathesis run: its exit status and everything it printed.
struct Run {
    success: bool,
    output: String,
    took: Duration,
}

/// Run `schemathesis run` on the host's document with `token`, `max_time` seconds at most,
/// and `filters` (further `--include-*` / `--exclude-*` options).
fn schemathesis(dir: &Path, addr: &str, token: &str, max_time: u64, filters: &[&str]) -> Run {
    let seed = std::env::var("SLUICE_SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    let mut cmd = Command::new("schemathesis");
    cmd.arg("run")
        .arg(format!("http://{addr}/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", "25"])
        .args(["--max-time", &max_time.to_string()])
        // One worker: the host under test shares the 2 cores with the fuzzer.
        .args(["--workers", "1"])
        .args(["--request-timeout", "20"])
        .args(["--seed", &seed])
        // No example database left behind in the working directory.
        .args(["--generation-database", "none"])
        .args(["--no-color", "--output-truncate", "false"])
        .args(filters)
        .current_dir(dir)
        .stdin(Stdio::null());
    // The output goes to a file, read at the end: a run is waited for with a deadline.
    let log = dir.join("schemathesis.log");
    let file = std::fs::File::create(&log).unwrap();
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "schemathesis is not on PATH: run `bash scripts/setup.sh` (it pip-installs schemathesis 4.x)"
        ),
        Err(e) => panic!("running schemathesis: {e}"),
    };
    let deadline = started + Duration::from_secs(max_time) + GRACE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut output = std::fs::read_to_string(&log).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!(
            "\n(killed: still running {GRACE:?} past --max-time)"
        ));
    }
    Run {
        success: status.is_some_and(|s| s.success()),
        output,
        took: started.elapsed(),
    }
}

/// A request as the admin, checked to answer `want`; its body.
async fn admin(req: reqwest::RequestBuilder, token: &str, want: StatusCode) -> Value {
    let r = req.bearer_auth(token).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, want, "{body}");
    body
}

/// The JSON routes' body limit (`Limits::default().body_bytes`).
const JSON_BODY_LIMIT: usize = 1 << 20;

/// Whether `response` is one `op` documents: its status, not a 5xx, and the media type
/// documented for that status (no body where none is).
async fn conforms(op: &Value, response: reqwest::Response) -> Result<(), String> {
    let status = response.status();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
    let body = response.text().await.unwrap_or_default();
    let said = |why: &str| Err(format!("{status} {media:?} ({why}): {body:.300}"));
    if status.is_server_error() {
        return said("a server error");
    }
    let Some(documented) = op["responses"].get(status.as_str()) else {
        return said("status not documented");
    };
    let content = documented["content"].as_object();
    match (content, &media) {
        (Some(c), Some(m)) if c.contains_key(m) => Ok(()),
        (None, _) if body.is_empty() => Ok(()),
        _ => said("media type not documented for this status"),
    }
}

/// Requests a schema-driven generator does not make, sent to every operation of `doc` and
/// judged by it: each path parameter as invalid UTF-8 (`%FF`, which no generated string
/// encodes to), and each JSON body just past the JSON routes' limit. What does not
/// conform, one line each.
async fn probes(http: &reqwest::Client, base: &str, token: &str, doc: &Value) -> Vec<String> {
    let mut wrong = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let content = &op["requestBody"]["content"];
            let send = |url: String, body: Option<(&str, Vec<u8>)>| {
                let mut req = http.request(method.clone(), url).bearer_auth(token);
                if let Some((media, bytes)) = body {
                    req = req.header("content-type", media).body(bytes);
                }
                req.send()
            };
            // A small body of a media type the operation takes, so only the path is wrong.
            let small = if content.get("application/json").is_some() {
                Some(("application/json", b"{}".to_vec()))
            } else {
                content
                    .as_object()
                    .and_then(|c| c.keys().next())
                    .map(|m| (m.as_str(), b"x".to_vec()))
            };
            if path.contains('{') {
                let url = format!("{base}{}", with_params(path, "%FF"));
                if let Err(e) = conforms(op, send(url, small).await.unwrap()).await {
                    wrong.push(format!("{method} {path} with %FF parameters: {e}"));
                }
            }
            if content.get("application/json").is_some() {
                let mut big = vec![b'"'];
                big.resize(JSON_BODY_LIMIT + 1, b'a');
                big.push(b'"');
                let url = format!("{base}{}", with_params(path, "probe"));
                let r = send(url, Some(("application/json", big))).await.unwrap();
                if let Err(e) = conforms(op, r).await {
                    wrong.push(format!("{method} {path} with a body past 1 MiB: {e}"));
                }
            }
        }
    }
    wrong
}

/// `path` with each `{parameter}` replaced by `value`.
fn with_params(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_every_generated_request_as_its_document_says() {
    let version = Command::new("schemathesis").arg("--version").output();
    match version {
        Ok(v) if v.status.success() => {
            eprintln!("{}", String::from_utf8_lossy(&v.stdout).trim());
        }
        _ => panic!(
            "schemathesis is not installed: run `bash scripts/setup.sh` (it pip-installs schemathesis 4.x)"
        ),
    }

    let dir = tempfile::tempdir().unwrap();
    let host = Host::spawn(dir.path(), &[]);
    let addr = host.api_addr();
    let base = format!("http://{addr}");
    let admin_token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let admin_token = admin_token.trim();
    let http = reqwest::Client::new();

    // Something real behind the routes: a stage with a live version, a workflow, and a
    // trigger with its stream (so an event on `fuzz.*` is stored, and the trigger routes
    // describe a running consumer).
    admin(
        http.put(format!("{base}/v1/stages/echo"))
            .header("content-type", "application/wasm")
            .body(guests::read(guests::ECHO)),
        admin_token,
        StatusCode::CREATED,
    )
    .await;
    admin(
        http.put(format!("{base}/v1/workflows/flow")).json(&json!({
            "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}
        })),
        admin_token,
        StatusCode::CREATED,
    )
    .await;
    admin(
        http.post(format!("{base}/v1/triggers")).json(&json!({
            "name": "fuzz", "stream": "FUZZ", "stream_subjects": ["fuzz.>"],
            "filter_subject": "fuzz.>", "stage": "echo"
        })),
        admin_token,
        StatusCode::CREATED,
    )
    .await;
    admin(
        http.post(format!("{base}/v1/workflows/flow/executions"))
            .json(&json!({"name": "seeded", "input": {"a": 1}})),
        admin_token,
        StatusCode::CREATED,
    )
    .await;

    // The fuzzing token has every scope but `admin`: with `admin` it could revoke itself
    // (`DELETE /v1/tokens/{id}` with an id schemathesis read from `GET /v1/tokens`), and
    // every request after that would be a 401, fuzzing nothing. Without it the token routes
    // still answer (403, documented), and the runs after this one fuzz them as an admin.
    let created = admin(
        http.post(format!("{base}/v1/tokens"))
            .json(&json!({"name": "fuzz", "scopes": ["read", "invoke", "deploy"]})),
        admin_token,
        StatusCode::CREATED,
    )
    .await;
    let fuzz_token = created["token"].as_str().unwrap().to_owned();

    // First the requests schemathesis does not make, judged by the same document.
    let doc: Value = reqwest::get(format!("{base}/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wrong = probes(&http, &base, admin_token, &doc).await;
    assert!(
        wrong.is_empty(),
        "answers the document does not promise:\n{}",
        wrong.join("\n")
    );

    let mut report = Vec::new();
    let main = schemathesis(dir.path(), &addr, &fuzz_token, 60, &[]);
    report.push(("every operation, with read+invoke+deploy", main));

    // The token routes as an admin, in two runs so that no run can revoke a token it uses.
    // Creating and listing: everything but revocation (an admin may revoke any token, and
    // this run lists their ids). Then revocation alone: with no operation in the run that
    // answers an id, it can only name tokens that do not exist (a 16-hex-digit id is not
    // guessed), so its 204 path is left to `sluice-api`'s `tests/api.rs` and `tests/client.rs`, and its
    // 400, 404, 401 and 403 are fuzzed here.
    let created = admin(
        http.post(format!("{base}/v1/tokens"))
            .json(&json!({"name": "fuzz-admin", "scopes": ["admin"]})),
        admin_token,
        StatusCode::CREATED,
    )
    .await;
    let fuzz_admin = created["token"].as_str().unwrap();
    let tokens = schemathesis(
        dir.path(),
        &addr,
        fuzz_admin,
        15,
        &[
            "--include-tag",
            "tokens",
            "--exclude-operation-id",
            "revoke_token",
        ],
    );
    report.push(("creating and listing tokens, as an admin", tokens));
    let revoke = schemathesis(
        dir.path(),
        &addr,
        fuzz_admin,
        10,
        &["--include-operation-id", "revoke_token"],
    );
    report.push(("revoking tokens, as an admin", revoke));

    // The host is still well after the runs (whatever they deleted), and stops cleanly.
    admin(
        http.get(format!("{base}/readyz")),
        admin_token,
        StatusCode::OK,
    )
    .await;
    admin(
        http.get(format!("{base}/v1/stages")),
        admin_token,
        StatusCode::OK,
    )
    .await;
    // No run revoked a token it or the next one used.
    for token in [admin_token, fuzz_admin] {
        admin(http.get(format!("{base}/v1/tokens")), token, StatusCode::OK).await;
    }
    host.stop();

    for (what, run) in &report {
        eprintln!("schemathesis over {what}: {:.1?}", run.took);
        if std::env::var_os("SLUICE_SCHEMATHESIS_VERBOSE").is_some() {
            eprintln!("{}", run.output);
        }
    }
    let failed: Vec<_> = report.iter().filter(|(_, r)| !r.success).collect();
    assert!(
        failed.is_empty(),
        "schemathesis found answers the document does not promise:\n{}",
        failed
            .iter()
            .map(|(what, r)| format!("==== {what} ====\n{}", r.output))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
