//! Property tests of what this crate decodes from bytes it does not control: JetStream
//! messages turned into events (`to_event`: headers, subject, reply subject, payload from
//! any publisher) and content-routing patterns (`EventPattern`: JSON from a pipeline file,
//! matched against any payload).
//!
//! Each property is checked against a small reference written from the documentation, not
//! from the code. Failures are printed (with the shrunk input), not persisted to regression
//! files.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use async_nats::jetstream;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};
use sluice_model::Event;
use sluice_nats::{EventPattern, to_event};
use time::format_description::well_known::Rfc3339;

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// JetStream messages
// ---------------------------------------------------------------------------------------

/// A `jetstream::Message` needs a `Context`, which needs a `Client`. With
/// `retry_on_initial_connect` the client is handed out before any connection is made; its
/// runtime is never driven again, so it never reaches the (closed) address.
fn context() -> jetstream::Context {
    static CTX: OnceLock<(tokio::runtime::Runtime, jetstream::Context)> = OnceLock::new();
    CTX.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let client = rt
            .block_on(
                async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .connect("127.0.0.1:1"),
            )
            .expect("retry_on_initial_connect hands out a client at once");
        // The context spawns its acker task: build it inside the runtime.
        let ctx = {
            let _in_runtime = rt.enter();
            jetstream::new(client)
        };
        (rt, ctx)
    })
    .1
    .clone()
}

/// The fields of a `$JS.ACK.` reply subject (ADR-15), v1 (7 tokens) or v2 (9 or 10).
#[derive(Debug, Clone)]
struct Ack {
    stream: String,
    consumer: String,
    delivered: i64,
    stream_seq: u64,
    consumer_seq: u64,
    nanos: i64,
    pending: u64,
    /// (domain, account hash, optional trailing token) of the v2 format.
    v2: Option<(String, String, Option<String>)>,
}

impl Ack {
    fn subject(&self) -> String {
        let tail = format!(
            "{}.{}.{}.{}.{}.{}.{}",
            self.stream,
            self.consumer,
            self.delivered,
            self.stream_seq,
            self.consumer_seq,
            self.nanos,
            self.pending
        );
        match &self.v2 {
            None => format!("$JS.ACK.{tail}"),
            Some((domain, hash, None)) => format!("$JS.ACK.{domain}.{hash}.{tail}"),
            Some((domain, hash, Some(token))) => {
                format!("$JS.ACK.{domain}.{hash}.{tail}.{token}")
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Reply {
    /// A well-formed ack subject: the message carries stream, sequence and delivery count.
    Ack(Ack),
    /// Anything else, including `$JS.ACK.` followed by junk tokens.
    Garbage(String),
    None,
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,10}"
}

fn ack() -> impl Strategy<Value = Ack> {
    let delivered = prop_oneof![4 => 1i64..1000, 1 => any::<i64>()];
    (
        (token(), token(), delivered, any::<u64>(), any::<u64>()),
        (any::<i64>(), any::<u64>()),
        proptest::option::of((
            prop_oneof![Just("_".to_owned()), token()],
            token(),
            proptest::option::of(token()),
        )),
    )
        .prop_map(
            |((stream, consumer, delivered, stream_seq, consumer_seq), (nanos, pending), v2)| Ack {
                stream,
                consumer,
                delivered,
                stream_seq,
                consumer_seq,
                nanos,
                pending,
                v2,
            },
        )
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        6 => ack().prop_map(Reply::Ack),
        1 => "(?s).{0,40}".prop_map(Reply::Garbage),
        1 => proptest::collection::vec("[^.]{0,6}", 0..12)
            .prop_map(|t| Reply::Garbage(format!("$JS.ACK.{}", t.join(".")))),
        1 => Just(Reply::None),
    ]
}

/// Header names async-nats accepts (ASCII graphic, no `:`), biased to the ones `to_event`
/// looks at and their near misses.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            "Nats-Msg-Id", "ce-id", "ce-type", "ce-source", "ce-time", "nats-msg-id", "CE-ID",
            "ce-idx", "Nats-Stream", "Nats-Sequence", "region",
        ])
        .prop_map(String::from),
        2 => "[!-9;-~]{0,16}",
    ]
}

