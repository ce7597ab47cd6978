//! [`Error`], the named error a stage returns, and its conversions from the host interfaces'
//! errors, so `?` works on every state and emit call.

use std::fmt;

use crate::bindings::sluice::platform::types::StageError;
use crate::bindings::sluice::platform::{emit, keyvalue, table};
use crate::names;

/// A failure a stage reports on purpose: the WIT's `stage-error`.
///
/// The `name` is dotted (`Order.Invalid`, `Payment.Declined`) and is what workflow
/// `Retry`/`Catch` rules and dead-letter consumers match; the `cause` explains it. A
/// *retryable* error makes the host run the event again with backoff; a *permanent* one
/// dead-letters it (or fails the workflow Task) at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    name: String,
    cause: String,
    retryable: bool,
}

impl Error {
    /// An error no retry can fix, e.g. `Error::permanent("Order.Invalid", "no items")`.
    pub fn permanent(name: impl Into<String>, cause: impl fmt::Display) -> Self {
        Self::new(name, cause, false)
    }

    /// An error that running the same event again may not meet, e.g. a dependency that timed
    /// out: `Error::retryable("Payment.Unavailable", "the gateway timed out")`.
    pub fn retryable(name: impl Into<String>, cause: impl fmt::Display) -> Self {
        Self::new(name, cause, true)
    }

    /// An error whose retryability is decided at run time.
    pub fn new(name: impl Into<String>, cause: impl fmt::Display, retryable: bool) -> Self {
        Self {
            name: name.into(),
            cause: cause.to_string(),
            retryable,
        }
    }

    /// The dotted error name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The human-readable explanation (the ASL `Cause`).
    pub fn cause(&self) -> &str {
        &self.cause
    }

    /// Whether the host should run the event again.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The same error with its cause prefixed by `context` and `": "`, to say what was being
    /// done: `bucket.increment(..).map_err(|e| Error::from(e).context("reserving stock"))`.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.cause = format!("{context}: {}", self.cause);
        self
    }

    /// The WIT record the host receives.
    pub fn into_stage_error(self) -> StageError {
        StageError {
            name: self.name,
            cause: self.cause,
            retryable: self.retryable,
        }
    }

    /// The error for event data that does not decode as the stage's input type:
    /// [`names::INPUT_MALFORMED_JSON`] when it is not JSON, [`names::INPUT_INVALID`] when it
    /// is JSON of another shape.
    pub(crate) fn input(e: &serde_json::Error) -> Self {
        if e.is_data() {
            Self::permanent(
                names::INPUT_INVALID,
                format_args!("event data does not match the input type: {e}"),
            )
        } else {
            Self::permanent(
                names::INPUT_MALFORMED_JSON,
                format_args!("event data is not JSON: {e}"),
            )
        }
    }

    /// The error for a value of the stage's own that does not serialize as JSON.
    pub(crate) fn unserializable(what: &str, e: &serde_json::Error) -> Self {
        Self::permanent(
            names::OUTPUT_UNSERIALIZABLE,
            format_args!("{what} does not serialize as JSON: {e}"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.cause)
    }
}

impl std::error::Error for Error {}

impl From<Error> for StageError {
    fn from(e: Error) -> Self {
        e.into_stage_error()
    }
}

impl From<StageError> for Error {
    fn from(e: StageError) -> Self {
        Self {
            name: e.name,
            cause: e.cause,
            retryable: e.retryable,
        }
    }
}

/// One name per variant (see [`names`]); the cause is the host's message. Only `store` is
/// retryable.
impl From<keyvalue::Error> for Error {
    fn from(e: keyvalue::Error) -> Self {
        let name = match &e {
            keyvalue::Error::AccessDenied(_) => names::STATE_ACCESS_DENIED,
            keyvalue::Error::TooLarge(_) => names::STATE_TOO_LARGE,
            keyvalue::Error::InvalidValue(_) => names::STATE_INVALID_VALUE,
            keyvalue::Error::Store(_) => names::STATE_ERROR,
        };
        let retryable = e.is_retryable();
        Self::new(name, e.into_message(), retryable)
    }
}

/// One name per variant (see [`names`]); the cause is the host's message. Only `store` is
/// retryable.
impl From<table::Error> for Error {
    fn from(e: table::Error) -> Self {
        let name = match &e {
            table::Error::AccessDenied(_) => names::STATE_ACCESS_DENIED,
            table::Error::NoSuchIndex(_) => names::STATE_NO_SUCH_INDEX,
            table::Error::ConditionFailed(_) => names::STATE_CONDITION_FAILED,
            table::Error::InvalidArgument(_) => names::STATE_INVALID_ARGUMENT,
            table::Error::TooLarge(_) => names::STATE_TOO_LARGE,
            table::Error::Store(_) => names::STATE_ERROR,
        };
        let retryable = e.is_retryable();
        Self::new(name, e.into_message(), retryable)
    }
}

