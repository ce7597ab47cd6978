//! Committed events per second through a store session — each event a KV write plus its
//! dedupe record (and the dedupe look-up a worker makes before running it), one durable
//! commit per batch — beside redb's raw durable insert rate for the same rows, same run.
//!
//! Run: `cargo bench -p sluice-store --bench commit` (`-- --quick` for a short run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};
use sluice_model::state::{RecordedOutcome, StateSession, SystemClock};
use sluice_store::{Store, StoreConfig};

const KV: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("kv");
const DEDUPE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dedupe");
const DEDUPE_BATCHES: TableDefinition<'_, (u64, &str), &[u8]> =
    TableDefinition::new("dedupe_batches");

fn value() -> Vec<u8> {
    vec![b'v'; 200]
}

fn digest() -> String {
    "0".repeat(16)
}

/// Sluice's path: per event a write set with one KV write and a dedupe record, and when
/// `lookup` is set also the dedupe look-up by event id that a worker makes before running it.
fn store_rate(batch: usize, events: usize, lookup: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.redb"),
        StoreConfig {
            tables: vec![],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let mut s = store.open_session();
    let v = value();
    let start = Instant::now();
    for b in 0..events / batch {
        for i in 0..batch {
            let id = format!("evt-{:012}", b * batch + i);
            if lookup {
                assert!(s.recorded(&id).unwrap().is_none());
            }
            s.begin_event(&id);
            s.kv_set("bench", &id, v.clone()).unwrap();
            s.finish_event(true);
            s.record_outcome(
                &id,
                RecordedOutcome::Succeeded {
                    output_digest: digest(),
                },
            );
        }
        s.commit().unwrap();
    }
    events as f64 / start.elapsed().as_secs_f64()
}

/// redb alone: the same rows (a KV row and a dedupe record per event, one retention entry per
/// batch), one durable transaction per batch.
fn raw_rate(batch: usize, events: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("r.redb")).unwrap();
    let v = value();
    // The store's encoding of a success record with a 64-bit fingerprint: kind, time,
    // length, 16 hex digits.
    let record = vec![0_u8; 1 + 8 + 4 + 16];
    let start = Instant::now();
    for b in 0..events / batch {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut kv = txn.open_table(KV).unwrap();
            let mut dedupe = txn.open_table(DEDUPE).unwrap();
            let mut batches = txn.open_table(DEDUPE_BATCHES).unwrap();
            let mut ids = Vec::with_capacity(batch * 20);
            for i in 0..batch {
                let id = format!("evt-{:012}", b * batch + i);
                kv.insert(("bench", id.as_str()), v.as_slice()).unwrap();
                dedupe.insert(id.as_str(), record.as_slice()).unwrap();
                ids.extend_from_slice(&(id.len() as u32).to_le_bytes());
                ids.extend_from_slice(id.as_bytes());
            }
            let first = format!("evt-{:012}", b * batch);
            batches
                .insert((1_u64 + b as u64, first.as_str()), ids.as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    events as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 5 };
    println!(
        "commit: durable commit per batch, 200-byte values, sequential ids, {rounds} rounds, medians"
    );
    println!(
        "{:>6} {:>14} {:>8} {:>20} {:>8} {:>14}",
        "batch", "sluice ev/s", "of raw", "+ id look-up ev/s", "of raw", "raw redb ev/s"
    );
    for (batch, events) in [
        (1, 300),
        (100, 20_000),
        (1000, if quick { 50_000 } else { 100_000 }),
    ] {
        // Alternate the two so drift in the machine's load hits both alike.
        let (mut ours, mut looked, mut raw) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            ours.push(store_rate(batch, events, false));
            looked.push(store_rate(batch, events, true));
            raw.push(raw_rate(batch, events));
        }
        let (o, l, r) = (median(ours), median(looked), median(raw));
        println!(
            "{batch:>6} {o:>14.0} {:>7.0}% {l:>20.0} {:>7.0}% {r:>14.0}",
            100.0 * o / r,
            100.0 * l / r
        );
    }
}
