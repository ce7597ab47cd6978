//! The `sluice` binary end to end: real processes, real components built from source.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use sluice_test_artifacts as guests;

fn sluice(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("running sluice")
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

#[test]
fn stage_run_prints_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"id": "evt-1", "type": "order.created", "data": {"orderId": "o-1"}}"#,
    )
    .unwrap();
    let o = sluice(
        dir.path(),
        &[
            "stage",
            "run",
            guests::ECHO,
            "--event",
            event.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout_json(&o);
    assert_eq!(out["id"], "evt-1");
    assert_eq!(out["data"]["orderId"], "o-1");
    // The guest's stdout went to the log (stderr), tagged with the event id, not to our stdout.
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("evt-1"), "{log}");
}

#[test]
fn stage_run_prints_a_named_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"id": "evt-2", "data": {}}"#).unwrap();
    let o = sluice(
        dir.path(),
        &[
            "stage",
            "run",
            guests::TRAP_PANIC,
            "--event",
            event.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = stdout_json(&o);
    assert_eq!(out["error"], "Sandbox.Trap");
    assert!(
        out["cause"].as_str().unwrap().contains("deliberate panic"),
        "{out}"
    );

    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"limits": {"deadline": 100}}"#).unwrap();
    let o = sluice(
        dir.path(),
        &[
            "stage",
            "run",
            guests::INFINITE_LOOP,
            "--event",
            event.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout_json(&o)["error"], "Sandbox.Timeout");
}

#[test]
fn bad_inputs_are_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, "{not json").unwrap();
    let o = sluice(
        dir.path(),
        &[
            "stage",
            "run",
            guests::ECHO,
            "--event",
            event.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("parsing the event"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    std::fs::write(&event, r#"{"id": "e"}"#).unwrap();
    let not_wasm = dir.path().join("stage.wasm");
    std::fs::write(&not_wasm, "hello").unwrap();
    let o = sluice(
        dir.path(),
        &[
            "stage",
            "run",
            not_wasm.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a WebAssembly component"));
}

#[test]
fn demo_runs_the_order_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let components = Path::new(guests::VALIDATE_ORDER).parent().unwrap();
    let o = sluice(
        dir.path(),
        &["demo", "--components", components.to_str().unwrap()],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for expected in [
        "o-1001   u-alice      $33.45  stored and notified",
        "Order.Invalid (permanent, at validate-order)",
        "Payment.Declined (permanent, at process-payment)",
        "Inventory.OutOfStock (permanent, at process-inventory)",
        "Payment.Unavailable (retryable, at process-payment)",
        "Stats: 4 orders, revenue $1166.35",
        "Stock left: GPU-1 1, LAMP-7 7",
        r#"Orders of u-alice (index by-user, oldest first): ["o-1001", "o-1003"]"#,
        "Redelivered all 39 stage events: 38 answered from their dedupe records, 1 ran again",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

/// With a data directory the state is a redb file: a second run over it finds every order
/// already processed, and the totals unchanged.
#[test]
fn demo_state_in_redb_survives_and_dedupes_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let components = Path::new(guests::VALIDATE_ORDER).parent().unwrap();
    let args = [
        "demo",
        "--components",
        components.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let first = sluice(dir.path(), &args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(data.join("sluice.redb").is_file());
    let second = sluice(dir.path(), &args);
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{out}");
    assert_eq!(
        out.matches("already processed (at validate-order").count(),
        8,
        "{out}"
    );
    assert!(out.contains("Stats: 4 orders, revenue $1166.35"), "{out}");
    assert!(out.contains("Stock left: GPU-1 1, LAMP-7 7"), "{out}");
}

/// `sluice demo --nats`: a real nats-server and the host; every sample order comes out as a
/// notification or a dead letter naming its error.
#[test]
fn demo_over_nats_notifies_or_dead_letters_every_order() {
    let dir = tempfile::tempdir().unwrap();
    let components = Path::new(guests::VALIDATE_ORDER).parent().unwrap();
    let data = dir.path().join("data");
    let o = sluice(
        dir.path(),
        &[
            "demo",
            "--nats",
            "--components",
            components.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for expected in [
        "o-1001   notified: Order o-1001 confirmed: $33.45 (msg id demo-order-0/0/0/0/0/0/0/0)",
        "o-1004   dead letter from orders.new: Order.Invalid",
        "o-1005   dead letter from orders.priced: Payment.Declined",
        "o-1006   dead letter from orders.paid: Inventory.OutOfStock",
        "o-1007   dead letter from orders.priced: Payment.Unavailable: payment provider for method flaky is unavailable (after 3 deliveries)",
        "stats: 4 orders, revenue $1166.35; GPU-1 stock left 1",
        r#"orders of u-alice (table index by-user): ["o-1001", "o-1003"]"#,
        // The same orders as durable workflow executions.
        "o-1001   workflow Succeeded: notified notifications.order",
        "o-1004   workflow Failed: Order.Invalid",
        "o-1006   workflow Failed: Inventory.OutOfStock",
        "o-1007   workflow Failed: Payment.Unavailable",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

/// Peak resident memory of a `sluice stage run` of `guest` on `data`, in bytes, sampled from
/// `/proc/<pid>/status` (`VmHWM`, the high-water mark, so a sample after the peak still shows
/// it) until the process exits; also its stdout.
fn peak_rss_of_stage_run(dir: &Path, guest: &str, data: &Value, config: &Value) -> (u64, Value) {
    let event = dir.join("flood-event.json");
    std::fs::write(
        &event,
        serde_json::json!({"id": "flood-1", "data": data}).to_string(),
    )
    .unwrap();
    let config_file = dir.join("flood-config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--cache-dir")
        .arg(dir)
        .args(["stage", "run", guest, "--event"])
        .arg(&event)
        .arg("--config")
        .arg(&config_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running sluice");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0_u64;
    while child.try_wait().expect("waiting for sluice").is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            if let Some(kib) = kib {
                peak = peak.max(kib * 1024);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = child.wait_with_output().expect("sluice output");
    (peak, stdout_json(&out))
}

/// The issue's measurement: a stage writing 1 MiB values in a loop drove `sluice stage run` to
/// 3.4 GB of RSS within a 2 s deadline. Now the event's writes stop at its cap and the
/// process grows by less than 256 MiB however long the guest keeps pushing (600 MiB offered
/// here: the test binary is a debug build, where each 1 MiB crossing costs ~10 ms).
#[test]
fn a_write_flood_leaves_the_host_s_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "limits": {"deadline": 30000},
        "grants": {"kv_buckets": ["flood"]}
    });
    let flood = |attempts: u64| serde_json::json!({"bucket": "flood", "value_bytes": 1 << 20, "attempts": attempts});
    // A baseline of the same process doing one write, so what the engine and the guest's
    // own memory cost is not counted.
    let (baseline, out) =
        peak_rss_of_stage_run(dir.path(), guests::WRITE_FLOOD, &flood(1), &config);
    assert_eq!(out["accepted"], 1, "{out}");
    let (peak, out) = peak_rss_of_stage_run(dir.path(), guests::WRITE_FLOOD, &flood(600), &config);
    assert_eq!(out["error"], "Flood.Refused", "{out}");
    let cause = out["cause"].as_str().unwrap();
    assert!(cause.starts_with("3 of 600 accepted"), "{cause}");
    assert!(cause.contains("max_write_bytes_per_event"), "{cause}");
    let grew = peak.saturating_sub(baseline);
    assert!(
        baseline > 0 && grew < 256 << 20,
        "RSS grew by {} MiB (baseline {} MiB, peak {} MiB) for 600 MiB offered",
        grew >> 20,
        baseline >> 20,
        peak >> 20
    );
}

/// A component whose one function has `n` instructions' worth of additions: Cranelift's memory
/// and time grow with it (60,000 took ~585 MB and 44 s to compile in a debug build).
fn huge_function_component(dir: &Path, n: usize) -> std::path::PathBuf {
    let body: String = (0..n)
        .map(|i| format!("local.get 0 i32.const {i} i32.add local.set 0\n"))
        .collect();
    let wat = format!(
        "(component (core module (func (export \"f\") (param i32) (result i32)\n{body} local.get 0)))"
    );
    let path = dir.join("huge.wat");
    std::fs::write(&path, wat).unwrap();
    path
}

#[test]
fn a_compilation_past_its_memory_or_time_budget_is_stopped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let huge = huge_function_component(dir.path(), 60_000);
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"id": "e-1", "data": {}}"#).unwrap();
    let run = |budget: &[&str]| {
        let start = std::time::Instant::now();
        let mut args = budget.to_vec();
        args.extend([
            "stage",
            "run",
            huge.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
        ]);
        let o = sluice(dir.path(), &args);
        (o, start.elapsed())
    };
    let (o, took) = run(&["--compile-memory-mib", "64"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("needed more memory than the budget of 67108864 bytes"),
        "{err}"
    );
    assert!(
        took < std::time::Duration::from_secs(20),
        "stopped only after {took:?}"
    );
    let (o, took) = run(&["--compile-timeout-ms", "500"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("took longer than the budget of 500ms"),
        "{err}"
    );
    assert!(
        took < std::time::Duration::from_secs(10),
        "stopped only after {took:?}"
    );
}

/// `sluice workflow ARGS...` with the guests' release directory as `--components` when
/// `components` is set.
fn workflow(cache: &Path, args: &[&str]) -> Output {
    let mut all = vec!["workflow"];
    all.extend_from_slice(args);
    sluice(cache, &all)
}

fn guests_dir() -> &'static str {
    Path::new(guests::PASSTHROUGH)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Run `def` on `input` with the guests as components; (exit code, stdout lines).
fn workflow_run(dir: &Path, def: &Value, input: &Value, extra: &[&str]) -> (i32, Vec<String>) {
    let def = write(dir, "def.json", def);
    let input = write(dir, "input.json", input);
    let mut args = vec![
        "run",
        def.as_str(),
        "--input",
        input.as_str(),
        "--components",
        guests_dir(),
    ];
    args.extend_from_slice(extra);
    let o = workflow(dir, &args);
    let code = o.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (code, stdout(&o).lines().map(str::to_owned).collect())
}

#[test]
fn workflow_validate_prints_ok_or_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.json",
        &serde_json::json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
    );
    let o = workflow(dir.path(), &["validate", &good]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "OK\n");

    let broken = write(
        dir.path(),
        "broken.json",
        &serde_json::json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Wait", "End": true}
        }}),
    );
    let o = workflow(dir.path(), &["validate", &broken]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "SCHEMA_VALIDATION_FAILED: Exactly one of Seconds, SecondsPath, Timestamp and TimestampPath is required at /States/B\n\
         MISSING_TRANSITION_TARGET: Missing 'Next' target: Nowhere at /States/A/Next\n\
         UNREACHABLE_STATE: State \"B\" is not reachable at /States/B\n"
    );

    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "{\"StartAt\": ").unwrap();
    let o = workflow(dir.path(), &["validate", not_json.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).starts_with("INVALID_JSON_DESCRIPTION: "),
        "{}",
        stdout(&o)
    );
}

#[test]
fn workflow_run_runs_tasks_on_stages() {
    let dir = tempfile::tempdir().unwrap();
    let def = serde_json::json!({"StartAt": "Echo", "States": {
        "Echo": {"Type": "Task", "Resource": "passthrough", "ResultPath": "$.echoed", "Next": "Bytes"},
        // The stem `lambda_return_bytes` answers to `lambda-return-bytes` too; its output is
        // not JSON and arrives as a string.
        "Bytes": {"Type": "Task", "Resource": "lambda-return-bytes", "ResultPath": "$.text", "End": true}
    }});
    let (code, lines) = workflow_run(dir.path(), &def, &serde_json::json!({"n": 1}), &[]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines, [r#"{"n":1,"echoed":{"n":1},"text":"HelloWorld!"}"#]);

    // A Map's iterations run their Tasks on several threads at once: each takes its own
    // worker from the stage's pool.
    let def = serde_json::json!({"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "Echo", "States": {
            "Echo": {"Type": "Task", "Resource": "passthrough", "End": true}}}}
    }});
    let (code, lines) = workflow_run(
        dir.path(),
        &def,
        &serde_json::json!([1, 2, 3, 4, 5, 6]),
        &[],
    );
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines, ["[1,2,3,4,5,6]"]);
}

#[test]
fn workflow_run_catches_a_stage_error_and_reports_an_uncaught_one() {
    let dir = tempfile::tempdir().unwrap();
    let raise = "arn:aws:lambda:us-east-1:000000000000:function:lambda-raise";
    let caught = serde_json::json!({"StartAt": "Raise", "States": {
        "Raise": {"Type": "Task", "Resource": raise, "End": true,
            "Catch": [{"ErrorEquals": ["Exception"], "ResultPath": "$.error", "Next": "Handled"}]},
        "Handled": {"Type": "Pass", "End": true}
    }});
    let (code, lines) = workflow_run(dir.path(), &caught, &serde_json::json!({"n": 1}), &[]);
    assert_eq!(code, 0, "{lines:?}");
    let out: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(out["n"], 1);
    assert_eq!(out["error"]["Error"], "Exception");
    let cause: Value = serde_json::from_str(out["error"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["errorMessage"], "Some exception was raised.");

    let uncaught = serde_json::json!({"StartAt": "Raise", "States": {
        "Raise": {"Type": "Task", "Resource": raise, "End": true}
    }});
    let (code, lines) = workflow_run(dir.path(), &uncaught, &serde_json::json!({}), &[]);
    assert_eq!(code, 1);
    assert_eq!(lines[0], "error: Exception");
    assert!(
        lines[1].starts_with(r#"cause: {"errorMessage": "Some exception was raised.", "#),
        "{lines:?}"
    );

    // A stage no component offers fails the Task, catchably.
    let missing = serde_json::json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "no-such-stage", "End": true}
    }});
    let (code, lines) = workflow_run(dir.path(), &missing, &serde_json::json!({}), &[]);
    assert_eq!(code, 1);
    assert_eq!(lines[0], "error: Sluice.StageNotFound");
    assert!(lines[1].contains("'no-such-stage'"), "{lines:?}");
}

