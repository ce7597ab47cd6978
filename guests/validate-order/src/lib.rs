//! `validate-order`: the first stage of the example order pipeline. Checks the order's ids and
//! items with [`sluice_order_logic::validate`] and adds `"status":"validated"`.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid` (permanent).

use sluice_order_logic::LogicError;
use sluice_sdk::{Bytes, Context, Error, Stage, export_stage};

struct ValidateOrder;

fn logic_error(e: LogicError) -> Error {
    Error::new(e.name, e.cause, e.retryable)
}

impl Stage for ValidateOrder {
    // The logic reads and writes the JSON itself, so the data passes through as bytes.
    type Input = Bytes;
    type Output = Bytes;

    fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
        sluice_order_logic::validate(&data)
            .map(Bytes)
            .map_err(logic_error)
    }
}

export_stage!(ValidateOrder);
