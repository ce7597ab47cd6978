//! History rows: the events one step of an execution added, in one row, compressed.
//!
//! A step's events go into one row keyed by its first event's number
//! ([`keys::history`]), as a JSON array compressed with LZ4 behind a one-byte tag. Events
//! carry whole payloads (a state's input, a Task's parameters and output), so an order's
//! ~50 events are tens of kilobytes of JSON that repeats itself: one compressed row per step
//! writes a fraction of the pages one row per event did. A row that starts with `{` is one
//! event as JSON, as format 3 stores first wrote them, and still reads.

use sluice_model::records::{RecordTable, Scan};
use sluice_model::state::StateSession;
use sluice_workflow::machine::HistoryEvent;

use crate::error::EngineError;
use crate::keys;

/// The tag of a compressed chunk of events.
const LZ4_JSON_ARRAY: u8 = 1;

/// The row of one step's events of execution `id`, given as a JSON array whose first event
/// is `first`: its key and bytes.
pub(crate) fn row(id: &str, first: u64, json: &[u8]) -> (String, Vec<u8>) {
    let mut row = Vec::with_capacity(1 + json.len() / 4);
    row.push(LZ4_JSON_ARRAY);
    row.extend_from_slice(&lz4_flex::compress_prepend_size(json));
    (keys::history(id, first), row)
}

/// The events of one row.
fn decode(row: &[u8]) -> Result<Vec<HistoryEvent>, EngineError> {
    let bad = |e: String| EngineError::Store(format!("a history row does not decode: {e}"));
    match row.first() {
        Some(&LZ4_JSON_ARRAY) => {
            let json =
                lz4_flex::decompress_size_prepended(&row[1..]).map_err(|e| bad(e.to_string()))?;
            serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))
        }
        Some(b'{') => serde_json::from_slice(row)
            .map(|e| vec![e])
            .map_err(|e| bad(e.to_string())),
        _ => Err(bad("unknown row format".into())),
    }
}

/// Up to `limit` events of execution `id` after event `after` (before it, `reverse`), and
/// whether more may follow.
pub(crate) fn page(
    session: &mut Box<dyn StateSession>,
    id: &str,
    reverse: bool,
    limit: usize,
    after: Option<u64>,
) -> Result<(Vec<HistoryEvent>, bool), EngineError> {
    let prefix = keys::history_prefix(id);
    let limit = limit.max(1);
    // The row holding the first event wanted starts at or before it: find it with a reverse
    // scan from just past that event.
    let start_key = match (reverse, after) {
        (false, None) | (true, None) => None,
        (false, Some(n)) => first_row_at_or_before(session, id, &prefix, n + 1)?,
        (true, Some(n)) => Some(keys::history(id, n)),
    };
    let wanted = |e: &HistoryEvent| match (reverse, after) {
        (_, None) => true,
        (false, Some(n)) => e.id > n,
        (true, Some(n)) => e.id < n,
    };
    let mut out = Vec::new();
    // Forward: from the row found (inclusive); reverse: rows before event `after`'s key.
    let mut cursor = match (reverse, &start_key) {
        (false, Some(k)) => Some(before_key(k)),
        (_, k) => k.clone(),
    };
    loop {
        let rows = session.scan_records(
            RecordTable::History,
            &Scan {
                prefix: &prefix,
                after: cursor.as_deref(),
                limit: 64,
                reverse,
            },
        )?;
        for (_, row) in &rows {
            let mut events = decode(row)?;
            if reverse {
                events.reverse();
            }
            for e in events.into_iter().filter(wanted) {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(e);
            }
        }
        match rows.last() {
            Some((k, _)) if rows.len() == 64 => cursor = Some(k.clone()),
            _ => return Ok((out, false)),
        }
    }
}

/// The key of the row of `id` that holds event `n` (the last row starting at or before it).
fn first_row_at_or_before(
    session: &mut Box<dyn StateSession>,
    id: &str,
    prefix: &str,
    n: u64,
) -> Result<Option<String>, EngineError> {
    let rows = session.scan_records(
        RecordTable::History,
        &Scan {
            prefix,
            after: Some(&keys::history(id, n + 1)),
            limit: 1,
            reverse: true,
        },
    )?;
    Ok(rows.into_iter().next().map(|(k, _)| k))
}

/// A key just before `key` in the table's order, so a forward scan "after" it includes
/// `key` itself: `key` with its last character stepped down and `~`-padded would do, but
/// history keys end in digits, so the key of the number one less does it exactly.
fn before_key(key: &str) -> String {
    let (head, n) = key.rsplit_once('/').expect("a history key");
    let n: u64 = n.parse().expect("a history key ends in its number");
    match n.checked_sub(1) {
        Some(m) => format!("{head}/{m:010}"),
        None => format!("{head}/"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use sluice_model::memory::MemoryBackend;
    use sluice_model::state::{StateBackend, SystemClock};

    use super::*;

    fn event(id: u64) -> HistoryEvent {
        HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp_ms: 0,
            kind: "PassStateEntered".into(),
            details: json!({"input": {"n": id}}),
        }
    }

    /// Every page of `reverse` order with pages of `limit`, as event ids.
    fn pages(s: &mut Box<dyn StateSession>, reverse: bool, limit: usize) -> Vec<Vec<u64>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (events, more) = page(s, "w/e", reverse, limit, after).unwrap();
            after = events.last().map(|e| e.id);
            out.push(events.iter().map(|e| e.id).collect());
            if !more {
                return out;
            }
        }
    }

    fn put(s: &mut Box<dyn StateSession>, id: &str, events: &[HistoryEvent]) {
        let json = serde_json::to_vec(events).unwrap();
        let (key, row) = row(id, events[0].id, &json);
        s.put_record(RecordTable::History, &key, Some(row)).unwrap();
    }

    #[test]
    fn steps_of_any_size_page_by_event_both_ways_and_old_rows_still_read() {
        let backend = MemoryBackend::new(vec![], Arc::new(SystemClock));
        let mut s = backend.session();
        // Steps of 3, 1 and 5 events, and another execution's beside them.
        for step in [1..=3, 4..=4, 5..=9] {
            let events: Vec<_> = step.map(event).collect();
            put(&mut s, "w/e", &events);
        }
        put(&mut s, "w/e2", &[event(1)]);
        s.commit().unwrap();
        assert_eq!(
            pages(&mut s, false, 4),
            [vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9]]
        );
        assert_eq!(
            pages(&mut s, true, 2),
            [vec![9, 8], vec![7, 6], vec![5, 4], vec![3, 2], vec![1]]
        );
        assert_eq!(pages(&mut s, false, 100), [(1..=9).collect::<Vec<_>>()]);
        let (mid, _) = page(&mut s, "w/e", false, 2, Some(2)).unwrap();
        assert_eq!(mid.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4]);
        let (e, _) = page(&mut s, "w/e", false, 100, Some(1)).unwrap();
        assert_eq!(e[0].details, json!({"input": {"n": 2}}));
        // One event as plain JSON: the rows format 3 first wrote.
        let old = serde_json::to_vec(&event(1)).unwrap();
        assert_eq!(decode(&old).unwrap(), vec![event(1)]);
        assert!(decode(b"\x07junk").is_err());
    }
}
