//! `order-logic-loop`: a benchmark guest. Runs [`sluice_order_logic::process_order`] on the
//! event's data as many times as the `repeat` header says (default 1) and returns the last
//! output.
//!
//! One call of it costs one crossing of the stage boundary however many times the logic
//! runs, so per repetition it measures what the order logic alone costs compiled to wasm and
//! run by wasmtime (with its deadline checks): the floor under any call through the stage
//! world, against which the host's share of a call can be told apart.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid` (permanent), `Bench.BadRepeat` for a
//! `repeat` header that is not a positive integer.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use std::hint::black_box;

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageError, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        let repeat = match event.headers.iter().find(|(k, _)| k == "repeat") {
            None => 1,
            Some((_, v)) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| StageError {
                    name: "Bench.BadRepeat".to_owned(),
                    cause: format!("repeat must be a positive integer, got {v:?}"),
                    retryable: false,
                })?,
        };
        let mut last = Vec::new();
        for _ in 0..repeat {
            // `black_box` keeps the optimiser from hoisting the pure call out of the loop.
            last = sluice_order_logic::process_order(black_box(&event.data)).map_err(|e| {
                StageError {
                    name: e.name.to_owned(),
                    cause: e.cause,
                    retryable: e.retryable,
                }
            })?;
        }
        Ok(last)
    }
}

export!(Stage);
