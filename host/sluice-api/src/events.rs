//! `POST /v1/events/{subject}`: publish one event to JetStream (scope `invoke`).
//!
//! The body is plain JSON, or a CloudEvent in either mode of the CloudEvents HTTP binding
//! (v1.0.2): structured (`Content-Type: application/cloudevents+json`, the event as a JSON
//! object) or binary (the attributes as `ce-*` headers, the body as the event's data). A
//! CloudEvent goes out in the binary mode of the CloudEvents NATS binding: its attributes as
//! `ce-*` headers, `datacontenttype` as `content-type`, the data as the payload. Its `id`
//! (for plain JSON, the `Idempotency-Key` header, or a random id) is the message's
//! `Nats-Msg-Id`, so a repeat within the stream's duplicate window is stored once; the answer
//! says which it was.
//!
//! The mapping is written here (a few dozen lines) rather than taken from `cloudevents-sdk`:
//! its axum feature does not build with axum 0.8, and its extractor reads bodies without the
//! API's size limit.

use std::future::Future;
use std::pin::Pin;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Scope;
use crate::problem::{Body, Problem};
use crate::{Api, Caller};

/// A message for JetStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The subject.
    pub subject: String,
    /// The event id: the message's `Nats-Msg-Id`.
    pub id: String,
    /// Further headers (`ce-*`, `content-type`).
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Where JetStream stored a published message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Published {
    /// The stream that captured the subject.
    pub stream: String,
    /// The message's sequence in that stream.
    pub seq: u64,
    /// True when the stream already held a message with this id (nothing new was stored).
    pub duplicate: bool,
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishFailure {
    /// No stream captures the subject.
    NoStream,
    /// The message exceeds the server's payload limit.
    TooLarge(String),
    /// The broker did not take it (down, timed out).
    Unavailable(String),
}

/// What the API publishes events through (the host implements it on its NATS client).
pub trait EventSink: Send + Sync {
    /// Publish `message` and wait for JetStream's acknowledgement.
    fn publish(
        &self,
        message: Outgoing,
    ) -> Pin<Box<dyn Future<Output = Result<Published, PublishFailure>> + Send + '_>>;
}

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new().routes(routes!(publish_event))
}

/// The answer to a publish.
#[derive(Debug, Serialize, ToSchema)]
struct Accepted {
    /// The event id (the message's `Nats-Msg-Id`).
    id: String,
    #[serde(flatten)]
    published: Published,
}

/// The longest event id, subject and header value taken.
const MAX_ID: usize = 256;
const MAX_SUBJECT: usize = 256;

/// Publish an event.
#[utoipa::path(
    post,
    path = "/v1/events/{subject}",
    tag = "events",
    params(("subject" = String, Path, description = "The NATS subject, e.g. `orders.new`")),
    request_body(content = Value, description = "Plain JSON, a structured CloudEvent (`application/cloudevents+json`), or a binary CloudEvent's data with `ce-*` headers"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored (or already stored: `duplicate`)", body = Accepted),
        (status = 400, description = "Malformed JSON, or a subject that is not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `invoke`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No stream captures the subject", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor a CloudEvent", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid subject, id or CloudEvents attribute", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker did not take it", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn publish_event(
    State(api): State<Api>,
    caller: Caller,
    subject: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<axum::Json<Accepted>, Problem> {
    caller.require(Scope::Invoke)?;
    // A subject that is not UTF-8 is refused as a problem too, not axum's plain text.
    let Path(subject) = subject.map_err(|e| Problem::bad_request(e.body_text()).at("subject"))?;
    check_subject(&subject)?;
    let message = outgoing(subject, &headers, &body)?;
    let id = message.id.clone();
    match api.events.publish(message).await {
        Ok(published) => Ok(axum::Json(Accepted { id, published })),
        Err(PublishFailure::NoStream) => {
            Err(Problem::not_found("no stream captures this subject").at("subject"))
        }
        Err(PublishFailure::TooLarge(why)) => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the event exceeds the broker's payload limit: {why}"),
        )),
        Err(PublishFailure::Unavailable(why)) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the broker did not take the event: {why}"),
        )),
    }
}

