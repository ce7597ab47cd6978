//! DynamoDB-style tables: the WIT's `table` interface with typed documents beside the raw
//! bytes. Every method is one host call; JSON is encoded and decoded in the guest.
//!
//! Items are addressed by partition key and sort key and hold a JSON object; secondary
//! indexes (declared per table in the stage's grants) are queried like the table. Writes join
//! the current event's write set, like key-value writes. A table must be granted
//! (`grants.tables`); [`open`] fails with `access-denied` otherwise.
//!
//! Errors are the WIT's [`Error`], so a conditional write's `condition-failed` can be matched;
//! `?` in a handler turns one into a named [`crate::Error`] (`State.ConditionFailed`,
//! `State.NoSuchIndex`, ..., `State.Error` for the store's own failures).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::sluice::platform::table as wit;

pub use wit::{Condition, Error, Item, Query, QueryPage, SortKeyCondition};

/// Open the table called `name`, for the current event.
pub fn open(name: &str) -> Result<Table, Error> {
    wit::open(name).map(|raw| Table { raw })
}

/// An open table. Valid for the current invocation only.
#[derive(Debug)]
pub struct Table {
    raw: wit::Table,
}

impl Table {
    /// Store `doc` (serialized as JSON; it must be an object) at (`pk`, `sk`) if `condition`
    /// holds, and return the item's new version. A document that does not serialize fails with
    /// `invalid-argument` before any host call.
    pub fn put<T: Serialize + ?Sized>(
        &self,
        pk: &str,
        sk: &str,
        doc: &T,
        condition: Condition,
    ) -> Result<u64, Error> {
        self.raw
            .put(pk, sk, &encode("document", doc)?, condition, None)
    }

    /// [`put`](Self::put) with an expiry `ttl` from now (whole milliseconds; longer than
    /// `u64::MAX` ms counts as never).
    pub fn put_with_ttl<T: Serialize + ?Sized>(
        &self,
        pk: &str,
        sk: &str,
        doc: &T,
        condition: Condition,
        ttl: Duration,
    ) -> Result<u64, Error> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.raw
            .put(pk, sk, &encode("document", doc)?, condition, Some(ttl_ms))
    }

    /// Store the JSON object `doc` as it is; `ttl_ms`, when given, expires it that many
    /// milliseconds from now.
    pub fn put_bytes(
        &self,
        pk: &str,
        sk: &str,
        doc: &[u8],
        condition: Condition,
        ttl_ms: Option<u64>,
    ) -> Result<u64, Error> {
        self.raw.put(pk, sk, doc, condition, ttl_ms)
    }

    /// The item at (`pk`, `sk`), unless absent or expired; [`Item::decode`] reads its document.
    pub fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, Error> {
        self.raw.get(pk, sk)
    }

    /// The document at (`pk`, `sk`) read as `T`, unless absent or expired. A document that does
    /// not decode fails with `invalid-argument`.
    pub fn get_doc<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>, Error> {
        self.raw.get(pk, sk)?.map(|item| item.decode()).transpose()
    }

    /// Remove the item if `condition` holds; returns whether an item was removed.
    pub fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<bool, Error> {
        self.raw.delete(pk, sk, condition)
    }

    /// Apply `patch` (serialized as JSON; a JSON Merge Patch, RFC 7386: `null` removes an
    /// attribute) to the item's document if `condition` holds, creating the item unless the
    /// condition forbids it, and return the item as stored.
    pub fn update<P: Serialize + ?Sized>(
        &self,
        pk: &str,
        sk: &str,
        patch: &P,
        condition: Condition,
    ) -> Result<Item, Error> {
        self.raw.update(pk, sk, &encode("patch", patch)?, condition)
    }

    /// [`update`](Self::update) with the patch's JSON as it is.
    pub fn update_bytes(
        &self,
        pk: &str,
        sk: &str,
        patch: &[u8],
        condition: Condition,
    ) -> Result<Item, Error> {
        self.raw.update(pk, sk, patch, condition)
    }

    /// One page of a query (see [`Query::new`]); pass the page's cursor to
    /// [`Query::after`] for the next.
    pub fn query(&self, query: &Query) -> Result<QueryPage, Error> {
        self.raw.query(query)
    }

    /// The WIT resource, for calls these methods do not cover.
    pub fn raw(&self) -> &wit::Table {
        &self.raw
    }
}

impl Item {
    /// The item's document read as `T`; one that does not decode fails with
    /// `invalid-argument`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.doc).map_err(|e| {
            Error::InvalidArgument(format!(
                "the document at ({:?}, {:?}) does not decode: {e}",
                self.pk, self.sk
            ))
        })
    }
}

impl QueryPage {
    /// Every item's document read as `T`, in page order.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        self.items.iter().map(Item::decode).collect()
    }
}

impl Query {
    /// A query of the base table's partition `pk`: every sort key, ascending, as many items
    /// per page as the host allows, from the start. Refine it with the other methods.
    pub fn new(pk: impl Into<String>) -> Self {
        Self {
            index: None,
            pk: pk.into(),
            sk: SortKeyCondition::Any,
            forward: true,
            // The host caps the page size; asking for the most leaves the choice to it.
            limit: u32::MAX,
            cursor: None,
        }
    }

