//! `validate-order`: the first stage of the example order pipeline. Checks the order's ids and
//! items with [`sluice_order_logic::validate`] and adds `"status":"validated"`.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid` (permanent).

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
        sluice_order_logic::validate(&event.data).map_err(stage_error)
    }
}

export!(Stage);
