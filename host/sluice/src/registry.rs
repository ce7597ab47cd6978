//! The host's registry, `registry.redb` in the data directory: the stages (each an ordered
//! list of immutable versions and a few aliases pointing at them), their components, and the
//! declaration the host last applied. `sluice up --config FILE` applies a declaration (each
//! declared stage whose component or configuration differs from its `live` version becomes
//! the next version, and `live` moves to it); the HTTP API adds versions and moves aliases;
//! `sluice up` without `--config` resumes from here, so a restarted host runs what it ran
//! even when the files are gone.
//!
//! Components are stored by content (SHA-256), so a re-upload adds no bytes; a component no
//! version uses any more is removed with the last version that did. The declaration is stored
//! with each stage's `component` replaced by `sha256:<hex>`.
//!
//! One `Registry` holds the file open for the host's life (redb lets one process open a file
//! once); every change is one durable transaction.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_runtime::StageConfig;

use crate::up::Declaration;

/// SHA-256 (hex) → component bytes.
const COMPONENTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("components");
/// `"current"` → the applied declaration (JSON), components given by hash.
const DECLARATION: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("declaration");
/// (stage, version) → the version's record (JSON [`VersionRecord`]).
const VERSIONS: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("stage_versions");
/// (stage, alias) → version.
const ALIASES: TableDefinition<'_, (&str, &str), u64> = TableDefinition::new("stage_aliases");

/// Trigger name → its record (JSON [`Record`]).
const TRIGGERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("triggers");
/// Workflow name → its record (JSON [`Record`] of a declaration's workflow entry).
const WORKFLOWS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("workflows");

/// What a [`Record`] is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Trigger,
    Workflow,
}

impl Kind {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Self::Trigger => TRIGGERS,
            Self::Workflow => WORKFLOWS,
        }
    }

    /// The declaration's field listing these.
    fn field(self) -> &'static str {
        match self {
            Self::Trigger => "triggers",
            Self::Workflow => "workflows",
        }
    }
}
/// Markers of migrations done (`"triggers"`: the declaration's triggers were copied).
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// File name of the registry inside the data directory.
pub(crate) const FILE: &str = "registry.redb";

/// The alias triggers, workflows and unqualified invocations run.
pub(crate) const LIVE: &str = "live";

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

/// Each stage's newest version and its aliases (alias → version), by name.
pub(crate) type StageIndex = BTreeMap<String, (u64, BTreeMap<String, u64>)>;

/// One stored version of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub sha256: String,
    pub size: u64,
    /// `stage` or `batch-stage`.
    pub world: String,
    pub config: StageConfig,
    pub created_ms: i64,
}

/// A trigger or workflow the host runs: its definition (as a declaration's entry) and where
/// it came from, `declaration` (replaced when a declaration is applied) or `api`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub source: String,
    pub definition: serde_json::Value,
}

/// A version and the bytes of its component.
pub(crate) struct Loaded {
    pub version: u64,
    pub record: VersionRecord,
    pub component: Vec<u8>,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("no stage named '{0}'")]
    NoStage(String),
    #[error("stage '{0}' has no version {1}")]
    NoVersion(String, u64),
    #[error("stage '{0}' has no alias '{1}'")]
    NoAlias(String, String),
    #[error("the registry failed: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Storage(e.to_string())
}

/// The open registry of one data directory.
pub(crate) struct Registry {
    db: Database,
    path: PathBuf,
    /// Versions `resolve` found, by (stage, qualifier): every invocation resolves its
    /// target, and a read transaction per request was ~3% of the host's CPU under load.
    resolved: Mutex<Resolved>,
}

/// The cache of [`Registry::resolve`]. A write that commits bumps `generation` and empties
/// `versions`; a look-up inserts what it read only if no write committed since it began, so
/// a read that raced a write can never leave the old answer behind.
#[derive(Default)]
struct Resolved {
    generation: u64,
    versions: HashMap<(String, String), u64>,
}

