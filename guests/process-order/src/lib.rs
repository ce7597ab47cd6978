//! `process-order`: prices an order in integer cents with
//! [`sluice_order_logic::process_order`], adding `totals` and `"status":"priced"`.
//!
//! Targets the `batch-stage` world: besides `handle` it exports `handle-batch` (the SDK's
//! default batch handler, which calls `batch::begin-event(i)` before handling `events[i]`, as
//! the contract requires).
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid` (permanent).

use sluice_order_logic::LogicError;
use sluice_sdk::{Bytes, Context, Error, Stage, export_stage};

struct ProcessOrder;

fn logic_error(e: LogicError) -> Error {
    Error::new(e.name, e.cause, e.retryable)
}

impl Stage for ProcessOrder {
    // The logic reads and writes the JSON itself, so the data passes through as bytes.
    type Input = Bytes;
    type Output = Bytes;

    fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
        sluice_order_logic::process_order(&data)
            .map(Bytes)
            .map_err(logic_error)
    }
}

export_stage!(ProcessOrder, batch);
