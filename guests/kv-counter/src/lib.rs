//! `kv-counter`: for data `{"bucket":"..","key":"..","delta":n}` opens the bucket, atomically
//! increments the key by `delta` and returns `{"value":<new value>}`.
//!
//! Errors: `Input.Invalid` for bad data (permanent); key-value failures (from `open` or
//! `increment`) map one name per variant: `State.AccessDenied`, `State.TooLarge`,
//! `State.InvalidValue` (permanent) and `State.Error` (the `store` variant, retryable). The
//! cause is the host's message.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use serde_json::{Value, json};
use sluice::platform::keyvalue;
use sluice::platform::types::{Event, StageError, StageResult};

struct Stage;

fn state_error(e: keyvalue::Error) -> StageError {
    let (name, cause, retryable) = match e {
        keyvalue::Error::AccessDenied(m) => ("State.AccessDenied", m, false),
        keyvalue::Error::TooLarge(m) => ("State.TooLarge", m, false),
        keyvalue::Error::InvalidValue(m) => ("State.InvalidValue", m, false),
        keyvalue::Error::Store(m) => ("State.Error", m, true),
    };
    StageError {
        name: name.into(),
        cause,
        retryable,
    }
}

fn invalid(cause: &str) -> StageError {
    StageError {
        name: "Input.Invalid".into(),
        cause: cause.into(),
        retryable: false,
    }
}

fn count(data: &[u8]) -> Result<Vec<u8>, StageError> {
    let input: Value =
        serde_json::from_slice(data).map_err(|e| invalid(&format!("data is not JSON: {e}")))?;
    let bucket = input["bucket"]
        .as_str()
        .ok_or_else(|| invalid("bucket must be a string"))?;
    let key = input["key"]
        .as_str()
        .ok_or_else(|| invalid("key must be a string"))?;
    let delta = input["delta"]
        .as_i64()
        .ok_or_else(|| invalid("delta must be a 64-bit integer"))?;
    let bucket = keyvalue::open(bucket).map_err(state_error)?;
    let value = bucket.increment(key, delta).map_err(state_error)?;
    Ok(serde_json::to_vec(&json!({ "value": value })).expect("serialising a Value cannot fail"))
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        count(&event.data)
    }
}

export!(Stage);