#[test]
fn workflow_run_times_a_task_out_and_maps_declared_stage_names() {
    let dir = tempfile::tempdir().unwrap();
    let def = serde_json::json!({"StartAt": "Sleep", "States": {
        "Sleep": {"Type": "Task", "Resource": "lambda-sleep", "TimeoutSeconds": 1, "End": true}
    }});
    let started = std::time::Instant::now();
    let (code, lines) = workflow_run(dir.path(), &def, &serde_json::json!({}), &[]);
    assert_eq!(code, 1);
    assert_eq!(lines, ["error: States.Timeout", "cause: "]);
    // The 1 s timeout ended the 60 s sleep (compiling the component comes on top).
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // A stage sends no heartbeats: HeartbeatSeconds (here from a path) before TimeoutSeconds
    // ends the attempt as States.HeartbeatTimeout, which Catch matches by name.
    let def = serde_json::json!({"StartAt": "Sleep", "States": {
        "Sleep": {"Type": "Task", "Resource": "lambda-sleep", "TimeoutSeconds": 50,
            "HeartbeatSecondsPath": "$.beat", "Next": "Done",
            "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Stalled"}]},
        "Stalled": {"Type": "Pass", "End": true},
        "Done": {"Type": "Succeed"}
    }});
    let started = std::time::Instant::now();
    let (code, lines) = workflow_run(dir.path(), &def, &serde_json::json!({"beat": 1}), &[]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines, [r#"{"Error":"States.HeartbeatTimeout","Cause":""}"#]);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // A declaration names the stages: `echo-back` is the passthrough component.
    let decl = write(
        dir.path(),
        "decl.json",
        &serde_json::json!({"stages": [{"name": "echo-back", "component": "passthrough.wasm",
            "config": {"limits": {"deadline": 2000}}}], "triggers": []}),
    );
    let def = serde_json::json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "echo-back", "End": true}
    }});
    let (code, lines) = workflow_run(
        dir.path(),
        &def,
        &serde_json::json!({"k": "v"}),
        &["--config", &decl],
    );
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines, [r#"{"k":"v"}"#]);
}