/// `Emit.InvalidSubject` or `Emit.TooLarge`, both permanent; the cause is the host's message.
impl From<emit::Error> for Error {
    fn from(e: emit::Error) -> Self {
        let name = match &e {
            emit::Error::InvalidSubject(_) => names::EMIT_INVALID_SUBJECT,
            emit::Error::TooLarge(_) => names::EMIT_TOO_LARGE,
        };
        Self::permanent(name, e.into_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_accessors() {
        let e = Error::permanent("Order.Invalid", "no items");
        assert_eq!(
            (e.name(), e.cause(), e.is_retryable()),
            ("Order.Invalid", "no items", false)
        );
        let e = Error::retryable("Payment.Unavailable", format_args!("after {} ms", 300));
        assert_eq!(
            (e.name(), e.cause(), e.is_retryable()),
            ("Payment.Unavailable", "after 300 ms", true)
        );
        assert_eq!(e.to_string(), "Payment.Unavailable: after 300 ms");
        let e = Error::new("A.B", "c", true).context("reserving stock");
        assert_eq!(e.cause(), "reserving stock: c");
    }

    #[test]
    fn round_trips_through_the_wit_record() {
        let e = Error::retryable("X.Y", "why");
        let wit: StageError = e.clone().into();
        assert_eq!(
            (wit.name.as_str(), wit.cause.as_str(), wit.retryable),
            ("X.Y", "why", true)
        );
        assert_eq!(Error::from(wit), e);
    }

    #[test]
    fn keyvalue_errors_are_named_per_variant() {
        let cases = [
            (
                keyvalue::Error::AccessDenied("no".into()),
                "State.AccessDenied",
                false,
            ),
            (
                keyvalue::Error::TooLarge("no".into()),
                "State.TooLarge",
                false,
            ),
            (
                keyvalue::Error::InvalidValue("no".into()),
                "State.InvalidValue",
                false,
            ),
            (keyvalue::Error::Store("no".into()), "State.Error", true),
        ];
        for (wit, name, retryable) in cases {
            let e = Error::from(wit);
            assert_eq!(
                (e.name(), e.cause(), e.is_retryable()),
                (name, "no", retryable)
            );
        }
    }

    #[test]
    fn table_errors_are_named_per_variant() {
        let cases = [
            (
                table::Error::AccessDenied("m".into()),
                "State.AccessDenied",
                false,
            ),
            (
                table::Error::NoSuchIndex("m".into()),
                "State.NoSuchIndex",
                false,
            ),
            (
                table::Error::ConditionFailed("m".into()),
                "State.ConditionFailed",
                false,
            ),
            (
                table::Error::InvalidArgument("m".into()),
                "State.InvalidArgument",
                false,
            ),
            (table::Error::TooLarge("m".into()), "State.TooLarge", false),
            (table::Error::Store("m".into()), "State.Error", true),
        ];
        for (wit, name, retryable) in cases {
            let e = Error::from(wit);
            assert_eq!(
                (e.name(), e.cause(), e.is_retryable()),
                (name, "m", retryable)
            );
        }
    }

    #[test]
    fn emit_errors_are_permanent() {
        let e = Error::from(emit::Error::InvalidSubject("a.*".into()));
        assert_eq!(
            (e.name(), e.cause(), e.is_retryable()),
            ("Emit.InvalidSubject", "a.*", false)
        );
        let e = Error::from(emit::Error::TooLarge("big".into()));
        assert_eq!(
            (e.name(), e.cause(), e.is_retryable()),
            ("Emit.TooLarge", "big", false)
        );
    }

    #[test]
    fn no_conversion_produces_a_reserved_name() {
        // The host replaces reserved names with `Sandbox.MalformedOutput`.
        for name in [
            names::STATE_ACCESS_DENIED,
            names::STATE_TOO_LARGE,
            names::STATE_INVALID_VALUE,
            names::STATE_NO_SUCH_INDEX,
            names::STATE_CONDITION_FAILED,
            names::STATE_INVALID_ARGUMENT,
            names::STATE_ERROR,
            names::EMIT_INVALID_SUBJECT,
            names::EMIT_TOO_LARGE,
            names::INPUT_MALFORMED_JSON,
            names::INPUT_INVALID,
            names::OUTPUT_UNSERIALIZABLE,
        ] {
            assert!(
                !name.starts_with("Sandbox.")
                    && !name.starts_with("States.")
                    && name != "State.CommitFailed"
                    && name != "State.Unavailable",
                "{name}"
            );
        }
    }
}
