//! The workflow engine's own rows: executions, their history, pending timers and Task
//! results. They are written in a state session's batch and commit in the same transaction
//! as the batch's state writes, dedupe records and outbox rows, which is what lets one
//! workflow step (a Task's effects, its result, the execution's next transition and its
//! history events) be durable all together or not at all.
//!
//! Rows are opaque bytes under string keys; the engine chooses keys that sort as it needs
//! (zero-padded numbers), so a scan by prefix pages through an execution's history in order.
//! Record rows are batch-level, not per event: an event's `finish_event(false)` does not drop
//! them, `rollback` does.

use std::collections::BTreeMap;

/// One of the engine's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordTable {
    /// Execution id → the execution (its serialized state and summary).
    Executions,
    /// `<execution id>/<event number, zero-padded>` → one history event.
    History,
    /// `<due ms, zero-padded>/<execution id>` → (): when a paused execution must step.
    Timers,
    /// Task event id (`<execution>/<state path>/<attempt>`) → the Task's result, kept with its
    /// dedupe record so a resumed or re-run execution continues without running it again.
    TaskResults,
    /// `<workflow>/<status>/<start ms, zero-padded>/<execution id>` → (): executions listed
    /// by workflow and status.
    ExecutionIndex,
    /// Event id → the outcome of a synchronous invocation made with that id (an
    /// `Idempotency-Key`), so a repeat answers it without running the stage again. A row
    /// lives as long as its event's dedupe record: the store's sweeper removes both.
    InvokeResults,
}

impl RecordTable {
    /// Every table, for backends that declare them.
    pub const ALL: [Self; 6] = [
        Self::Executions,
        Self::History,
        Self::Timers,
        Self::TaskResults,
        Self::ExecutionIndex,
        Self::InvokeResults,
    ];
}

/// A range of one table's keys: those starting with `prefix`, strictly after `after` in the
/// scan's direction (`reverse`: descending), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Keys start with this.
    pub prefix: &'a str,
    /// Resume strictly past this key (the last of the previous page).
    pub after: Option<&'a str>,
    /// At most this many rows.
    pub limit: usize,
    /// Descending key order.
    pub reverse: bool,
}

impl Scan<'_> {
    /// Whether `key` is in the range (ignoring the limit).
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(self.prefix)
            && match self.after {
                None => true,
                Some(a) if self.reverse => key < a,
                Some(a) => key > a,
            }
    }
}

/// A row: key and value.
pub type Row = (String, Vec<u8>);

/// Record writes staged in a batch, `None` deleting. Both backends keep one and read through
/// it, so a session sees its own staged rows before they commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagedRecords(BTreeMap<(RecordTable, String), Option<Vec<u8>>>);

impl StagedRecords {
    /// Stage `value` (or a deletion) for `key`.
    pub fn put(&mut self, table: RecordTable, key: &str, value: Option<Vec<u8>>) {
        self.0.insert((table, key.to_owned()), value);
    }

    /// What is staged for `key`: `None` if nothing, `Some(None)` for a deletion.
    pub fn get(&self, table: RecordTable, key: &str) -> Option<Option<&[u8]>> {
        self.0.get(&(table, key.to_owned())).map(|v| v.as_deref())
    }

    /// Nothing staged.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drop everything staged.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Take everything staged, leaving nothing.
    pub fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    /// Every staged write, by table then key.
    pub fn iter(&self) -> impl Iterator<Item = (RecordTable, &str, Option<&[u8]>)> {
        self.0
            .iter()
            .map(|((t, k), v)| (*t, k.as_str(), v.as_deref()))
    }

    /// How many committed rows a backend must read for `scan` so that, after
    /// [`StagedRecords::merge`] hides the staged deletions, a full page is left.
    pub fn committed_limit(&self, table: RecordTable, scan: &Scan<'_>) -> usize {
        let staged = self
            .0
            .keys()
            .filter(|(t, k)| *t == table && scan.contains(k))
            .count();
        scan.limit.saturating_add(staged)
    }

