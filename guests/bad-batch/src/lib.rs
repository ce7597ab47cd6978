//! `bad-batch`: breaks the stage contract on purpose. `handle-batch` returns one result fewer
//! than it was given events (the host must reject the batch as `Sandbox.MalformedOutput`), and
//! `handle` returns an error named `Sandbox.Fake`, a reserved name the host must not pass on.

wit_bindgen::generate!({ world: "batch-stage", path: "../../wit" });

use exports::sluice::platform::batch_handler::Guest as BatchGuest;
use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageError, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        Err(StageError {
            name: "Sandbox.Fake".into(),
            cause: format!("bad-batch pretends to be the host for event {}", event.id),
            retryable: false,
        })
    }
}

impl BatchGuest for Stage {
    fn handle_batch(events: Vec<Event>) -> Vec<StageResult> {
        let n = events.len().saturating_sub(1);
        events
            .into_iter()
            .take(n)
            .map(|e| Ok(e.id.into_bytes()))
            .collect()
    }
}

export!(Stage);