fn invalid(detail: impl Into<String>, field: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-event", detail).at(field)
}

/// A subject one may publish to: dot-separated non-empty tokens of visible characters, no
/// wildcards, and none of the subjects that steer the broker or the platform (`$...`:
/// JetStream's API and the system's; `_INBOX.`: replies; `sluice.`: the host's own).
fn check_subject(subject: &str) -> Result<(), Problem> {
    let bad = |why: &str| invalid(format!("the subject {why}"), "subject");
    if subject.is_empty() || subject.len() > MAX_SUBJECT {
        return Err(bad("must be 1 to 256 bytes"));
    }
    if subject.split('.').any(|t| {
        t.is_empty()
            || t == "*"
            || t == ">"
            || t.chars().any(|c| c.is_whitespace() || c.is_control())
    }) {
        return Err(bad(
            "must be dot-separated non-empty tokens without spaces or wildcards",
        ));
    }
    if subject.starts_with('$') || subject.starts_with("_INBOX.") || subject.starts_with("sluice.")
    {
        return Err(bad("is reserved (`$...`, `_INBOX.`, `sluice.`)"));
    }
    Ok(())
}

/// The media type of `headers`' `Content-Type`, lower-cased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next()?.trim().to_ascii_lowercase())
}

/// The message for a request: a structured or binary CloudEvent, or plain JSON.
fn outgoing(subject: String, headers: &HeaderMap, body: &[u8]) -> Result<Outgoing, Problem> {
    let media = media_type(headers);
    if media.as_deref() == Some("application/cloudevents+json") {
        return structured(subject, body);
    }
    if media.as_deref() == Some("application/cloudevents-batch+json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "batches of CloudEvents are not taken: post each event on its own",
        ));
    }
    if headers.keys().any(|k| k.as_str().starts_with("ce-")) {
        return binary(subject, headers, media, body);
    }
    if !media.as_deref().is_some_and(is_json) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send JSON (application/json), a structured CloudEvent \
             (application/cloudevents+json), or a binary CloudEvent (ce-* headers)",
        ));
    }
    serde_json::from_slice::<Value>(body)
        .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))?;
    let id = match headers.get("idempotency-key") {
        Some(v) => {
            let id = v.to_str().unwrap_or_default().trim();
            check_id(id, "Idempotency-Key")?;
            id.to_owned()
        }
        None => random_id(),
    };
    Ok(Outgoing {
        subject,
        id,
        headers: Vec::new(),
        payload: body.to_vec(),
    })
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// An id a caller may give: 1 to 256 bytes, no control characters, and no `/`. The host's
/// own message ids have a `/` (`<event>/<n>` for a stage's emits, `dlq/...`), so a caller's
/// can never take one's place in a stream's duplicate window (and make the host's own
/// message count as already stored).
fn check_id(id: &str, field: &str) -> Result<(), Problem> {
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(invalid(
            "the event id must be 1 to 256 bytes, without control characters or `/`",
            field,
        ));
    }
    Ok(())
}

/// A random event id (128 bits from the OS, hex).
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

/// The attributes every CloudEvent has (v1.0).
const REQUIRED: [&str; 4] = ["specversion", "id", "source", "type"];

