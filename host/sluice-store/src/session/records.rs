//! The workflow engine's rows in a session: staged in the batch (committed by `commit.rs`
//! with everything else), read through the staged writes, scanned by prefix and merged with
//! them. They take no state lock: the engine gives each execution one writer at a time, so
//! a fresh read view is as current as it needs.

use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase};
use sluice_model::records::{RecordTable, Row, Scan};
use sluice_model::state::StoreError;

use super::{StoreSession, store_err};
use crate::schema::record_table;

impl StoreSession {
    /// A read transaction for the engine's rows.
    fn records_view(&mut self) -> Result<ReadTransaction, StoreError> {
        let db = self.db()?;
        db.begin_read().map_err(store_err)
    }

    /// A row: staged in this batch, else committed.
    pub(super) fn record(
        &mut self,
        table: RecordTable,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.engine.get(table, key) {
            return Ok(v.map(<[u8]>::to_vec));
        }
        let txn = self.records_view()?;
        let t = txn.open_table(record_table(table)).map_err(store_err)?;
        Ok(t.get(key).map_err(store_err)?.map(|v| v.value().to_vec()))
    }

    /// A page of `scan`, the staged writes applied.
    pub(super) fn record_page(
        &mut self,
        table: RecordTable,
        scan: &Scan<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let limit = self.engine.committed_limit(table, scan);
        let txn = self.records_view()?;
        let t = txn.open_table(record_table(table)).map_err(store_err)?;
        let committed = scan_table(&t, scan, limit)?;
        Ok(self.engine.merge(table, scan, committed))
    }
}

/// Up to `limit` rows of `scan`'s range from a committed table, in the scan's order.
fn scan_table(
    t: &ReadOnlyTable<&'static str, &'static [u8]>,
    scan: &Scan<'_>,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let prefix_end = prefix_successor(scan.prefix);
    let lower = match scan.after {
        Some(a) if !scan.reverse => Bound::Excluded(a),
        _ => Bound::Included(scan.prefix),
    };
    let upper = match (scan.after, prefix_end.as_deref()) {
        (Some(a), _) if scan.reverse => Bound::Excluded(a),
        (_, Some(end)) => Bound::Excluded(end),
        (_, None) => Bound::Unbounded,
    };
    let range = t.range::<&str>((lower, upper)).map_err(store_err)?;
    let pick = |r: Result<
        (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &[u8]>),
        redb::StorageError,
    >| {
        r.map(|(k, v)| (k.value().to_owned(), v.value().to_vec()))
            .map_err(store_err)
    };
    let rows: Result<Vec<Row>, StoreError> = if scan.reverse {
        range.rev().take(limit).map(pick).collect()
    } else {
        range.take(limit).map(pick).collect()
    };
    let mut rows = rows?;
    rows.retain(|(k, _)| scan.contains(k));
    Ok(rows)
}

/// The smallest string greater than every string starting with `prefix` (`None`: no bound).
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        if let Some(next) = char::from_u32(c as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}
