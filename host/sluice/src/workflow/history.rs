//! History events as Step Functions' `GetExecutionHistory` writes them: one JSON object per
//! event, its details under `<type>EventDetails`.

use serde_json::{Map, Value};
use sluice_workflow::machine::HistoryEvent;
use sluice_workflow::time::format_ms;

/// The details field of an event type: `ExecutionStarted` → `executionStartedEventDetails`;
/// every `<Type>StateEntered`/`<Type>StateExited` shares `stateEnteredEventDetails` /
/// `stateExitedEventDetails`, as in AWS's API.
pub(crate) fn details_key(kind: &str) -> String {
    let kind = if kind.ends_with("StateEntered") {
        "StateEntered"
    } else if kind.ends_with("StateExited") {
        "StateExited"
    } else {
        kind
    };
    let mut chars = kind.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    format!(
        "{}{}EventDetails",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

/// One event as a JSON object. Events AWS gives no details (`LambdaFunctionStarted`,
/// `ParallelStateStarted`, ...) are recorded with an empty object, and written without one.
pub(crate) fn event_json(e: &HistoryEvent) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), e.id.into());
    o.insert("previousEventId".into(), e.previous_event_id.into());
    o.insert("timestamp".into(), format_ms(e.timestamp_ms).into());
    o.insert("type".into(), e.kind.clone().into());
    let empty = e.details.as_object().is_some_and(Map::is_empty) || e.details.is_null();
    if !empty {
        o.insert(details_key(&e.kind), e.details.clone());
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_keys_follow_aws() {
        assert_eq!(
            details_key("ExecutionStarted"),
            "executionStartedEventDetails"
        );
        assert_eq!(details_key("PassStateEntered"), "stateEnteredEventDetails");
        assert_eq!(details_key("MapStateExited"), "stateExitedEventDetails");
        assert_eq!(
            details_key("LambdaFunctionFailed"),
            "lambdaFunctionFailedEventDetails"
        );
        assert_eq!(
            details_key("MapStateStarted"),
            "mapStateStartedEventDetails"
        );
        let e = HistoryEvent {
            id: 3,
            previous_event_id: 2,
            timestamp_ms: 1_700_000_000_123,
            kind: "LambdaFunctionStarted".into(),
            details: json!({}),
        };
        assert_eq!(
            event_json(&e),
            json!({"id": 3, "previousEventId": 2, "timestamp": "2023-11-14T22:13:20.123Z", "type": "LambdaFunctionStarted"})
        );
    }
}
