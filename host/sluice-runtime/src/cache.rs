//! The on-disk cache of compiled stages.
//!
//! Compiling a component with Cranelift costs tens of milliseconds per 100 KB; loading the
//! serialized artifact costs a file map. Artifacts are keyed by the SHA-256 of the component
//! bytes and by the engine's compatibility hash (wasmtime version and settings), so a changed
//! engine never loads a stale artifact: it just misses and recompiles.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::engine::EngineConfig;

/// Whether a deploy compiled the component or loaded it from the cache, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a serialized artifact with `Component::deserialize_file`.
    Hit(Duration),
    /// Compiled with Cranelift (and stored the artifact).
    Compiled(Duration),
}

#[derive(Debug)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
}

/// SHA-256 of a component, hex encoded: the content address of a stage version.
pub(crate) fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path_for(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir.join(format!("{digest}-{:016x}.cwasm", h.finish()))
    }

    /// Load the compiled form of `bytes` (whose hash is `digest`) or compile and store it.
    /// `compile` errors are returned as is; cache I/O errors only cost a recompile, except a
    /// failure to write the artifact, which is reported because the next restart would pay.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        config: &EngineConfig,
        digest: &str,
        bytes: &[u8],
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let path = self.path_for(engine, digest);
        let start = Instant::now();
        if path.exists() {
            // SAFETY: `deserialize_file` trusts the file to be an artifact produced by
            // `Component::serialize` of a compatible engine. Only this cache writes files in
            // this directory, atomically (write to a temp file, then rename), and the name
            // includes the engine's compatibility hash; wasmtime checks the header again.
            #[allow(
                unsafe_code,
                reason = "loading our own serialized artifact, see SAFETY"
            )]
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            match loaded {
                Ok(c) => return Ok((c, CacheOutcome::Hit(start.elapsed()))),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "recompiling: cached artifact unusable: {e:#}")
                }
            }
        }
        let component = crate::compile::compile(engine, config, bytes)?;
        let compiled = start.elapsed();
        let serialized = component.serialize()?;
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&serialized)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, &path)?;
        Ok((component, CacheOutcome::Compiled(compiled)))
    }
}

/// A uniquely named temporary file in `dir` (same filesystem, so `rename` is atomic).
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}
