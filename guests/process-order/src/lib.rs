//! `process-order`: prices an order in integer cents with
//! [`sluice_order_logic::process_order`], adding `totals` and `"status":"priced"`.
//!
//! Targets the `batch-stage` world: besides `handle` it exports `handle-batch`, which calls
//! `batch::begin-event(i)` before handling `events[i]`, as the contract requires.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid` (permanent).

wit_bindgen::generate!({ world: "batch-stage", path: "../../wit" });

use exports::sluice::platform::batch_handler::Guest as BatchGuest;
use exports::sluice::platform::handler::Guest;
use sluice::platform::batch;
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
        sluice_order_logic::process_order(&event.data).map_err(stage_error)
    }
}

impl BatchGuest for Stage {
    fn handle_batch(events: Vec<Event>) -> Vec<StageResult> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                batch::begin_event(u32::try_from(i).expect("batch index fits in u32"));
                <Stage as Guest>::handle(event)
            })
            .collect()
    }
}

export!(Stage);