/// Header values async-nats accepts (anything but CR and LF): control characters, any
/// Unicode, empty, and now and then huge.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[^\r\n]{0,24}",
        2 => Just(String::new()),
        1 => (
            any::<char>().prop_filter("no CR/LF", |c| !matches!(c, '\r' | '\n')),
            1usize..70_000,
        )
            .prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// Headers in arrival order; names repeat often.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((header_name(), header_value()), 0..12)
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).expect("a Value serializes")),
        1 => proptest::collection::vec(any::<u8>(), 0..100_000),
    ]
}

fn message(
    subject: &str,
    reply: &Reply,
    headers: Option<&[(String, String)]>,
    payload: &[u8],
) -> jetstream::Message {
    let headers = headers.map(|hs| {
        let mut map = async_nats::HeaderMap::new();
        for (k, v) in hs {
            map.append(k.as_str(), v.as_str());
        }
        map
    });
    let reply = match reply {
        Reply::Ack(a) => Some(a.subject().into()),
        Reply::Garbage(s) => Some(s.clone().into()),
        Reply::None => None,
    };
    jetstream::Message {
        message: async_nats::Message {
            subject: subject.to_owned().into(),
            reply,
            payload: payload.to_vec().into(),
            headers,
            status: None,
            description: None,
            length: payload.len(),
        },
        context: context(),
    }
}

/// The first non-empty value of header `name`, in arrival order: an empty id is no id.
fn first_id<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The first value of header `name`, in arrival order.
fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

proptest! {
    #![proptest_config(config())]

    /// Nothing a publisher controls makes `to_event` panic; the subject, the payload bytes and
    /// every header value (repeats included) reach the event unchanged.
    #[test]
    fn to_event_passes_subject_data_and_headers_through(
        subject in "(?s).{0,40}",
        reply in reply(),
        hs in proptest::option::of(headers()),
        data in payload(),
    ) {
        let e = to_event(&message(&subject, &reply, hs.as_deref(), &data));
        prop_assert_eq!(&e.subject, &subject);
        prop_assert!(e.data == data, "data changed: {} bytes in, {} out", data.len(), e.data.len());
        let mut want = hs.unwrap_or_default();
        want.sort();
        let mut got = e.headers;
        got.sort();
        prop_assert_eq!(got, want);
    }

    /// The id is `Nats-Msg-Id`, else `ce-id`, else `<stream>/<stream sequence>`; `type`,
    /// `source` and `time` come from `ce-*` headers, `time` otherwise from the ack subject's
    /// timestamp; a header given several times counts with its first value; `attempt` is the
    /// delivery count.
    #[test]
    fn to_event_follows_the_documented_precedence(
        subject in "[a-z.]{0,12}",
        reply in reply(),
        hs in headers(),
        data in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let e = to_event(&message(&subject, &reply, Some(&hs), &data));
        let from_ack = match &reply {
            Reply::Ack(a) => Some(a),
            _ => None,
        };
        match (first_id(&hs, "Nats-Msg-Id"), first_id(&hs, "ce-id"), from_ack) {
            (Some(id), _, _) | (None, Some(id), _) => prop_assert_eq!(e.id.as_str(), id),
            (None, None, Some(a)) => {
                prop_assert_eq!(&e.id, &format!("{}/{}", a.stream, a.stream_seq));
            }
            // A reply that is not an ack subject: nothing to fall back on, or junk tokens
            // that may or may not parse. Only the absence of a panic is asserted.
            (None, None, None) => {}
        }
        prop_assert_eq!(e.kind.as_str(), first(&hs, "ce-type").unwrap_or_default());
        prop_assert_eq!(e.source.as_str(), first(&hs, "ce-source").unwrap_or_default());
        match (first(&hs, "ce-time"), from_ack) {
            (Some(t), _) => prop_assert_eq!(e.time.as_str(), t),
            (None, Some(a)) => {
                let published = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(a.nanos))
                    .expect("every i64 of nanoseconds is a date");
                prop_assert_eq!(e.time, published.format(&Rfc3339).expect("years 1677..2262 format"));
            }
            (None, None) => {}
        }
        if let Some(a) = from_ack
            && a.delivered >= 1
        {
            prop_assert_eq!(
                u64::from(e.attempt),
                u64::try_from(a.delivered).expect("positive").min(u64::from(u32::MAX))
            );
        }
    }

    /// The id is the event's exactly-once dedupe key (`sluice-store` keys dedupe records by
    /// it), so a message that JetStream delivered (it has stream and sequence) never gets an
    /// empty one: two such events would share one dedupe record and the second would be
    /// answered from the first's without running. JetStream itself ignores an empty
    /// `Nats-Msg-Id` for its duplicate window, so such messages do arrive.
    #[test]
    fn jetstream_messages_never_get_an_empty_id(
        a in ack(),
        hs in headers(),
    ) {
        let e = to_event(&message("orders.new", &Reply::Ack(a.clone()), Some(&hs), b"{}"));
        prop_assert!(
            !e.id.is_empty(),
            "empty event id for stream {} sequence {} with headers {:?}",
            a.stream, a.stream_seq, hs
        );
    }
}

