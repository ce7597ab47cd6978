//! Model-based test: random operation sequences run against the redb store and against the
//! in-memory reference model (`sluice_model::memory`) must give the same answers, step by
//! step, including conditional writes, secondary indexes, TTL, cursors, write sets, commits
//! and rollbacks — and the store must give the same answers again after a reopen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_model::memory::MemoryBackend;
use sluice_model::state::{
    Clock, Condition, IndexDef, Query, RecordedOutcome, SortKeyCondition, StateSession, TableDef,
};
use sluice_store::{Store, StoreConfig};

struct ManualClock(AtomicU64);
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// xorshift64*: deterministic, dependency-free randomness; the seed is in failure messages.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn tables() -> Vec<TableDef> {
    vec![TableDef {
        name: "orders".into(),
        indexes: vec![
            IndexDef {
                name: "by-user".into(),
                pk_attr: "userId".into(),
                sk_attr: Some("createdAt".into()),
            },
            IndexDef {
                name: "by-status".into(),
                pk_attr: "status".into(),
                sk_attr: None,
            },
        ],
    }]
}

const BUCKETS: &[&str] = &["a", "b"];
const KEYS: &[&str] = &["k0", "k1", "k2", "p/x", "p/y", "p/z", "q"];
const TABLES: &[&str] = &["orders", "other"];
const PKS: &[&str] = &["p0", "p1", "p2"];
const SKS: &[&str] = &["s0", "s1", "s2", "2026-01", "2026-02", "2026-03"];

fn doc(r: &mut Rng) -> Value {
    let mut d = json!({"n": r.below(100)});
    if r.below(4) != 0 {
        d["userId"] = json!(r.pick(&["u0", "u1"]));
    }
    match r.below(4) {
        0 => {}
        1 => d["status"] = json!(7),
        _ => d["status"] = json!(r.pick(&["new", "paid"])),
    }
    if r.below(3) != 0 {
        d["createdAt"] = json!(r.pick(&["c0", "c1", "c2", "c3"]));
    }
    if r.below(10) == 0 {
        return json!([1, 2]); // not an object: both must refuse it
    }
    d
}

fn condition(r: &mut Rng) -> Condition {
    match r.below(5) {
        0 | 1 => Condition::Always,
        2 => Condition::MustNotExist,
        3 => Condition::MustExist,
        _ => Condition::VersionIs(r.below(4)),
    }
}

fn sk_condition(r: &mut Rng) -> SortKeyCondition {
    match r.below(8) {
        0 => SortKeyCondition::Any,
        1 => SortKeyCondition::Equals(r.pick(SKS).into()),
        2 => SortKeyCondition::BeginsWith(r.pick(&["s", "2026-", "c", "x"]).into()),
        3 => {
            let (a, b) = (r.pick(SKS), r.pick(SKS));
            SortKeyCondition::Between(a.min(b).into(), a.max(b).into())
        }
        4 => SortKeyCondition::LessThan(r.pick(SKS).into()),
        5 => SortKeyCondition::LessOrEqual(r.pick(&["c1", "s1", "2026-02"]).into()),
        6 => SortKeyCondition::GreaterThan(r.pick(&["c1", "s0", "2026-01"]).into()),
        _ => SortKeyCondition::GreaterOrEqual(r.pick(SKS).into()),
    }
}

/// Compare two results, errors by variant (messages may word things differently).
fn same<T: PartialEq + std::fmt::Debug, E: std::fmt::Debug>(
    a: &Result<T, E>,
    b: &Result<T, E>,
) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(x), Err(y)) => std::mem::discriminant(x) == std::mem::discriminant(y),
        _ => false,
    }
}

