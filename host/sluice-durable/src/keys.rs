//! How the engine's rows are keyed (see `sluice_model::records`). Numbers are zero-padded so
//! keys sort as the numbers do; an execution is `<workflow>/<name>`, and names may not hold
//! `/`, so a workflow's executions share a prefix no other workflow's do.

use sluice_workflow::machine::Status;

/// Width of a zero-padded millisecond time (enough until the year 2286).
const MS: usize = 13;

/// The id of an execution: `<workflow>/<name>`.
pub fn execution(workflow: &str, name: &str) -> String {
    format!("{workflow}/{name}")
}

/// History event `n` of `execution`.
pub fn history(execution: &str, n: u64) -> String {
    format!("{execution}/{n:010}")
}

/// The prefix of every history event of `execution`.
pub fn history_prefix(execution: &str) -> String {
    format!("{execution}/")
}

/// The event number of a history key.
pub fn history_number(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.parse().ok()
}

/// `execution` in the index of its workflow's executions with `status`, by start time.
pub fn index(status: Status, workflow: &str, started_ms: i64, name: &str) -> String {
    let started = u64::try_from(started_ms).unwrap_or(0);
    format!("{}/{workflow}/{started:0MS$}/{name}", status_name(status))
}

/// The prefix of `workflow`'s executions with `status` in the index (every workflow's, when
/// `workflow` is `None`).
pub fn index_prefix(status: Status, workflow: Option<&str>) -> String {
    match workflow {
        Some(w) => format!("{}/{w}/", status_name(status)),
        None => format!("{}/", status_name(status)),
    }
}

/// Step Functions' name of a status.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Running => "RUNNING",
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
        Status::Aborted => "ABORTED",
    }
}

/// The stage event id of a Task: the workflow, then the machine's own Task id
/// (`<name>/<state path>/<attempt>`), so ids stay unique across workflows.
pub fn task_event(workflow: &str, task_id: &str) -> String {
    format!("{workflow}/{task_id}")
}

/// Whether `name` may name an execution (or a workflow): 1 to 80 characters as AWS allows,
/// none of them `/` (our key separator), whitespace or a control character.
pub fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.chars().count())
        && !name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_sort_by_number_and_parse_back() {
        let (a, b) = (history("w/e", 9), history("w/e", 10));
        assert!(a < b);
        assert_eq!(history_number(&b), Some(10));
        assert!(a.starts_with(&history_prefix("w/e")));
    }

    #[test]
    fn index_keys_sort_by_start_time_within_a_status_and_workflow() {
        let a = index(Status::Running, "w", 999, "z");
        let b = index(Status::Running, "w", 1_000, "a");
        assert!(a < b);
        assert!(b.starts_with(&index_prefix(Status::Running, Some("w"))));
        assert!(!b.starts_with(&index_prefix(Status::Running, Some("w2"))));
    }

    #[test]
    fn names_follow_the_rules() {
        assert!(valid_name("order-17_a.b"));
        for bad in ["", "a/b", "a b", "a\nb", &"x".repeat(81)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