// ---------------------------------------------------------------------------------------
// Content-routing patterns
// ---------------------------------------------------------------------------------------

/// Keys and strings drawn mostly from the pattern language and the event's field names, so
/// that random JSON often lands near a valid pattern and random data near the pattern's paths.
const WORDS: &[&str] = &[
    "id",
    "type",
    "source",
    "subject",
    "time",
    "headers",
    "data",
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "a",
    "b",
    "k",
    "n",
    "",
    "order.created",
    "A",
    "é",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(String::from),
        1 => "(?s).{0,8}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-8i64..8).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-400i32..400).prop_map(|i| Value::from(f64::from(i) / 4.0)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        word().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, up to 4 levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((word(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

const OPS: &[&str] = &["=", "<", "<=", ">", ">="];

fn numeric_arg() -> impl Strategy<Value = Value> {
    let op = || proptest::sample::select(OPS);
    prop_oneof![
        (op(), number()).prop_map(|(o, n)| json!([o, n])),
        (op(), number(), op(), number()).prop_map(|(o, n, p, m)| json!([o, n, p, m])),
    ]
}

/// One alternative of a leaf, in the documented grammar.
fn matcher() -> impl Strategy<Value = Value> {
    let literal = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        word().prop_map(Value::String),
    ];
    prop_oneof![
        3 => literal.clone(),
        1 => word().prop_map(|s| json!({"prefix": s})),
        1 => word().prop_map(|s| json!({"suffix": s})),
        1 => word().prop_map(|s| json!({"equals-ignore-case": s})),
        1 => any::<bool>().prop_map(|b| json!({"exists": b})),
        1 => literal.clone().prop_map(|v| json!({"anything-but": v})),
        1 => proptest::collection::vec(literal, 0..4).prop_map(|v| json!({"anything-but": v})),
        1 => word().prop_map(|s| json!({"anything-but": {"prefix": s}})),
        1 => numeric_arg().prop_map(|a| json!({"numeric": a})),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    proptest::collection::vec(matcher(), 1..4).prop_map(Value::Array)
}

fn object_of<S: Strategy<Value = Value>>(inner: S) -> impl Strategy<Value = Value> {
    proptest::collection::vec((word(), inner), 1..4)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// A pattern in the documented grammar: nested objects down to leaves of alternatives.
fn valid_pattern() -> impl Strategy<Value = Value> {
    object_of(leaf().prop_recursive(3, 24, 3, object_of))
}

/// Patterns that are mostly right: the grammar's shape with, here and there, a matcher
/// object with the wrong argument, an unknown operator, two keys, an array or object where
/// a literal goes, an empty leaf or an empty object.
fn near_pattern() -> impl Strategy<Value = Value> {
    let alt = prop_oneof![
        4 => matcher(),
        1 => (word(), json_value()).prop_map(|(k, v)| json!({ k: v })),
        1 => json_value(),
    ];
    let leaf = proptest::collection::vec(alt, 0..4).prop_map(Value::Array);
    let node = prop_oneof![
        8 => leaf,
        1 => json_value(),
    ];
    loose_object_of(node.prop_recursive(3, 24, 3, loose_object_of))
}

/// Like [`object_of`], but possibly empty.
fn loose_object_of<S: Strategy<Value = Value>>(inner: S) -> impl Strategy<Value = Value> {
    proptest::collection::vec((word(), inner), 0..4)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

// The reference validator, written from the module documentation of `pattern.rs`: "A
// pattern is a JSON object ... Each leaf is an array of alternatives ... Alternatives: a
// literal (string, number, boolean, null) ...; {"prefix": s}, {"suffix": s},
// {"equals-ignore-case": s}; {"anything-but": v | [v..] | {"prefix": s}}; {"numeric": [op, n,
// (op, n)]} ...; {"exists": true|false}", plus "an empty object matches nothing useful".

fn is_literal(v: &Value) -> bool {
    matches!(
        v,
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)
    )
}

fn doc_valid_object(m: &Map<String, Value>) -> bool {
    !m.is_empty()
        && m.values().all(|v| match v {
            Value::Object(o) => doc_valid_object(o),
            Value::Array(alts) => !alts.is_empty() && alts.iter().all(doc_valid_alternative),
            _ => false,
        })
}

fn doc_valid_alternative(m: &Value) -> bool {
    let Value::Object(o) = m else {
        return is_literal(m);
    };
    let mut entries = o.iter();
    let (Some((op, arg)), None) = (entries.next(), entries.next()) else {
        return false;
    };
    match op.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => {
            is_literal(arg)
                || arg.as_array().is_some_and(|a| a.iter().all(is_literal))
                || arg
                    .as_object()
                    .is_some_and(|p| p.len() == 1 && p.get("prefix").is_some_and(Value::is_string))
        }
        "numeric" => arg.as_array().is_some_and(|a| {
            (a.len() == 2 || a.len() == 4)
                && a.chunks(2)
                    .all(|c| c[0].as_str().is_some_and(|o| OPS.contains(&o)) && c[1].is_number())
        }),
        _ => false,
    }
}

/// An alternative just outside the documented grammar.
fn bad_alternative() -> impl Strategy<Value = Value> {
    prop_oneof![
        // An array where a literal goes.
        3 => proptest::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        1 => Just(json!({})),
        1 => (word(), word()).prop_map(|(a, b)| json!({"prefix": a, "suffix": b})),
        1 => word().prop_map(|s| json!({"regex": s})),
        1 => number().prop_map(|n| json!({"prefix": n})),
        1 => word().prop_map(|s| json!({"exists": s})),
        1 => word().prop_map(|s| json!({"numeric": [s]})),
        1 => (proptest::sample::select(OPS), word()).prop_map(|(o, s)| json!({"numeric": [o, s]})),
        1 => scalar().prop_map(|v| json!({"anything-but": [v, [v]]})),
        1 => number().prop_map(|n| json!({"anything-but": {"prefix": n}})),
    ]
}

/// The key paths of the leaves of a pattern, with their number of alternatives.
fn leaves(p: &Map<String, Value>, here: &mut Vec<String>, out: &mut Vec<(Vec<String>, usize)>) {
    for (k, v) in p {
        here.push(k.clone());
        match v {
            Value::Object(o) => leaves(o, here, out),
            Value::Array(alts) => out.push((here.clone(), alts.len())),
            _ => {}
        }
        here.pop();
    }
}

/// A valid pattern with one alternative of one leaf replaced by a bad one.
fn one_bad_alternative() -> impl Strategy<Value = Value> {
    (
        valid_pattern(),
        any::<proptest::sample::Index>(),
        any::<proptest::sample::Index>(),
        bad_alternative(),
    )
        .prop_map(|(mut p, leaf, alt, bad)| {
            let mut found = Vec::new();
            leaves(
                p.as_object().expect("an object"),
                &mut Vec::new(),
                &mut found,
            );
            let (path, n) = leaf.get(&found).clone();
            let node = path.iter().fold(&mut p, |node, k| &mut node[k.as_str()]);
            node[alt.index(n)] = bad;
            p
        })
}

fn any_pattern_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => json_value(),
        3 => near_pattern(),
        2 => one_bad_alternative(),
        1 => valid_pattern(),
    ]
}

