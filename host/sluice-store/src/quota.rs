//! [`QuotaFile`]: a redb storage backend over a file that may not grow past a byte quota, for
//! fault tests (a disk filling up, then space coming back) and for capping a database's size.
//!
//! A write or resize that would end past the quota fails the way a full disk does, with an
//! `io::Error` of kind [`io::ErrorKind::StorageFull`]; redb then latches the error and the
//! store heals once the quota is raised (see `health.rs`). A quota at the file's current size
//! lets the database use its free pages and fails the first growth, as a disk filling up
//! does; a quota below it (0, say) also fails writes inside the file, so nothing at all can
//! be written — the way to hold a store down in a test. Shrinking the file is always allowed.
//! What redb has committed is never lost either way: it is crash-safe against a write failing
//! at any point.
//!
//! Everything else — reads, syncs and the file locks that refuse a second process — is redb's
//! own [`FileBackend`], which this wraps.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The quota of one or more [`QuotaFile`]s, changeable while they are in use. Clones share it.
#[derive(Debug, Clone)]
pub struct QuotaHandle(Arc<AtomicU64>);

impl QuotaHandle {
    /// A quota of `bytes`.
    pub fn new(bytes: u64) -> Self {
        Self(Arc::new(AtomicU64::new(bytes)))
    }

    /// No limit (until [`QuotaHandle::set`] sets one).
    pub fn unlimited() -> Self {
        Self::new(u64::MAX)
    }

    /// Change the quota; it applies to the next write or resize.
    pub fn set(&self, bytes: u64) {
        self.0.store(bytes, Ordering::SeqCst);
    }

    /// The quota in bytes.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A file-backed [`StorageBackend`] whose length may not exceed a [`QuotaHandle`]'s bytes; see
/// the module docs.
#[derive(Debug)]
pub struct QuotaFile {
    inner: FileBackend,
    /// The file's length as this backend made it, so the check costs no system call.
    len: AtomicU64,
    quota: QuotaHandle,
}

impl QuotaFile {
    /// Open or create the file at `path` (as `redb::Database::create` does) under `quota`.
    pub fn open(path: &Path, quota: QuotaHandle) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Self::new(file, quota)
    }

    /// Wrap an open file, readable and writable.
    pub fn new(file: File, quota: QuotaHandle) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self {
            inner: FileBackend::new(file).map_err(io::Error::other)?,
            len: AtomicU64::new(len),
            quota,
        })
    }

    /// Fail like a full disk if a write would end past the quota.
    fn check(&self, end: u64) -> io::Result<()> {
        let quota = self.quota.get();
        if end > quota {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "no space left: growing the file to {end} bytes exceeds its quota of {quota}"
                ),
            ));
        }
        Ok(())
    }
}

impl StorageBackend for QuotaFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        if len > self.len.load(Ordering::SeqCst) {
            self.check(len)?;
        }
        self.inner.set_len(len)?;
        self.len.store(len, Ordering::SeqCst);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let end = offset.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        self.check(end)?;
        self.inner.write(offset, data)?;
        self.len.fetch_max(end, Ordering::SeqCst);
        Ok(())
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_quota_fails_like_a_full_disk() {
        let dir = tempfile::tempdir().unwrap();
        let quota = QuotaHandle::new(100);
        let f = QuotaFile::open(&dir.path().join("q"), quota.clone()).unwrap();
        f.set_len(100).unwrap();
        f.write(90, &[1; 10]).unwrap();
        let err = f.write(95, &[1; 10]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            f.set_len(101).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        quota.set(50);
        f.write(0, &[2; 50]).unwrap();
        assert!(
            f.write(40, &[2; 20]).is_err(),
            "past the quota inside the file"
        );
        f.set_len(60).unwrap(); // shrinking is always allowed
        assert!(f.set_len(70).is_err());
        quota.set(200);
        f.set_len(200).unwrap();
        assert_eq!(f.len().unwrap(), 200);
    }
}
