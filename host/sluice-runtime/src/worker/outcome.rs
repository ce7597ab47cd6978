//! What the host makes of a guest's answer: checking it against the contract and the limits,
//! what gets recorded for it, and the names of the failures the host itself assigns.

use sluice_model::names;
use sluice_model::state::{RecordedOutcome, StateSession};
use sluice_model::{Event, StageError, StageOutcome};

use super::Invocation;
use crate::bindings::types;

/// Longest error name a stage may return.
const MAX_ERROR_NAME: usize = 256;
/// Longest error cause kept; longer causes are cut.
const MAX_ERROR_CAUSE: usize = 32 << 10;

/// What to record for an event that ran: successes and permanent failures are final; a
/// retryable failure records nothing, so a redelivery runs the event again.
pub(super) fn final_record(outcome: &StageOutcome) -> Option<RecordedOutcome> {
    match outcome {
        Ok(output) => Some(RecordedOutcome::Succeeded {
            output_digest: fingerprint(output),
        }),
        Err(e) if !e.retryable => Some(RecordedOutcome::Failed {
            name: e.name.clone(),
            cause: e.cause.clone(),
        }),
        Err(_) => None,
    }
}

/// Record in `session`'s batch what became of `event`, and return the stage's failure count
/// for it (see [`Invocation::failures`]). A final outcome gets its dedupe record and, after an
/// earlier delivery, forgets the count of retryable failures; a retryable failure of the
/// stage's own counts one more, committed with the batch (so a failure the batch never
/// committed, or a delivery the platform lost, counts nothing).
pub(super) fn record(
    session: &mut dyn StateSession,
    event: &Event,
    outcome: &StageOutcome,
) -> Option<u32> {
    // Only a redelivery can have a count: the first delivery skips the look-up and the
    // removal, keeping the hot path at one dedupe record per event.
    let redelivered = event.attempt > 1;
    match (outcome, final_record(outcome)) {
        (Ok(_), Some(record)) => {
            if redelivered {
                session.record_failures(&event.id, 0);
            }
            session.record_outcome(&event.id, record);
            None
        }
        (Err(_), Some(record)) => {
            // A permanent failure is the stage's last attempt: say how many it took.
            let before = if redelivered {
                let n = session.failures(&event.id);
                session.record_failures(&event.id, 0);
                n
            } else {
                Some(0)
            };
            session.record_outcome(&event.id, record);
            before.map(|n| n.saturating_add(1))
        }
        (Err(e), None) if names::counts_against_the_event(&e.name) => {
            let before = if redelivered {
                session.failures(&event.id)?
            } else {
                0
            };
            let n = before.saturating_add(1);
            session.record_failures(&event.id, n);
            Some(n)
        }
        _ => None,
    }
}

/// Whether `r` failed for the platform's sake (the store), not the stage's.
pub(super) fn is_platform_fault(r: &Invocation) -> bool {
    matches!(&r.outcome, Err(e) if names::is_platform_fault(&e.name))
}

/// The results of a batch held for a failed store when the worker is told to stop waiting:
/// whatever did not commit fails with the retryable [`names::STATE_COMMIT_FAILED`].
pub(super) fn give_up(mut results: Vec<Invocation>, cause: &str) -> Vec<Invocation> {
    for r in &mut results {
        if r.outcome.is_ok() || is_platform_fault(r) {
            r.outcome = Err(StageError::new(names::STATE_COMMIT_FAILED, cause, true));
            r.emitted.clear();
        }
    }
    results
}

/// The `Sandbox.BatchLimit` error for an event holding `held` bytes after `batch_held` bytes
/// of earlier events, if that passes the stage's batch cap (never for the first event).
pub(super) fn over_batch_limit(
    batch_held: usize,
    held: usize,
    limits: &crate::Limits,
) -> Option<StageError> {
    (batch_held > 0 && batch_held.saturating_add(held) > limits.max_batch_bytes).then(|| {
        StageError::new(
            names::SANDBOX_BATCH_LIMIT,
            format!(
                "the batch already holds {batch_held} bytes of writes, emits and outputs, and this event's {held} more would pass the stage's max_batch_bytes of {}; the event is retried in another batch",
                limits.max_batch_bytes
            ),
            true,
        )
    })
}

/// A 64-bit fingerprint of an output, as 16 hex digits: enough to tell a replay's output
/// from another, and cheap on the hot path (a SHA-256 cost ~0.5 µs per event, and a
/// byte-wise FNV still ~0.3 µs on a 400-byte output). It mixes 8-byte words with FxHash's
/// multiply-rotate, then folds in the length; the value is part of the stored record, so
/// the function must never change.
pub fn fingerprint(output: &[u8]) -> String {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut chunks = output.chunks_exact(8);
    let mut h = chunks.by_ref().fold(0, |h, c| {
        mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")))
    });
    let mut tail = [0_u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = mix(h, u64::from_le_bytes(tail));
    h = mix(h, output.len() as u64);
    // By hand: `format!("{h:016x}")` costs more than the hash itself.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..16)
        .rev()
        .map(|i| char::from(HEX[usize::try_from((h >> (i * 4)) & 0xf).unwrap_or(0)]))
        .collect()
}

/// Check what the guest returned against the contract and the stage's limits.
pub(super) fn accept(r: Result<Vec<u8>, types::StageError>, max_output: usize) -> StageOutcome {
    match r {
        Ok(bytes) if bytes.len() > max_output => Err(StageError::new(
            names::SANDBOX_OUTPUT_TOO_LARGE,
            format!(
                "output is {} bytes, the stage's limit is {max_output}",
                bytes.len()
            ),
            false,
        )),
        Ok(bytes) => Ok(bytes),
        Err(e)
            if e.name.is_empty()
                || e.name.len() > MAX_ERROR_NAME
                || names::is_reserved(&e.name) =>
        {
            Err(StageError::new(
                names::SANDBOX_MALFORMED_OUTPUT,
                format!(
                    "stage returned an error named {:?}: names must be 1..={MAX_ERROR_NAME} bytes and must not start with `Sandbox.` or `States.`",
                    crate::stdio::truncate(&e.name, MAX_ERROR_NAME)
                ),
                false,
            ))
        }
        Err(e) => Err(StageError::new(
            e.name,
            crate::stdio::truncate(&e.cause, MAX_ERROR_CAUSE).to_owned(),
            e.retryable,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_are_stable_and_tell_outputs_apart() {
        // Stored in dedupe records: pinned so a change of the function is noticed.
        let pinned = fingerprint(br#"{"ok":true}"#);
        assert_eq!(pinned.len(), 16);
        assert_eq!(pinned, "868af86cf249f043");
        // A zero tail is not the same output as no tail, nor is a single changed byte.
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abc\0"));
        assert_ne!(fingerprint(b"12345678x"), fingerprint(b"12345678y"));
        assert_ne!(fingerprint(b"12345678"), fingerprint(b"12345679"));
    }
}