    /// The page of `scan`: `committed` (the committed rows of the range, in the scan's order,
    /// at most [`StagedRecords::committed_limit`] of them) with the staged writes applied.
    pub fn merge(&self, table: RecordTable, scan: &Scan<'_>, committed: Vec<Row>) -> Vec<Row> {
        let mut rows: BTreeMap<String, Vec<u8>> = committed.into_iter().collect();
        // The committed page may end before the range does: a staged row past its last key
        // could push out a committed one that was never read, so staged rows beyond that
        // point are only added when the committed page was short (the range's true end).
        let complete = rows.len() < self.committed_limit(table, scan);
        let edge = if scan.reverse {
            rows.keys().next().cloned()
        } else {
            rows.keys().next_back().cloned()
        };
        for ((t, k), v) in &self.0 {
            if *t != table || !scan.contains(k) {
                continue;
            }
            let beyond = match &edge {
                Some(e) if !complete => {
                    if scan.reverse {
                        k < e
                    } else {
                        k > e
                    }
                }
                _ => false,
            };
            match v {
                Some(v) if !beyond => {
                    rows.insert(k.clone(), v.clone());
                }
                Some(_) => {}
                None => {
                    rows.remove(k);
                }
            }
        }
        let mut out: Vec<Row> = rows.into_iter().collect();
        if scan.reverse {
            out.reverse();
        }
        out.truncate(scan.limit);
        out
    }
}

/// Scan a sorted map of committed rows (the in-memory backend's).
pub fn scan_map(map: &BTreeMap<String, Vec<u8>>, scan: &Scan<'_>, limit: usize) -> Vec<Row> {
    let in_range = map
        .range(scan.prefix.to_owned()..)
        .take_while(|(k, _)| k.starts_with(scan.prefix));
    let pick = |(k, v): (&String, &Vec<u8>)| (k.clone(), v.clone());
    if scan.reverse {
        let all: Vec<_> = in_range.filter(|(k, _)| scan.contains(k)).collect();
        all.into_iter().rev().take(limit).map(pick).collect()
    } else {
        in_range
            .filter(|(k, _)| scan.contains(k))
            .take(limit)
            .map(pick)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> BTreeMap<String, Vec<u8>> {
        keys.iter()
            .map(|k| ((*k).to_owned(), k.as_bytes().to_vec()))
            .collect()
    }

    fn keys(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn scans_page_forwards_and_backwards_within_the_prefix() {
        let m = map(&["a/1", "a/2", "a/3", "b/1"]);
        let s = Scan {
            prefix: "a/",
            after: None,
            limit: 2,
            reverse: false,
        };
        assert_eq!(keys(&scan_map(&m, &s, 2)), ["a/1", "a/2"]);
        let s = Scan {
            after: Some("a/2"),
            ..s
        };
        assert_eq!(keys(&scan_map(&m, &s, 2)), ["a/3"]);
        let s = Scan {
            prefix: "a/",
            after: None,
            limit: 2,
            reverse: true,
        };
        assert_eq!(keys(&scan_map(&m, &s, 2)), ["a/3", "a/2"]);
        let s = Scan {
            after: Some("a/2"),
            ..s
        };
        assert_eq!(keys(&scan_map(&m, &s, 2)), ["a/1"]);
    }

    #[test]
    fn staged_writes_and_deletions_show_in_a_merged_page() {
        let committed = map(&["a/1", "a/2", "a/3", "a/4"]);
        let mut staged = StagedRecords::default();
        staged.put(RecordTable::History, "a/2", None);
        staged.put(RecordTable::History, "a/25", Some(b"new".to_vec()));
        staged.put(
            RecordTable::Executions,
            "a/0",
            Some(b"other table".to_vec()),
        );
        let s = Scan {
            prefix: "a/",
            after: None,
            limit: 3,
            reverse: false,
        };
        let limit = staged.committed_limit(RecordTable::History, &s);
        let page = staged.merge(RecordTable::History, &s, scan_map(&committed, &s, limit));
        assert_eq!(keys(&page), ["a/1", "a/25", "a/3"]);
        assert_eq!(page[1].1, b"new");
    }

    #[test]
    fn a_staged_row_past_a_full_committed_page_waits_for_its_page() {
        let committed = map(&["k1", "k2", "k3", "k4", "k5"]);
        let mut staged = StagedRecords::default();
        staged.put(RecordTable::Timers, "k9", Some(vec![]));
        let s = Scan {
            prefix: "k",
            after: None,
            limit: 2,
            reverse: false,
        };
        let limit = staged.committed_limit(RecordTable::Timers, &s);
        let page = staged.merge(RecordTable::Timers, &s, scan_map(&committed, &s, limit));
        assert_eq!(keys(&page), ["k1", "k2"]);
        // On the last page the staged row shows.
        let s = Scan {
            after: Some("k4"),
            ..s
        };
        let limit = staged.committed_limit(RecordTable::Timers, &s);
        let page = staged.merge(RecordTable::Timers, &s, scan_map(&committed, &s, limit));
        assert_eq!(keys(&page), ["k5", "k9"]);
    }
}