/// Payloads: JSON shaped like the patterns' paths, JSON nested past serde_json's depth
/// limit (128), truncated JSON and raw bytes.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_value().prop_map(|v| serde_json::to_vec(&v).expect("a Value serializes")),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => (1usize..300).prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()),
        1 => (1usize..300).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => (1usize..300).prop_map(|n| "[".repeat(n).into_bytes()),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        (word(), word(), word(), word(), word()),
        proptest::collection::vec((word(), word()), 0..4),
        data(),
        any::<u32>(),
    )
        .prop_map(
            |((id, kind, source, subject, time), headers, data, attempt)| Event {
                id,
                kind,
                source,
                subject,
                time,
                data,
                attempt,
                headers,
            },
        )
}

/// The parsed pattern, or a test failure naming the pattern.
fn parse(p: &Value) -> Result<EventPattern, TestCaseError> {
    EventPattern::parse(p).map_err(|e| TestCaseError::fail(format!("{p} was refused: {e}")))
}

/// A pattern read from a pipeline file: numbers go through JSON text as in production, so
/// that a bound and a payload value written alike compare alike.
fn as_read(p: &Value) -> Value {
    serde_json::from_str(&p.to_string()).expect("a Value's text parses")
}

fn data_with_k(k: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"k": k, "other": 1})).expect("a Value serializes")
}

