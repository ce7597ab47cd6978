//! Table queries: the overlay's matching items merged with the snapshot's, page by page, for
//! the base table and for secondary indexes.

use std::collections::BTreeMap;
use std::ops::Bound;

use sluice_model::rules;
use sluice_model::state::{Item, Query, QueryPage, SortKeyCondition, StoreError, TableError};

use super::{StoreSession, after, store_err, table_store};
use crate::codec;
use crate::schema::{INDEX, ITEMS};

/// Lower and upper bounds on sort keys that `cond` implies (`matches` still filters exactly).
fn sk_bounds(cond: &SortKeyCondition) -> (Bound<String>, Bound<String>) {
    use Bound::{Excluded, Included, Unbounded};
    match cond {
        SortKeyCondition::Any => (Unbounded, Unbounded),
        SortKeyCondition::Equals(v) => (Included(v.clone()), Included(v.clone())),
        SortKeyCondition::BeginsWith(p) => (Included(p.clone()), Unbounded),
        SortKeyCondition::Between(lo, hi) => (Included(lo.clone()), Included(hi.clone())),
        SortKeyCondition::LessThan(v) => (Unbounded, Excluded(v.clone())),
        SortKeyCondition::LessOrEqual(v) => (Unbounded, Included(v.clone())),
        SortKeyCondition::GreaterThan(v) => (Excluded(v.clone()), Unbounded),
        SortKeyCondition::GreaterOrEqual(v) => (Included(v.clone()), Unbounded),
    }
}

impl StoreSession {
    pub(super) fn table_query_inner(
        &mut self,
        table: &str,
        q: &Query,
    ) -> Result<QueryPage, TableError> {
        let index = match &q.index {
            None => None,
            Some(name) => Some(
                self.inner
                    .indexes
                    .get(table)
                    .and_then(|defs| defs.iter().find(|d| &d.name == name))
                    .cloned()
                    .ok_or_else(|| TableError::NoSuchIndex(name.clone()))?,
            ),
        };
        let after_pos = q
            .cursor
            .as_deref()
            .map(|c| rules::parse_cursor(c, if index.is_some() { 3 } else { 1 }))
            .transpose()?;
        let limit = q.limit.max(1);
        let now = self.now();
        let overlay = self.overlay_items(table);
        let past_cursor = |pos: &Vec<String>| match &after_pos {
            None => true,
            Some(after) if q.forward => pos > after,
            Some(after) => pos < after,
        };
        // Overlay candidates: every live overlay item of the partition that matches.
        let mut rows: Vec<(Vec<String>, Item)> = overlay
            .values()
            .flatten()
            .filter(|item| rules::is_live(item, now))
            .filter_map(|item| match &index {
                None => (item.pk == q.pk && q.sk.matches(&item.sk))
                    .then(|| (vec![item.sk.clone()], item.clone())),
                Some(def) => {
                    let (ipk, isk) = rules::index_key(def, item)?;
                    (ipk == q.pk && q.sk.matches(&isk))
                        .then(|| (vec![isk, item.pk.clone(), item.sk.clone()], item.clone()))
                }
            })
            .filter(|(pos, _)| past_cursor(pos))
            .collect();
        let want = limit + 1;
        let stored = match &index {
            None => self.db_base_rows(
                table,
                q,
                after_pos.as_ref().map(|p| p[0].as_str()),
                want,
                &overlay,
            ),
            Some(def) => {
                self.db_index_rows(table, &def.name, q, after_pos.as_deref(), want, &overlay)
            }
        }
        .map_err(table_store)?;
        rows.extend(stored);
        Ok(rules::paginate(
            rows,
            q.forward,
            after_pos.as_deref(),
            limit,
        ))
    }

    /// Overlay entries of `table` (event over batch).
    fn overlay_items(&self, table: &str) -> BTreeMap<(String, String), Option<Item>> {
        let mut out = BTreeMap::new();
        for layer in [&self.batch, &self.event] {
            for ((t, pk, sk), v) in &layer.items {
                if t == table {
                    out.insert((pk.clone(), sk.clone()), v.clone());
                }
            }
        }
        out
    }

