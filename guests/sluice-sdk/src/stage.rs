//! The [`Stage`] trait, the [`Context`] a handler sees, and the [`Batch`] a batch handler
//! iterates.

use std::marker::PhantomData;
use std::vec;

use crate::bindings::sluice::platform::batch;
use crate::bindings::sluice::platform::types::{Event, StageResult};
use crate::{Error, FromData, IntoData};

/// A pipeline stage: what it reads, what it answers, and how.
///
/// Export it with [`export_stage!`](crate::export_stage). State calls made in
/// [`handle`](Stage::handle) belong to the event's write set: they commit together with a
/// successful answer and vanish with an error.
pub trait Stage {
    /// What the handler takes: any `serde` type (the event's data read as JSON), or
    /// [`Bytes`](crate::Bytes) for the data as it came.
    type Input: FromData;
    /// What the handler answers: any `serde` type (written as JSON), or
    /// [`Bytes`](crate::Bytes) sent as they are.
    type Output: IntoData;

    /// Handle one event. `cx` carries its id, type, source, subject, time, attempt and
    /// headers; `input` its decoded data.
    fn handle(cx: &Context, input: Self::Input) -> Result<Self::Output, Error>;

    /// Handle a whole batch in one call, answering one result per event, in order. Only used
    /// when the stage is exported with `export_stage!(MyStage, batch)`.
    ///
    /// The default runs [`handle`](Stage::handle) for each event. An override must take each
    /// event from `batch` before doing that event's work: the iterator tells the host which
    /// event the following state calls and emits belong to (`batch::begin-event`).
    fn handle_batch(batch: Batch<Self::Input>) -> Vec<Result<Self::Output, Error>> {
        batch
            .map(|(cx, input)| input.and_then(|input| Self::handle(&cx, input)))
            .collect()
    }
}

/// The event being handled, apart from its data: the CloudEvents attributes the host delivers
/// and the delivery attempt.
///
/// Built by the SDK for each event; [`Context::new`] and the `with_` methods build one by
/// hand, for calling a handler from a test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    id: String,
    event_type: String,
    source: String,
    subject: String,
    time: String,
    attempt: u32,
    headers: Vec<(String, String)>,
}

impl Context {
    /// A context for event `id`, first attempt, with every other attribute empty.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            attempt: 1,
            ..Self::default()
        }
    }

    /// Split a WIT event into its context and its data.
    pub fn from_event(event: Event) -> (Self, Vec<u8>) {
        let Event {
            id,
            type_,
            source,
            subject,
            time,
            data,
            attempt,
            headers,
        } = event;
        let cx = Self {
            id,
            event_type: type_,
            source,
            subject,
            time,
            attempt,
            headers,
        };
        (cx, data)
    }

    /// The event's unique id: the exactly-once dedupe key, stable across redeliveries.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event type, e.g. `order.created` (CloudEvents `type`).
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// Who produced the event, e.g. `shop/checkout` (CloudEvents `source`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The subject the event arrived on, or the workflow state that invoked the stage.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// When the event was produced (RFC 3339).
    pub fn time(&self) -> &str {
        &self.time
    }

    /// The delivery attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the event was delivered before and that attempt did not commit.
    pub fn is_redelivery(&self) -> bool {
        self.attempt > 1
    }

    /// Every header as (name, value), in arrival order, names as sent.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The value of the first header called `name`, compared ignoring ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The same context with another event type.
    pub fn with_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = event_type.into();
        self
    }

    /// The same context with another source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// The same context with another subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// The same context with another time.
    pub fn with_time(mut self, time: impl Into<String>) -> Self {
        self.time = time.into();
        self
    }

    /// The same context with another attempt number.
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// The same context with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The events of one `handle-batch` call, each yielded with its context and its decoded input
/// (or the error decoding it).
///
/// Yielding event `i` first calls the host's `batch::begin-event(i)`, so the state calls and
/// emits made until the next event is taken are attributed to event `i`. Take each event just
/// before handling it; collecting them all first would attribute everything to the last.
#[derive(Debug)]
pub struct Batch<T> {
    events: vec::IntoIter<Event>,
    next: u32,
    input: PhantomData<fn() -> T>,
}

impl<T: FromData> Batch<T> {
    fn new(events: Vec<Event>) -> Self {
        Self {
            events: events.into_iter(),
            next: 0,
            input: PhantomData,
        }
    }
}

