//! Outbox rows: events a stage emitted, stored with the commit of the event that emitted them
//! and published afterwards with a message id derived from that event, so a republish after a
//! crash is recognised as a duplicate downstream.

use sluice_model::state::Emitted;

/// One stored emitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Position in the outbox (publication order).
    pub seq: u64,
    /// Deterministic message id: `<source event id>/<n>`, n counting the source event's emits
    /// from 0. Published as `Nats-Msg-Id`.
    pub msg_id: String,
    /// The event.
    pub event: Emitted,
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(b);
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(input.get(..4)?.try_into().ok()?) as usize;
    let bytes = input.get(4..4 + len)?;
    *input = &input[4 + len..];
    Some(bytes)
}

fn take_str(input: &mut &[u8]) -> Option<String> {
    String::from_utf8(take_bytes(input)?.to_vec()).ok()
}

/// Length-prefixed binary encoding: msg id, subject, header count, headers, data.
pub(crate) fn encode(msg_id: &str, e: &Emitted) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + msg_id.len() + e.subject.len() + e.data.len());
    put_bytes(&mut out, msg_id.as_bytes());
    put_bytes(&mut out, e.subject.as_bytes());
    out.extend_from_slice(
        &u32::try_from(e.headers.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    for (k, v) in &e.headers {
        put_bytes(&mut out, k.as_bytes());
        put_bytes(&mut out, v.as_bytes());
    }
    put_bytes(&mut out, &e.data);
    out
}

pub(crate) fn decode(seq: u64, mut input: &[u8]) -> Option<OutboxRow> {
    let input = &mut input;
    let msg_id = take_str(input)?;
    let subject = take_str(input)?;
    let n = u32::from_le_bytes(input.get(..4)?.try_into().ok()?);
    *input = &input[4..];
    let mut headers = Vec::new();
    for _ in 0..n {
        headers.push((take_str(input)?, take_str(input)?));
    }
    let data = take_bytes(input)?.to_vec();
    Some(OutboxRow {
        seq,
        msg_id,
        event: Emitted {
            subject,
            data,
            headers,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = Emitted {
            subject: "a.b".into(),
            data: b"{\"x\":1}".to_vec(),
            headers: vec![("k".into(), "v".into()), ("k2".into(), String::new())],
        };
        let row = decode(7, &encode("evt/0", &e)).unwrap();
        assert_eq!(
            row,
            OutboxRow {
                seq: 7,
                msg_id: "evt/0".into(),
                event: e
            }
        );
        assert_eq!(decode(1, b"\x05\x00"), None);
    }
}
