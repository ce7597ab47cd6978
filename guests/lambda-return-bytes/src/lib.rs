//! `lambda-return-bytes`: a Lambda function whose payload is text, not JSON; see README.md.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(_event: Event) -> StageResult {
        Ok(b"HelloWorld!".to_vec())
    }
}

export!(Stage);
