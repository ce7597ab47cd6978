//! Key-value buckets: the WIT's `keyvalue` interface with typed JSON values beside the raw
//! bytes. Every method is one host call (the [`Keys`] iterator one per page); JSON is encoded
//! and decoded in the guest.
//!
//! Writes join the current event's write set: later reads of the same event see them at once,
//! and they become durable only when the event commits. A bucket must be granted in the
//! stage's configuration (`grants.kv_buckets`); [`open`] fails with `access-denied` otherwise.
//!
//! Errors are the WIT's [`Error`]; `?` in a handler turns one into a named [`crate::Error`]
//! (`State.AccessDenied`, `State.TooLarge`, `State.InvalidValue`, or `State.Error` for the
//! store's own failures, the only retryable one).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::sluice::platform::keyvalue as wit;

pub use wit::{Error, KeyPage};

/// Open the bucket called `name`, for the current event.
pub fn open(name: &str) -> Result<Bucket, Error> {
    wit::open(name).map(|raw| Bucket { raw })
}

/// An open bucket. Valid for the current invocation only.
#[derive(Debug)]
pub struct Bucket {
    raw: wit::Bucket,
}

impl Bucket {
    /// The value under `key` read as JSON of type `T`, if any. A value that does not decode
    /// fails with `invalid-value`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.raw
            .get(key)?
            .map(|bytes| decode(key, &bytes))
            .transpose()
    }

    /// The bytes under `key`, if any.
    pub fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.raw.get(key)
    }

    /// Store `value` as JSON under `key`. A value that does not serialize fails with
    /// `invalid-value` before any host call.
    pub fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        self.raw.set(key, &encode(key, value)?)
    }

    /// Store `value` under `key`, replacing any earlier value.
    pub fn set_bytes(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.raw.set(key, value)
    }

    /// Remove `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.raw.delete(key)
    }

    /// Whether `key` holds a value.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        self.raw.exists(key)
    }

    /// Add `delta` to the counter under `key` (a missing key counts as 0) and return its new
    /// value. Atomic within the event: no other event sees the key in between.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.raw.increment(key, delta)
    }

    /// The counter under `key` without changing it, if any (counters are 8 little-endian
    /// bytes, as [`increment`](Self::increment) stores them). Another value fails with
    /// `invalid-value`.
    pub fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        self.raw
            .get(key)?
            .map(|bytes| decode_counter(key, &bytes))
            .transpose()
    }

    /// Set `key` to `new` only if its value is exactly `expected` (`None`: the key is absent);
    /// returns whether it was set.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error> {
        self.raw.compare_and_swap(key, expected, new)
    }

    /// [`compare_and_swap`](Self::compare_and_swap) with JSON values. The comparison is of
    /// bytes, so it matches a value [`set`](Self::set) wrote from an equal value of the same
    /// type, not JSON that merely means the same (other key order or spacing).
    pub fn compare_and_swap_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        expected: Option<&T>,
        new: &T,
    ) -> Result<bool, Error> {
        let expected = expected.map(|v| encode(key, v)).transpose()?;
        self.raw
            .compare_and_swap(key, expected.as_deref(), &encode(key, new)?)
    }

    /// One page of the keys starting with `prefix`, in ascending order: at most `limit` (the
    /// host caps it, at 1000 today), from `cursor` (the previous page's, or `None` to start).
    pub fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, Error> {
        self.raw.list_keys(prefix, cursor, limit)
    }

    /// Every key starting with `prefix`, in ascending order, fetched a page at a time (one
    /// host call per page of as many keys as the host allows).
    pub fn keys<'a>(&'a self, prefix: &'a str) -> Keys<'a> {
        Keys {
            bucket: self,
            prefix,
            page: Vec::new().into_iter(),
            cursor: None,
            done: false,
        }
    }

    /// The bytes under each of `keys`, in the same order, in one host call.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        self.raw.get_many(keys)
    }

    /// Store every (key, bytes) entry, in order, in one host call.
    pub fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        self.raw.set_many(entries)
    }

    /// The WIT resource, for calls these methods do not cover.
    pub fn raw(&self) -> &wit::Bucket {
        &self.raw
    }
}

/// The keys of a bucket with a prefix: see [`Bucket::keys`]. Yields an error (and then
/// nothing) if a page cannot be read.
#[derive(Debug)]
pub struct Keys<'a> {
    bucket: &'a Bucket,
    prefix: &'a str,
    page: std::vec::IntoIter<String>,
    cursor: Option<String>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<String, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            // The host caps the page size; asking for the most leaves the choice to it.
            match self
                .bucket
                .list_keys(self.prefix, self.cursor.as_deref(), u32::MAX)
            {
                Ok(page) => {
                    self.done = page.cursor.is_none();
                    self.cursor = page.cursor;
                    self.page = page.keys.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Error {
    /// The variant's name as the WIT spells it: `access-denied`, `too-large`,
    /// `invalid-value` or `store`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AccessDenied(_) => "access-denied",
            Self::TooLarge(_) => "too-large",
            Self::InvalidValue(_) => "invalid-value",
            Self::Store(_) => "store",
        }
    }

    /// The host's explanation.
    pub fn message(&self) -> &str {
        match self {
            Self::AccessDenied(m) | Self::TooLarge(m) | Self::InvalidValue(m) | Self::Store(m) => m,
        }
    }

    /// The host's explanation, owned.
    pub fn into_message(self) -> String {
        match self {
            Self::AccessDenied(m) | Self::TooLarge(m) | Self::InvalidValue(m) | Self::Store(m) => m,
        }
    }

    /// Whether running the event again may succeed: only for the store's own failures.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidValue(format!("the value of {key:?} does not decode: {e}")))
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| {
        Error::InvalidValue(format!(
            "the value for {key:?} does not serialize as JSON: {e}"
        ))
    })
}

fn decode_counter(key: &str, bytes: &[u8]) -> Result<i64, Error> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| {
        Error::InvalidValue(format!(
            "the value of {key:?} is {} bytes, not an 8-byte counter",
            bytes.len()
        ))
    })?;
    Ok(i64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn values_decode_as_json() {
        assert_eq!(decode::<Vec<u32>>("k", b"[1,2]").unwrap(), vec![1, 2]);
        let e = decode::<Vec<u32>>("k", b"{").unwrap_err();
        assert_eq!(e.kind(), "invalid-value");
        assert!(
            e.message()
                .starts_with("the value of \"k\" does not decode"),
            "{e}"
        );
        assert_eq!(crate::Error::from(e).name(), "State.InvalidValue");
    }

    #[test]
    fn values_encode_as_compact_json() {
        assert_eq!(encode("k", &[1, 2]).unwrap(), b"[1,2]");
        assert_eq!(encode("k", "s").unwrap(), b"\"s\"");
        let mut map = BTreeMap::new();
        map.insert((1, 2), 3);
        assert_eq!(encode("k", &map).unwrap_err().kind(), "invalid-value");
    }

    #[test]
    fn counters_are_eight_little_endian_bytes() {
        assert_eq!(decode_counter("k", &(-5i64).to_le_bytes()).unwrap(), -5);
        let e = decode_counter("k", b"12").unwrap_err();
        assert_eq!(e.kind(), "invalid-value");
        assert!(e.message().contains("2 bytes"), "{e}");
    }

    #[test]
    fn error_parts() {
        let cases = [
            (Error::AccessDenied("m".into()), "access-denied", false),
            (Error::TooLarge("m".into()), "too-large", false),
            (Error::InvalidValue("m".into()), "invalid-value", false),
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
