//! The guest SDK for Sluice stages.
//!
//! A stage is a type implementing [`Stage`]: a typed input (any `serde` type, read from the
//! event's JSON data, or [`Bytes`] for the data untouched), a typed output, and a handler that
//! returns it or a named [`Error`]. One macro, [`export_stage!`], exports it as a component of
//! the `sluice:platform` stage world. Its state and output go through thin wrappers over the
//! host's interfaces, each call one host call: key-value buckets ([`kv`]), tables ([`table`]),
//! emitted events ([`emit`]) and the host's log ([`log`]).
//!
//! A stage crate depends on `sluice-sdk` (and `serde` for its own types), never on
//! `wit-bindgen`: the SDK runs `wit_bindgen::generate!` once over the WIT it bundles (the
//! repository's `wit/`), re-exports it as [`wit_bindgen`], and the raw generated bindings as
//! [`bindings`] for anything the wrappers do not cover. Mixing wit-bindgen versions in one
//! component breaks linking, so a stage should use these rather than its own.
//!
//! # A whole stage
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use sluice_sdk::{Context, Error, Stage, emit, export_stage, kv, log};
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Order {
//!     order_id: String,
//!     user_id: String,
//!     total_cents: i64,
//! }
//!
//! #[derive(Serialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Counted {
//!     order_id: String,
//!     user_orders: i64,
//! }
//!
//! struct CountOrders;
//!
//! impl Stage for CountOrders {
//!     type Input = Order;
//!     type Output = Counted;
//!
//!     fn handle(cx: &Context, order: Order) -> Result<Counted, Error> {
//!         if order.total_cents <= 0 {
//!             // Permanent: retrying cannot fix the order; ASL `Catch` rules match the name.
//!             return Err(Error::permanent("Order.Invalid", "the total must be positive"));
//!         }
//!         // `?` turns a key-value error into a named one (`State.AccessDenied`, ...).
//!         let stats = kv::open("stats")?;
//!         let user_orders = stats.increment(&format!("user/{}/orders", order.user_id), 1)?;
//!         emit::to("orders.counted")
//!             .header("order-id", &order.order_id)
//!             .json(&sluice_sdk::serde_json::json!({ "orderId": order.order_id, "userOrders": user_orders }))?;
//!         log::info(format!("event {} (attempt {}): counted", cx.id(), cx.attempt()));
//!         Ok(Counted { order_id: order.order_id, user_orders })
//!     }
//! }
//!
//! export_stage!(CountOrders);
//! # fn main() {}
//! ```
//!
//! A stage crate is a `cdylib` (`[lib] crate-type = ["cdylib"]`) built with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` it produces is the component to
//! deploy. Data that is not JSON fails the event with
//! `Input.MalformedJson`, JSON of another shape with `Input.Invalid` (both permanent), before
//! `handle` runs; [`names`] lists every name the SDK produces.
//!
//! # Batches
//!
//! `export_stage!(MyStage, batch)` also exports `handle-batch` (the `batch-stage` world), which
//! the host then uses to run a batch in one call. The default [`Stage::handle_batch`] runs
//! [`Stage::handle`] per event and calls the host's `batch::begin-event(i)` before event `i`,
//! as the contract requires; a stage may override it, and the [`Batch`] it receives makes that
//! call as it yields each event. Without `batch` a stage exports only `handle` and the host
//! runs batches one event per call.
//!
//! # Testing
//!
//! [`Context`] can be built by hand, so a stage's handler can be called from a native unit
//! test as long as it does not touch state (the host interfaces only exist inside a component).
//! A `testing` module behind a cargo feature of the same name, running tests inside wasmtime
//! with seeded state, is coming.

pub mod bindings;
mod codec;
pub mod emit;
mod error;
#[doc(hidden)]
pub mod export;
pub mod kv;
pub mod log;
pub mod names;
mod stage;
pub mod table;

pub use codec::{Bytes, FromData, IntoData};
pub use error::Error;
pub use stage::{Batch, Context, Stage};

/// The wit-bindgen the bindings were generated with, for advanced users who generate more
/// bindings against the same runtime (one wit-bindgen per component).
pub use wit_bindgen;

/// `serde_json`, which the SDK reads and writes JSON with, for `serde_json::Value` and
/// `json!` without a dependency of the stage's own.
pub use serde_json;

/// `Result` with the SDK's named [`Error`], the return type of most stage code.
pub type Result<T, E = Error> = std::result::Result<T, E>;
