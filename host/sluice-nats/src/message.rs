//! From a JetStream message to a Sluice [`Event`].

use async_nats::jetstream::Message;
use sluice_model::Event;

/// The event for `msg`. Its id is the `Nats-Msg-Id` header, else a CloudEvents `ce-id`
/// header, else `<stream>/<stream sequence>`; `type`, `source` and `time` come from the
/// `ce-*` headers when present; `attempt` is JetStream's delivery count. Every header and the
/// subject reach the guest.
pub fn to_event(msg: &Message) -> Event {
    let info = msg.info().ok();
    let header = |name: &str| {
        msg.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let id = header("Nats-Msg-Id")
        .or_else(|| header("ce-id"))
        .or_else(|| {
            info.as_ref()
                .map(|i| format!("{}/{}", i.stream, i.stream_sequence))
        })
        .unwrap_or_default();
    let mut headers: Vec<(String, String)> = msg
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.as_str().to_owned()))
        })
        .collect();
    // HeaderMap is a hash map: sort for a deterministic order.
    headers.sort();
    Event {
        id,
        kind: header("ce-type").unwrap_or_default(),
        source: header("ce-source").unwrap_or_default(),
        subject: msg.subject.to_string(),
        time: header("ce-time").unwrap_or_else(|| {
            info.as_ref()
                .map(|i| i.published.to_string())
                .unwrap_or_default()
        }),
        data: msg.payload.to_vec(),
        attempt: info
            .as_ref()
            .map_or(1, |i| u32::try_from(i.delivered).unwrap_or(u32::MAX)),
        headers,
    }
}
