//! The raw bindings of the `batch-stage` world, as `wit_bindgen::generate!` produced them: the
//! imported interfaces under `sluice::platform` (`keyvalue`, `table`, `emit`, `log`, `batch`,
//! `types`), the exported ones under `exports::sluice::platform` (`handler`, `batch-handler`),
//! and `export!`, wit-bindgen's own export macro.
//!
//! The wrappers ([`crate::kv`], [`crate::table`], ...) cover what a stage usually needs and
//! [`crate::export_stage!`] exports a [`crate::Stage`]; these are for everything else. A stage
//! that implements the generated `Guest` traits itself exports them with
//! `sluice_sdk::bindings::export!(MyGuest with_types_in sluice_sdk::bindings)` (the
//! `batch-stage` world: it must implement both traits).

#![allow(
    missing_docs,
    unsafe_code,
    reason = "generated code: the WIT documents its items, and lifting and lowering is unsafe"
)]

// Once, for the whole crate: wit-bindgen's export macros are `#[macro_export]` and named after
// the interface, so a second `generate!` exporting `handler` would not compile. More imports
// (the test-only `testing` interface, say) can come from another `generate!` of an
// imports-only world, with `with` pointing at the types generated here.
wit_bindgen::generate!({
    world: "batch-stage",
    path: "wit",
    // The export macros are used from stage crates, not from this one: `#[macro_export]`, and
    // the section declaring the world's exports is emitted where they are invoked (wit-bindgen
    // then keeps only the imports in this crate's own section).
    pub_export_macro: true,
    default_bindings_module: "sluice_sdk::bindings",
});
