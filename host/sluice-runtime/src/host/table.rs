//! `sluice:platform/table`: DynamoDB-style items through the worker's state session.

use sluice_model::state::{self as model, TableError};
use wasmtime::component::Resource;

use crate::bindings::table::{
    Condition, Error, Host, HostTable, Item, Query, QueryPage, SortKeyCondition,
};
use crate::host::{HostState, MAX_OPEN_HANDLES};

/// Longest partition or sort key, in bytes.
pub(crate) const MAX_KEY: usize = 1024;
/// Largest document or patch, in bytes: DynamoDB's item size limit.
pub(crate) const MAX_DOC: usize = 400 << 10;
/// Most items per query page.
pub(crate) const MAX_PAGE: usize = 1000;
/// Most document bytes per query page.
pub(crate) const MAX_PAGE_BYTES: usize = 16 << 20;

/// An open table: the name the guest opened, checked against the grants at `open`.
#[derive(Debug)]
pub struct TableHandle {
    name: String,
}

fn convert(e: TableError) -> Error {
    match e {
        TableError::NoSuchIndex(m) => Error::NoSuchIndex(m),
        TableError::ConditionFailed(m) => Error::ConditionFailed(m),
        TableError::InvalidArgument(m) => Error::InvalidArgument(m),
        TableError::Store(m) => Error::Store(m),
    }
}

fn check_keys(pk: &str, sk: &str) -> Result<(), Error> {
    if pk.is_empty() {
        return Err(Error::InvalidArgument("partition key is empty".into()));
    }
    if pk.len() > MAX_KEY || sk.len() > MAX_KEY {
        return Err(Error::TooLarge(format!(
            "keys are {} and {} bytes, limit {MAX_KEY}",
            pk.len(),
            sk.len()
        )));
    }
    Ok(())
}

/// Parse a guest document: at most [`MAX_DOC`] bytes of JSON object.
fn parse_doc(what: &str, bytes: &[u8]) -> Result<serde_json::Value, Error> {
    if bytes.len() > MAX_DOC {
        return Err(Error::TooLarge(format!(
            "{what} is {} bytes, limit {MAX_DOC}",
            bytes.len()
        )));
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(Error::InvalidArgument(format!(
            "{what} is not a JSON object"
        ))),
        Err(e) => Err(Error::InvalidArgument(format!("{what} is not JSON: {e}"))),
    }
}

fn condition(c: Condition) -> model::Condition {
    match c {
        Condition::Always => model::Condition::Always,
        Condition::MustNotExist => model::Condition::MustNotExist,
        Condition::MustExist => model::Condition::MustExist,
        Condition::VersionIs(v) => model::Condition::VersionIs(v),
    }
}

fn sort_key(c: SortKeyCondition) -> model::SortKeyCondition {
    use model::SortKeyCondition as M;
    match c {
        SortKeyCondition::Any => M::Any,
        SortKeyCondition::Equals(v) => M::Equals(v),
        SortKeyCondition::BeginsWith(v) => M::BeginsWith(v),
        SortKeyCondition::Between((lo, hi)) => M::Between(lo, hi),
        SortKeyCondition::LessThan(v) => M::LessThan(v),
        SortKeyCondition::LessOrEqual(v) => M::LessOrEqual(v),
        SortKeyCondition::GreaterThan(v) => M::GreaterThan(v),
        SortKeyCondition::GreaterOrEqual(v) => M::GreaterOrEqual(v),
    }
}

fn item(i: model::Item) -> Item {
    Item {
        pk: i.pk,
        sk: i.sk,
        doc: serde_json::to_vec(&i.doc).unwrap_or_default(),
        version: i.version,
        expires_at: i.expires_at,
    }
}

impl HostState {
    /// Pass `r` to the guest, after looking behind a store failure (see
    /// [`HostState::after_state_error`]).
    fn table_result<T>(&mut self, r: Result<T, Error>) -> wasmtime::Result<Result<T, Error>> {
        if matches!(r, Err(Error::Store(_))) {
            self.after_state_error()?;
        }
        Ok(r)
    }

    /// Charge a write of `bytes` to the event's budget (`too-large` past its cap).
    fn table_charge(&mut self, bytes: usize) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.charge_write(bytes)?.map_err(Error::TooLarge))
    }

    fn table_name(&self, t: &Resource<TableHandle>) -> wasmtime::Result<String> {
        Ok(self.resources.get(t)?.name.clone())
    }

    /// Refuse an update whose merged document would exceed [`MAX_DOC`]: the cap bounds the
    /// stored document, not only each patch, or repeated updates could grow an item without
    /// limit. Returns the merged document's size.
    fn check_updated_size(
        &mut self,
        table: &str,
        pk: &str,
        sk: &str,
        patch: &serde_json::Value,
    ) -> Result<usize, Error> {
        let current = self.session.table_get(table, pk, sk).map_err(convert)?;
        let mut doc = current.map_or_else(|| serde_json::json!({}), |item| item.doc);
        model::merge_patch(&mut doc, patch);
        let len = serde_json::to_vec(&doc).map_or(usize::MAX, |bytes| bytes.len());
        if len > MAX_DOC {
            return Err(Error::TooLarge(format!(
                "the updated document would be {len} bytes, limit {MAX_DOC}"
            )));
        }
        Ok(len)
    }
}

