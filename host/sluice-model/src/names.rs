//! Error names the host itself raises. They share one namespace with the names stages return,
//! because ASL `Retry`/`Catch` rules match on both; `Sandbox.*` names are reserved for the host.

/// The invocation ran past its wall-clock deadline and was interrupted.
pub const SANDBOX_TIMEOUT: &str = "Sandbox.Timeout";
/// The guest tried to grow its memory (or tables, or instance count) past the stage's limit.
pub const SANDBOX_MEMORY_LIMIT: &str = "Sandbox.MemoryLimit";
/// The guest trapped: a panic, `unreachable`, an out-of-bounds access, a stack overflow.
pub const SANDBOX_TRAP: &str = "Sandbox.Trap";
/// The guest exhausted its call stack (a more specific kind of trap).
pub const SANDBOX_STACK_OVERFLOW: &str = "Sandbox.StackOverflow";
/// The stage returned more output bytes than the stage's limit allows.
pub const SANDBOX_OUTPUT_TOO_LARGE: &str = "Sandbox.OutputTooLarge";
/// The stage returned something the host could not accept (wrong batch length, a reserved
/// error name, an error without a name).
pub const SANDBOX_MALFORMED_OUTPUT: &str = "Sandbox.MalformedOutput";
/// Instantiating the stage failed (e.g. no free slot in the instance pool, start trap).
pub const SANDBOX_INSTANTIATION: &str = "Sandbox.InstantiationFailed";
/// The guest broke a host-enforced rule of the contract (e.g. a batch index out of range).
pub const SANDBOX_CONTRACT: &str = "Sandbox.ContractViolation";

/// The batch the event ran in already held as many bytes (writes, emits, outputs) as the
/// stage allows; retryable, since the event fits in a batch of its own.
pub const SANDBOX_BATCH_LIMIT: &str = "Sandbox.BatchLimit";
/// The state store could not commit the batch (an I/O error, a full disk): the platform's
/// fault, never counted against the event.
pub const STATE_COMMIT_FAILED: &str = "State.CommitFailed";
/// The state store could not answer (a dedupe look-up or a state call met a store failure):
/// the platform's fault, never counted against the event.
pub const STATE_UNAVAILABLE: &str = "State.Unavailable";

/// The event's dedupe record could not be read (it did not decode): the event is not run,
/// since it might have taken effect already; retried, and dead-lettered in the end.
pub const STATE_UNREADABLE: &str = "State.Unreadable";

/// Whether an error of this name is a fault of the platform rather than of the stage: an
/// event source must retry such an event without counting the delivery against it (no dead
/// letter for it, whatever its delivery count).
pub fn is_platform_fault(name: &str) -> bool {
    name == STATE_COMMIT_FAILED || name == STATE_UNAVAILABLE
}

/// Whether a failure of this name counts against the event (towards its dead letter): not
/// for the platform's faults, nor for a full batch, which says nothing about the event.
pub fn counts_against_the_event(name: &str) -> bool {
    !is_platform_fault(name) && name != SANDBOX_BATCH_LIMIT
}

/// Whether `name` belongs to the host's reserved namespaces, which a stage may not return.
pub fn is_reserved(name: &str) -> bool {
    // The platform-fault names too: a stage returning one would be retried forever.
    name.starts_with("Sandbox.") || name.starts_with("States.") || is_platform_fault(name)
}

/// Header carrying the error name on a dead-lettered message (a stage's or a workflow
/// execution's).
pub const DLQ_ERROR_NAME: &str = "Sluice-Error-Name";
/// Header carrying the error cause on a dead-lettered message.
pub const DLQ_ERROR_CAUSE: &str = "Sluice-Error-Cause";
/// Header carrying how many times the stage failed a dead-lettered message: its own failures
/// by the store's count (deliveries the platform spent, in an outage or a crash, are not
/// counted), or the delivery count where the store keeps no count.
pub const DLQ_ATTEMPTS: &str = "Sluice-Attempts";
/// Header carrying the subject a dead-lettered message arrived on.
pub const DLQ_ORIGINAL_SUBJECT: &str = "Sluice-Original-Subject";