/// A CloudEvents attribute name: 1 to 20 lower-case letters or digits.
fn attribute_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Check the context attributes (`name` → string value), required ones included, and make
/// the message: `ce-<name>` headers, `datacontenttype` as `content-type`.
fn cloud_event(
    subject: String,
    attributes: Vec<(String, String)>,
    payload: Vec<u8>,
    field: impl Fn(&str) -> String,
) -> Result<Outgoing, Problem> {
    for required in REQUIRED {
        if !attributes.iter().any(|(n, _)| n == required) {
            return Err(invalid(
                format!("a CloudEvent needs the attribute `{required}`"),
                &field(required),
            ));
        }
    }
    let mut id = String::new();
    let mut headers = Vec::with_capacity(attributes.len());
    for (name, value) in attributes {
        if !attribute_name_ok(&name) {
            return Err(invalid(
                "CloudEvents attribute names are 1 to 20 lower-case letters or digits",
                &field(&name),
            ));
        }
        if value.chars().any(char::is_control) || value.len() > 4096 {
            return Err(invalid(
                "attribute values must be at most 4 KiB, without control characters",
                &field(&name),
            ));
        }
        match name.as_str() {
            "specversion" if value != "1.0" => {
                return Err(invalid(
                    "only CloudEvents 1.0 is supported",
                    &field("specversion"),
                ));
            }
            "id" => {
                check_id(&value, &field("id"))?;
                id.clone_from(&value);
            }
            "source" | "type" if value.is_empty() => {
                return Err(invalid("must not be empty", &field(&name)));
            }
            _ => {}
        }
        let key = if name == "datacontenttype" {
            "content-type".to_owned()
        } else {
            format!("ce-{name}")
        };
        headers.push((key, value));
    }
    Ok(Outgoing {
        subject,
        id,
        headers,
        payload,
    })
}

/// A structured CloudEvent: a JSON object of attributes with `data` (JSON, or a string for
/// a non-JSON `datacontenttype`) or `data_base64`.
fn structured(subject: String, body: &[u8]) -> Result<Outgoing, Problem> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut event) = event else {
        return Err(invalid("a structured CloudEvent is a JSON object", ""));
    };
    let data = event.remove("data");
    let data_base64 = event.remove("data_base64");
    let json_data = event
        .get("datacontenttype")
        .and_then(Value::as_str)
        .is_none_or(|t| is_json(t.split(';').next().unwrap_or_default().trim()));
    let payload = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "a CloudEvent has `data` or `data_base64`, not both",
                "/data_base64",
            ));
        }
        (None, None) => Vec::new(),
        (Some(Value::String(s)), None) if !json_data => s.into_bytes(),
        (Some(data), None) => serde_json::to_vec(&data).expect("a Value serializes"),
        (None, Some(Value::String(b64))) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| invalid(format!("not base64: {e}"), "/data_base64"))?
        }
        (None, Some(_)) => return Err(invalid("must be a base64 string", "/data_base64")),
    };
    let mut attributes = Vec::with_capacity(event.len());
    for (name, value) in event {
        let value = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(
                    "CloudEvents attributes are strings, numbers or booleans",
                    &format!("/{name}"),
                ));
            }
        };
        attributes.push((name, value));
    }
    cloud_event(subject, attributes, payload, |n| format!("/{n}"))
}

/// A binary CloudEvent: `ce-*` headers (values percent-encoded, as the HTTP binding says),
/// `Content-Type` as `datacontenttype`, the body as the data.
fn binary(
    subject: String,
    headers: &HeaderMap,
    media: Option<String>,
    body: &[u8],
) -> Result<Outgoing, Problem> {
    let mut attributes = Vec::new();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let value = value
            .to_str()
            .ok()
            .and_then(percent_decode)
            .ok_or_else(|| invalid("not a valid header value", name.as_str()))?;
        attributes.push((attr.to_owned(), value));
    }
    if let (Some(_), Some(v)) = (media, headers.get(header::CONTENT_TYPE)) {
        attributes.push((
            "datacontenttype".to_owned(),
            v.to_str().unwrap_or_default().to_owned(),
        ));
    }
    cloud_event(subject, attributes, body.to_vec(), |n| format!("ce-{n}"))
}

