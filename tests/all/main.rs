//! Sluice's integration tests: real guest components built from source (by
//! `sluice-test-artifacts`), run through the real wasmtime runtime.
//!
//! Modules by concern: `pipeline` (the order stages' logic and state), `sandbox` (hostile
//! guests fail alone with named errors), `deploy` (validation and the artifact cache),
//! `batch` (the batch export and its fallback), `hardening` (deadlines through host calls,
//! byte caps, log budgets, no noisy neighbours on state), `host_api` (every state host function on both
//! backends, through the `state-script` guest), `nats` and `relay` (JetStream triggers and the
//! outbox relay on a real nats-server), `wasi` (what the sandbox grants and where
//! guest output goes), `lambda_standins` (the guests that stand in for
//! Lambda functions in workflows).

mod batch;
mod deploy;
mod disk_full;
mod hardening;
mod host_api;
mod lambda_standins;
mod nats;
mod pipeline;
mod relay;
mod sandbox;
mod state;
mod wasi;

/// Every guest crate must have a test that exercises it: this fails to compile when a guest is
/// added without being listed here.
#[test]
fn every_guest_is_covered() {
    macro_rules! covered {
        ($konst:ident, $name:literal) => {
            assert!(
                COVERED.contains(&$name),
                "guest {} has no integration test listed in COVERED",
                $name
            );
        };
    }
    const COVERED: &[&str] = &[
        "validate-order",
        "process-order",
        "process-payment",
        "process-inventory",
        "aggregate",
        "store-order",
        "notify",
        "echo",
        "kv-counter",
        "wasi-probe",
        "bad-batch",
        "passthrough",
        "state-script",
        "lambda-raise",
        "lambda-sleep",
        "lambda-return-bytes",
        "order-logic-loop",
        "infinite-loop",
        "memory-hog",
        "trap-panic",
        "huge-output",
        "stack-overflow",
        "sleep-in-host",
        "write-flood",
        "log-flood",
    ];
    sluice_test_artifacts::foreach_guest!(covered);
}
