//! The CLI's workflow and trigger commands against a real `sluice up` (managed nats-server,
//! real guests): each command run as a subprocess and judged by its stdout, stderr and exit
//! code, as a script would use it. A workflow deployed, replaced and refused with every
//! problem printed; executions started and waited for (exit 0 with the output, exit 4 when
//! they fail), described, listed, paged through, stopped; triggers added on a stage and on a
//! workflow, listed, described with their consumer, deleted.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_test_artifacts as guests;

mod common;
use common::Host;

/// A client of one host: `sluice ARGS --url URL --data-dir DATA [EXTRA]`, with no connection
/// settings of the test's environment leaking in.
struct Cli {
    url: String,
    data: String,
}

impl Cli {
    fn with(&self, args: &[&str], extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .args(["--url", &self.url, "--data-dir", &self.data])
            .args(extra)
            .env_remove("SLUICE_URL")
            .env_remove("SLUICE_TOKEN")
            .env_remove("SLUICE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("running sluice")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.with(args, &[])
    }

    /// Run, expect success, and give stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run with `--json`, expect `want`, and parse stdout.
    fn json_exit(&self, args: &[&str], want: i32) -> Value {
        let o = self.with(args, &["--json"]);
        assert_eq!(code(&o), want, "{args:?}: {}", show(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)))
    }

    fn json(&self, args: &[&str]) -> Value {
        self.json_exit(args, 0)
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

/// Write `v` to `dir/name`; its path.
fn file(dir: &Path, name: &str, v: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).unwrap();
    path.display().to_string()
}

/// Poll `f` until it gives `Some`, for at most 30 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn workflows_and_triggers_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::spawn(dir.path(), &[]);
    let cli = Cli {
        url: format!("http://{}", host.api_addr()),
        data: dir.path().join("data").display().to_string(),
    };
    let d = dir.path();
    cli.ok(&["stage", "deploy", "pass", guests::PASSTHROUGH]);

