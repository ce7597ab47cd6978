//! Host bindings for the `sluice:platform` WIT package (see `wit/`).
//!
//! One `bindgen!` over the `batch-stage` world covers everything: it includes the plain `stage`
//! world, so its import traits serve both kinds of stage, and the two export interfaces are
//! looked up separately at deploy time (`handler` is required, `batch-handler` optional).

wasmtime::component::bindgen!({
    world: "batch-stage",
    path: "../../wit",
    // Every import may trap: a guest that breaks the contract (e.g. a batch index out of range)
    // is stopped rather than answered.
    imports: { default: trappable },
    // Exports are called with `call_async`, on a fiber: with WASI linked async, a guest
    // blocked in a host call yields, so its deadline can end the call (see `call.rs`).
    exports: { default: async },
    // Events are lowered into the guest straight from borrowed host data: no per-event copy
    // of every string into an owned bindings type first.
    ownership: Borrowing { duplicate_if_necessary: true },
    with: {
        // Open buckets and tables are host-side handles naming what was opened.
        "sluice:platform/keyvalue.bucket": crate::host::keyvalue::BucketHandle,
        "sluice:platform/table.table": crate::host::table::TableHandle,
    },
});

pub use exports::sluice::platform::{batch_handler, handler};
pub use sluice::platform::{batch, emit, keyvalue, log, table, types};
