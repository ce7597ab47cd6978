//! `process-payment`: captures the payment of a priced order with
//! [`sluice_order_logic::process_payment`]; the card number is replaced by its last four digits
//! and a deterministic auth code, and `status` becomes `"paid"`.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid`, `Payment.Declined` (card ending in `0000`),
//! `Payment.LimitExceeded` (total above $1,000,000), `Payment.UnsupportedMethod` (all
//! permanent) and `Payment.Unavailable` (method `flaky`, retryable).

use sluice_order_logic::LogicError;
use sluice_sdk::{Bytes, Context, Error, Stage, export_stage};

struct ProcessPayment;

fn logic_error(e: LogicError) -> Error {
    Error::new(e.name, e.cause, e.retryable)
}

impl Stage for ProcessPayment {
    // The logic reads and writes the JSON itself, so the data passes through as bytes.
    type Input = Bytes;
    type Output = Bytes;

    fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
        sluice_order_logic::process_payment(&data)
            .map(Bytes)
            .map_err(logic_error)
    }
}

export_stage!(ProcessPayment);