fn run(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000)));
    let config = || StoreConfig {
        tables: tables(),
        clock: clock.clone(),
        dedupe_retention: Duration::from_secs(3600),
    };
    let mut store = Store::open(&dir.path().join("db.redb"), config()).unwrap();
    let model = MemoryBackend::new(tables(), clock.clone());
    let mut s: Box<dyn StateSession> = Box::new(store.open_session());
    let mut m = model.open_session();
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut in_event = false;
    let mut event_no = 0;
    let mut last_query: Option<(String, Query)> = None;
    for step in 0..steps {
        let ctx = || format!("seed {seed}, step {step}");
        if !in_event {
            event_no += 1;
            let id = format!("e{event_no}");
            s.begin_event(&id);
            m.begin_event(&id);
            in_event = true;
        }
        match r.below(20) {
            0 => {
                let (b, k) = (r.pick(BUCKETS), r.pick(KEYS));
                assert!(
                    same(&s.kv_get(b, k), &m.kv_get(b, k)),
                    "{} kv_get {b}/{k}",
                    ctx()
                );
            }
            1 | 2 => {
                let (b, k) = (r.pick(BUCKETS), r.pick(KEYS));
                let v = vec![
                    u8::try_from(r.below(256)).unwrap();
                    usize::try_from(r.below(10)).unwrap()
                ];
                assert!(
                    same(&s.kv_set(b, k, v.clone()), &m.kv_set(b, k, v)),
                    "{}",
                    ctx()
                );
            }
            3 => {
                let (b, k) = (r.pick(BUCKETS), r.pick(KEYS));
                assert!(same(&s.kv_delete(b, k), &m.kv_delete(b, k)), "{}", ctx());
            }
            4 => {
                let (b, k) = (r.pick(BUCKETS), r.pick(KEYS));
                let d = i64::try_from(r.below(7)).unwrap() - 3;
                assert!(
                    same(&s.kv_increment(b, k, d), &m.kv_increment(b, k, d)),
                    "{} increment {b}/{k}",
                    ctx()
                );
            }
            5 => {
                let (b, k) = (r.pick(BUCKETS), r.pick(KEYS));
                let expected = m.kv_get(b, k).unwrap();
                let expected = if r.below(2) == 0 { expected } else { None };
                let (x, y) = (
                    s.kv_compare_and_swap(b, k, expected.as_deref(), vec![9]),
                    m.kv_compare_and_swap(b, k, expected.as_deref(), vec![9]),
                );
                assert!(same(&x, &y), "{} cas {x:?} {y:?}", ctx());
            }
            6 => {
                let b = r.pick(BUCKETS);
                let prefix = r.pick(&["", "p/", "k", "z"]);
                let limit = usize::try_from(r.below(4)).unwrap();
                let mut cursor = None;
                for _ in 0..10 {
                    let (x, y) = (
                        s.kv_list(b, prefix, cursor.as_deref(), limit),
                        m.kv_list(b, prefix, cursor.as_deref(), limit),
                    );
                    assert!(
                        same(&x, &y),
                        "{} kv_list {b} {prefix:?} {cursor:?}: {x:?} vs {y:?}",
                        ctx()
                    );
                    cursor = y.unwrap().cursor;
                    if cursor.is_none() {
                        break;
                    }
                }
            }
            7..=9 => {
                let (t, pk, sk) = (r.pick(TABLES), r.pick(PKS), r.pick(SKS));
                let (d, c) = (doc(&mut r), condition(&mut r));
                let ttl = match r.below(4) {
                    0 => Some(clock.now_ms() + r.below(8)),
                    _ => None,
                };
                let (x, y) = (
                    s.table_put(t, pk, sk, d.clone(), c, ttl),
                    m.table_put(t, pk, sk, d, c, ttl),
                );
                assert!(
                    same(&x, &y),
                    "{} put {t}/{pk}/{sk} {c:?}: {x:?} vs {y:?}",
                    ctx()
                );
            }
            10 => {
                let (t, pk, sk) = (r.pick(TABLES), r.pick(PKS), r.pick(SKS));
                let (x, y) = (s.table_get(t, pk, sk), m.table_get(t, pk, sk));
                assert!(same(&x, &y), "{} get {t}/{pk}/{sk}: {x:?} vs {y:?}", ctx());
            }
            11 => {
                let (t, pk, sk, c) = (r.pick(TABLES), r.pick(PKS), r.pick(SKS), condition(&mut r));
                let (x, y) = (s.table_delete(t, pk, sk, c), m.table_delete(t, pk, sk, c));
                assert!(
                    same(&x, &y),
                    "{} delete {t}/{pk}/{sk} {c:?}: {x:?} vs {y:?}",
                    ctx()
                );
            }
            12 => {
                let (t, pk, sk, c) = (r.pick(TABLES), r.pick(PKS), r.pick(SKS), condition(&mut r));
                let patch = doc(&mut r);
                let (x, y) = (
                    s.table_update(t, pk, sk, &patch, c),
                    m.table_update(t, pk, sk, &patch, c),
                );
                assert!(
                    same(&x, &y),
                    "{} update {t}/{pk}/{sk} {c:?}: {x:?} vs {y:?}",
                    ctx()
                );
            }
            13 | 14 => {
                let t = r.pick(TABLES);
                let (index, pk) = match r.below(4) {
                    0 => (Some("by-user".to_owned()), r.pick(&["u0", "u1"]).to_owned()),
                    1 => (
                        Some("by-status".to_owned()),
                        r.pick(&["new", "paid", "7"]).to_owned(),
                    ),
                    2 if r.below(4) == 0 => (Some("nope".to_owned()), "x".to_owned()),
                    _ => (None, r.pick(PKS).to_owned()),
                };
                let mut q = Query {
                    index,
                    pk,
                    sk: sk_condition(&mut r),
                    forward: r.below(2) == 0,
                    limit: usize::try_from(1 + r.below(3)).unwrap(),
                    cursor: None,
                };
                // Follow the cursor to the end, comparing every page.
                for _ in 0..20 {
                    let (x, y) = (s.table_query(t, &q), m.table_query(t, &q));
                    assert!(
                        same(&x, &y),
                        "{} query {t} {q:?}:\n store {x:?}\n model {y:?}",
                        ctx()
                    );
                    match y {
                        Ok(page) if page.cursor.is_some() => q.cursor = page.cursor,
                        _ => break,
                    }
                }
                last_query = Some((t.to_owned(), q));
            }
            15 => {
                // Keep or drop the event, recording a dedupe record for kept ones.
                let keep = r.below(3) != 0;
                let id = format!("e{event_no}");
                assert_eq!(s.finish_event(keep), m.finish_event(keep), "{}", ctx());
                if keep {
                    let outcome = RecordedOutcome::Succeeded {
                        output_digest: id.clone(),
                    };
                    s.record_outcome(&id, outcome.clone());
                    m.record_outcome(&id, outcome);
                }
                in_event = false;
            }
            16 => {
                let keep = r.below(4) != 0;
                s.finish_event(keep);
                m.finish_event(keep);
                in_event = false;
                if r.below(5) == 0 {
                    s.rollback();
                    m.rollback();
                } else {
                    s.commit().unwrap();
                    m.commit().unwrap();
                }
            }
            17 => {
                clock.0.fetch_add(r.below(5), Ordering::SeqCst);
            }
            18 if r.below(8) == 0 => {
                // Commit and reopen the store: everything committed must survive.
                s.finish_event(true);
                m.finish_event(true);
                in_event = false;
                s.commit().unwrap();
                m.commit().unwrap();
                drop(s);
                drop(store);
                store = Store::open(&dir.path().join("db.redb"), config()).unwrap();
                s = Box::new(store.open_session());
            }
            19 => {
                let id = format!("e{}", 1 + r.below(event_no));
                let (x, y) = (s.recorded(&id), m.recorded(&id));
                let (x, y) = (x.unwrap().map(|r| r.outcome), y.unwrap().map(|r| r.outcome));
                assert_eq!(x, y, "{} recorded {id}", ctx());
            }
            _ => {
                let e = sluice_model::state::Emitted {
                    subject: "s.x".into(),
                    data: vec![1],
                    headers: vec![],
                };
                s.emit(e.clone());
                m.emit(e);
            }
        }
    }
    assert!(event_no > 1);
    assert!(last_query.is_some(), "seed {seed}: no query ran");
}

#[test]
fn store_agrees_with_the_model() {
    for seed in 1..=40 {
        run(seed, 400);
    }
}
