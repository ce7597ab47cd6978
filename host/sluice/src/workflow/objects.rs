//! The objects a Map's ItemReader reads in `sluice workflow run --objects DIR`: the object
//! `KEY` of bucket `BUCKET` is the file `DIR/BUCKET/KEY` (a key's `/` are subdirectories).
//!
//! A bucket or key that could leave the directory (`..`, an absolute path, an empty
//! segment) is refused, not resolved: a definition must not read the host's other files.

use std::path::{Component, Path, PathBuf};

use sluice_workflow::env::{ObjectError, Objects};

/// A directory of buckets.
#[derive(Debug, Clone)]
pub(crate) struct DirObjects {
    root: PathBuf,
}

impl DirObjects {
    /// Objects under `root`.
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    /// The file of `bucket`/`key`, if both stay inside the directory.
    fn file(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let plain = |s: &str, one: bool| {
            !s.is_empty()
                && !s.contains('\0')
                && !s.contains('\\')
                && (!one || !s.contains('/'))
                && Path::new(s)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
                && !s.split('/').any(str::is_empty)
        };
        (plain(bucket, true) && plain(key, false)).then(|| self.root.join(bucket).join(key))
    }
}

impl Objects for DirObjects {
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError> {
        let not_found = || ObjectError::NotFound {
            bucket: bucket.into(),
            key: key.into(),
        };
        let file = self.file(bucket, key).ok_or_else(not_found)?;
        match std::fs::read(&file) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found()),
            Err(e) => Err(ObjectError::Unavailable(format!(
                "reading {}: {e}",
                file.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_files_under_their_bucket() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/in")).unwrap();
        std::fs::write(dir.path().join("b/in/items.json"), b"[1]").unwrap();
        let o = DirObjects::new(dir.path());
        assert_eq!(o.get("b", "in/items.json").unwrap(), b"[1]");
        assert!(matches!(
            o.get("b", "nope.json"),
            Err(ObjectError::NotFound { .. })
        ));
    }

    #[test]
    fn names_that_would_leave_the_directory_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        let o = DirObjects::new(&dir.path().join("b"));
        for (bucket, key) in [
            ("..", "secret"),
            ("b", "../secret"),
            ("b", "/etc/passwd"),
            ("b/..", "secret"),
            ("b", "a//b"),
            ("", "k"),
            ("b", ""),
        ] {
            assert!(
                matches!(o.get(bucket, key), Err(ObjectError::NotFound { .. })),
                "{bucket}/{key}"
            );
        }
    }
}
