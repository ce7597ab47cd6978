//! The semantics of table writes and queries, shared by every state backend so they cannot
//! drift apart: preconditions, versions, merge-patch updates, TTL liveness, secondary-index
//! keys, and query pagination with its cursor format.
//!
//! A query cursor is the JSON array of strings that positions the last returned item in the
//! query's sort order: `["<sk>"]` for a base-table query, `["<index sk>", "<pk>", "<sk>"]` for
//! an index query. The next page holds the matches strictly after (forward) or strictly
//! before (reverse) that position.

use serde_json::Value;

use crate::state::{Condition, IndexDef, Item, KeyPage, QueryPage, TableError, merge_patch};

/// Whether `item` has not expired at `now` (ms since the epoch).
pub fn is_live(item: &Item, now: u64) -> bool {
    item.expires_at.is_none_or(|at| at > now)
}

/// The index key value of `attr` in `doc`: strings as-is, numbers as their JSON text; other
/// types (and absent attributes) leave the item out of the index, as DynamoDB's sparse
/// indexes do.
pub fn index_value(doc: &Value, attr: &str) -> Option<String> {
    match doc.get(attr)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// (index pk, index sk) of `item` in `index`, or `None` when the item is not in the index.
pub fn index_key(index: &IndexDef, item: &Item) -> Option<(String, String)> {
    let ipk = index_value(&item.doc, &index.pk_attr)?;
    let isk = match &index.sk_attr {
        Some(attr) => index_value(&item.doc, attr)?,
        None => item.sk.clone(),
    };
    Some((ipk, isk))
}

/// `Err(InvalidArgument)` unless `value` is a JSON object.
pub fn require_object(value: &Value, what: &str) -> Result<(), TableError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(TableError::InvalidArgument(format!(
            "{what} must be a JSON object"
        )))
    }
}

/// Whether `cond` holds for the live item `current` of (`table`, `pk`, `sk`).
pub fn check_condition(
    table: &str,
    pk: &str,
    sk: &str,
    cond: Condition,
    current: Option<&Item>,
) -> Result<(), TableError> {
    let problem = match (cond, current) {
        (Condition::Always, _)
        | (Condition::MustNotExist, None)
        | (Condition::MustExist, Some(_)) => return Ok(()),
        (Condition::VersionIs(v), Some(item)) if item.version == v => return Ok(()),
        (Condition::MustNotExist, Some(item)) => format!("item exists (version {})", item.version),
        (Condition::MustExist, None) => "item does not exist".to_owned(),
        (Condition::VersionIs(v), Some(item)) => {
            format!("expected version {v}, found version {}", item.version)
        }
        (Condition::VersionIs(v), None) => format!("expected version {v}, item does not exist"),
    };
    Err(TableError::ConditionFailed(format!(
        "table {table:?}, pk {pk:?}, sk {sk:?}: {problem}"
    )))
}

/// The item a put stores over the live item `current`. Argument checks come before the
/// condition; versions start at 1 and grow by one per write of a live item.
pub fn put(
    table: &str,
    pk: &str,
    sk: &str,
    doc: Value,
    cond: Condition,
    expires_at: Option<u64>,
    current: Option<&Item>,
) -> Result<Item, TableError> {
    require_object(&doc, "document")?;
    check_condition(table, pk, sk, cond, current)?;
    Ok(Item {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        doc,
        version: current.map_or(1, |item| item.version + 1),
        expires_at,
    })
}

/// The item an update stores: `patch` merged into the live item `current` (or into `{}`),
/// keeping the item's expiry.
pub fn update(
    table: &str,
    pk: &str,
    sk: &str,
    patch: &Value,
    cond: Condition,
    current: Option<Item>,
) -> Result<Item, TableError> {
    require_object(patch, "patch")?;
    check_condition(table, pk, sk, cond, current.as_ref())?;
    Ok(match current {
        Some(mut item) => {
            merge_patch(&mut item.doc, patch);
            item.version += 1;
            item
        }
        None => {
            let mut doc = Value::Object(serde_json::Map::new());
            merge_patch(&mut doc, patch);
            Item {
                pk: pk.to_owned(),
                sk: sk.to_owned(),
                doc,
                version: 1,
                expires_at: None,
            }
        }
    })
}

/// Parse a query cursor of `len` parts.
pub fn parse_cursor(cursor: &str, len: usize) -> Result<Vec<String>, TableError> {
    match serde_json::from_str::<Vec<String>>(cursor) {
        Ok(parts) if parts.len() == len => Ok(parts),
        _ => Err(TableError::InvalidArgument(format!(
            "malformed cursor {cursor:?}"
        ))),
    }
}

/// One page of `keys` (live keys in ascending order): those after `cursor`, at most `limit`,
/// with a cursor exactly when more follow (one extra key tells).
pub fn key_page(
    keys: impl IntoIterator<Item = String>,
    cursor: Option<&str>,
    limit: usize,
) -> KeyPage {
    let mut keys: Vec<String> = keys
        .into_iter()
        .filter(|k| cursor.is_none_or(|c| k.as_str() > c))
        .take(limit.saturating_add(1))
        .collect();
    let more = keys.len() > limit;
    keys.truncate(limit);
    let cursor = if more { keys.last().cloned() } else { None };
    KeyPage { keys, cursor }
}

/// One page of `rows` (each with its position): sorted in query order, strictly after
/// `after`, at most `limit` (at least 1), with a cursor exactly when more rows follow.
pub fn paginate(
    mut rows: Vec<(Vec<String>, Item)>,
    forward: bool,
    after: Option<&[String]>,
    limit: usize,
) -> QueryPage {
    let limit = limit.max(1);
    rows.retain(|(pos, _)| match after {
        None => true,
        Some(after) if forward => pos.as_slice() > after,
        Some(after) => pos.as_slice() < after,
    });
    // Positions are unique (they end in the item's own key), so the order is total.
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if !forward {
        rows.reverse();
    }
    rows.truncate(limit + 1);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let cursor = if more {
        rows.last()
            .map(|(pos, _)| Value::from(pos.clone()).to_string())
    } else {
        None
    };
    QueryPage {
        items: rows.into_iter().map(|(_, item)| item).collect(),
        cursor,
    }
}
