//! `sluice:platform/keyvalue`: bucketed key-value state through the worker's state session.

use sluice_model::state::KvError;
use wasmtime::component::Resource;

use crate::bindings::keyvalue::{Error, Host, HostBucket, KeyPage};
use crate::host::{HostState, MAX_OPEN_HANDLES};

/// Longest key, in bytes.
pub(crate) const MAX_KEY: usize = 1024;
/// Largest value, in bytes.
pub(crate) const MAX_VALUE: usize = 1 << 20;
/// Most keys in one `get-many`/`set-many`, and most keys per `list-keys` page.
pub(crate) const MAX_BATCH: usize = 1000;
/// Most value bytes one `get-many` returns: without it, 1000 keys of 1 MiB values would make
/// the host assemble a gigabyte before the guest's memory limit could refuse it.
pub(crate) const MAX_RESPONSE: usize = 16 << 20;

/// An open bucket: the name the guest opened, checked against the grants at `open`.
#[derive(Debug)]
pub struct BucketHandle {
    name: String,
}

fn convert(e: KvError) -> Error {
    match e {
        KvError::InvalidValue(m) => Error::InvalidValue(m),
        KvError::Store(m) => Error::Store(m),
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY {
        return Err(Error::TooLarge(format!(
            "key is {} bytes, limit {MAX_KEY}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE {
        return Err(Error::TooLarge(format!(
            "value is {} bytes, limit {MAX_VALUE}",
            value.len()
        )));
    }
    Ok(())
}

impl HostState {
    fn bucket(&self, b: &Resource<BucketHandle>) -> wasmtime::Result<String> {
        Ok(self.resources.get(b)?.name.clone())
    }

    /// Pass `r` to the guest, after looking behind a store failure (see
    /// [`HostState::after_state_error`]).
    fn kv_result<T>(&mut self, r: Result<T, Error>) -> wasmtime::Result<Result<T, Error>> {
        if matches!(r, Err(Error::Store(_))) {
            self.after_state_error()?;
        }
        Ok(r)
    }

    /// Charge a write of `bytes` to the event's budget (`too-large` past its cap).
    fn kv_charge(&mut self, bytes: usize) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.charge_write(bytes)?.map_err(Error::TooLarge))
    }
}

impl Host for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<BucketHandle>, Error>> {
        if !self.grants.kv_buckets.contains(&name) {
            return Ok(Err(Error::AccessDenied(format!(
                "bucket {name:?} is not granted to this stage"
            ))));
        }
        if self.open_handles >= MAX_OPEN_HANDLES {
            return Ok(Err(Error::TooLarge(format!(
                "more than {MAX_OPEN_HANDLES} open handles"
            ))));
        }
        self.open_handles += 1;
        Ok(Ok(self.resources.push(BucketHandle { name })?))
    }
}

impl HostBucket for HostState {
    fn get(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let bucket = self.bucket(&b)?;
        let r = check_key(&key).and_then(|()| self.session.kv_get(&bucket, &key).map_err(convert));
        self.kv_result(r)
    }

    fn set(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let bucket = self.bucket(&b)?;
        if let Err(e) = check_key(&key).and_then(|()| check_value(&value)) {
            return Ok(Err(e));
        }
        if let Err(e) = self.kv_charge(bucket.len() + key.len() + value.len())? {
            return Ok(Err(e));
        }
        let r = self.session.kv_set(&bucket, &key, value).map_err(convert);
        self.kv_result(r)
    }

    fn delete(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let bucket = self.bucket(&b)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if let Err(e) = self.kv_charge(bucket.len() + key.len())? {
            return Ok(Err(e));
        }
        let r = self.session.kv_delete(&bucket, &key).map_err(convert);
        self.kv_result(r)
    }

    fn exists(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let bucket = self.bucket(&b)?;
        let r = check_key(&key).and_then(|()| {
            self.session
                .kv_get(&bucket, &key)
                .map(|v| v.is_some())
                .map_err(convert)
        });
        self.kv_result(r)
    }

    fn list_keys(
        &mut self,
        b: Resource<BucketHandle>,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<KeyPage, Error>> {
        let bucket = self.bucket(&b)?;
        let limit = usize::try_from(limit)
            .unwrap_or(MAX_BATCH)
            .clamp(1, MAX_BATCH);
        let result = check_key(&prefix)
            .and_then(|()| cursor.as_deref().map_or(Ok(()), check_key))
            .and_then(|()| {
                self.session
                    .kv_list(&bucket, &prefix, cursor.as_deref(), limit)
                    .map_err(convert)
            })
            .map(|p| KeyPage {
                keys: p.keys,
                cursor: p.cursor,
            });
        self.kv_result(result)
    }

    fn increment(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let bucket = self.bucket(&b)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if let Err(e) = self.kv_charge(bucket.len() + key.len() + 8)? {
            return Ok(Err(e));
        }
        let r = self
            .session
            .kv_increment(&bucket, &key, delta)
            .map_err(convert);
        self.kv_result(r)
    }

    fn compare_and_swap(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let bucket = self.bucket(&b)?;
        if let Err(e) = check_key(&key).and_then(|()| check_value(&new)) {
            return Ok(Err(e));
        }
        if let Err(e) = self.kv_charge(bucket.len() + key.len() + new.len())? {
            return Ok(Err(e));
        }
        let r = self
            .session
            .kv_compare_and_swap(&bucket, &key, expected.as_deref(), new)
            .map_err(convert);
        self.kv_result(r)
    }

    fn get_many(
        &mut self,
        b: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<Vec<u8>>>, Error>> {
        let bucket = self.bucket(&b)?;
        if keys.len() > MAX_BATCH {
            return Ok(Err(Error::TooLarge(format!(
                "{} keys, limit {MAX_BATCH}",
                keys.len()
            ))));
        }
        let mut out = Vec::with_capacity(keys.len());
        let mut total = 0;
        for key in &keys {
            if let Err(e) = check_key(key) {
                return Ok(Err(e));
            }
            match self.session.kv_get(&bucket, key) {
                Ok(v) => {
                    total += v.as_ref().map_or(0, Vec::len);
                    if total > MAX_RESPONSE {
                        return Ok(Err(Error::TooLarge(format!(
                            "get-many would return more than {MAX_RESPONSE} bytes"
                        ))));
                    }
                    out.push(v);
                }
                Err(e) => return self.kv_result(Err(convert(e))),
            }
        }
        Ok(Ok(out))
    }

    fn set_many(
        &mut self,
        b: Resource<BucketHandle>,
        entries: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let bucket = self.bucket(&b)?;
        if entries.len() > MAX_BATCH {
            return Ok(Err(Error::TooLarge(format!(
                "{} entries, limit {MAX_BATCH}",
                entries.len()
            ))));
        }
        // Check everything first so a refused batch writes nothing.
        let mut bytes = 0_usize;
        for (k, v) in &entries {
            if let Err(e) = check_key(k).and_then(|()| check_value(v)) {
                return Ok(Err(e));
            }
            bytes = bytes.saturating_add(bucket.len() + k.len() + v.len());
        }
        if let Err(e) = self.kv_charge(bytes)? {
            return Ok(Err(e));
        }
        for (k, v) in entries {
            if let Err(e) = self.session.kv_set(&bucket, &k, v) {
                return self.kv_result(Err(convert(e)));
            }
        }
        Ok(Ok(()))
    }

    fn drop(&mut self, b: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.resources.delete(b)?;
        self.open_handles = self.open_handles.saturating_sub(1);
        Ok(())
    }
}
