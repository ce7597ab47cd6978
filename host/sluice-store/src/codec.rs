//! Encoding of table items in the `items` table: a fixed 16-byte header (version, expiry)
//! followed by the document's JSON, so reading a version or checking a TTL needs no JSON parse.

use serde_json::Value;
use sluice_model::state::{Item, Recorded, RecordedOutcome};

/// `expires_at` of an item without TTL.
const NO_EXPIRY: u64 = u64::MAX;

pub(crate) fn encode(item: &Item) -> Vec<u8> {
    let doc = serde_json::to_vec(&item.doc).expect("a serde_json::Value always serializes");
    let mut out = Vec::with_capacity(16 + doc.len());
    out.extend_from_slice(&item.version.to_le_bytes());
    out.extend_from_slice(&item.expires_at.unwrap_or(NO_EXPIRY).to_le_bytes());
    out.extend_from_slice(&doc);
    out
}

/// Version and expiry of an encoded item.
pub(crate) fn header(bytes: &[u8]) -> Option<(u64, Option<u64>)> {
    let version = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let expires = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((version, (expires != NO_EXPIRY).then_some(expires)))
}

pub(crate) fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Option<Item> {
    let (version, expires_at) = header(bytes)?;
    let doc: Value = serde_json::from_slice(bytes.get(16..)?).ok()?;
    Some(Item {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        doc,
        version,
        expires_at,
    })
}

/// Dedupe records: `[kind][recorded_at u64 LE][len u32 LE][text]...` — kind 0 is a success
/// followed by the output digest, kind 1 a failure followed by name and cause. Binary rather
/// than JSON because one is written per event on the hot path.
pub(crate) fn encode_record(r: &Recorded) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::with_capacity(80);
    match &r.outcome {
        RecordedOutcome::Succeeded { output_digest } => {
            out.push(0);
            out.extend_from_slice(&r.recorded_at_ms.to_le_bytes());
            text(&mut out, output_digest);
        }
        RecordedOutcome::Failed { name, cause } => {
            out.push(1);
            out.extend_from_slice(&r.recorded_at_ms.to_le_bytes());
            text(&mut out, name);
            text(&mut out, cause);
        }
    }
    out
}

pub(crate) fn decode_record(bytes: &[u8]) -> Option<Recorded> {
    fn text(input: &mut &[u8]) -> Option<String> {
        let len = u32::from_le_bytes(input.get(..4)?.try_into().ok()?) as usize;
        let s = String::from_utf8(input.get(4..4 + len)?.to_vec()).ok()?;
        *input = &input[4 + len..];
        Some(s)
    }
    let (&kind, rest) = bytes.split_first()?;
    let recorded_at_ms = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let mut rest = &rest[8..];
    let outcome = match kind {
        0 => RecordedOutcome::Succeeded {
            output_digest: text(&mut rest)?,
        },
        1 => RecordedOutcome::Failed {
            name: text(&mut rest)?,
            cause: text(&mut rest)?,
        },
        _ => return None,
    };
    Some(Recorded {
        recorded_at_ms,
        outcome,
    })
}

/// The event ids of one commit, for the retention index: each `[len u32 LE][id]`.
pub(crate) fn encode_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for id in ids {
        out.extend_from_slice(&u32::try_from(id.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// The ids [`encode_ids`] wrote; a truncated tail is dropped.
pub(crate) fn decode_ids(mut bytes: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(len) = bytes.get(..4) {
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let Some(id) = bytes.get(4..4 + len) else {
            break;
        };
        ids.push(String::from_utf8_lossy(id).into_owned());
        bytes = &bytes[4 + len..];
    }
    ids
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trip() {
        for expires_at in [None, Some(1_700_000_000_000)] {
            let item = Item {
                pk: "p".into(),
                sk: "s".into(),
                doc: json!({"a": [1, "x"]}),
                version: 7,
                expires_at,
            };
            let bytes = encode(&item);
            assert_eq!(header(&bytes), Some((7, expires_at)));
            assert_eq!(decode("p", "s", &bytes), Some(item));
        }
        assert_eq!(header(b"short"), None);
    }

    #[test]
    fn records_round_trip() {
        for outcome in [
            RecordedOutcome::Succeeded {
                output_digest: "ab".repeat(32),
            },
            RecordedOutcome::Failed {
                name: "Order.Invalid".into(),
                cause: "items[0].qty".into(),
            },
        ] {
            let r = Recorded {
                recorded_at_ms: 42,
                outcome,
            };
            assert_eq!(decode_record(&encode_record(&r)), Some(r));
        }
        assert_eq!(decode_record(&[7, 0]), None);
    }

    #[test]
    fn batch_ids_round_trip() {
        let ids = ["evt-1", "", "évènement/2"];
        let bytes = encode_ids(ids.iter().copied());
        assert_eq!(decode_ids(&bytes), ids);
        // A torn tail is dropped, not misread.
        assert_eq!(decode_ids(&bytes[..bytes.len() - 1]), ["evt-1", ""]);
    }
}