impl Registry {
    /// Open (or create) the registry of `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => anyhow::bail!(
                "another sluice host runs on {} (it holds {} open); stop it first",
                data_dir.display(),
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("opening the registry {}", path.display()));
            }
        };
        let txn = db.begin_write()?;
        txn.open_table(COMPONENTS)?;
        txn.open_table(DECLARATION)?;
        txn.open_table(VERSIONS)?;
        txn.open_table(ALIASES)?;
        txn.open_table(TRIGGERS)?;
        txn.open_table(WORKFLOWS)?;
        txn.open_table(META)?;
        txn.commit()?;
        let registry = Self {
            db,
            path,
            resolved: Mutex::default(),
        };
        registry.migrate()?;
        Ok(registry)
    }

    /// Where the registry is (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A registry written before stages had versions holds only a declaration: its stages
    /// become version 1, live.
    fn migrate(&self) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        let migrated = {
            let versions = txn.open_table(VERSIONS)?;
            if versions.first()?.is_some() {
                false
            } else if let Some(stored) = txn.open_table(DECLARATION)?.get("current")? {
                let decl: Declaration = serde_json::from_slice(stored.value())
                    .context("the registry's declaration does not parse")?;
                drop(versions);
                let components = txn.open_table(COMPONENTS)?;
                let mut found = Vec::new();
                for s in &decl.stages {
                    let hash = component_hash(s)?;
                    let bytes = components
                        .get(hash)?
                        .with_context(|| format!("stage {}: component {hash} missing", s.name))?
                        .value()
                        .to_vec();
                    found.push((s.name.clone(), bytes, s.config.clone()));
                }
                drop(components);
                for (name, bytes, config) in found {
                    add_version(&txn, &name, &bytes, config, None)?;
                }
                true
            } else {
                false
            }
        };
        // The declaration's triggers and workflows move to their tables (once each).
        let mut meta = txn.open_table(META)?;
        for kind in [Kind::Trigger, Kind::Workflow] {
            if meta.get(kind.field())?.is_some() {
                continue;
            }
            if let Some(stored) = txn.open_table(DECLARATION)?.get("current")? {
                let decl: serde_json::Value = serde_json::from_slice(stored.value())?;
                put_declared(&txn, kind, &decl)?;
            }
            meta.insert(kind.field(), 1)?;
        }
        drop(meta);
        txn.commit()?;
        if migrated {
            eprintln!(
                "registry {}: the declared stages are now version 1",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Every trigger or workflow, by name.
    pub(crate) fn records(&self, kind: Kind) -> Result<Vec<(String, Record)>, RegistryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(kind.table()).map_err(storage)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            let record = serde_json::from_slice(v.value())
                .map_err(|e| storage(format!("a {kind:?} record: {e}")))?;
            out.push((k.value().to_owned(), record));
        }
        Ok(out)
    }

    /// Record the trigger or workflow `name`.
    pub(crate) fn put(&self, kind: Kind, name: &str, record: &Record) -> Result<(), RegistryError> {
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(kind.table())
            .map_err(storage)?
            .insert(
                name,
                serde_json::to_vec(record).map_err(storage)?.as_slice(),
            )
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// Forget the trigger or workflow `name`; false if there was none.
    pub(crate) fn remove(&self, kind: Kind, name: &str) -> Result<bool, RegistryError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let removed = txn
            .open_table(kind.table())
            .map_err(storage)?
            .remove(name)
            .map_err(storage)?
            .is_some();
        txn.commit().map_err(storage)?;
        Ok(removed)
    }

    /// Record `applied` as what the host runs: the declaration, and each declared stage whose
    /// component or configuration differs from its live version as a new version, live (one
    /// durable transaction). `worlds`: each stage's world, as its deploy found it.
    pub(crate) fn apply(
        &self,
        applied: &Applied,
        worlds: &HashMap<String, String>,
    ) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut stored: serde_json::Value = serde_json::to_value(&applied.decl)?;
            for (i, s) in applied.decl.stages.iter().enumerate() {
                let bytes = applied
                    .components
                    .get(&s.name)
                    .with_context(|| format!("no component for stage {}", s.name))?;
                let hash = hex::encode(Sha256::digest(bytes));
                let live = live_record(&txn, &s.name)?;
                let unchanged = live
                    .as_ref()
                    .is_some_and(|r| r.sha256 == hash && r.config == s.config);
                if !unchanged {
                    add_version(&txn, &s.name, bytes, s.config.clone(), worlds.get(&s.name))?;
                }
                stored["stages"][i]["component"] = format!("sha256:{hash}").into();
            }
            txn.open_table(DECLARATION)?
                .insert("current", serde_json::to_vec(&stored)?.as_slice())?;
            // The declaration's triggers and workflows replace those it brought before; the
            // API's stay.
            for kind in [Kind::Trigger, Kind::Workflow] {
                let mut table = txn.open_table(kind.table())?;
                let old: Vec<String> = table
                    .iter()?
                    .filter_map(Result::ok)
                    .filter(|(_, v)| {
                        serde_json::from_slice::<Record>(v.value())
                            .is_ok_and(|r| r.source == "declaration")
                    })
                    .map(|(k, _)| k.value().to_owned())
                    .collect();
                for name in old {
                    table.remove(name.as_str())?;
                }
                drop(table);
                put_declared(&txn, kind, &stored)?;
            }
        }
        txn.commit()?;
        self.forget_resolved();
        Ok(())
    }

    /// The declaration last applied (its stages' components not loaded: the live versions
    /// are what runs), or `None` if none ever was.
    pub(crate) fn declaration(&self) -> anyhow::Result<Option<Declaration>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DECLARATION)?;
        let Some(stored) = table.get("current")? else {
            return Ok(None);
        };
        Ok(Some(
            serde_json::from_slice(stored.value())
                .context("the registry's declaration does not parse")?,
        ))
    }

    /// Every stage's live version, with its component.
    pub(crate) fn live(&self) -> Result<Vec<(String, Loaded)>, RegistryError> {
        let names: Vec<String> = self.stages()?.into_keys().collect();
        let mut out = Vec::new();
        for name in names {
            let version = self.resolve(&name, None)?;
            out.push((name.clone(), self.load(&name, version)?));
        }
        Ok(out)
    }

    /// Every stage, with its aliases and its newest version.
    pub(crate) fn stages(&self) -> Result<StageIndex, RegistryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let mut out = StageIndex::new();
        for row in txn
            .open_table(VERSIONS)
            .map_err(storage)?
            .iter()
            .map_err(storage)?
        {
            let (k, _) = row.map_err(storage)?;
            let (name, v) = k.value();
            out.entry(name.to_owned()).or_default().0 = v;
        }
        for row in txn
            .open_table(ALIASES)
            .map_err(storage)?
            .iter()
            .map_err(storage)?
        {
            let (k, v) = row.map_err(storage)?;
            let (name, alias) = k.value();
            if let Some(s) = out.get_mut(name) {
                s.1.insert(alias.to_owned(), v.value());
            }
        }
        Ok(out)
    }

    /// Every version of `name`, oldest first.
    pub(crate) fn versions(&self, name: &str) -> Result<Vec<(u64, VersionRecord)>, RegistryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(VERSIONS).map_err(storage)?;
        let mut out = Vec::new();
        for row in table.range((name, 0)..=(name, u64::MAX)).map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            out.push((k.value().1, decode(v.value())?));
        }
        if out.is_empty() {
            return Err(RegistryError::NoStage(name.to_owned()));
        }
        Ok(out)
    }

    /// The version `qualifier` names for `name`: a number, an alias, or (`None`) `live`.
    pub(crate) fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<u64, RegistryError> {
        let key = (name.to_owned(), qualifier.unwrap_or(LIVE).to_owned());
        let generation = {
            let cache = self.resolved.lock();
            if let Some(v) = cache.versions.get(&key) {
                return Ok(*v);
            }
            cache.generation
        };
        let version = self.resolve_stored(name, qualifier)?;
        let mut cache = self.resolved.lock();
        if cache.generation == generation {
            cache.versions.insert(key, version);
        }
        Ok(version)
    }

    /// Forget what `resolve` found: a write to the stages' tables has committed.
    fn forget_resolved(&self) {
        let mut cache = self.resolved.lock();
        cache.generation += 1;
        cache.versions.clear();
    }

    fn resolve_stored(&self, name: &str, qualifier: Option<&str>) -> Result<u64, RegistryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let versions = txn.open_table(VERSIONS).map_err(storage)?;
        let exists = |v: u64| {
            versions
                .get((name, v))
                .map(|r| r.is_some())
                .map_err(storage)
        };
        let any = versions
            .range((name, 0)..=(name, u64::MAX))
            .map_err(storage)?
            .next()
            .is_some();
        if !any {
            return Err(RegistryError::NoStage(name.to_owned()));
        }
        let alias = qualifier.unwrap_or(LIVE);
        if let Ok(v) = alias.parse::<u64>() {
            return if exists(v)? {
                Ok(v)
            } else {
                Err(RegistryError::NoVersion(name.to_owned(), v))
            };
        }
        let aliases = txn.open_table(ALIASES).map_err(storage)?;
        aliases
            .get((name, alias))
            .map_err(storage)?
            .map(|v| v.value())
            .ok_or_else(|| RegistryError::NoAlias(name.to_owned(), alias.to_owned()))
    }

    /// Version `version` of `name`, with its component.
    pub(crate) fn load(&self, name: &str, version: u64) -> Result<Loaded, RegistryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let record = txn
            .open_table(VERSIONS)
            .map_err(storage)?
            .get((name, version))
            .map_err(storage)?
            .ok_or_else(|| RegistryError::NoVersion(name.to_owned(), version))?;
        let record = decode(record.value())?;
        let component = txn
            .open_table(COMPONENTS)
            .map_err(storage)?
            .get(record.sha256.as_str())
            .map_err(storage)?
            .ok_or_else(|| storage(format!("component {} missing", record.sha256)))?
            .value()
            .to_vec();
        Ok(Loaded {
            version,
            record,
            component,
        })
    }

    /// Add the next version of `name` and move `live` to it; its number and record.
    pub(crate) fn add(
        &self,
        name: &str,
        component: &[u8],
        config: StageConfig,
        world: &str,
    ) -> Result<(u64, VersionRecord), RegistryError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let added =
            add_version(&txn, name, component, config, Some(&world.to_owned())).map_err(storage)?;
        txn.commit().map_err(storage)?;
        self.forget_resolved();
        Ok(added)
    }

    /// Point `alias` of `name` at `version`.
    pub(crate) fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u64,
    ) -> Result<(), RegistryError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let versions = txn.open_table(VERSIONS).map_err(storage)?;
            if versions.get((name, version)).map_err(storage)?.is_none() {
                let any = versions
                    .range((name, 0)..=(name, u64::MAX))
                    .map_err(storage)?
                    .next()
                    .is_some();
                return Err(if any {
                    RegistryError::NoVersion(name.to_owned(), version)
                } else {
                    RegistryError::NoStage(name.to_owned())
                });
            }
            txn.open_table(ALIASES)
                .map_err(storage)?
                .insert((name, alias), version)
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        self.forget_resolved();
        Ok(())
    }

    /// Remove `alias` of `name`.
    pub(crate) fn remove_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let removed = txn
            .open_table(ALIASES)
            .map_err(storage)?
            .remove((name, alias))
            .map_err(storage)?
            .is_some();
        if !removed {
            return Err(RegistryError::NoAlias(name.to_owned(), alias.to_owned()));
        }
        txn.commit().map_err(storage)?;
        self.forget_resolved();
        Ok(())
    }

    /// Remove `name`: every version, every alias, and the components no other version uses.
    pub(crate) fn delete(&self, name: &str) -> Result<(), RegistryError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut versions = txn.open_table(VERSIONS).map_err(storage)?;
            let mine: Vec<(u64, String)> = versions
                .range((name, 0)..=(name, u64::MAX))
                .map_err(storage)?
                .map(|r| {
                    let (k, v) = r.map_err(storage)?;
                    Ok((k.value().1, decode(v.value())?.sha256))
                })
                .collect::<Result<_, RegistryError>>()?;
            if mine.is_empty() {
                return Err(RegistryError::NoStage(name.to_owned()));
            }
            for (v, _) in &mine {
                versions.remove((name, *v)).map_err(storage)?;
            }
            // Components are few and versions small: a scan finds which are still used.
            let mut used = std::collections::HashSet::new();
            for row in versions.iter().map_err(storage)? {
                let (_, v) = row.map_err(storage)?;
                used.insert(decode(v.value())?.sha256);
            }
            let mut components = txn.open_table(COMPONENTS).map_err(storage)?;
            for (_, hash) in &mine {
                if !used.contains(hash) {
                    components.remove(hash.as_str()).map_err(storage)?;
                }
            }
            let mut aliases = txn.open_table(ALIASES).map_err(storage)?;
            let mut mine = Vec::new();
            for row in aliases.range((name, "")..).map_err(storage)? {
                let (k, _) = row.map_err(storage)?;
                let (n, a) = k.value();
                if n != name {
                    break;
                }
                mine.push(a.to_owned());
            }
            for a in mine {
                aliases.remove((name, a.as_str())).map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)?;
        self.forget_resolved();
        Ok(())
    }
}

