//! From a JetStream message to a Sluice [`Event`].

use async_nats::jetstream::Message;
use sluice_model::Event;
use time::format_description::well_known::Rfc3339;

/// The event for `msg`. Its id is the `Nats-Msg-Id` header, else a CloudEvents `ce-id`
/// header, else `<stream>/<stream sequence>` (an empty header counts as absent); `type`, `source` and `time` come from the
/// `ce-*` headers when present (`time` is otherwise the stream's RFC 3339 timestamp); `attempt` is JetStream's delivery count. Every header and the
/// subject reach the guest.
pub fn to_event(msg: &Message) -> Event {
    // The reply subject carries stream, sequence, delivery count and time: parse it once.
    let info = msg.info().ok();
    // A header given several times counts with its first value.
    let (mut id, mut ce_id, mut kind, mut source, mut time) = (None, None, None, None, None);
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, values) in msg.headers.iter().flat_map(|h| h.iter()) {
        let name: &str = name.as_ref();
        for v in values {
            let v = v.as_str();
            // Exact names, as the server matches `Nats-Msg-Id` for its own dedupe. An empty id
            // is no id (JetStream does not dedupe on it either): taken as one, every such
            // event would share a single dedupe record, and all but the first would be
            // answered from it without running.
            if name == "Nats-Msg-Id" {
                if !v.is_empty() {
                    id.get_or_insert_with(|| v.to_owned());
                }
            } else if name == "ce-id" {
                if !v.is_empty() {
                    ce_id.get_or_insert_with(|| v.to_owned());
                }
            } else if name == "ce-type" {
                kind.get_or_insert_with(|| v.to_owned());
            } else if name == "ce-source" {
                source.get_or_insert_with(|| v.to_owned());
            } else if name == "ce-time" {
                time.get_or_insert_with(|| v.to_owned());
            }
            headers.push((name.to_owned(), v.to_owned()));
        }
    }
    // HeaderMap is a hash map: sort by name for a deterministic order. A stable sort keeps
    // each name's values in arrival order, so "the first value" means the same everywhere.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let id = id.or(ce_id).unwrap_or_else(|| {
        info.as_ref()
            .map(|i| format!("{}/{}", i.stream, i.stream_sequence))
            .unwrap_or_default()
    });
    let time = time.unwrap_or_else(|| {
        info.as_ref()
            .and_then(|i| i.published.format(&Rfc3339).ok())
            .unwrap_or_default()
    });
    Event {
        id,
        kind: kind.unwrap_or_default(),
        source: source.unwrap_or_default(),
        subject: msg.subject.to_string(),
        time,
        data: msg.payload.to_vec(),
        attempt: info
            .as_ref()
            .map_or(1, |i| u32::try_from(i.delivered).unwrap_or(u32::MAX)),
        headers,
    }
}
