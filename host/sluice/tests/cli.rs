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