#[test]
fn workflow_run_history_lists_every_event_in_step_functions_shape() {
    let dir = tempfile::tempdir().unwrap();
    let def = serde_json::json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:passthrough", "End": true}
    }});
    let (code, lines) = workflow_run(
        dir.path(),
        &def,
        &serde_json::json!({"a": 1}),
        &["--history"],
    );
    assert_eq!(code, 0, "{lines:?}");
    let (result, events) = lines.split_last().unwrap();
    assert_eq!(result, r#"{"a":1}"#);
    let events: Vec<Value> = events
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded",
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["id"], i as u64 + 1);
        assert_eq!(e["previousEventId"], i as u64);
        let ts = e["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
            "{ts}"
        );
    }
    assert_eq!(
        events[0]["executionStartedEventDetails"]["input"],
        serde_json::json!({"a": 1})
    );
    assert_eq!(events[1]["stateEnteredEventDetails"]["name"], "P");
    assert_eq!(
        events[6]["lambdaFunctionSucceededEventDetails"]["output"],
        serde_json::json!({"a": 1})
    );
    // AWS gives LambdaFunctionStarted no details.
    assert_eq!(events[5].as_object().unwrap().len(), 4, "{}", events[5]);
    assert_eq!(
        events[8]["executionSucceededEventDetails"]["output"],
        serde_json::json!({"a": 1})
    );
}

