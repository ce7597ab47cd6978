//! The publishing integrations: a Task's arguments made into the messages it publishes, and
//! their results shaped as the service's API answers.
//!
//! | Resource | Arguments | Subject | Body | Result |
//! |---|---|---|---|---|
//! | `arn:sluice:states:::nats:publish` | `Subject`, `Message`, `Headers` (optional, strings) | `Subject` | `Message` as JSON | `{"MessageId"}` |
//! | `arn:aws:states:::sns:publish` | `TopicArn` or `TargetArn`, `Message`, `Subject`, `MessageAttributes` (optional) | `sns.<topic name>` | `Message` (a string as is, else as JSON) | `{"MessageId", "SdkHttpMetadata", "SdkResponseMetadata"}` |
//! | `arn:aws:states:::events:putEvents` | `Entries`: 1 to 10 of `Source`, `DetailType`, `Detail`, `EventBusName`, `Resources` | `events.<bus>.<source>` | the EventBridge event (`version`, `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`) | `{"Entries": [{"EventId"}], "FailedEntryCount": 0}` |
//!
//! A message id is the message's `Nats-Msg-Id` (`<Task event id>/<n>`), which JetStream
//! dedupes on; an EventBridge event's `id` is a UUID derived from the Task's event id and the
//! entry's place, and `EventId` returns it.

use serde_json::{Map, Value, json};

use super::TaskKind;
use crate::env::{Publication, Random, Target, uuid_from, uuid_v4};
use crate::error::StatesError;
use crate::resource::{events_subject, publish_subject_ok, sns_subject};

/// The error of a `nats:publish` Task whose arguments make no message.
pub const INVALID_PARAMETER: &str = "Sluice.InvalidParameter";
/// The error of an `sns:publish` Task whose arguments make no message (AWS's name).
pub const SNS_INVALID_PARAMETER: &str = "SNS.InvalidParameterException";
/// The error of an `events:putEvents` Task whose arguments make no event (AWS's name).
pub const EVENTS_VALIDATION: &str = "EventBridge.ValidationException";

/// What a Task's arguments ask for, once built: the target, its input, the history kind, the
/// ids of the events it publishes.
/// A Task's target, its input (`None`: the Task's arguments as they are, not copied), its
/// kind and the ids of the events it publishes.
pub(super) type Built = (Target, Option<Value>, TaskKind, Vec<String>);

fn obj<'a>(args: &'a Value, error: &str) -> Result<&'a Map<String, Value>, StatesError> {
    args.as_object().ok_or_else(|| {
        StatesError::new(
            error,
            format!("The Task's Parameters (or Arguments) must be an object, not {args}"),
        )
    })
}

fn string<'a>(
    o: &'a Map<String, Value>,
    field: &str,
    error: &str,
) -> Result<Option<&'a str>, StatesError> {
    match o.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(StatesError::new(
            error,
            format!("The field '{field}' must be a string, not {other}"),
        )),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `nats:publish`.
pub(super) fn nats(args: &Value) -> Result<Built, StatesError> {
    let e = INVALID_PARAMETER;
    let o = obj(args, e)?;
    let subject = string(o, "Subject", e)?
        .ok_or_else(|| StatesError::new(e, "The field 'Subject' is required"))?;
    if !publish_subject_ok(subject) {
        return Err(StatesError::new(
            e,
            format!(
                "The subject '{subject}' cannot be published to: dot-separated levels of printable characters, no wildcards, not under '$' or '_INBOX.'"
            ),
        ));
    }
    let message = o
        .get("Message")
        .ok_or_else(|| StatesError::new(e, "The field 'Message' is required"))?;
    let mut headers = Vec::new();
    match o.get("Headers") {
        None => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                let Value::String(v) = v else {
                    return Err(StatesError::new(
                        e,
                        format!("The header '{k}' must be a string, not {v}"),
                    ));
                };
                // `Nats-*` headers steer the server (message ids, expected sequences): the
                // outbox sets the id, and the others could make a publish fail for ever.
                if k.is_empty()
                    || k.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("nats-"))
                    || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                {
                    return Err(StatesError::new(
                        e,
                        format!("'{k}' cannot be a header a Task sets"),
                    ));
                }
                headers.push((k.clone(), v.clone()));
            }
        }
        Some(other) => {
            return Err(StatesError::new(
                e,
                format!("The field 'Headers' must be an object of strings, not {other}"),
            ));
        }
    }
    let msg = Publication {
        subject: subject.to_owned(),
        data: message.to_string(),
        headers,
    };
    Ok((Target::Publish(vec![msg]), None, TaskKind::Nats, Vec::new()))
}

