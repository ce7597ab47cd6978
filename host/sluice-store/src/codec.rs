//! Encoding of table items in the `items` table: a fixed 16-byte header (version, expiry)
//! followed by the document's JSON, so reading a version or checking a TTL needs no JSON parse.

use serde_json::Value;
use sluice_model::state::Item;

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
}
