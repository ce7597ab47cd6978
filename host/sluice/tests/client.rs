//! The CLI's client commands against a real `sluice up` (managed nats-server, real guests):
//! each command run as a subprocess, judged by its stdout, stderr and exit code, the way a
//! script would use it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sluice_test_artifacts as guests;

mod common;
use common::Host;

/// `sluice ARGS` with no connection settings of the test's environment leaking in.
fn bare(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .env_remove("SLUICE_URL")
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_DATA_DIR")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("running sluice");
    if let Some(bytes) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// A client of one host: `sluice ARGS --url URL --data-dir DATA [EXTRA]`.
struct Cli {
    url: String,
    data: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        self.with(args, &[], None)
    }

    fn with(&self, args: &[&str], extra: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut all = args.to_vec();
        all.extend(["--url", &self.url, "--data-dir", &self.data]);
        all.extend(extra);
        bare(&all, &[], stdin)
    }

    /// Run, expect success, and give stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run with `--json`, expect success, and parse stdout.
    fn json(&self, args: &[&str]) -> Value {
        let o = self.with(args, &["--json"], None);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)))
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_client_commands_drive_a_host_with_exit_codes_scripts_can_trust() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::spawn(dir.path(), &[]);
    let cli = Cli {
        url: format!("http://{}", host.api_addr()),
        data: dir.path().join("data").display().to_string(),
    };
    let config = dir.path().join("counter.json");
    std::fs::write(&config, r#"{"grants": {"kv_buckets": ["counters"]}}"#).unwrap();

    // Deploy with a configuration (multipart); the line says what went live.
    let out = cli.ok(&[
        "stage",
        "deploy",
        "counter",
        guests::KV_COUNTER,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(out.starts_with("counter: version 1 (sha256 "), "{out}");
    assert!(out.contains(", stage) is live"), "{out}");
    let out = cli.ok(&["stage", "list"]);
    assert!(
        out.lines().next().unwrap().starts_with("NAME") && out.contains("live=1"),
        "{out}"
    );
    let out = cli.ok(&["stage", "describe", "counter"]);
    assert!(out.contains("kv_buckets=counters"), "{out}");

    // An invocation with a key, twice: the same output, the second a replay.
    let event = r#"{"bucket":"counters","key":"k","delta":1}"#;
    let first = cli.run(&["stage", "invoke", "counter", event, "--key", "order-1"]);
    assert_eq!(code(&first), 0, "{}", show(&first));
    assert_eq!(
        serde_json::from_slice::<Value>(&first.stdout).unwrap(),
        json!({"value": 1})
    );
    assert!(!stderr(&first).contains("replayed"), "{}", show(&first));
    let again = cli.run(&["stage", "invoke", "counter", event, "--key", "order-1"]);
    assert_eq!(code(&again), 0, "{}", show(&again));
    assert_eq!(again.stdout, first.stdout);
    assert!(stderr(&again).contains("replayed"), "{}", show(&again));
    // The data from a file and from stdin; without a key, each is a new event.
    let file = dir.path().join("event.json");
    std::fs::write(&file, event).unwrap();
    let at = format!("@{}", file.display());
    let out = cli.ok(&["stage", "invoke", "counter", &at]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"value": 2})
    );
    let o = cli.with(
        &["stage", "invoke", "counter", "-"],
        &[],
        Some(event.as_bytes()),
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        json!({"value": 3}),
        "{}",
        show(&o)
    );

    // The stage's named error and the sandbox's trap: exit 4, the error named on stderr;
    // with --json the problem is on stdout too.
    let o = cli.run(&["stage", "invoke", "counter", r#"{"bucket":1}"#]);
    assert_eq!(code(&o), 4, "{}", show(&o));
    assert!(
        stderr(&o).starts_with("error: Input.Invalid"),
        "{}",
        show(&o)
    );
    let o = cli.with(&["stage", "invoke", "counter", "{}"], &["--json"], None);
    assert_eq!(code(&o), 4, "{}", show(&o));
    let problem: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(problem["error"], "Input.Invalid");
    cli.ok(&["stage", "deploy", "panics", guests::TRAP_PANIC]);
    let o = cli.run(&["stage", "invoke", "panics"]);
    assert_eq!(code(&o), 4, "{}", show(&o));
    assert!(stderr(&o).contains("Sandbox.Trap"), "{}", show(&o));
    // DATA that is not JSON is a usage error, sent nowhere.
    let o = cli.run(&["stage", "invoke", "counter", "{bucket: 1}"]);
    assert_eq!(code(&o), 2, "{}", show(&o));

    // --json is the API's JSON.
    let list = cli.json(&["stage", "list"]);
    assert_eq!(list["stages"][0]["name"], "counter");
    assert_eq!(list["stages"][1]["name"], "panics");

    // A raw upload makes version 2 (keeping the live configuration); an alias pins 1.
    let out = cli.ok(&["stage", "deploy", "counter", guests::KV_COUNTER]);
    assert!(out.starts_with("counter: version 2 "), "{out}");
    let out = cli.ok(&["stage", "alias", "counter", "stable", "1"]);
    assert_eq!(out.trim(), "counter: alias stable → version 1");
    let d = cli.json(&["stage", "describe", "counter"]);
    assert_eq!(d["aliases"], json!({"live": 2, "stable": 1}));
    assert_eq!(
        d["versions"][1]["config"]["grants"]["kv_buckets"],
        json!(["counters"])
    );
    let o = cli.run(&["stage", "invoke", "counter:stable", event]);
    assert!(stderr(&o).contains("version 1"), "{}", show(&o));
    let o = cli.run(&["stage", "alias", "counter", "stable", "9"]);
    assert_eq!(code(&o), 1, "{}", show(&o));

    // Delete: gone (describing it is a refusal, 404).
    assert_eq!(
        cli.ok(&["stage", "delete", "panics"]).trim(),
        "panics: deleted"
    );
    let o = cli.run(&["stage", "describe", "panics"]);
    assert_eq!(code(&o), 1, "{}", show(&o));

    // Publishing where no stream captures the subject: the API's 404, exit 1.
    let o = cli.run(&["publish", "nowhere.at.all", r#"{"a":1}"#, "--id", "e-1"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(stderr(&o).contains("no stream"), "{}", show(&o));

    // Tokens: a read-only one reads, may not deploy, and stops working once revoked.
    let o = cli.run(&["token", "create", "ci", "--scope", "read"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let ro = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    assert!(ro.starts_with("sl_"), "{ro}");
    let tokens = cli.json(&["token", "list"]);
    let id = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .expect("the new token listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(cli.ok(&["token", "list"]).contains(&id));
    let as_ro = |args: &[&str]| cli.with(args, &["--token", &ro], None);
    assert_eq!(code(&as_ro(&["stage", "list"])), 0);
    let o = as_ro(&["stage", "delete", "counter"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        stderr(&o).contains("lacks the scope 'deploy'"),
        "{}",
        show(&o)
    );
    assert_eq!(
        cli.ok(&["token", "revoke", &id]).trim(),
        format!("token {id}: revoked")
    );
    let o = as_ro(&["stage", "list"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        stderr(&o).contains("the token came from --token"),
        "{}",
        show(&o)
    );
    let o = cli.run(&["token", "create", "x", "--scope", "root"]);
    assert_eq!(code(&o), 2, "{}", show(&o));

    // The environment is read too: SLUICE_URL and SLUICE_DATA_DIR.
    let o = bare(
        &["stage", "list", "--json"],
        &[("SLUICE_URL", &cli.url), ("SLUICE_DATA_DIR", &cli.data)],
        None,
    );
    assert_eq!(code(&o), 0, "{}", show(&o));

    // No token anywhere: a usage error naming the three ways to give one.
    let empty = dir.path().join("empty");
    let o = bare(
        &[
            "stage",
            "list",
            "--url",
            &cli.url,
            "--data-dir",
            empty.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code(&o), 2, "{}", show(&o));
    for way in ["--token", "SLUICE_TOKEN", "admin.token"] {
        assert!(stderr(&o).contains(way), "{way}: {}", show(&o));
    }
    host.stop();

    // Nothing listens: exit 3.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = bare(
        &["stage", "list", "--url", &url, "--token", "sl_x"],
        &[],
        None,
    );
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert!(stderr(&o).contains("cannot reach the API"), "{}", show(&o));
    assert!(Path::new(&cli.data).join("admin.token").exists());
}
