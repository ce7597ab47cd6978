//! `huge-output` (adversarial): `handle` succeeds with `n` bytes of `x`, where `n` is taken
//! from data `{"bytes":n}` (8 MiB when the data does not say), to exceed the host's output
//! limit.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use std::hint::black_box;

use exports::sluice::platform::handler::Guest;
use serde_json::Value;
use sluice::platform::types::{Event, StageResult};

const DEFAULT_BYTES: usize = 8 << 20;

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        let n = serde_json::from_slice::<Value>(&event.data)
            .ok()
            .and_then(|v| v.get("bytes").and_then(Value::as_u64))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_BYTES);
        Ok(black_box(vec![b'x'; n]))
    }
}

export!(Stage);