/// Record each of the declaration `decl`'s triggers or workflows as the declaration's.
fn put_declared(
    txn: &redb::WriteTransaction,
    kind: Kind,
    decl: &serde_json::Value,
) -> anyhow::Result<()> {
    let mut table = txn.open_table(kind.table())?;
    for t in decl[kind.field()].as_array().into_iter().flatten() {
        let name = t["name"].as_str().unwrap_or_default();
        let record = Record {
            source: "declaration".into(),
            definition: t.clone(),
        };
        table.insert(name, serde_json::to_vec(&record)?.as_slice())?;
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<VersionRecord, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| storage(format!("a version record: {e}")))
}

fn component_hash(s: &crate::up::StageDecl) -> anyhow::Result<&str> {
    s.component
        .to_str()
        .and_then(|c| c.strip_prefix("sha256:"))
        .with_context(|| format!("stage {}: the registry names no component", s.name))
}

/// The record of `name`'s live version, if it has one.
fn live_record(txn: &redb::WriteTransaction, name: &str) -> anyhow::Result<Option<VersionRecord>> {
    let Some(v) = txn
        .open_table(ALIASES)?
        .get((name, LIVE))?
        .map(|v| v.value())
    else {
        return Ok(None);
    };
    let record = txn
        .open_table(VERSIONS)?
        .get((name, v))?
        .map(|r| decode(r.value()));
    Ok(record.transpose()?)
}

