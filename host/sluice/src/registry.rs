//! The host's registry: the declaration it last applied and the components that declaration
//! names, kept in `registry.redb` in the data directory. `sluice up --config FILE` applies a
//! declaration and records it here; `sluice up` without `--config` resumes from here, so a
//! restarted host runs the same stages and triggers even when the declaration file and the
//! component files are gone. (The HTTP API will record its changes here too.)
//!
//! Components are stored by content (SHA-256), so re-applying an unchanged declaration adds
//! nothing; the declaration is stored with each stage's `component` replaced by
//! `sha256:<hex>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};

use crate::up::Declaration;

/// SHA-256 (hex) → component bytes.
const COMPONENTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("components");
/// `"current"` → the applied declaration (JSON), components given by hash.
const DECLARATION: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("declaration");

/// File name of the registry inside the data directory.
pub(crate) const FILE: &str = "registry.redb";

/// A declaration with the bytes of every stage's component, by stage name.
pub(crate) struct Applied {
    pub decl: Declaration,
    pub components: HashMap<String, Vec<u8>>,
}

impl Applied {
    /// Nothing: no stages, tables, workflows or triggers.
    pub(crate) fn empty() -> Self {
        Self {
            decl: Declaration {
                stages: Vec::new(),
                tables: Vec::new(),
                workflows: Vec::new(),
                triggers: Vec::new(),
                dedupe_retention_secs: crate::up::default_retention(),
            },
            components: HashMap::new(),
        }
    }

    /// Read `decl`'s components from files relative to `base`.
    pub(crate) fn from_files(decl: Declaration, base: &Path) -> anyhow::Result<Self> {
        let mut components = HashMap::new();
        for s in &decl.stages {
            let path = base.join(&s.component);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            components.insert(s.name.clone(), bytes);
        }
        Ok(Self { decl, components })
    }
}

fn open(data_dir: &Path) -> anyhow::Result<Database> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(FILE);
    Database::create(&path).with_context(|| format!("opening the registry {}", path.display()))
}

/// Record `applied` as what the host runs (one durable transaction).
pub(crate) fn save(data_dir: &Path, applied: &Applied) -> anyhow::Result<()> {
    let db = open(data_dir)?;
    let txn = db.begin_write()?;
    {
        let mut components = txn.open_table(COMPONENTS)?;
        let mut stored: serde_json::Value = serde_json::to_value(&applied.decl)?;
        for (i, s) in applied.decl.stages.iter().enumerate() {
            let bytes = applied
                .components
                .get(&s.name)
                .with_context(|| format!("no component for stage {}", s.name))?;
            let hash = hex::encode(Sha256::digest(bytes));
            if components.get(hash.as_str())?.is_none() {
                components.insert(hash.as_str(), bytes.as_slice())?;
            }
            stored["stages"][i]["component"] = format!("sha256:{hash}").into();
        }
        txn.open_table(DECLARATION)?
            .insert("current", serde_json::to_vec(&stored)?.as_slice())?;
    }
    txn.commit()?;
    Ok(())
}

/// What the host last applied, or `None` if nothing was ever applied in `data_dir`.
pub(crate) fn load(data_dir: &Path) -> anyhow::Result<Option<Applied>> {
    if !data_dir.join(FILE).exists() {
        return Ok(None);
    }
    let db = open(data_dir)?;
    let txn = db.begin_read()?;
    let Ok(declarations) = txn.open_table(DECLARATION) else {
        return Ok(None);
    };
    let Some(stored) = declarations.get("current")? else {
        return Ok(None);
    };
    let decl: Declaration = serde_json::from_slice(stored.value())
        .context("the registry's declaration does not parse")?;
    let table = txn.open_table(COMPONENTS)?;
    let mut components = HashMap::new();
    for s in &decl.stages {
        let hash = s
            .component
            .to_str()
            .and_then(|c| c.strip_prefix("sha256:"))
            .with_context(|| format!("stage {}: the registry names no component", s.name))?;
        let bytes = table
            .get(hash)?
            .with_context(|| format!("stage {}: component {hash} missing", s.name))?;
        components.insert(s.name.clone(), bytes.value().to_vec());
    }
    Ok(Some(Applied { decl, components }))
}

/// Where the registry of `data_dir` is (for messages).
pub(crate) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}
