//! Deploying stages: validation with named reasons, and the on-disk artifact cache.

use sluice_runtime::{CacheOutcome, DeployError, StageConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, event, ok_json, order};

fn deploy_err(h: &Harness, bytes: &[u8]) -> DeployError {
    h.runtime
        .deploy("bad", bytes, StageConfig::default())
        .expect_err("deploy must fail")
}

#[test]
fn garbage_and_core_modules_are_not_components() {
    let h = Harness::new();
    let e = deploy_err(&h, b"definitely not wasm");
    assert!(matches!(e, DeployError::NotAComponent(_)), "{e}");
    let core = wat_module();
    let e = deploy_err(&h, &core);
    assert!(
        matches!(e, DeployError::NotAComponent(ref m) if m.contains("core WebAssembly module")),
        "{e}"
    );
    // A truncated component: right preamble, broken body.
    let mut truncated = sluice_test_artifacts::read(guests::ECHO);
    truncated.truncate(truncated.len() / 2);
    let e = deploy_err(&h, &truncated);
    assert!(matches!(e, DeployError::Invalid(_)), "{e}");
}

fn wat_module() -> Vec<u8> {
    // The binary preamble of an empty core module.
    vec![0, b'a', b's', b'm', 1, 0, 0, 0]
}

#[test]
fn a_component_without_the_handler_is_refused_by_name() {
    let h = Harness::new();
    let e = deploy_err(&h, b"(component)");
    match e {
        DeployError::MissingExport { name, .. } => {
            assert_eq!(name, "sluice:platform/handler@0.1.0")
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_handler_of_the_wrong_shape_is_refused_by_name() {
    let h = Harness::new();
    let wat = r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
        (func $f (canon lift (core func $i "f")))
        (instance $h (export "handle" (func $f)))
        (export "sluice:platform/handler@0.1.0" (instance $h)))"#;
    match deploy_err(&h, wat.as_bytes()) {
        DeployError::MismatchedExport { name, reason } => {
            assert_eq!(name, "sluice:platform/handler@0.1.0");
            assert!(!reason.is_empty());
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn foreign_imports_are_refused_by_name() {
    let h = Harness::new();
    for (import, expect) in [
        ("acme:payments/gateway", "acme:payments/gateway"),
        (
            "sluice:platform/keyvalue@0.9.0",
            "sluice:platform/keyvalue@0.9.0",
        ),
    ] {
        let wat = format!(r#"(component (import "{import}" (instance)))"#);
        match deploy_err(&h, wat.as_bytes()) {
            DeployError::UnsatisfiedImport { name, .. } => assert_eq!(name, expect),
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn every_guest_deploys() {
    let h = Harness::new();
    for (name, path) in guests::ALL {
        let stage = h.deploy(name, path, StageConfig::default());
        assert_eq!(stage.digest().len(), 64);
        assert!(matches!(stage.cache_outcome(), CacheOutcome::Compiled(_)));
    }
}

/// A restart (a new runtime over the same cache directory) reloads the compiled artifact
/// instead of compiling, and the reloaded stage works.
#[test]
fn restart_reloads_from_the_artifact_cache_without_compiling() {
    let first = Harness::new();
    let stage = first.deploy(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let CacheOutcome::Compiled(compile) = stage.cache_outcome() else {
        panic!("first deploy must compile: {:?}", stage.cache_outcome())
    };
    let digest = stage.digest().to_owned();
    drop(stage);
    let dir = first.dir;
    drop(first.runtime);

    let second = Harness::in_dir(dir);
    let stage = second.deploy(
        "process-order",
        guests::PROCESS_ORDER,
        StageConfig::default(),
    );
    let CacheOutcome::Hit(load) = stage.cache_outcome() else {
        panic!(
            "after a restart the artifact must come from the cache: {:?}",
            stage.cache_outcome()
        )
    };
    assert_eq!(stage.digest(), digest);
    eprintln!("process-order: compile {compile:?}, reload from cache {load:?}");
    let out = ok_json(
        &second
            .worker(stage)
            .invoke(&event("e1", &order("o-1", "u-1")))
            .outcome,
    );
    assert_eq!(out["totals"]["totalCents"], 8637);
}

#[test]
fn a_corrupt_cached_artifact_is_recompiled() {
    let first = Harness::new();
    drop(first.deploy("echo", guests::ECHO, StageConfig::default()));
    let dir = first.dir;
    drop(first.runtime);
    for entry in std::fs::read_dir(dir.path().join("artifacts")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let second = Harness::in_dir(dir);
    let stage = second.deploy("echo", guests::ECHO, StageConfig::default());
    assert!(
        matches!(stage.cache_outcome(), CacheOutcome::Compiled(_)),
        "{:?}",
        stage.cache_outcome()
    );
    let third_dir = second.dir;
    drop(second.runtime);
    let third = Harness::in_dir(third_dir);
    assert!(matches!(
        third
            .deploy("echo", guests::ECHO, StageConfig::default())
            .cache_outcome(),
        CacheOutcome::Hit(_)
    ));
}

#[test]
fn components_past_the_size_cap_or_the_compile_budget_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sluice_runtime::EngineConfig::new(dir.path().join("artifacts"));
    config.max_component_bytes = 64 << 10;
    let runtime = sluice_runtime::Runtime::new(&config).unwrap();
    let bytes = sluice_test_artifacts::read(sluice_test_artifacts::PROCESS_ORDER);
    let err = runtime
        .deploy("big", &bytes, StageConfig::default())
        .unwrap_err();
    assert!(
        matches!(err, DeployError::TooLarge { size, limit } if size == bytes.len() && limit == 64 << 10),
        "{err}"
    );
    // A compilation that cannot finish within its budget (1 ms for a ~100 KB component that
    // takes ~100 ms) is refused by name, and a later deploy with room still works.
    let mut config = sluice_runtime::EngineConfig::new(dir.path().join("artifacts-2"));
    config.compile_timeout = std::time::Duration::from_millis(1);
    let runtime = sluice_runtime::Runtime::new(&config).unwrap();
    let err = runtime
        .deploy("slow", &bytes, StageConfig::default())
        .unwrap_err();
    assert!(
        matches!(err, DeployError::CompileBudget(ref m) if m.contains("budget")),
        "{err}"
    );
}
