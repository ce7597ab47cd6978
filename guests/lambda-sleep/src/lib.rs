//! `lambda-sleep`: a Lambda function that sleeps a minute, as a stage; see README.md.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(_event: Event) -> StageResult {
        // A WASI sleep, a host call: the deadline (or the Task's TimeoutSeconds) ends it.
        std::thread::sleep(std::time::Duration::from_secs(60));
        Ok(b"null".to_vec())
    }
}

export!(Stage);
