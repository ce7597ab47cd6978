//! `trap-panic` (adversarial): `handle` panics with `deliberate panic for event <id>`. On
//! `wasm32-wasip2` a panic prints its message to stderr and aborts, which traps the instance.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use std::hint::black_box;

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        let id = black_box(event.id);
        panic!("deliberate panic for event {id}");
    }
}

export!(Stage);
