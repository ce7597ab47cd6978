//! `passthrough`: the trivial stage. Returns each event's data unchanged, so that what a
//! benchmark measures with it is the platform's own cost per event.

wit_bindgen::generate!({ world: "batch-stage", path: "../../wit" });

use exports::sluice::platform::batch_handler::Guest as BatchGuest;
use exports::sluice::platform::handler::Guest;
use sluice::platform::batch;
use sluice::platform::types::{Event, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        Ok(event.data)
    }
}

impl BatchGuest for Stage {
    fn handle_batch(events: Vec<Event>) -> Vec<StageResult> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                batch::begin_event(u32::try_from(i).expect("batch index fits in u32"));
                Ok(event.data)
            })
            .collect()
    }
}

export!(Stage);