    /// Live, matching items of a base-table query from the snapshot: at most `want` of them,
    /// in query order, starting after `after_sk`, skipping keys the overlay decides.
    fn db_base_rows(
        &mut self,
        table: &str,
        q: &Query,
        after_sk: Option<&str>,
        want: usize,
        overlay: &BTreeMap<(String, String), Option<Item>>,
    ) -> Result<Vec<(Vec<String>, Item)>, StoreError> {
        let now = self.now();
        let (mut lo, mut hi) = sk_bounds(&q.sk);
        if let Some(c) = after_sk {
            if q.forward {
                lo = Bound::Excluded(c.to_owned());
            } else {
                hi = Bound::Excluded(c.to_owned());
            }
        }
        let pk = q.pk.as_str();
        let pk_end = after(pk);
        let lower: Bound<(&str, &str, &str)> = match &lo {
            Bound::Included(s) => Bound::Included((table, pk, s.as_str())),
            Bound::Excluded(s) => Bound::Excluded((table, pk, s.as_str())),
            Bound::Unbounded => Bound::Included((table, pk, "")),
        };
        let upper: Bound<(&str, &str, &str)> = match &hi {
            Bound::Included(s) => Bound::Included((table, pk, s.as_str())),
            Bound::Excluded(s) => Bound::Excluded((table, pk, s.as_str())),
            Bound::Unbounded => Bound::Excluded((table, pk_end.as_str(), "")),
        };
        let snap = self.snapshot()?;
        let items = snap.open_table(ITEMS).map_err(store_err)?;
        let range = items
            .range::<(&str, &str, &str)>((lower, upper))
            .map_err(store_err)?;
        let iter: Box<dyn Iterator<Item = _>> = if q.forward {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        let mut out = Vec::new();
        for entry in iter {
            let (k, v) = entry.map_err(store_err)?;
            let (_, ipk, isk) = k.value();
            if ipk != pk {
                continue;
            }
            if overlay.contains_key(&(ipk.to_owned(), isk.to_owned())) || !q.sk.matches(isk) {
                continue;
            }
            let Some(item) = codec::decode(ipk, isk, v.value()) else {
                continue;
            };
            if !rules::is_live(&item, now) {
                continue;
            }
            out.push((vec![item.sk.clone()], item));
            if out.len() >= want {
                break;
            }
        }
        Ok(out)
    }

    /// Like [`Self::db_base_rows`] for a secondary index; positions are (index sk, pk, sk).
    #[allow(
        clippy::too_many_arguments,
        reason = "a query's parts, kept apart for clarity"
    )]
    fn db_index_rows(
        &mut self,
        table: &str,
        index: &str,
        q: &Query,
        after_pos: Option<&[String]>,
        want: usize,
        overlay: &BTreeMap<(String, String), Option<Item>>,
    ) -> Result<Vec<(Vec<String>, Item)>, StoreError> {
        let now = self.now();
        let (lo, hi) = sk_bounds(&q.sk);
        let ipk = q.pk.as_str();
        let ipk_end = after(ipk);
        let lo_after;
        let hi_after;
        type K<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);
        let mut lower: Bound<K<'_>> = match &lo {
            Bound::Included(s) => Bound::Included((table, index, ipk, s.as_str(), "", "")),
            Bound::Excluded(s) => {
                lo_after = after(s);
                Bound::Included((table, index, ipk, lo_after.as_str(), "", ""))
            }
            Bound::Unbounded => Bound::Included((table, index, ipk, "", "", "")),
        };
        let mut upper: Bound<K<'_>> = match &hi {
            Bound::Included(s) => {
                hi_after = after(s);
                Bound::Excluded((table, index, ipk, hi_after.as_str(), "", ""))
            }
            Bound::Excluded(s) => Bound::Excluded((table, index, ipk, s.as_str(), "", "")),
            Bound::Unbounded => Bound::Excluded((table, index, ipk_end.as_str(), "", "", "")),
        };
        if let Some([isk, pk, sk]) = after_pos {
            let at = (table, index, ipk, isk.as_str(), pk.as_str(), sk.as_str());
            if q.forward {
                lower = Bound::Excluded(at);
            } else {
                upper = Bound::Excluded(at);
            }
        }
        let snap = self.snapshot()?;
        let entries = snap.open_table(INDEX).map_err(store_err)?;
        let items = snap.open_table(ITEMS).map_err(store_err)?;
        let range = entries.range::<K<'_>>((lower, upper)).map_err(store_err)?;
        let iter: Box<dyn Iterator<Item = _>> = if q.forward {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        let mut out = Vec::new();
        for entry in iter {
            let (k, _) = entry.map_err(store_err)?;
            let (_, _, eipk, eisk, pk, sk) = k.value();
            if eipk != ipk
                || !q.sk.matches(eisk)
                || overlay.contains_key(&(pk.to_owned(), sk.to_owned()))
            {
                continue;
            }
            let Some(v) = items.get((table, pk, sk)).map_err(store_err)? else {
                continue;
            };
            let Some(item) = codec::decode(pk, sk, v.value()) else {
                continue;
            };
            if !rules::is_live(&item, now) {
                continue;
            }
            out.push((vec![eisk.to_owned(), pk.to_owned(), sk.to_owned()], item));
            if out.len() >= want {
                break;
            }
        }
        Ok(out)
    }
}