#[test]
fn workflow_conformance_counts_passes_failures_and_skips() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    let pass_state = serde_json::json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"x": 1}, "End": true}}});
    write(
        &cases,
        "a_pass.json",
        &serde_json::json!({"name": "pass", "definition": pass_state, "input": {},
            "expected": {"status": "SUCCEEDED", "output": {"x": 1}}}),
    );
    write(
        &cases,
        "b_fail.json",
        &serde_json::json!({"name": "wrong", "definition": pass_state, "input": {},
            "expected": {"status": "SUCCEEDED", "output": {"x": 2}}}),
    );
    write(
        &cases,
        "c_task.json",
        &serde_json::json!({"name": "task",
            "definition": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${function_arn}", "End": true}}},
            "input": {"v": [1, 2]},
            "expected": {"status": "SUCCEEDED", "output": {"v": [1, 2]}},
            "runtime_substitutions": [{"path": ["States", "T", "Resource"], "placeholder": "${function_arn}"}],
            "task_behaviour": {"kind": "aws-lambda", "lambda_sources": ["tests/lambdafunctions/id_function.py"]}}),
    );
    let o = workflow(
        dir.path(),
        &[
            "conformance",
            cases.to_str().unwrap(),
            "--components",
            guests_dir(),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        stdout(&o),
        "FAIL wrong: $.x: 1, AWS 2\n2 passed, 1 failed, 0 skipped\n"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("3 cases in "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The repository's own order pipeline as a state machine, end to end on the real guests
/// with the grants of `pipelines/orders.json`: a good order goes through the Parallel of
/// price / reserve / price+pay, is counted, stored and notified; each kind of bad order ends
/// in the one error handler with its stage's error.
#[test]
fn the_order_pipeline_workflow_runs_on_the_real_stages() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let def = repo.join("workflows/order-pipeline.asl.json");
    let config = repo.join("pipelines/orders.json");
    let run = |name: &str, order: &Value, history: bool| {
        let input = write(dir.path(), &format!("{name}.json"), order);
        let mut args = vec![
            "run",
            def.to_str().unwrap(),
            "--input",
            input.as_str(),
            "--components",
            guests_dir(),
            "--config",
            config.to_str().unwrap(),
        ];
        if history {
            args.push("--history");
        }
        let o = workflow(dir.path(), &args);
        (o.status.code(), stdout(&o))
    };
    let order = |id: &str, card: &str| {
        serde_json::json!({
            "orderId": id, "userId": "u-1", "createdAt": "2026-12-01T10:00:00Z",
            "items": [{"sku": "BOOK-1", "qty": 2, "price": 12.5}, {"sku": "PEN-3", "qty": 1, "price": 1.99}],
            "payment": {"method": "card", "card": card}
        })
    };
    let (code, out) = run("good", &order("o-1", "4242424242424242"), true);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let result: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(
        result,
        serde_json::json!({"orderId": "o-1", "notified": true, "subject": "notifications.order"})
    );
    let events: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let scheduled: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "LambdaFunctionScheduled")
        .map(|e| {
            e["lambdaFunctionScheduledEventDetails"]["resource"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
        })
        .collect();
    // Four Tasks in the Parallel (two prices, reserve, pay), four around it.
    assert_eq!(scheduled.len(), 8, "{scheduled:?}");
    for stage in [
        "validate-order",
        "process-order",
        "process-inventory",
        "process-payment",
        "aggregate",
        "store-order",
        "notify",
    ] {
        assert!(
            scheduled.contains(&stage),
            "{stage} did not run: {scheduled:?}"
        );
    }
    assert_eq!(events.last().unwrap()["type"], "ExecutionSucceeded");

    // A declined card fails inside the Parallel; its Catch sends it to the error handler.
    let (code, out) = run("declined", &order("o-2", "4000000000000000"), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("error: Payment.Declined\n"), "{out}");
    // An order without items fails validation.
    let mut empty = order("o-3", "4242424242424242");
    empty["items"] = serde_json::json!([]);
    let (code, out) = run("empty", &empty, false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("error: Order.Invalid\n"), "{out}");
}

/// A distributed Map reads its items from a file of `--objects DIR` (bucket = subdirectory),
/// each row run by the real passthrough stage; a key that would leave the directory reads
/// nothing and fails as a missing object.
#[test]
fn workflow_run_reads_map_items_from_objects_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    std::fs::create_dir_all(objects.join("orders/2026")).unwrap();
    std::fs::write(
        objects.join("orders/2026/day.csv"),
        "orderId,total\no-1,12.50\no-2,3.99\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.csv"), "a\nleaked\n").unwrap();
    let def = serde_json::json!({
        "StartAt": "EachOrder",
        "States": {"EachOrder": {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                "Parameters": {"Bucket": "orders", "Key.$": "$.key"}
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Echo",
                "States": {"Echo": {"Type": "Task", "Resource": "passthrough", "End": true}}
            },
            "End": true
        }}
    });
    let objects = objects.to_str().unwrap();
    let (code, lines) = workflow_run(
        dir.path(),
        &def,
        &serde_json::json!({"key": "2026/day.csv"}),
        &["--objects", objects],
    );
    assert_eq!(code, 0, "{lines:?}");
    let out: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(
        out,
        serde_json::json!([{"orderId": "o-1", "total": "12.50"}, {"orderId": "o-2", "total": "3.99"}])
    );
    let (code, lines) = workflow_run(
        dir.path(),
        &def,
        &serde_json::json!({"key": "../../secret.csv"}),
        &["--objects", objects],
    );
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(lines[0], "error: States.ItemReaderFailed");
    assert_eq!(
        lines[1],
        "cause: Could not read the object: the object ../../secret.csv does not exist in the bucket orders"
    );
}