impl Host for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<TableHandle>, Error>> {
        if !self.grants.tables.iter().any(|t| t.name == name) {
            return Ok(Err(Error::AccessDenied(format!(
                "table {name:?} is not granted to this stage"
            ))));
        }
        if self.open_handles >= MAX_OPEN_HANDLES {
            return Ok(Err(Error::TooLarge(format!(
                "more than {MAX_OPEN_HANDLES} open handles"
            ))));
        }
        self.open_handles += 1;
        Ok(Ok(self.resources.push(TableHandle { name })?))
    }
}

impl HostTable for HostState {
    fn put(
        &mut self,
        t: Resource<TableHandle>,
        pk: String,
        sk: String,
        doc: Vec<u8>,
        cond: Condition,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let table = self.table_name(&t)?;
        let expires_at = ttl_ms.map(|ttl| self.clock.now_ms().saturating_add(ttl));
        let parsed = match check_keys(&pk, &sk).and_then(|()| parse_doc("document", &doc)) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = self.table_charge(table.len() + pk.len() + sk.len() + doc.len())? {
            return Ok(Err(e));
        }
        let r = self
            .session
            .table_put(&table, &pk, &sk, parsed, condition(cond), expires_at)
            .map_err(convert);
        self.table_result(r)
    }

    fn get(
        &mut self,
        t: Resource<TableHandle>,
        pk: String,
        sk: String,
    ) -> wasmtime::Result<Result<Option<Item>, Error>> {
        let table = self.table_name(&t)?;
        let r = check_keys(&pk, &sk).and_then(|()| {
            self.session
                .table_get(&table, &pk, &sk)
                .map(|o| o.map(item))
                .map_err(convert)
        });
        self.table_result(r)
    }

    fn delete(
        &mut self,
        t: Resource<TableHandle>,
        pk: String,
        sk: String,
        cond: Condition,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let table = self.table_name(&t)?;
        if let Err(e) = check_keys(&pk, &sk) {
            return Ok(Err(e));
        }
        if let Err(e) = self.table_charge(table.len() + pk.len() + sk.len())? {
            return Ok(Err(e));
        }
        let r = self
            .session
            .table_delete(&table, &pk, &sk, condition(cond))
            .map_err(convert);
        self.table_result(r)
    }

    fn update(
        &mut self,
        t: Resource<TableHandle>,
        pk: String,
        sk: String,
        patch: Vec<u8>,
        cond: Condition,
    ) -> wasmtime::Result<Result<Item, Error>> {
        let table = self.table_name(&t)?;
        let parsed = match check_keys(&pk, &sk).and_then(|()| parse_doc("patch", &patch)) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Err(e)),
        };
        // The write set holds the merged document, which can be far larger than the patch (a
        // one-byte patch to a 400 KiB item), so that is what is charged.
        let merged = match self.check_updated_size(&table, &pk, &sk, &parsed) {
            Ok(len) => len,
            Err(e) => return self.table_result(Err(e)),
        };
        if let Err(e) = self.table_charge(table.len() + pk.len() + sk.len() + merged)? {
            return Ok(Err(e));
        }
        let r = self
            .session
            .table_update(&table, &pk, &sk, &parsed, condition(cond))
            .map(item)
            .map_err(convert);
        self.table_result(r)
    }

    fn query(
        &mut self,
        t: Resource<TableHandle>,
        q: Query,
    ) -> wasmtime::Result<Result<QueryPage, Error>> {
        let table = self.table_name(&t)?;
        if let Err(e) = check_keys(&q.pk, "") {
            return Ok(Err(e));
        }
        let query = model::Query {
            index: q.index,
            pk: q.pk,
            sk: sort_key(q.sk),
            forward: q.forward,
            limit: usize::try_from(q.limit)
                .unwrap_or(MAX_PAGE)
                .clamp(1, MAX_PAGE),
            cursor: q.cursor,
        };
        let r = self
            .session
            .table_query(&table, &query)
            .map_err(convert)
            .and_then(|p| {
                let items: Vec<Item> = p.items.into_iter().map(item).collect();
                // A full page of maximal documents would be 400 MB: cap what one page returns.
                let bytes: usize = items.iter().map(|i| i.doc.len()).sum();
                if bytes > MAX_PAGE_BYTES {
                    return Err(Error::TooLarge(format!(
                        "the page holds {bytes} bytes of documents, limit {MAX_PAGE_BYTES}; ask for fewer items"
                    )));
                }
                Ok(QueryPage { items, cursor: p.cursor })
            });
        self.table_result(r)
    }

    fn drop(&mut self, t: Resource<TableHandle>) -> wasmtime::Result<()> {
        self.resources.delete(t)?;
        self.open_handles = self.open_handles.saturating_sub(1);
        Ok(())
    }
}
