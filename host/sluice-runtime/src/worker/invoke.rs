//! One event through `handle`, or a whole batch through `handle-batch`: lowering the
//! events, the call under its deadline, and what the host makes of the result.

use std::time::Instant;

use sluice_model::names;
use sluice_model::{Event, StageError, StageOutcome};

use super::outcome::{accept, over_batch_limit, record};
use super::{Invocation, Worker, ticks};
use crate::bindings::types;
use crate::host::BatchCursor;
use crate::trap::classify;

impl Worker {
    /// Run one event through `handle`, leaving its write set kept or dropped (not committed).
    pub(super) fn run_one(&mut self, event: &Event, lookup: bool) -> Invocation {
        match if lookup {
            self.session().recorded(&event.id)
        } else {
            Ok(None)
        } {
            Ok(Some(recorded)) => return Invocation::replay(recorded),
            Ok(None) => {}
            // Without the dedupe answer the event must not run (it might run twice). A store
            // outage is the platform's fault (the batch is held until it heals); a record that
            // cannot be read is this event's problem, retried and in the end dead-lettered
            // like a failure, never run blind.
            Err(e) => {
                let name = match self.session().take_fault() {
                    Some(sluice_model::state::Fault::Store(_)) => names::STATE_UNAVAILABLE,
                    _ => names::STATE_UNREADABLE,
                };
                return Invocation::ran(Err(StageError::new(name, e.0, true)), Vec::new());
            }
        }
        let limits = self.stage.config.limits.clone();
        if let Err(e) = self.ensure_warm() {
            return Invocation::ran(Err(e), Vec::new());
        }
        let batch_held = self.batch_held;
        let warm = self.warm.as_mut().expect("made warm above");
        let data = warm.store.data_mut();
        data.start_event(&event.id, batch_held);
        data.session.begin_event(&event.id);
        // One clock read bounds both the call and its lock waits.
        let due = Instant::now() + limits.deadline;
        data.session.set_deadline(Some(due));
        warm.store.set_epoch_deadline(ticks(limits.deadline));
        let headers = header_refs(event);
        let result = self.driver.run(
            &self.stage.runtime.ticker,
            limits.deadline,
            due,
            warm.handler
                .call_handle(&mut warm.store, to_wit(event, &headers)),
        );
        let data = warm.store.data_mut();
        data.session.set_deadline(None);
        let tail = data.end_event();
        let (mut outcome, trapped) = match result {
            Ok(r) => (accept(r, limits.max_output_bytes), false),
            Err(e) => (Err(classify(&e, &data.limiter, &tail)), true),
        };
        let mut held = data.budget.held();
        if let Ok(output) = &outcome {
            held = held.saturating_add(output.len());
            if let Some(e) = over_batch_limit(batch_held, held, &limits) {
                outcome = Err(e);
            }
        }
        if let Some(cause) = data.store_fault.take() {
            // Whatever the guest made of the failed state call, the event did not fail.
            outcome = Err(StageError::new(names::STATE_UNAVAILABLE, cause, true));
        }
        let emitted = data.session.finish_event(outcome.is_ok());
        let failures = record(data.session.as_mut(), event, &outcome);
        if outcome.is_ok() {
            self.batch_held = batch_held.saturating_add(held);
        }
        self.after_calls(1, trapped);
        Invocation {
            failures,
            ..Invocation::ran(outcome, emitted)
        }
    }

    /// Run `events` through one `handle-batch` call. `None` means "re-run event by event":
    /// some event failed, or the call trapped.
    pub(super) fn run_batch_export(&mut self, events: &[Event]) -> Option<Vec<Invocation>> {
        let limits = self.stage.config.limits.clone();
        self.stats.batch_calls += 1;
        self.ensure_warm().ok()?;
        let warm = self.warm.as_mut().expect("made warm above");
        let batch = warm.batch.clone()?;
        let n = events.len();
        let data = warm.store.data_mut();
        data.batch = Some(BatchCursor {
            ids: events.iter().map(|e| e.id.clone()).collect(),
            current: 0,
            emitted: vec![Vec::new(); n],
        });
        data.start_event(&events[0].id, 0);
        data.session.begin_event(&events[0].id);
        let deadline = limits
            .deadline
            .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        let due = Instant::now() + deadline;
        data.session.set_deadline(Some(due));
        warm.store.set_epoch_deadline(ticks(deadline));
        let headers: Vec<Vec<(&str, &str)>> = events.iter().map(header_refs).collect();
        let wit_events: Vec<types::Event<'_>> = events
            .iter()
            .zip(&headers)
            .map(|(e, h)| to_wit(e, h))
            .collect();
        let result = self.driver.run(
            &self.stage.runtime.ticker,
            deadline,
            due,
            batch.call_handle_batch(&mut warm.store, &wit_events),
        );
        let data = warm.store.data_mut();
        data.session.set_deadline(None);
        data.end_event();
        // A store failure or a full batch budget during the call: re-run event by event,
        // where each event meets it on its own.
        let budget_full = data.budget.batch_before + data.budget.held();
        if data.store_fault.take().is_some() {
            data.session.finish_event(false);
            self.after_calls(0, false);
            return None;
        }
        let mut cursor = data.batch.take().expect("set above");
        let results = match result {
            Ok(results) => results,
            Err(e) => {
                data.session.finish_event(false);
                tracing::debug!(stage = %self.stage.name, "handle-batch trapped, re-running events one by one: {e:#}");
                self.after_calls(0, true);
                return None;
            }
        };
        if results.len() != n {
            data.session.finish_event(false);
            data.session.rollback();
            let cause = format!(
                "handle-batch returned {} results for {n} events",
                results.len()
            );
            self.after_calls(n as u64, false);
            let outcome = Err(StageError::new(
                names::SANDBOX_MALFORMED_OUTPUT,
                cause,
                false,
            ));
            let session = self.session();
            return Some(
                events
                    .iter()
                    .map(|event| Invocation {
                        failures: record(session.as_mut(), event, &outcome),
                        ..Invocation::ran(outcome.clone(), Vec::new())
                    })
                    .collect(),
            );
        }
        cursor.emitted[cursor.current] = data.session.finish_event(true);
        let outcomes: Vec<StageOutcome> = results
            .into_iter()
            .map(|r| accept(r, limits.max_output_bytes))
            .collect();
        self.after_calls(n as u64, false);
        if outcomes.iter().any(Result::is_err) {
            return None;
        }
        let outputs: usize = outcomes
            .iter()
            .map(|o| o.as_ref().map_or(0, Vec::len))
            .sum();
        if budget_full.saturating_add(outputs) > limits.max_batch_bytes {
            return None;
        }
        self.batch_held = budget_full.saturating_add(outputs);
        let session = self.session();
        for (event, outcome) in events.iter().zip(&outcomes) {
            record(session.as_mut(), event, outcome);
        }
        Some(
            outcomes
                .into_iter()
                .zip(cursor.emitted)
                .map(|(outcome, emitted)| Invocation::ran(outcome, emitted))
                .collect(),
        )
    }
}

/// The bindings' view of `e`: borrowed, so lowering copies each string once, into the guest.
fn to_wit<'a>(e: &'a Event, headers: &'a [(&'a str, &'a str)]) -> types::Event<'a> {
    types::Event {
        id: &e.id,
        type_: &e.kind,
        source: &e.source,
        subject: &e.subject,
        time: &e.time,
        data: &e.data,
        attempt: e.attempt,
        headers,
    }
}

/// Borrowed header pairs of `e` (no allocation when it has none, the common case).
fn header_refs(e: &Event) -> Vec<(&str, &str)> {
    e.headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}