/// Store `bytes` (unless stored) and the next version of `name`; move `live` to it.
fn add_version(
    txn: &redb::WriteTransaction,
    name: &str,
    bytes: &[u8],
    config: StageConfig,
    world: Option<&String>,
) -> anyhow::Result<(u64, VersionRecord)> {
    let hash = hex::encode(Sha256::digest(bytes));
    let mut components = txn.open_table(COMPONENTS)?;
    if components.get(hash.as_str())?.is_none() {
        components.insert(hash.as_str(), bytes)?;
    }
    let mut versions = txn.open_table(VERSIONS)?;
    let next = versions
        .range((name, 0)..=(name, u64::MAX))?
        .next_back()
        .transpose()?
        .map_or(1, |(k, _)| k.value().1 + 1);
    let record = VersionRecord {
        sha256: hash,
        size: bytes.len() as u64,
        world: world.cloned().unwrap_or_else(|| "stage".into()),
        config,
        created_ms: now_ms(),
    };
    versions.insert((name, next), serde_json::to_vec(&record)?.as_slice())?;
    txn.open_table(ALIASES)?.insert((name, LIVE), next)?;
    Ok((next, record))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path()).unwrap();
        (dir, r)
    }

    #[test]
    fn versions_count_up_and_live_follows_the_newest() {
        let (_dir, r) = registry();
        let (v1, rec1) = r
            .add("echo", b"one", StageConfig::default(), "stage")
            .unwrap();
        let (v2, _) = r
            .add("echo", b"two", StageConfig::default(), "batch-stage")
            .unwrap();
        assert_eq!((v1, v2), (1, 2));
        assert_eq!(rec1.size, 3);
        assert_eq!(r.resolve("echo", None).unwrap(), 2);
        assert_eq!(r.resolve("echo", Some("1")).unwrap(), 1);
        assert_eq!(r.load("echo", 1).unwrap().component, b"one");
        assert_eq!(r.load("echo", 2).unwrap().record.world, "batch-stage");
        r.set_alias("echo", "live", 1).unwrap();
        r.set_alias("echo", "canary", 2).unwrap();
        assert_eq!(r.resolve("echo", None).unwrap(), 1);
        assert_eq!(r.resolve("echo", Some("canary")).unwrap(), 2);
        let stages = r.stages().unwrap();
        assert_eq!(stages["echo"].0, 2);
        assert_eq!(stages["echo"].1.len(), 2);
        assert!(matches!(
            r.resolve("echo", Some("3")),
            Err(RegistryError::NoVersion(_, 3))
        ));
        assert!(matches!(
            r.resolve("echo", Some("beta")),
            Err(RegistryError::NoAlias(..))
        ));
        assert!(matches!(
            r.resolve("nope", None),
            Err(RegistryError::NoStage(_))
        ));
        assert!(matches!(
            r.set_alias("echo", "x", 9),
            Err(RegistryError::NoVersion(_, 9))
        ));
        assert!(matches!(
            r.set_alias("nope", "x", 1),
            Err(RegistryError::NoStage(_))
        ));
        r.remove_alias("echo", "canary").unwrap();
        assert!(matches!(
            r.remove_alias("echo", "canary"),
            Err(RegistryError::NoAlias(..))
        ));
    }

    #[test]
    fn delete_removes_versions_aliases_and_unshared_components() {
        let (_dir, r) = registry();
        r.add("a", b"shared", StageConfig::default(), "stage")
            .unwrap();
        r.add("a", b"only-a", StageConfig::default(), "stage")
            .unwrap();
        r.add("b", b"shared", StageConfig::default(), "stage")
            .unwrap();
        r.delete("a").unwrap();
        assert!(matches!(r.versions("a"), Err(RegistryError::NoStage(_))));
        assert!(matches!(r.delete("a"), Err(RegistryError::NoStage(_))));
        assert_eq!(r.load("b", 1).unwrap().component, b"shared");
        let txn = r.db.begin_read().unwrap();
        let components = txn.open_table(COMPONENTS).unwrap();
        assert_eq!(components.len().unwrap(), 1, "only b's component is left");
        let aliases = txn.open_table(ALIASES).unwrap();
        assert_eq!(aliases.len().unwrap(), 1, "only b's live is left");
        // A re-created stage starts again at 1.
        drop((components, aliases, txn));
        assert_eq!(
            r.add("a", b"new", StageConfig::default(), "stage")
                .unwrap()
                .0,
            1
        );
    }

    #[test]
    fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let r = Registry::open(dir.path()).unwrap();
            r.add("echo", b"one", StageConfig::default(), "stage")
                .unwrap();
        }
        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.live().unwrap()[0].1.component, b"one");
    }
}
