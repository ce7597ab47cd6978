//! `infinite-loop` (adversarial): `handle` spins forever without calling the host. The loop
//! counter goes through `black_box` so the optimiser cannot remove or simplify the loop; only
//! the host's deadline (epoch interruption) can stop it.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use std::hint::black_box;

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        black_box(event);
        let mut spins: u64 = 0;
        loop {
            spins = black_box(spins.wrapping_add(1));
        }
    }
}

export!(Stage);
