//! `echo`: returns the event it received as JSON,
//! `{"id","type","source","subject","time","attempt","headers":[[name,value]..],"data"}`, where
//! `data` is the payload parsed as JSON or, if it is not JSON, as a (lossy UTF-8) string.
//! It also prints one line to stdout and one to stderr naming the event id, which the host
//! routes to its log. It never fails.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use serde_json::{Value, json};
use sluice::platform::types::{Event, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        println!("echo: stdout line for event {}", event.id);
        eprintln!("echo: stderr line for event {}", event.id);
        let data = serde_json::from_slice::<Value>(&event.data)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&event.data).into_owned()));
        let headers: Vec<[&str; 2]> = event
            .headers
            .iter()
            .map(|(k, v)| [k.as_str(), v.as_str()])
            .collect();
        let out = json!({
            "id": event.id,
            "type": event.type_,
            "source": event.source,
            "subject": event.subject,
            "time": event.time,
            "attempt": event.attempt,
            "headers": headers,
            "data": data,
        });
        Ok(serde_json::to_vec(&out).expect("serialising a Value cannot fail"))
    }
}

export!(Stage);