    /// Query the secondary index `index` instead, whose partition key is `pk`.
    pub fn index(mut self, index: impl Into<String>) -> Self {
        self.index = Some(index.into());
        self
    }

    /// Only the sort keys matching `sk`.
    pub fn sort_key(mut self, sk: SortKeyCondition) -> Self {
        self.sk = sk;
        self
    }

    /// Descending sort-key order.
    pub fn descending(mut self) -> Self {
        self.forward = false;
        self
    }

    /// At most `limit` items per page.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Continue after the page that returned `cursor` (`None`: from the start).
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

impl Error {
    /// The variant's name as the WIT spells it: `access-denied`, `no-such-index`,
    /// `condition-failed`, `invalid-argument`, `too-large` or `store`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AccessDenied(_) => "access-denied",
            Self::NoSuchIndex(_) => "no-such-index",
            Self::ConditionFailed(_) => "condition-failed",
            Self::InvalidArgument(_) => "invalid-argument",
            Self::TooLarge(_) => "too-large",
            Self::Store(_) => "store",
        }
    }

    /// The host's explanation.
    pub fn message(&self) -> &str {
        match self {
            Self::AccessDenied(m)
            | Self::NoSuchIndex(m)
            | Self::ConditionFailed(m)
            | Self::InvalidArgument(m)
            | Self::TooLarge(m)
            | Self::Store(m) => m,
        }
    }

    /// The host's explanation, owned.
    pub fn into_message(self) -> String {
        match self {
            Self::AccessDenied(m)
            | Self::NoSuchIndex(m)
            | Self::ConditionFailed(m)
            | Self::InvalidArgument(m)
            | Self::TooLarge(m)
            | Self::Store(m) => m,
        }
    }

    /// Whether running the event again may succeed: only for the store's own failures.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}

fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|e| Error::InvalidArgument(format!("the {what} does not serialize as JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Doc {
        n: u32,
    }

    fn item(doc: &[u8]) -> Item {
        Item {
            pk: "P".into(),
            sk: "S".into(),
            doc: doc.to_vec(),
            version: 1,
            expires_at: None,
        }
    }

    #[test]
    fn items_decode_their_documents() {
        assert_eq!(item(br#"{"n":3}"#).decode::<Doc>().unwrap(), Doc { n: 3 });
        let e = item(br#"{"n":"x"}"#).decode::<Doc>().unwrap_err();
        assert_eq!(e.kind(), "invalid-argument");
        assert!(e.message().contains(r#"("P", "S")"#), "{e}");
        let page = QueryPage {
            items: vec![item(br#"{"n":1}"#), item(br#"{"n":2}"#)],
            cursor: None,
        };
        assert_eq!(page.decode::<Doc>().unwrap(), [Doc { n: 1 }, Doc { n: 2 }]);
    }

    #[test]
    fn documents_encode_as_json() {
        assert_eq!(
            encode("document", &serde_json::json!({"a": 1})).unwrap(),
            br#"{"a":1}"#
        );
        let mut map = BTreeMap::new();
        map.insert((1, 2), 3);
        let e = encode("patch", &map).unwrap_err();
        assert_eq!(e.kind(), "invalid-argument");
        assert!(
            e.message().starts_with("the patch does not serialize"),
            "{e}"
        );
    }

    #[test]
    fn query_builder() {
        let q = Query::new("USER#u-1");
        assert_eq!(
            (
                q.index.as_deref(),
                q.pk.as_str(),
                q.forward,
                q.limit,
                q.cursor.as_deref()
            ),
            (None, "USER#u-1", true, u32::MAX, None)
        );
        assert!(matches!(q.sk, SortKeyCondition::Any));
        let q = Query::new("u-1")
            .index("by-user")
            .sort_key(SortKeyCondition::BeginsWith("2026-".into()))
            .descending()
            .limit(10)
            .after(Some("c".into()));
        assert_eq!(
            (q.index.as_deref(), q.forward, q.limit, q.cursor.as_deref()),
            (Some("by-user"), false, 10, Some("c"))
        );
        assert!(matches!(q.sk, SortKeyCondition::BeginsWith(ref p) if p == "2026-"));
    }

    #[test]
    fn error_parts() {
        let cases = [
            (Error::AccessDenied("m".into()), "access-denied", false),
            (Error::NoSuchIndex("m".into()), "no-such-index", false),
            (
                Error::ConditionFailed("m".into()),
                "condition-failed",
                false,
            ),
            (
                Error::InvalidArgument("m".into()),
                "invalid-argument",
                false,
            ),
            (Error::TooLarge("m".into()), "too-large", false),
            (Error::Store("m".into()), "store", true),
        ];
        for (e, kind, retryable) in cases {
            assert_eq!(
                (e.kind(), e.message(), e.is_retryable()),
                (kind, "m", retryable)
            );
            assert_eq!(e.into_message(), "m");
        }
    }
}
