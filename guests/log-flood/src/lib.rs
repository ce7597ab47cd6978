//! `log-flood` (adversarial): floods the `log` import; see README.md.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use serde_json::Value;
use sluice::platform::log::{Level, log};
use sluice::platform::types::{Event, StageError, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        let data: Value = serde_json::from_slice(&event.data).map_err(|e| StageError {
            name: "Input.Invalid".into(),
            cause: e.to_string(),
            retryable: false,
        })?;
        let calls = data["calls"].as_u64().unwrap_or(100_000);
        let bytes = usize::try_from(data["bytes"].as_u64().unwrap_or(65_536)).unwrap_or(0);
        let message = "y".repeat(bytes);
        for _ in 0..calls {
            log(Level::Info, &message);
        }
        Ok(format!("{{\"calls\":{calls}}}").into_bytes())
    }
}

export!(Stage);
