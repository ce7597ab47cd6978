//! Encodes the `stage` world of the bundled WIT (`wit/`, a link to the repository's `wit/`) as
//! a component-type custom section payload, written to `$OUT_DIR/stage-world.wasm`.
//!
//! Why: the SDK's one `wit_bindgen::generate!` is for `batch-stage`, whose export macro
//! declares both `handler` and `batch-handler`, and wit-component requires every declared
//! export. A stage that exports only `handler` (the `stage` world, which the host treats
//! differently: no batch calls) needs its own declaration of that world; `export_stage!`
//! places these bytes in a `component-type` section of the stage's own crate, next to the
//! export. A second `generate!` for `stage` would define wit-bindgen's `#[macro_export]`
//! handler macro twice in this crate, which Rust refuses.

use std::path::PathBuf;
use std::{env, fs};

use wit_component::StringEncoding;
use wit_parser::Resolve;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let wit = manifest_dir.join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    for entry in fs::read_dir(&wit).expect("reading wit/") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("reading wit/").path().display()
        );
    }

    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(&wit)
        .unwrap_or_else(|e| panic!("parsing {}: {e:?}", wit.display()));
    let world = resolve
        .select_world(&[package], Some("stage"))
        .expect("the WIT package has a `stage` world");
    let encoded = wit_component::metadata::encode(&resolve, world, StringEncoding::UTF8, None)
        .expect("encoding the `stage` world");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("stage-world.wasm");
    fs::write(&out, encoded).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