impl<T: FromData> Iterator for Batch<T> {
    type Item = (Context, Result<T, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        let event = self.events.next()?;
        batch::begin_event(self.next);
        // The host caps a batch far below 2^32 events; saturating keeps a later index from
        // wrapping to a smaller one, which the host would refuse as going backwards.
        self.next = self.next.saturating_add(1);
        let (cx, data) = Context::from_event(event);
        Some((cx, T::from_data(data)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.events.size_hint()
    }
}

impl<T: FromData> ExactSizeIterator for Batch<T> {}

/// The `handle` export: decode, handle, encode. Called by [`export_stage!`](crate::export_stage).
pub(crate) fn handle<S: Stage>(event: Event) -> StageResult {
    let (cx, data) = Context::from_event(event);
    S::Input::from_data(data)
        .and_then(|input| S::handle(&cx, input))
        .and_then(IntoData::into_data)
        .map_err(Error::into_stage_error)
}

/// The `handle-batch` export. Called by [`export_stage!`](crate::export_stage).
pub(crate) fn handle_batch<S: Stage>(events: Vec<Event>) -> Vec<StageResult> {
    S::handle_batch(Batch::new(events))
        .into_iter()
        .map(|r| {
            r.and_then(IntoData::into_data)
                .map_err(Error::into_stage_error)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: "evt-1".into(),
            type_: "order.created".into(),
            source: "shop/checkout".into(),
            subject: "orders.new".into(),
            time: "2026-12-01T00:00:00Z".into(),
            data: br#"{"n":2}"#.to_vec(),
            attempt: 3,
            headers: vec![
                ("Order-Id".into(), "o-1".into()),
                ("order-id".into(), "o-2".into()),
            ],
        }
    }

    #[test]
    fn context_carries_the_event_attributes() {
        let (cx, data) = Context::from_event(event());
        assert_eq!(data, br#"{"n":2}"#);
        assert_eq!(cx.id(), "evt-1");
        assert_eq!(cx.event_type(), "order.created");
        assert_eq!(cx.source(), "shop/checkout");
        assert_eq!(cx.subject(), "orders.new");
        assert_eq!(cx.time(), "2026-12-01T00:00:00Z");
        assert_eq!(cx.attempt(), 3);
        assert!(cx.is_redelivery());
        assert_eq!(cx.headers().len(), 2);
        // The first match, whatever its case.
        assert_eq!(cx.header("ORDER-ID"), Some("o-1"));
        assert_eq!(cx.header("missing"), None);
    }

    #[test]
    fn context_builds_by_hand() {
        let cx = Context::new("e")
            .with_type("t")
            .with_source("s")
            .with_subject("a.b")
            .with_time("now")
            .with_attempt(2)
            .with_header("k", "v");
        let (from_event, _) = Context::from_event(Event {
            id: "e".into(),
            type_: "t".into(),
            source: "s".into(),
            subject: "a.b".into(),
            time: "now".into(),
            data: Vec::new(),
            attempt: 2,
            headers: vec![("k".into(), "v".into())],
        });
        assert_eq!(cx, from_event);
        assert!(!Context::new("e").is_redelivery());
    }

    #[derive(serde::Deserialize)]
    struct Input {
        n: i64,
    }

    #[derive(serde::Serialize)]
    struct Output {
        doubled: i64,
        attempt: u32,
    }

    struct Double;

    impl Stage for Double {
        type Input = Input;
        type Output = Output;

        fn handle(cx: &Context, input: Input) -> Result<Output, Error> {
            if input.n < 0 {
                return Err(Error::permanent("Input.Negative", cx.id()));
            }
            Ok(Output {
                doubled: input.n * 2,
                attempt: cx.attempt(),
            })
        }
    }

    #[test]
    fn handle_decodes_handles_and_encodes() {
        assert_eq!(
            handle::<Double>(event()).unwrap(),
            br#"{"doubled":4,"attempt":3}"#
        );
        let e = handle::<Double>(Event {
            data: br#"{"n":-1}"#.to_vec(),
            ..event()
        })
        .unwrap_err();
        assert_eq!(
            (e.name.as_str(), e.cause.as_str()),
            ("Input.Negative", "evt-1")
        );
        let e = handle::<Double>(Event {
            data: b"{".to_vec(),
            ..event()
        })
        .unwrap_err();
        assert_eq!(e.name, "Input.MalformedJson");
        let e = handle::<Double>(Event {
            data: br#"{"n":"two"}"#.to_vec(),
            ..event()
        })
        .unwrap_err();
        assert_eq!(e.name, "Input.Invalid");
    }
}
