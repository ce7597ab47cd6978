//! History modes: encoded as JSON as events happen, the history reads back exactly as kept;
//! off, nothing is recorded and everything else is the same.

use serde_json::{Value, json};
use sluice_workflow::env::{NoObjects, SplitMix, TaskRunner};
use sluice_workflow::machine::{Env, Execution, HistoryEvent, HistoryMode};
use sluice_workflow::run::{ManualClock, Timer};

use crate::support::{Fake, T0, machine};

/// Tasks (a Lambda ARN and a stage), a Parallel, a Map, a Choice, a caught failure, a retry.
fn definition() -> Value {
    json!({"StartAt": "V", "States": {
        "V": {"Type": "Task", "Resource": "arn:aws:lambda:local:000000000000:function:v", "ResultPath": "$.v", "Next": "P"},
        "P": {"Type": "Parallel", "ResultPath": "$.p", "Next": "M", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": {"b": 1}, "End": true}}}
        ]},
        "M": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.m", "Next": "C",
              "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Task", "Resource": "a", "End": true}}}},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v.ok", "BooleanEquals": true, "Next": "F"}], "Default": "Done"},
        "F": {"Type": "Task", "Resource": "flaky", "Next": "Done",
              "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}]},
        "Done": {"Type": "Succeed"}
    }})
}

fn fake() -> Fake {
    Fake::new()
        .fixed(
            "arn:aws:lambda:local:000000000000:function:v",
            json!({"ok": true}),
        )
        .flaky("flaky", "Flaky", "once", 1)
}

fn input() -> Value {
    json!({"order": "o-1", "items": [1, 2, 3]})
}

/// The machine's world: the manual clock, seeded randomness, no objects.
fn env<'a>(clock: &'a ManualClock, random: &'a SplitMix) -> Env<'a> {
    Env {
        clock,
        random,
        objects: &NoObjects,
    }
}

/// Run the definition stepwise in `mode`, taking the encoded events after every round.
fn stepwise(mode: HistoryMode) -> (Execution, Vec<HistoryEvent>) {
    let m = machine(&definition());
    let (clock, random) = (ManualClock::new(T0), SplitMix::new(42));
    let env = env(&clock, &random);
    let tasks = fake();
    let mut e = Execution::start(&m, "wf", "exec", input(), &env);
    e.set_history_mode(mode);
    let mut encoded = Vec::new();
    for _ in 0..100 {
        let requests = e.advance(&m, &env);
        if let Some((first, json)) = e.take_encoded() {
            let events: Vec<HistoryEvent> =
                serde_json::from_slice(&json).expect("a JSON array of events");
            assert_eq!(events[0].id, first);
            encoded.extend(events);
        }
        if requests.is_empty() {
            // A retry's delay: on to its end.
            match e.next_due_ms() {
                Some(due) if !e.is_done() => clock.wait_until(due),
                _ => break,
            }
        }
        for r in requests {
            let result = tasks.run(&r);
            e.deliver(&r.id, result);
        }
    }
    assert!(e.is_done(), "the execution ends");
    (e, encoded)
}

#[test]
fn encoded_history_reads_back_as_the_kept_one() {
    // Both through the same deterministic driver: the shared runner may deliver a Map's
    // Task results in another order, and history order follows delivery order.
    let (kept, _) = stepwise(HistoryMode::Keep);
    assert!(kept.history.len() > 20, "a history worth comparing");
    let (encoded, events) = stepwise(HistoryMode::Encode);
    assert!(encoded.history.is_empty(), "nothing kept as values");
    assert_eq!(events, kept.history);
    assert_eq!(encoded.last_event_id(), kept.last_event_id());
    assert_eq!(encoded.output, kept.output);
}

#[test]
fn history_off_records_nothing_and_changes_nothing_else() {
    let (kept, _) = stepwise(HistoryMode::Keep);
    let (off, events) = stepwise(HistoryMode::Off);
    assert!(events.is_empty() && off.history.is_empty());
    assert_eq!(
        off.last_event_id(),
        kept.last_event_id(),
        "events are still numbered"
    );
    assert_eq!(off.status, kept.status);
    assert_eq!(off.output, kept.output);
}

#[test]
fn switching_mode_encodes_what_was_kept() {
    let m = machine(&definition());
    let (clock, random) = (ManualClock::new(T0), SplitMix::new(42));
    let env = env(&clock, &random);
    let mut e = Execution::start(&m, "wf", "exec", input(), &env);
    let started = e.history.clone();
    assert_eq!(started.len(), 1);
    e.set_history_mode(HistoryMode::Encode);
    let (first, json) = e.take_encoded().expect("the start, encoded");
    assert_eq!(first, 1);
    assert_eq!(
        serde_json::from_slice::<Vec<HistoryEvent>>(&json).unwrap(),
        started
    );
    assert!(e.take_encoded().is_none(), "taken once");
}