/// Decode `%XX` escapes (UTF-8); `None` for a malformed one.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    //! The mapping, against the CloudEvents specification's own examples (HTTP binding
    //! v1.0.2, sections 3.1.4 and 3.2.4).

    use axum::http::{HeaderMap, HeaderValue};

    use super::{check_subject, outgoing, percent_decode};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// The binding's binary-mode example.
    #[test]
    fn the_specs_binary_example_maps_to_nats_headers() {
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-type", "com.example.someevent"),
            ("ce-time", "2018-04-05T03:56:24Z"),
            ("ce-id", "1234-1234-1234"),
            ("ce-source", "/mycontext/subcontext"),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        let m = outgoing("orders.new".into(), &h, br#"{"a":1}"#).unwrap();
        assert_eq!(m.id, "1234-1234-1234");
        assert_eq!(m.payload, br#"{"a":1}"#);
        let mut got = m.headers;
        got.sort();
        let mut want: Vec<(String, String)> = [
            ("content-type", "application/json; charset=utf-8"),
            ("ce-id", "1234-1234-1234"),
            ("ce-source", "/mycontext/subcontext"),
            ("ce-specversion", "1.0"),
            ("ce-time", "2018-04-05T03:56:24Z"),
            ("ce-type", "com.example.someevent"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        want.sort();
        assert_eq!(got, want);
    }

    /// The binding's structured-mode example (with JSON data), and `data_base64`.
    #[test]
    fn the_specs_structured_example_maps_to_the_binary_nats_form() {
        let h = headers(&[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )]);
        let body = br#"{
            "specversion" : "1.0",
            "type" : "com.example.someevent",
            "time" : "2018-04-05T03:56:24Z",
            "id" : "1234-1234-1234",
            "source" : "/mycontext/subcontext",
            "datacontenttype" : "application/json",
            "data" : {"order": 7}
        }"#;
        let m = outgoing("orders.new".into(), &h, body).unwrap();
        assert_eq!(m.id, "1234-1234-1234");
        assert_eq!(m.payload, br#"{"order":7}"#);
        assert!(
            m.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        assert!(
            m.headers
                .contains(&("ce-type".into(), "com.example.someevent".into()))
        );
        assert!(!m.headers.iter().any(|(k, _)| k == "ce-data"));

        let body = br#"{"specversion":"1.0","type":"t","id":"x","source":"s",
            "datacontenttype":"application/octet-stream","data_base64":"AAEC"}"#;
        let m = outgoing("orders.new".into(), &h, body).unwrap();
        assert_eq!(m.payload, vec![0, 1, 2]);
    }

    /// Each refusal names its field.
    #[test]
    fn bad_events_are_refused_at_their_field() {
        let ce = headers(&[("content-type", "application/cloudevents+json")]);
        let field = |h: &HeaderMap, body: &[u8]| {
            outgoing("a.b".into(), h, body)
                .unwrap_err()
                .field
                .unwrap_or_default()
        };
        assert_eq!(
            field(&ce, br#"{"specversion":"1.0","type":"t","source":"s"}"#),
            "/id"
        );
        assert_eq!(
            field(
                &ce,
                br#"{"specversion":"0.3","type":"t","id":"i","source":"s"}"#
            ),
            "/specversion"
        );
        assert_eq!(
            field(
                &ce,
                br#"{"specversion":"1.0","type":"t","id":"i","source":"s","Bad-Name":"x"}"#
            ),
            "/Bad-Name"
        );
        let bin = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "i"),
            ("ce-source", "s"),
        ]);
        assert_eq!(field(&bin, b"{}"), "ce-type");
        let plain = headers(&[("content-type", "text/plain")]);
        assert_eq!(
            outgoing("a.b".into(), &plain, b"x").unwrap_err().status,
            415
        );
        for bad in [
            "",
            "a..b",
            "a.*",
            "a.>",
            "$JS.API.STREAM.DELETE.X",
            "_INBOX.x",
            "sluice.task.x",
            "a b",
        ] {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
        assert!(check_subject("orders.new").is_ok());
        let keyed = headers(&[
            ("content-type", "application/json"),
            ("idempotency-key", "e/0"),
        ]);
        assert_eq!(
            field(&keyed, b"{}"),
            "Idempotency-Key",
            "host-shaped ids are refused"
        );
        let batch = headers(&[("content-type", "application/cloudevents-batch+json")]);
        assert_eq!(
            outgoing("a.b".into(), &batch, b"[]").unwrap_err().status,
            415
        );
        assert_eq!(percent_decode("a%20b%C3%A9").as_deref(), Some("a bé"));
        assert_eq!(percent_decode("a%2"), None);
    }
}