    // Deploy: created, then replaced; an invalid definition prints every problem (exit 1),
    // a file that is not JSON is a usage error (exit 2).
    let flow = json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "pass", "Next": "B"},
            "B": {"Type": "Pass", "Result": {"done": true}, "ResultPath": "$.b", "End": true}
        }
    });
    let flow_file = file(d, "flow.json", &flow);
    assert_eq!(
        cli.ok(&["workflow", "deploy", "flow", &flow_file]).trim(),
        "flow: created (STANDARD)"
    );
    assert_eq!(
        cli.ok(&[
            "workflow", "deploy", "flow", &flow_file, "--type", "standard"
        ])
        .trim(),
        "flow: replaced (STANDARD)"
    );
    let mut bad = flow;
    bad["States"]["A"]["Next"] = json!("Nowhere");
    bad["States"]["B"]["Type"] = json!("Teleport");
    let o = cli.run(&["workflow", "deploy", "bad", &file(d, "bad.json", &bad)]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: the definition is invalid ("),
        "{err}"
    );
    assert!(err.contains("\n  /definition/States/A/Next: "), "{err}");
    assert!(err.contains("\n  /definition/States/B"), "{err}");
    let o = cli.with(
        &["workflow", "deploy", "bad", &file(d, "bad.json", &bad)],
        &["--json"],
    );
    let problem: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        problem["problems"].as_array().unwrap().len() >= 2,
        "{problem}"
    );
    std::fs::write(d.join("not.json"), "{States").unwrap();
    let not_json = d.join("not.json").display().to_string();
    let o = cli.run(&["workflow", "deploy", "bad", &not_json]);
    assert_eq!(code(&o), 2, "{}", show(&o));

    // Start and wait: the output alone on stdout, the outcome on stderr.
    let o = cli.run(&[
        "workflow",
        "start",
        "flow",
        r#"{"x": 1}"#,
        "--name",
        "run-1",
        "--wait",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        json!({"x": 1, "b": {"done": true}})
    );
    assert!(
        stderr(&o).contains("flow/run-1: SUCCEEDED in "),
        "{}",
        show(&o)
    );
    // The name of a closed execution cannot be started again: the API's 409, exit 1.
    let o = cli.run(&[
        "workflow",
        "start",
        "flow",
        r#"{"x": 1}"#,
        "--name",
        "run-1",
    ]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        stderr(&o).contains("ExecutionAlreadyExists"),
        "{}",
        show(&o)
    );
    // Without a name: a fresh one, printed.
    let out = cli.ok(&["workflow", "start", "flow"]);
    assert!(
        out.starts_with("flow/") && out.trim_end().ends_with(": started"),
        "{out}"
    );

    // A failing execution waited for: exit 4, its error and cause; with --json, the
    // description on stdout.
    let fail = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Order.Rejected", "Cause": "no stock"}}});
    cli.ok(&[
        "workflow",
        "deploy",
        "failing",
        &file(d, "fail.json", &fail),
    ]);
    let o = cli.run(&["workflow", "start", "failing", "--name", "f-1", "--wait"]);
    assert_eq!(code(&o), 4, "{}", show(&o));
    assert!(
        stderr(&o).contains("failing/f-1 FAILED in ")
            && stderr(&o).contains(": Order.Rejected: no stock"),
        "{}",
        show(&o)
    );
    let failed = cli.json_exit(
        &["workflow", "start", "failing", "--name", "f-2", "--wait"],
        4,
    );
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["error"]["error"], "Order.Rejected");

    // Describe, list (every status, or one), history (forwards and back).
    let out = cli.ok(&["workflow", "describe", "flow", "run-1"]);
    assert!(out.contains("status:    SUCCEEDED"), "{out}");
    assert!(out.contains(r#"output:    {"#), "{out}");
    let out = cli.ok(&["workflow", "describe", "failing", "f-1"]);
    assert!(
        out.contains("error:     Order.Rejected") && out.contains("cause:     no stock"),
        "{out}"
    );
    let o = cli.run(&["workflow", "describe", "flow", "nope"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let out = cli.ok(&["workflow", "list", "failing"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines.len() == 3, "{out}");
    assert!(
        lines[1].starts_with("f-2") && lines[1].contains("Order.Rejected"),
        "{out}"
    );
    let listed = cli.json(&["workflow", "list", "flow", "--status", "succeeded"]);
    let listed = listed["executions"].as_array().unwrap();
    assert!(listed.iter().any(|e| e["name"] == "run-1"), "{listed:?}");
    assert!(
        listed.iter().all(|e| e["status"] == "SUCCEEDED"),
        "{listed:?}"
    );
    assert_eq!(
        cli.ok(&["workflow", "list", "flow", "--status", "FAILED"])
            .trim(),
        "no FAILED executions of flow"
    );
    let o = cli.run(&["workflow", "list", "flow", "--status", "DONE"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let out = cli.ok(&["workflow", "history", "flow", "run-1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(lines[1].contains("ExecutionStarted"), "{out}");
    assert!(
        lines.last().unwrap().contains("ExecutionSucceeded"),
        "{out}"
    );
    let h = cli.json(&["workflow", "history", "flow", "run-1", "--reverse"]);
    let events = h["events"].as_array().unwrap();
    assert_eq!(events.len(), lines.len() - 1);
    assert_eq!(events[0]["type"], "ExecutionSucceeded");
    assert_eq!(events.last().unwrap()["id"], 1);

    // Stop a waiting execution (its workflow cannot be deleted while it runs).
    let sleepy =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}});
    cli.ok(&[
        "workflow",
        "deploy",
        "sleepy",
        &file(d, "sleepy.json", &sleepy),
    ]);
    assert_eq!(
        cli.ok(&["workflow", "start", "sleepy", "--name", "z"])
            .trim(),
        "sleepy/z: started"
    );
    assert!(
        cli.ok(&["workflow", "start", "sleepy", "--name", "z"])
            .contains("already running"),
    );
    let o = cli.run(&["workflow", "delete", "sleepy"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(stderr(&o).contains("running executions"), "{}", show(&o));
    let running = cli.ok(&["workflow", "list", "sleepy", "--status", "RUNNING"]);
    assert!(
        running.lines().nth(1).unwrap().starts_with("z "),
        "{running}"
    );
    assert_eq!(
        cli.ok(&[
            "workflow",
            "stop",
            "sleepy",
            "z",
            "--error",
            "Ops.Cancelled",
            "--cause",
            "by the test"
        ])
        .trim(),
        "sleepy/z: stopped (ABORTED)"
    );
    let stopped = cli.json(&["workflow", "describe", "sleepy", "z"]);
    assert_eq!(stopped["status"], "ABORTED");
    assert_eq!(
        stopped["error"],
        json!({"error": "Ops.Cancelled", "cause": "by the test"})
    );
    assert_eq!(
        cli.ok(&["workflow", "delete", "sleepy"]).trim(),
        "sleepy: deleted"
    );

    // Triggers: one on a stage (its output back into its own stream, outside its filter),
    // one starting the workflow.
    assert_eq!(cli.ok(&["trigger", "list"]).trim(), "no triggers");
    let t = json!({"name": "t", "stream": "IN", "stream_subjects": ["in.>", "out.>"],
        "filter_subject": "in.>", "stage": "pass", "output_subject": "out.x"});
    assert_eq!(
        cli.ok(&["trigger", "add", &file(d, "t.json", &t)]).trim(),
        "t: running, stage pass on in.> of stream IN"
    );
    let wf = json!({"name": "wf", "stream": "WF", "stream_subjects": ["wf.>"],
        "filter_subject": "wf.in", "workflow": "flow", "batch_size": 10});
    cli.ok(&["trigger", "add", &file(d, "wf.json", &wf)]);
    let o = cli.run(&["trigger", "add", &file(d, "t.json", &t)]);
    assert_eq!(code(&o), 1, "a second trigger named t: {}", show(&o));
    let mut nostage = t;
    nostage["name"] = json!("t2");
    nostage["stage"] = json!("missing");
    let o = cli.run(&["trigger", "add", &file(d, "t2.json", &nostage)]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let out = cli.ok(&["trigger", "list"]);
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    assert!(out.contains("stage pass") && out.contains("out.x"), "{out}");
    assert!(out.contains("workflow flow"), "{out}");

    cli.ok(&["publish", "in.a", r#"{"n": 1}"#, "--id", "in-1"]);
    cli.ok(&["publish", "wf.in", r#"{"x": 7}"#, "--id", "wf-1"]);
    // The stage's event is acknowledged, and its output is in the stream: two messages.
    let described = eventually("the trigger to take its event", || {
        let v = cli.json(&["trigger", "describe", "t"]);
        (v["consumer"]["ack_floor_seq"] == 1 && v["consumer"]["pending"] == 0).then_some(v)
    });
    assert_eq!(described["definition"]["batch_size"], 100, "{described}");
    let out = cli.ok(&["trigger", "describe", "t"]);
    assert!(out.contains("consumer: 0 pending"), "{out}");
    assert!(out.contains("\"output_subject\": \"out.x\""), "{out}");
    // The workflow's trigger started an execution that succeeded.
    eventually("the triggered execution", || {
        let v = cli.json(&["workflow", "list", "flow", "--status", "SUCCEEDED"]);
        v["executions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["input"] == json!({"x": 7}))
            .cloned()
    });
    let o = cli.run(&["workflow", "delete", "flow"]);
    assert_eq!(code(&o), 1, "a trigger starts it: {}", show(&o));

    assert_eq!(cli.ok(&["trigger", "delete", "t"]).trim(), "t: deleted");
    cli.ok(&["trigger", "delete", "wf"]);
    let o = cli.run(&["trigger", "describe", "t"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert_eq!(cli.ok(&["trigger", "list"]).trim(), "no triggers");
    host.stop();
}
