//! The error names the SDK itself produces, from malformed input or from a state or emit
//! error converted with `?`. Names are part of a stage's contract: workflow `Retry`/`Catch`
//! rules and dead-letter consumers match on them.
//!
//! A stage may return any dotted name of its own, except the host's: names starting with
//! `Sandbox.` or `States.`, and `State.CommitFailed` / `State.Unavailable`, are reserved, and
//! the host replaces a stage error carrying one with `Sandbox.MalformedOutput`.

/// The event's data is not JSON at all (a syntax error or truncated input). Permanent.
pub const INPUT_MALFORMED_JSON: &str = "Input.MalformedJson";
/// The event's data is JSON but not of the stage's input type (a missing field, a wrong type).
/// Permanent.
pub const INPUT_INVALID: &str = "Input.Invalid";
/// The stage's output, or a typed emit's data, could not be serialized as JSON (e.g. a map
/// with non-string keys). Permanent: it is a bug in the stage, not in the event.
pub const OUTPUT_UNSERIALIZABLE: &str = "Output.Unserializable";

/// The stage's configuration does not grant the bucket or table (`access-denied`). Permanent.
pub const STATE_ACCESS_DENIED: &str = "State.AccessDenied";
/// A key, value, document or batch exceeded the host's limits (`too-large`). Permanent.
pub const STATE_TOO_LARGE: &str = "State.TooLarge";
/// A stored key-value value is not what the operation needs (`invalid-value`), e.g. a counter
/// that is not 8 bytes, or a value that does not decode as the requested type. Permanent.
pub const STATE_INVALID_VALUE: &str = "State.InvalidValue";
/// A query named a secondary index the table does not declare (`no-such-index`). Permanent.
pub const STATE_NO_SUCH_INDEX: &str = "State.NoSuchIndex";
/// A conditional table write found the item in another state (`condition-failed`).
/// Permanent: running the same event again meets the same item.
pub const STATE_CONDITION_FAILED: &str = "State.ConditionFailed";
/// A table argument was refused (`invalid-argument`): a document that is not a JSON object,
/// an empty key, or a stored document that does not decode as the requested type. Permanent.
pub const STATE_INVALID_ARGUMENT: &str = "State.InvalidArgument";
/// The backing store failed (`store`). Retryable; the host treats the event as the platform's
/// fault whatever the stage returns.
pub const STATE_ERROR: &str = "State.Error";

/// The subject of an emit is malformed or not granted (`invalid-subject`). Permanent.
pub const EMIT_INVALID_SUBJECT: &str = "Emit.InvalidSubject";
/// An emit exceeded the host's limits on payload, headers or emits per event (`too-large`).
/// Permanent.
pub const EMIT_TOO_LARGE: &str = "Emit.TooLarge";