/// `sns:publish`.
pub(super) fn sns(args: &Value) -> Result<Built, StatesError> {
    let e = SNS_INVALID_PARAMETER;
    let o = obj(args, e)?;
    let arn = match (string(o, "TopicArn", e)?, string(o, "TargetArn", e)?) {
        (Some(a), None) | (None, Some(a)) => a,
        _ => {
            return Err(StatesError::new(
                e,
                "Invalid parameter: exactly one of TopicArn and TargetArn must be given",
            ));
        }
    };
    let subject = sns_subject(arn).map_err(|m| StatesError::new(e, m))?;
    let message = o
        .get("Message")
        .ok_or_else(|| StatesError::new(e, "Invalid parameter: Empty message"))?;
    let mut headers = Vec::new();
    if let Some(s) = string(o, "Subject", e)? {
        headers.push(("Sns-Subject".to_owned(), s.to_owned()));
    }
    if let Some(attrs) = o.get("MessageAttributes") {
        let Value::Object(attrs) = attrs else {
            return Err(StatesError::new(
                e,
                "Invalid parameter: MessageAttributes must be an object",
            ));
        };
        for (name, a) in attrs {
            let value = a
                .get("StringValue")
                .and_then(Value::as_str)
                .filter(|_| name.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
                .ok_or_else(|| {
                    StatesError::new(
                        e,
                        format!("Invalid parameter: the message attribute '{name}' needs a StringValue (and a name without spaces or ':')"),
                    )
                })?;
            headers.push((format!("Sns-Attribute-{name}"), value.to_owned()));
        }
    }
    let msg = Publication {
        subject,
        data: text(message),
        headers,
    };
    Ok((Target::Publish(vec![msg]), None, TaskKind::Sns, Vec::new()))
}

/// `events:putEvents`, at `now_ms`, for the Task `key`.
pub(super) fn events(args: &Value, now_ms: i64, key: &str) -> Result<Built, StatesError> {
    let e = EVENTS_VALIDATION;
    let o = obj(args, e)?;
    let entries = match o.get("Entries") {
        Some(Value::Array(a)) if (1..=10).contains(&a.len()) => a,
        _ => {
            return Err(StatesError::new(
                e,
                "The field 'Entries' must be an array of 1 to 10 entries",
            ));
        }
    };
    let time = crate::time::format_ms(now_ms);
    let time = time
        .split('.')
        .next()
        .map_or(time.clone(), |t| format!("{t}Z"));
    let mut messages = Vec::with_capacity(entries.len());
    let mut ids = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = |m: &str| StatesError::new(e, format!("Entries[{i}]: {m}"));
        let entry = entry
            .as_object()
            .ok_or_else(|| at("an entry must be an object"))?;
        let source = string(entry, "Source", e)?.ok_or_else(|| at("Source is required"))?;
        let detail_type =
            string(entry, "DetailType", e)?.ok_or_else(|| at("DetailType is required"))?;
        let detail = match entry.get("Detail") {
            None => return Err(at("Detail is required")),
            // EventBridge takes Detail as a JSON text; Step Functions also passes objects.
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| at("Detail must be a JSON object"))?,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(at("Detail must be a JSON object")),
        };
        let subject =
            events_subject(string(entry, "EventBusName", e)?, source).map_err(|m| at(&m))?;
        let resources = entry.get("Resources").cloned().unwrap_or(json!([]));
        let id = event_id(key, i);
        let body = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": "000000000000",
            "time": time,
            "region": "local",
            "resources": resources,
            "detail": detail,
        });
        messages.push(Publication {
            subject,
            data: body.to_string(),
            headers: vec![
                ("ce-type".to_owned(), detail_type.to_owned()),
                ("ce-source".to_owned(), source.to_owned()),
            ],
        });
        ids.push(id);
    }
    Ok((Target::Publish(messages), None, TaskKind::Events, ids))
}

/// The id of entry `n` of the Task `key`: a UUID made from them, so a Task stepped again (an
/// Express execution re-run, a batch stepped again with look-ups) names the events its first
/// run published, whose bodies carry these ids.
fn event_id(key: &str, n: usize) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{key}/{n}").as_bytes());
    let b = &d[..16];
    let (hi, lo) = (
        u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
        u64::from_be_bytes(b[8..].try_into().expect("8 bytes")),
    );
    uuid_from(hi, lo)
}

/// The result a publishing Task's state sees: `ids` (the runner's message ids) shaped as
/// the service answers.
pub(super) fn result(
    kind: TaskKind,
    ids: &Value,
    event_ids: &[String],
    random: &dyn Random,
) -> Value {
    let first = ids
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    match kind {
        TaskKind::Nats => json!({"MessageId": first}),
        TaskKind::Sns => json!({
            "MessageId": first,
            "SdkHttpMetadata": {"AllHttpHeaders": {}, "HttpHeaders": {}, "HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": uuid_v4(random)},
        }),
        TaskKind::Events => json!({
            "Entries": event_ids.iter().map(|id| json!({"EventId": id})).collect::<Vec<_>>(),
            "FailedEntryCount": 0,
        }),
        _ => ids.clone(),
    }
}
