//! `write-flood` (adversarial): writes or emits large values in a loop, ignoring refusals;
//! see README.md.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use serde_json::Value;
use sluice::platform::types::{Event, StageError, StageResult};
use sluice::platform::{emit, keyvalue};

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
        let size = usize::try_from(data["value_bytes"].as_u64().unwrap_or(1 << 20)).unwrap_or(0);
        let attempts = data["attempts"].as_u64().unwrap_or(1000);
        let emitting = data["emit"].as_bool().unwrap_or(false);
        let bucket = match data["bucket"].as_str() {
            Some(name) if !emitting => {
                Some(keyvalue::open(name).map_err(|e| fail("State.Error", format!("{e:?}")))?)
            }
            _ => None,
        };
        let value = vec![b'x'; size];
        let mut first_refusal = None;
        let mut accepted = 0_u64;
        for i in 0..attempts {
            let result = match &bucket {
                Some(b) => b
                    .set(&format!("k-{i}"), &value)
                    .map_err(|e| format!("{e:?}")),
                None => emit::emit("flood.out", &value, &[]).map_err(|e| format!("{e:?}")),
            };
            match result {
                Ok(()) => accepted += 1,
                // Ignore it and keep pushing: the host must hold the line on its own.
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        match first_refusal {
            Some(cause) => Err(fail(
                "Flood.Refused",
                format!("{accepted} of {attempts} accepted; first refusal: {cause}"),
            )),
            None => Ok(format!("{{\"accepted\":{accepted}}}").into_bytes()),
        }
    }
}

export!(Stage);
