//! `sleep-in-host` (adversarial): blocks in a WASI host call past its deadline; see README.md.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use serde_json::Value;
use sluice::platform::keyvalue;
use sluice::platform::types::{Event, StageError, StageResult};

struct Stage;

fn fail(name: &str, cause: String) -> StageError {
    StageError {
        name: name.into(),
        cause,
        retryable: false,
    }
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        let data: Value = serde_json::from_slice(&event.data)
            .map_err(|e| fail("Input.Invalid", e.to_string()))?;
        if let Some(name) = data["bucket"].as_str() {
            let bucket = keyvalue::open(name).map_err(|e| fail("State.Error", format!("{e:?}")))?;
            bucket
                .set("held", b"1")
                .map_err(|e| fail("State.Error", format!("{e:?}")))?;
        }
        let ms = data["sleep_ms"].as_u64().unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(b"{\"slept\":true}".to_vec())
    }
}

export!(Stage);