fn with_data(data: Vec<u8>) -> Event {
    Event {
        data,
        ..Event::default()
    }
}

fn field_k() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        3 => word().prop_map(Value::String),
        1 => scalar(),
        1 => proptest::collection::vec(scalar(), 0..4).prop_map(Value::Array),
    ])
}

/// The data of an event with `data.k` set to `k` (absent for `None`), or a non-JSON payload.
fn data_k(k: Option<&Value>, json_payload: bool) -> Vec<u8> {
    match (k, json_payload) {
        (_, false) => b"not json {".to_vec(),
        (Some(k), true) => data_with_k(k),
        (None, true) => b"{\"other\":1}".to_vec(),
    }
}

/// The values a leaf is tried against: the elements when the field is an array, as in
/// EventBridge.
fn candidates(k: Option<&Value>) -> Vec<&Value> {
    match k {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    }
}

fn numeric_holds(op: &str, n: f64, bound: f64) -> bool {
    match op {
        "=" => n == bound,
        "<" => n < bound,
        "<=" => n <= bound,
        ">" => n > bound,
        ">=" => n >= bound,
        _ => unreachable!("OPS only"),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any JSON is either a pattern or a `PatternError` whose path names a node of the input
    /// (`$` for the root), never a panic.
    #[test]
    fn parse_never_panics_and_errors_name_a_node(p in any_pattern_json()) {
        if let Err(e) = EventPattern::parse(&p) {
            prop_assert!(!e.problem.is_empty());
            prop_assert!(e.to_string().contains(&e.path));
            let keys_are_plain = |v: &Value| {
                fn plain(v: &Value) -> bool {
                    match v {
                        Value::Object(o) => o.iter().all(|(k, v)| !k.contains('.') && !k.is_empty() && plain(v)),
                        Value::Array(a) => a.iter().all(plain),
                        _ => true,
                    }
                }
                plain(v)
            };
            if e.path != "$" && keys_are_plain(&p) {
                let mut node = &p;
                for k in e.path.split('.') {
                    let next = node.get(k);
                    prop_assert!(next.is_some(), "path {} does not lead through {}", e.path, p);
                    node = next.expect("checked");
                }
            }
        }
    }

    /// `parse` accepts exactly the grammar the module documentation describes.
    #[test]
    fn parse_accepts_exactly_the_documented_grammar(p in any_pattern_json()) {
        let documented = p.as_object().is_some_and(doc_valid_object);
        let parsed = EventPattern::parse(&p);
        prop_assert_eq!(parsed.is_ok(), documented, "pattern {} gave {:?}", p, parsed.err());
    }

    /// Whatever a valid pattern and whatever the payload (non-JSON, deeper than serde_json
    /// will parse, arrays where objects are expected), `matches` answers.
    #[test]
    fn matches_never_panics(p in valid_pattern(), e in event()) {
        let pattern = parse(&p)?;
        let _ = pattern.matches(&e);
    }

    /// Sibling keys must all match: a pattern matches iff each of its top-level keys alone
    /// does. Alternatives are a disjunction: a leaf matches iff one of its alternatives alone
    /// does.
    #[test]
    fn keys_are_a_conjunction_and_alternatives_a_disjunction(p in valid_pattern(), e in event()) {
        let whole = parse(&p)?.matches(&e);
        let map = p.as_object().expect("valid_pattern makes objects");
        let mut each = true;
        for (k, v) in map {
            each &= parse(&json!({ k: v }))?.matches(&e);
        }
        prop_assert_eq!(whole, each);
        for (k, v) in map {
            if let Value::Array(alts) = v {
                let leaf = parse(&json!({ k: v }))?.matches(&e);
                let mut any = false;
                for a in alts {
                    any |= parse(&json!({ k: [a] }))?.matches(&e);
                }
                prop_assert_eq!(leaf, any, "leaf {} of {}", k, v);
            }
        }
    }

    /// `{"type": [v1, v2, ..]}` matches exactly the events whose type is one of the values.
    #[test]
    fn exact_values_match_equal_types(
        values in proptest::collection::vec(word(), 1..4),
        kind in word(),
        e in event(),
    ) {
        let pattern = parse(&json!({"type": values}))?;
        let e = Event { kind: kind.clone(), ..e };
        prop_assert_eq!(pattern.matches(&e), values.contains(&kind));
    }

    /// `{"data": {"k": [{"prefix": p}]}}` matches iff `data.k` is a string starting with `p`
    /// (or an array holding one); `suffix` likewise with `ends_with`.
    #[test]
    fn prefix_and_suffix_agree_with_str(p in word(), k in field_k(), json_payload in any::<bool>()) {
        let e = with_data(data_k(k.as_ref(), json_payload));
        let values = if json_payload { candidates(k.as_ref()) } else { Vec::new() };
        let prefix = parse(&json!({"data": {"k": [{"prefix": p}]}}))?.matches(&e);
        let suffix = parse(&json!({"data": {"k": [{"suffix": p}]}}))?.matches(&e);
        prop_assert_eq!(prefix, values.iter().any(|v| v.as_str().is_some_and(|s| s.starts_with(&p))));
        prop_assert_eq!(suffix, values.iter().any(|v| v.as_str().is_some_and(|s| s.ends_with(&p))));
    }

    /// On a present string field, `anything-but` is the complement of the exact match (one
    /// value or a list), and `anything-but` a prefix the complement of `prefix`.
    #[test]
    fn anything_but_is_the_complement_on_strings(
        s in word(),
        excluded in proptest::collection::vec(word(), 1..4),
    ) {
        let e = with_data(data_with_k(&Value::String(s.clone())));
        let one = &excluded[0];
        let exact_one = parse(&json!({"data": {"k": [one]}}))?.matches(&e);
        let but_one = parse(&json!({"data": {"k": [{"anything-but": one}]}}))?.matches(&e);
        prop_assert_eq!(but_one, !exact_one);
        let exact_any = parse(&json!({"data": {"k": excluded}}))?.matches(&e);
        let but_any = parse(&json!({"data": {"k": [{"anything-but": excluded}]}}))?.matches(&e);
        prop_assert_eq!(but_any, !exact_any);
        prop_assert_eq!(exact_any, excluded.contains(&s));
        let prefix = parse(&json!({"data": {"k": [{"prefix": one}]}}))?.matches(&e);
        let but_prefix = parse(&json!({"data": {"k": [{"anything-but": {"prefix": one}}]}}))?.matches(&e);
        prop_assert_eq!(but_prefix, !prefix);
    }

    /// `numeric` agrees with comparing the numbers directly, every bound at once; it never
    /// matches a non-number.
    #[test]
    fn numeric_agrees_with_direct_comparison(
        k in prop_oneof![4 => number(), 1 => scalar()],
        bounds in proptest::collection::vec((proptest::sample::select(OPS), number()), 1..=2),
    ) {
        let arg: Vec<Value> = bounds
            .iter()
            .flat_map(|(o, n)| [json!(o), n.clone()])
            .collect();
        let pattern = as_read(&json!({"data": {"k": [{"numeric": arg}]}}));
        let e = with_data(data_with_k(&k));
        // The values the way both sides read them: from JSON text.
        let seen: Value = serde_json::from_slice(&e.data).expect("data_with_k writes JSON");
        let n = seen["k"].as_f64();
        let arg = pattern["data"]["k"][0]["numeric"].as_array().expect("built above").clone();
        let expected = n.is_some_and(|n| {
            arg.chunks(2).all(|c| {
                numeric_holds(c[0].as_str().expect("op"), n, c[1].as_f64().expect("number"))
            })
        });
        prop_assert_eq!(parse(&pattern)?.matches(&e), expected, "k = {}, pattern {}", seen["k"], pattern);
    }

    /// `{"exists": b}` matches iff the field's presence is `b`; a non-JSON payload has no
    /// fields.
    #[test]
    fn exists_agrees_with_presence(k in field_k(), json_payload in any::<bool>(), b in any::<bool>()) {
        let e = with_data(data_k(k.as_ref(), json_payload));
        let present = json_payload && k.is_some();
        let m = parse(&json!({"data": {"k": [{"exists": b}]}}))?.matches(&e);
        prop_assert_eq!(m, present == b);
    }

    /// `equals-ignore-case` on ASCII strings is equality after lowercasing.
    #[test]
    fn equals_ignore_case_on_ascii(a in "[a-zA-Z.]{0,4}", b in "[a-zA-Z.]{0,4}") {
        let e = Event { source: a.clone(), ..Event::default() };
        let m = parse(&json!({"source": [{"equals-ignore-case": b}]}))?.matches(&e);
        prop_assert_eq!(m, a.to_lowercase() == b.to_lowercase());
    }

    /// Routing sees a header the way `to_event` reads `ce-*` headers: one given several
    /// times counts with its first value, so `{"headers": {h: [first value]}}` matches the
    /// event of the message, as `{"type": [first ce-type]}` does.
    #[test]
    fn routing_sees_a_repeated_header_by_its_first_value(
        hs in proptest::collection::vec(
            (proptest::sample::select(vec!["ce-type", "region"]), "[a-c]{0,2}"),
            1..5,
        ),
    ) {
        let hs: Vec<(String, String)> = hs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let e = to_event(&message("orders.new", &Reply::None, Some(&hs), b"{}"));
        let mut firsts: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in &hs {
            firsts.entry(k.as_str()).or_insert(v.as_str());
        }
        if let Some(kind) = firsts.get("ce-type") {
            let by_type = parse(&json!({"type": [kind]}))?.matches(&e);
            prop_assert!(by_type, "type {:?} does not match", kind);
        }
        for (name, value) in firsts {
            prop_assert!(
                parse(&json!({"headers": { name: [value] }}))?.matches(&e),
                "{{\"headers\": {{{:?}: [{:?}]}}}} does not match headers {:?} (event headers {:?})",
                name, value, hs, e.headers
            );
        }
    }
}
