//! `process-payment`: captures the payment of a priced order with
//! [`sluice_order_logic::process_payment`]; the card number is replaced by its last four digits
//! and a deterministic auth code, and `status` becomes `"paid"`.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid`, `Payment.Declined` (card ending in `0000`),
//! `Payment.LimitExceeded` (total above $1,000,000), `Payment.UnsupportedMethod` (all
//! permanent) and `Payment.Unavailable` (method `flaky`, retryable).

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageError, StageResult};
use sluice_order_logic::LogicError;

struct Stage;

fn stage_error(e: LogicError) -> StageError {
    StageError {
        name: e.name.to_owned(),
        cause: e.cause,
        retryable: e.retryable,
    }
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        sluice_order_logic::process_payment(&event.data).map_err(stage_error)
    }
}

export!(Stage);
