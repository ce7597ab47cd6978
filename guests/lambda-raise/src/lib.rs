//! `lambda-raise`: a Lambda function that raises, as a stage; see README.md.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageError, StageResult};

struct Stage;

/// The handler LocalStack's `raise_exception.py` holds, line 2 of `/var/task/handler.py`.
const MESSAGE: &str = "Some exception was raised.";
const FRAME: &str = "  File \"/var/task/handler.py\", line 2, in handler\n    raise Exception(\"Some exception was raised.\")\n";

/// A JSON string literal, escaped as Python's `json.dumps` escapes (`ensure_ascii`).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0_u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// FNV-1a over `bytes` from `seed`: enough to give each event its own request id.
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A uuid-shaped request id derived from the event id, so a rerun of the same event reports
/// the same one (Lambda's is random; the corpus redacts it).
fn request_id(event_id: &str) -> String {
    let hi = fnv(0xcbf2_9ce4_8422_2325, event_id.as_bytes());
    let lo = fnv(hi ^ 0x9e37_79b9_7f4a_7c15, event_id.as_bytes());
    let mut b = [0_u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        // The Python runtime's error payload, with `json.dumps`'s default separators
        // (`", "` and `": "`): Step Functions passes it on as the Cause byte for byte.
        let cause = format!(
            "{{\"errorMessage\": {}, \"errorType\": \"Exception\", \"requestId\": {}, \"stackTrace\": [{}]}}",
            quoted(MESSAGE),
            quoted(&request_id(&event.id)),
            quoted(FRAME)
        );
        // Not retryable: the same input raises again. (ASL Retry retries it regardless; the
        // flag only steers stream triggers.)
        Err(StageError {
            name: "Exception".into(),
            cause,
            retryable: false,
        })
    }
}

export!(Stage);
