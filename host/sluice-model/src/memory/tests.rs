//! Tests of the in-memory backend.

use super::*;
use crate::state::SortKeyCondition;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

/// A clock the test moves by hand.
#[derive(Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

const T: &str = "orders";

fn defs() -> Vec<TableDef> {
    vec![TableDef {
        name: T.into(),
        indexes: vec![
            IndexDef {
                name: "by_status".into(),
                pk_attr: "status".into(),
                sk_attr: Some("placed".into()),
            },
            IndexDef {
                name: "by_customer".into(),
                pk_attr: "customer".into(),
                sk_attr: None,
            },
        ],
    }]
}

fn backend() -> (MemoryBackend, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    clock.set(1_000);
    (MemoryBackend::new(defs(), clock.clone()), clock)
}

fn query(pk: &str, sk: SortKeyCondition) -> Query {
    Query {
        index: None,
        pk: pk.into(),
        sk,
        forward: true,
        limit: 100,
        cursor: None,
    }
}

fn index_query(index: &str, pk: &str) -> Query {
    Query {
        index: Some(index.into()),
        ..query(pk, SortKeyCondition::Any)
    }
}

fn sks(page: &QueryPage) -> Vec<String> {
    page.items.iter().map(|i| i.sk.clone()).collect()
}

fn keys(items: &[Item]) -> Vec<(String, String)> {
    items.iter().map(|i| (i.pk.clone(), i.sk.clone())).collect()
}

/// Every page of `q`, following cursors to the end.
fn all_pages(s: &mut dyn StateSession, table: &str, q: &Query) -> Vec<QueryPage> {
    let mut q = q.clone();
    let mut pages = Vec::new();
    loop {
        let page = s.table_query(table, &q).unwrap();
        let next = page.cursor.clone();
        pages.push(page);
        match next {
            Some(c) => q.cursor = Some(c),
            None => return pages,
        }
    }
}

fn put(s: &mut dyn StateSession, pk: &str, sk: &str, doc: Value) -> u64 {
    s.table_put(T, pk, sk, doc, Condition::Always, None)
        .unwrap()
}

fn commit_puts(b: &MemoryBackend, rows: &[(&str, &str, Value)]) {
    let mut s = b.session();
    s.begin_event("seed");
    for (pk, sk, doc) in rows {
        put(s.as_mut(), pk, sk, doc.clone());
    }
    assert!(s.finish_event(true).is_empty());
    s.commit().unwrap();
}

fn emitted(subject: &str) -> Emitted {
    Emitted {
        subject: subject.into(),
        data: subject.as_bytes().to_vec(),
        headers: vec![("h".into(), subject.into())],
    }
}

// ---- write sets ----

#[test]
fn own_writes_are_visible_before_commit_and_to_others_only_after() {
    let (b, _) = backend();
    let mut a = b.session();
    let mut other = b.session();
    a.begin_event("e1");
    a.kv_set("k", "x", b"1".to_vec()).unwrap();
    put(a.as_mut(), "p", "s", json!({"n": 1}));
    assert_eq!(a.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        a.table_get(T, "p", "s").unwrap().unwrap().doc,
        json!({"n": 1})
    );
    other.begin_event("e2");
    assert_eq!(other.kv_get("k", "x").unwrap(), None);
    assert_eq!(other.table_get(T, "p", "s").unwrap(), None);
    // Kept in the batch: still the session's own, still invisible to others.
    a.finish_event(true);
    assert_eq!(a.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(a.table_get(T, "p", "s").unwrap().unwrap().version, 1);
    assert_eq!(other.kv_get("k", "x").unwrap(), None);
    assert_eq!(other.table_get(T, "p", "s").unwrap(), None);
    assert_eq!(b.session().kv_get("k", "x").unwrap(), None);
    a.commit().unwrap();
    assert_eq!(other.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(other.table_get(T, "p", "s").unwrap().unwrap().version, 1);
    // A clone of the backend shares the same data.
    let mut third = b.clone().session();
    assert_eq!(third.kv_get("k", "x").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn failed_event_drops_its_writes_and_successful_one_keeps_them() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("ok");
    s.kv_set("k", "kept", b"v".to_vec()).unwrap();
    put(s.as_mut(), "p", "kept", json!({}));
    assert!(s.finish_event(true).is_empty());

    s.begin_event("bad");
    s.kv_set("k", "dropped", b"v".to_vec()).unwrap();
    s.kv_delete("k", "kept").unwrap();
    put(s.as_mut(), "p", "dropped", json!({}));
    s.table_delete(T, "p", "kept", Condition::Always).unwrap();
    s.emit(emitted("lost"));
    assert!(s.finish_event(false).is_empty());

    s.begin_event("check");
    assert_eq!(s.kv_get("k", "kept").unwrap(), Some(b"v".to_vec()));
    assert_eq!(s.kv_get("k", "dropped").unwrap(), None);
    assert!(s.table_get(T, "p", "kept").unwrap().is_some());
    assert!(s.table_get(T, "p", "dropped").unwrap().is_none());
    assert!(s.finish_event(true).is_empty());
}

#[test]
fn begin_event_drops_an_open_write_set_and_implicit_writes_wait_for_commit() {
    let (b, _) = backend();
    let mut s = b.session();
    let mut other = b.session();
    // Outside any event: collected in the batch, invisible to others, and (unlike an open
    // event's writes) not dropped by the next begin.
    s.kv_set("k", "implicit", b"1".to_vec()).unwrap();
    assert_eq!(s.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
    assert_eq!(other.kv_get("k", "implicit").unwrap(), None);
    s.begin_event("e");
    assert_eq!(s.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
    s.kv_set("k", "open", b"1".to_vec()).unwrap();
    s.begin_event("e-again");
    assert_eq!(s.kv_get("k", "open").unwrap(), None);
    assert_eq!(s.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
    s.finish_event(true);
    assert_eq!(other.kv_get("k", "open").unwrap(), None);
    assert_eq!(other.kv_get("k", "implicit").unwrap(), None);
    s.commit().unwrap();
    // The dropped event never reaches the base; the implicit write does, with the batch.
    assert_eq!(other.kv_get("k", "open").unwrap(), None);
    assert_eq!(other.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
    // Outside any event, then finish(true): kept, applied by the commit.
    s.kv_set("k", "implicit", b"2".to_vec()).unwrap();
    s.finish_event(true);
    assert_eq!(other.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
    s.commit().unwrap();
    assert_eq!(other.kv_get("k", "implicit").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn emits_come_back_in_call_order_once() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    for subject in ["a", "c", "b"] {
        s.emit(emitted(subject));
    }
    let out = s.finish_event(true);
    assert_eq!(out, vec![emitted("a"), emitted("c"), emitted("b")]);
    s.begin_event("next");
    assert!(s.finish_event(true).is_empty());
}

// ---- batches ----

#[test]
fn rollback_drops_every_kept_event_of_the_batch() {
    let (b, _) = backend();
    commit_puts(&b, &[("p", "committed", json!({"n": 0}))]);
    let mut s = b.session();
    let mut other = b.session();
    s.begin_event("a");
    s.kv_set("k", "a", b"a".to_vec()).unwrap();
    put(s.as_mut(), "p", "a", json!({"n": 1}));
    s.table_update(T, "p", "committed", &json!({"n": 1}), Condition::Always)
        .unwrap();
    assert!(s.finish_event(true).is_empty());
    s.begin_event("b");
    s.kv_set("k", "b", b"b".to_vec()).unwrap();
    put(s.as_mut(), "p", "b", json!({"n": 2}));
    s.table_delete(T, "p", "committed", Condition::Always)
        .unwrap();
    assert!(s.finish_event(true).is_empty());
    // Both kept: the session sees them, nobody else does.
    assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
    assert_eq!(s.kv_get("k", "b").unwrap(), Some(b"b".to_vec()));
    assert_eq!(s.table_get(T, "p", "committed").unwrap(), None);
    assert_eq!(other.kv_get("k", "a").unwrap(), None);
    assert_eq!(other.kv_get("k", "b").unwrap(), None);

    s.rollback();
    let committed_only = |sess: &mut dyn StateSession| {
        assert_eq!(sess.kv_get("k", "a").unwrap(), None);
        assert_eq!(sess.kv_get("k", "b").unwrap(), None);
        assert_eq!(sess.kv_list("k", "", None, 10).unwrap(), KeyPage::default());
        assert_eq!(sess.table_get(T, "p", "a").unwrap(), None);
        assert_eq!(sess.table_get(T, "p", "b").unwrap(), None);
        let page = sess
            .table_query(T, &query("p", SortKeyCondition::Any))
            .unwrap();
        assert_eq!(sks(&page), ["committed"]);
        assert_eq!(page.items[0].doc, json!({"n": 0}));
        assert_eq!(page.items[0].version, 1);
    };
    committed_only(s.as_mut());
    committed_only(other.as_mut());
    committed_only(b.session().as_mut());
    // Nothing is left for a later commit to apply.
    s.commit().unwrap();
    committed_only(b.session().as_mut());
}

#[test]
fn failed_event_drops_only_its_own_writes_from_the_batch() {
    let (b, _) = backend();
    commit_puts(&b, &[("p", "base", json!({"n": 0}))]);
    let mut s = b.session();
    s.begin_event("a");
    s.kv_set("k", "a", b"a".to_vec()).unwrap();
    assert_eq!(s.kv_increment("k", "n", 1).unwrap(), 1);
    put(s.as_mut(), "p", "a", json!({"by": "a"}));
    assert!(s.finish_event(true).is_empty());

    s.begin_event("b");
    // B builds on A, overwrites and deletes A's writes, and touches committed data.
    assert_eq!(s.kv_increment("k", "n", 10).unwrap(), 11);
    s.kv_set("k", "a", b"from b".to_vec()).unwrap();
    s.kv_set("k", "b", b"b".to_vec()).unwrap();
    s.table_delete(T, "p", "a", Condition::MustExist).unwrap();
    put(s.as_mut(), "p", "b", json!({"by": "b"}));
    s.table_update(T, "p", "base", &json!({"by": "b"}), Condition::Always)
        .unwrap();
    s.emit(emitted("b"));
    assert!(s.finish_event(false).is_empty());

    s.begin_event("c");
    // A's writes survived B's failure; none of B's are left.
    assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
    assert_eq!(s.kv_get("k", "b").unwrap(), None);
    assert_eq!(s.kv_increment("k", "n", 100).unwrap(), 101);
    let a = s.table_get(T, "p", "a").unwrap().unwrap();
    assert_eq!((a.doc, a.version), (json!({"by": "a"}), 1));
    assert_eq!(s.table_get(T, "p", "b").unwrap(), None);
    let base = s.table_get(T, "p", "base").unwrap().unwrap();
    assert_eq!((base.doc, base.version), (json!({"n": 0}), 1));
    // C's writes depend on what it read of A.
    s.table_update(
        T,
        "p",
        "a",
        &json!({"seen_by": "c"}),
        Condition::VersionIs(1),
    )
    .unwrap();
    s.kv_set("k", "c", b"c".to_vec()).unwrap();
    s.emit(emitted("c"));
    assert_eq!(s.finish_event(true), vec![emitted("c")]);
    // Still nothing visible to others before the commit.
    assert_eq!(b.session().kv_get("k", "a").unwrap(), None);
    assert_eq!(b.session().kv_get("k", "c").unwrap(), None);

    s.commit().unwrap();
    let mut fresh = b.session();
    assert_eq!(fresh.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
    assert_eq!(fresh.kv_get("k", "c").unwrap(), Some(b"c".to_vec()));
    assert_eq!(fresh.kv_get("k", "b").unwrap(), None);
    assert_eq!(
        fresh.kv_get("k", "n").unwrap(),
        Some(101i64.to_le_bytes().to_vec())
    );
    assert_eq!(
        fresh.kv_list("k", "", None, 10).unwrap().keys,
        ["a", "c", "n"]
    );
    let a = fresh.table_get(T, "p", "a").unwrap().unwrap();
    assert_eq!((a.doc, a.version), (json!({"by": "a", "seen_by": "c"}), 2));
    assert_eq!(fresh.table_get(T, "p", "b").unwrap(), None);
    let base = fresh.table_get(T, "p", "base").unwrap().unwrap();
    assert_eq!((base.doc, base.version), (json!({"n": 0}), 1));
}

#[test]
fn finish_event_returns_only_the_emits_of_that_event() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("a");
    s.emit(emitted("a1"));
    s.emit(emitted("a2"));
    assert_eq!(s.finish_event(true), vec![emitted("a1"), emitted("a2")]);
    s.begin_event("b");
    s.emit(emitted("b1"));
    assert_eq!(s.finish_event(true), vec![emitted("b1")]);
    s.begin_event("failed");
    s.emit(emitted("lost"));
    assert!(s.finish_event(false).is_empty());
    s.begin_event("c");
    s.emit(emitted("c1"));
    s.emit(emitted("c2"));
    assert_eq!(s.finish_event(true), vec![emitted("c1"), emitted("c2")]);
    s.begin_event("quiet");
    assert!(s.finish_event(true).is_empty());
    s.commit().unwrap();
    // A new batch starts clean, and a rolled-back one leaves nothing behind either.
    s.begin_event("d");
    s.emit(emitted("d1"));
    assert_eq!(s.finish_event(true), vec![emitted("d1")]);
    s.rollback();
    s.begin_event("e");
    s.emit(emitted("e1"));
    assert_eq!(s.finish_event(true), vec![emitted("e1")]);
}

#[test]
fn begin_event_while_an_event_is_open_drops_only_that_event() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("a");
    s.kv_set("k", "x", b"a".to_vec()).unwrap();
    put(s.as_mut(), "p", "a", json!({}));
    s.emit(emitted("a"));
    assert_eq!(s.finish_event(true), vec![emitted("a")]);

    s.begin_event("b");
    s.kv_set("k", "x", b"b".to_vec()).unwrap();
    s.kv_set("k", "y", b"b".to_vec()).unwrap();
    s.table_delete(T, "p", "a", Condition::Always).unwrap();
    put(s.as_mut(), "p", "b", json!({}));
    s.emit(emitted("b"));
    // B never finishes: beginning C drops it, and only it.
    s.begin_event("c");
    assert_eq!(s.kv_get("k", "x").unwrap(), Some(b"a".to_vec()));
    assert_eq!(s.kv_get("k", "y").unwrap(), None);
    assert!(s.table_get(T, "p", "a").unwrap().is_some());
    assert_eq!(s.table_get(T, "p", "b").unwrap(), None);
    s.kv_set("k", "z", b"c".to_vec()).unwrap();
    s.emit(emitted("c"));
    assert_eq!(s.finish_event(true), vec![emitted("c")]);

    s.commit().unwrap();
    let mut fresh = b.session();
    assert_eq!(fresh.kv_get("k", "x").unwrap(), Some(b"a".to_vec()));
    assert_eq!(fresh.kv_get("k", "y").unwrap(), None);
    assert_eq!(fresh.kv_get("k", "z").unwrap(), Some(b"c".to_vec()));
    assert!(fresh.table_get(T, "p", "a").unwrap().is_some());
    assert_eq!(fresh.table_get(T, "p", "b").unwrap(), None);
}

#[test]
fn commit_with_an_open_event_applies_only_the_kept_events() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("kept");
    s.kv_set("k", "kept", b"1".to_vec()).unwrap();
    s.finish_event(true);
    s.begin_event("open");
    s.kv_set("k", "open", b"1".to_vec()).unwrap();
    s.kv_delete("k", "kept").unwrap();
    s.commit().unwrap();
    let mut fresh = b.session();
    assert_eq!(fresh.kv_get("k", "kept").unwrap(), Some(b"1".to_vec()));
    assert_eq!(fresh.kv_get("k", "open").unwrap(), None);
    // The open event is gone from the session too, not left for the next batch.
    assert_eq!(s.kv_get("k", "open").unwrap(), None);
    assert!(s.finish_event(true).is_empty());
    s.commit().unwrap();
    assert_eq!(b.session().kv_get("k", "open").unwrap(), None);
    assert_eq!(
        b.session().kv_get("k", "kept").unwrap(),
        Some(b"1".to_vec())
    );
}

#[test]
fn finish_event_without_an_open_event_leaves_earlier_kept_events_alone() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("a");
    s.kv_set("k", "a", b"a".to_vec()).unwrap();
    s.emit(emitted("a"));
    assert_eq!(s.finish_event(true), vec![emitted("a")]);
    // A second finish closes the (empty) implicit event: A's emits are not returned again
    // and A's writes are not dropped.
    assert!(s.finish_event(true).is_empty());
    assert!(s.finish_event(false).is_empty());
    assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
    // Calls outside an event form the implicit event, which finish_event closes alone.
    s.kv_set("k", "dropped", b"1".to_vec()).unwrap();
    s.emit(emitted("dropped"));
    assert!(s.finish_event(false).is_empty());
    assert_eq!(s.kv_get("k", "dropped").unwrap(), None);
    assert_eq!(s.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
    s.kv_set("k", "implicit", b"1".to_vec()).unwrap();
    s.emit(emitted("implicit"));
    assert_eq!(s.finish_event(true), vec![emitted("implicit")]);
    s.commit().unwrap();
    let mut fresh = b.session();
    assert_eq!(fresh.kv_get("k", "a").unwrap(), Some(b"a".to_vec()));
    assert_eq!(fresh.kv_get("k", "implicit").unwrap(), Some(b"1".to_vec()));
    assert_eq!(fresh.kv_get("k", "dropped").unwrap(), None);
}

// ---- key-value ----

#[test]
fn kv_set_get_delete_and_bucket_independence() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    s.kv_set("one", "k", b"1".to_vec()).unwrap();
    s.kv_set("two", "k", b"2".to_vec()).unwrap();
    assert_eq!(s.kv_get("one", "k").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.kv_get("two", "k").unwrap(), Some(b"2".to_vec()));
    s.kv_set("one", "k", b"11".to_vec()).unwrap();
    assert_eq!(s.kv_get("one", "k").unwrap(), Some(b"11".to_vec()));
    s.finish_event(true);
    s.commit().unwrap();

    s.begin_event("e2");
    // Deleting a committed key hides it (tombstone) until commit.
    s.kv_delete("one", "k").unwrap();
    s.kv_delete("one", "never-existed").unwrap();
    assert_eq!(s.kv_get("one", "k").unwrap(), None);
    assert_eq!(s.kv_get("two", "k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(
        b.session().kv_get("one", "k").unwrap(),
        Some(b"11".to_vec())
    );
    s.finish_event(true);
    assert_eq!(
        b.session().kv_get("one", "k").unwrap(),
        Some(b"11".to_vec())
    );
    s.commit().unwrap();
    assert_eq!(b.session().kv_get("one", "k").unwrap(), None);
    // Set after delete in the same event wins.
    s.begin_event("e3");
    s.kv_delete("two", "k").unwrap();
    s.kv_set("two", "k", b"again".to_vec()).unwrap();
    s.finish_event(true);
    s.commit().unwrap();
    assert_eq!(
        b.session().kv_get("two", "k").unwrap(),
        Some(b"again".to_vec())
    );
}

#[test]
fn kv_list_pages_with_exact_cursors() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    for k in ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1", "a", "0"] {
        s.kv_set("k", k, vec![]).unwrap();
    }
    s.kv_set("other", "a/9", vec![]).unwrap();
    let p1 = s.kv_list("k", "a/", None, 2).unwrap();
    assert_eq!(p1.keys, ["a/1", "a/2"]);
    assert_eq!(p1.cursor.as_deref(), Some("a/2"));
    let p2 = s.kv_list("k", "a/", p1.cursor.as_deref(), 2).unwrap();
    assert_eq!(p2.keys, ["a/3", "a/4"]);
    assert_eq!(p2.cursor.as_deref(), Some("a/4"));
    let p3 = s.kv_list("k", "a/", p2.cursor.as_deref(), 2).unwrap();
    assert_eq!(p3.keys, ["a/5"]);
    assert_eq!(p3.cursor, None);
    // Exactly `limit` keys left: no cursor, since no more keys exist.
    let exact = s.kv_list("k", "a/", Some("a/3"), 2).unwrap();
    assert_eq!(exact.keys, ["a/4", "a/5"]);
    assert_eq!(exact.cursor, None);
    // Empty prefix lists the whole bucket; a cursor before the prefix range is harmless.
    let all = s.kv_list("k", "", None, 100).unwrap();
    assert_eq!(
        all.keys,
        ["0", "a", "a/1", "a/2", "a/3", "a/4", "a/5", "b/1"]
    );
    let from_before = s.kv_list("k", "a/", Some("0"), 100).unwrap();
    assert_eq!(from_before.keys.len(), 5);
    // Limit 0 still makes progress.
    let zero = s.kv_list("k", "a/", None, 0).unwrap();
    assert_eq!(zero.keys, ["a/1"]);
    assert_eq!(zero.cursor.as_deref(), Some("a/1"));
    assert_eq!(
        s.kv_list("missing", "", None, 5).unwrap(),
        KeyPage::default()
    );
}

#[test]
fn kv_list_merges_overlay_with_base() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("seed");
    for k in ["p1", "p3", "p5", "p7"] {
        s.kv_set("k", k, vec![]).unwrap();
    }
    s.finish_event(true);
    s.commit().unwrap();
    s.begin_event("e");
    s.kv_set("k", "p2", vec![]).unwrap();
    s.kv_set("k", "p3", b"overwritten".to_vec()).unwrap();
    s.kv_delete("k", "p5").unwrap();
    s.kv_set("k", "p6", vec![]).unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.kv_list("k", "p", cursor.as_deref(), 2).unwrap();
        seen.extend(page.keys);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["p1", "p2", "p3", "p6", "p7"]);
}

#[test]
fn kv_increment_and_compare_and_swap() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    assert_eq!(s.kv_increment("k", "n", 5).unwrap(), 5);
    assert_eq!(s.kv_increment("k", "n", -7).unwrap(), -2);
    assert_eq!(
        s.kv_get("k", "n").unwrap(),
        Some((-2i64).to_le_bytes().to_vec())
    );
    s.kv_set("k", "text", b"hello".to_vec()).unwrap();
    assert!(matches!(
        s.kv_increment("k", "text", 1),
        Err(KvError::InvalidValue(_))
    ));
    assert_eq!(s.kv_get("k", "text").unwrap(), Some(b"hello".to_vec()));
    s.kv_set("k", "max", i64::MAX.to_le_bytes().to_vec())
        .unwrap();
    assert!(matches!(
        s.kv_increment("k", "max", 1),
        Err(KvError::InvalidValue(_))
    ));

    assert!(
        s.kv_compare_and_swap("k", "c", None, b"a".to_vec())
            .unwrap()
    );
    assert!(
        !s.kv_compare_and_swap("k", "c", None, b"b".to_vec())
            .unwrap()
    );
    assert!(
        !s.kv_compare_and_swap("k", "c", Some(b"x"), b"b".to_vec())
            .unwrap()
    );
    assert!(
        s.kv_compare_and_swap("k", "c", Some(b"a"), b"b".to_vec())
            .unwrap()
    );
    assert_eq!(s.kv_get("k", "c").unwrap(), Some(b"b".to_vec()));
    s.finish_event(true);
    s.commit().unwrap();
    // Increments of committed values continue from the base.
    s.begin_event("e2");
    assert_eq!(s.kv_increment("k", "n", 2).unwrap(), 0);
    s.finish_event(true);
    s.commit().unwrap();
    assert_eq!(
        b.session().kv_get("k", "n").unwrap(),
        Some(0i64.to_le_bytes().to_vec())
    );
}

// ---- table writes ----

#[test]
fn versions_count_writes_and_restart_after_delete() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    assert_eq!(put(s.as_mut(), "p", "s", json!({"n": 1})), 1);
    assert_eq!(put(s.as_mut(), "p", "s", json!({"n": 2})), 2);
    s.finish_event(true);
    s.commit().unwrap();
    s.begin_event("e2");
    let updated = s
        .table_update(T, "p", "s", &json!({"m": 1}), Condition::Always)
        .unwrap();
    assert_eq!(updated.version, 3);
    assert_eq!(s.table_get(T, "p", "s").unwrap().unwrap().version, 3);
    assert!(s.table_delete(T, "p", "s", Condition::Always).unwrap());
    assert_eq!(put(s.as_mut(), "p", "s", json!({})), 1);
    s.finish_event(true);
    assert_eq!(
        b.session().table_get(T, "p", "s").unwrap().unwrap().version,
        2
    );
    s.commit().unwrap();
    assert_eq!(
        b.session().table_get(T, "p", "s").unwrap().unwrap().version,
        1
    );
}

#[test]
fn documents_and_patches_must_be_objects() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    for bad in [json!([1]), json!("x"), json!(null), json!(3)] {
        assert!(matches!(
            s.table_put(T, "p", "s", bad.clone(), Condition::Always, None),
            Err(TableError::InvalidArgument(_))
        ));
        assert!(matches!(
            s.table_update(T, "p", "s", &bad, Condition::Always),
            Err(TableError::InvalidArgument(_))
        ));
    }
    // The argument check comes before the condition.
    put(s.as_mut(), "p", "s", json!({}));
    assert!(matches!(
        s.table_put(T, "p", "s", json!(1), Condition::MustNotExist, None),
        Err(TableError::InvalidArgument(_))
    ));
    assert_eq!(s.table_get(T, "p", "s").unwrap().unwrap().version, 1);
}

#[test]
fn put_conditions() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    let doc = json!({});
    let failed = |r: Result<u64, TableError>| matches!(r, Err(TableError::ConditionFailed(_)));
    assert!(failed(s.table_put(
        T,
        "p",
        "s",
        doc.clone(),
        Condition::MustExist,
        None
    )));
    assert!(failed(s.table_put(
        T,
        "p",
        "s",
        doc.clone(),
        Condition::VersionIs(1),
        None
    )));
    assert_eq!(
        s.table_put(T, "p", "s", doc.clone(), Condition::MustNotExist, None),
        Ok(1)
    );
    let err = s
        .table_put(T, "p", "s", doc.clone(), Condition::MustNotExist, None)
        .unwrap_err();
    let TableError::ConditionFailed(msg) = err else {
        panic!("unexpected {err:?}")
    };
    assert!(msg.contains("orders") && msg.contains("\"p\"") && msg.contains("\"s\""));
    assert_eq!(
        s.table_put(T, "p", "s", doc.clone(), Condition::MustExist, None),
        Ok(2)
    );
    assert!(failed(s.table_put(
        T,
        "p",
        "s",
        doc.clone(),
        Condition::VersionIs(1),
        None
    )));
    assert_eq!(
        s.table_put(T, "p", "s", doc.clone(), Condition::VersionIs(2), None),
        Ok(3)
    );
    assert_eq!(
        s.table_put(T, "p", "s", doc, Condition::Always, None),
        Ok(4)
    );
    // Failed writes changed nothing.
    assert_eq!(s.table_get(T, "p", "s").unwrap().unwrap().version, 4);
}

#[test]
fn update_conditions_and_merge() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    let failed = |r: Result<Item, TableError>| matches!(r, Err(TableError::ConditionFailed(_)));
    assert!(failed(s.table_update(
        T,
        "p",
        "s",
        &json!({"a": 1}),
        Condition::MustExist
    )));
    assert!(failed(s.table_update(
        T,
        "p",
        "s",
        &json!({"a": 1}),
        Condition::VersionIs(1)
    )));
    assert_eq!(s.table_get(T, "p", "s").unwrap(), None);
    // Absent + allowed: created from `{}`, without expiry.
    let created = s
        .table_update(
            T,
            "p",
            "s",
            &json!({"a": 1, "b": {"c": 2, "d": null}}),
            Condition::MustNotExist,
        )
        .unwrap();
    assert_eq!(
        created,
        Item {
            pk: "p".into(),
            sk: "s".into(),
            doc: json!({"a": 1, "b": {"c": 2}}),
            version: 1,
            expires_at: None,
        }
    );
    assert!(failed(s.table_update(
        T,
        "p",
        "s",
        &json!({}),
        Condition::MustNotExist
    )));
    assert!(failed(s.table_update(
        T,
        "p",
        "s",
        &json!({}),
        Condition::VersionIs(2)
    )));
    let merged = s
        .table_update(
            T,
            "p",
            "s",
            &json!({"a": null, "b": {"e": 3}, "f": [1]}),
            Condition::VersionIs(1),
        )
        .unwrap();
    assert_eq!(merged.doc, json!({"b": {"c": 2, "e": 3}, "f": [1]}));
    assert_eq!(merged.version, 2);
    let again = s
        .table_update(T, "q", "s", &json!({"x": 1}), Condition::Always)
        .unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(
        s.table_update(T, "q", "s", &json!({}), Condition::MustExist)
            .unwrap()
            .version,
        2
    );
    assert_eq!(s.table_get(T, "p", "s").unwrap(), Some(merged));
}

#[test]
fn delete_conditions_and_result() {
    let (b, _) = backend();
    commit_puts(&b, &[("p", "s", json!({})), ("p", "t", json!({}))]);
    let mut s = b.session();
    s.begin_event("e");
    let failed = |r: Result<bool, TableError>| matches!(r, Err(TableError::ConditionFailed(_)));
    assert!(failed(s.table_delete(T, "p", "s", Condition::MustNotExist)));
    assert!(failed(s.table_delete(T, "p", "s", Condition::VersionIs(2))));
    assert!(failed(s.table_delete(T, "p", "x", Condition::MustExist)));
    assert!(failed(s.table_delete(T, "p", "x", Condition::VersionIs(1))));
    assert_eq!(
        s.table_delete(T, "p", "x", Condition::MustNotExist),
        Ok(false)
    );
    assert_eq!(s.table_delete(T, "p", "x", Condition::Always), Ok(false));
    assert_eq!(
        s.table_delete(T, "p", "s", Condition::VersionIs(1)),
        Ok(true)
    );
    assert_eq!(s.table_delete(T, "p", "s", Condition::Always), Ok(false));
    assert_eq!(s.table_delete(T, "p", "t", Condition::MustExist), Ok(true));
    assert_eq!(s.table_get(T, "p", "s").unwrap(), None);
    // Others still see the committed items until the batch commits.
    assert!(b.session().table_get(T, "p", "s").unwrap().is_some());
    s.finish_event(true);
    assert!(b.session().table_get(T, "p", "s").unwrap().is_some());
    assert!(b.session().table_get(T, "p", "t").unwrap().is_some());
    s.commit().unwrap();
    assert!(b.session().table_get(T, "p", "s").unwrap().is_none());
    assert!(b.session().table_get(T, "p", "t").unwrap().is_none());
}

#[test]
fn expired_items_are_absent_and_swept() {
    let (b, clock) = backend();
    let mut s = b.session();
    s.begin_event("e");
    s.table_put(
        T,
        "p",
        "a",
        json!({"customer": "c"}),
        Condition::Always,
        Some(2_000),
    )
    .unwrap();
    s.table_put(
        T,
        "p",
        "b",
        json!({"customer": "c"}),
        Condition::Always,
        Some(3_000),
    )
    .unwrap();
    put(s.as_mut(), "p", "c", json!({"customer": "c"}));
    // Update keeps the expiry.
    let updated = s
        .table_update(T, "p", "a", &json!({"n": 1}), Condition::Always)
        .unwrap();
    assert_eq!((updated.version, updated.expires_at), (2, Some(2_000)));
    s.finish_event(true);
    s.commit().unwrap();

    clock.set(1_999);
    let mut s = b.session();
    assert!(s.table_get(T, "p", "a").unwrap().is_some());
    // At exactly `expires_at` the item is gone.
    clock.set(2_000);
    assert_eq!(s.table_get(T, "p", "a").unwrap(), None);
    let page = s
        .table_query(T, &query("p", SortKeyCondition::Any))
        .unwrap();
    assert_eq!(sks(&page), ["b", "c"]);
    let page = s.table_query(T, &index_query("by_customer", "c")).unwrap();
    assert_eq!(sks(&page), ["b", "c"]);
    // Conditions treat it as absent; a put over it starts at version 1.
    assert!(matches!(
        s.table_update(T, "p", "a", &json!({}), Condition::MustExist),
        Err(TableError::ConditionFailed(_))
    ));
    assert_eq!(s.table_delete(T, "p", "a", Condition::Always), Ok(false));
    assert_eq!(
        s.table_put(T, "p", "a", json!({}), Condition::MustNotExist, None),
        Ok(1)
    );
    s.finish_event(false);

    // Sweep removes only expired committed items: "a" (expired), not "b" or "c".
    assert_eq!(b.sweep_expired(), 1);
    assert_eq!(b.sweep_expired(), 0);
    clock.set(5_000);
    assert_eq!(b.sweep_expired(), 1);
    let page = b
        .session()
        .table_query(T, &query("p", SortKeyCondition::Any))
        .unwrap();
    assert_eq!(sks(&page), ["c"]);
}

#[test]
fn expired_items_in_the_overlay_are_invisible_too() {
    let (b, clock) = backend();
    let mut s = b.session();
    s.begin_event("e");
    s.table_put(T, "p", "s", json!({}), Condition::Always, Some(1_500))
        .unwrap();
    assert!(s.table_get(T, "p", "s").unwrap().is_some());
    clock.set(1_500);
    assert_eq!(s.table_get(T, "p", "s").unwrap(), None);
    assert_eq!(put(s.as_mut(), "p", "s", json!({})), 1);
}

#[test]
fn unknown_tables_work_without_indexes() {
    let (b, _) = backend();
    let mut s = b.session();
    s.begin_event("e");
    s.table_put("adhoc", "p", "s", json!({"x": 1}), Condition::Always, None)
        .unwrap();
    assert!(s.table_get("adhoc", "p", "s").unwrap().is_some());
    assert!(s.table_get(T, "p", "s").unwrap().is_none());
    let page = s
        .table_query("adhoc", &query("p", SortKeyCondition::Any))
        .unwrap();
    assert_eq!(sks(&page), ["s"]);
    assert_eq!(
        s.table_query("adhoc", &index_query("by_status", "x")),
        Err(TableError::NoSuchIndex("by_status".into()))
    );
    assert_eq!(
        s.table_query(T, &index_query("nope", "x")),
        Err(TableError::NoSuchIndex("nope".into()))
    );
}

// ---- queries ----

#[test]
fn query_every_sort_key_condition_both_directions() {
    let (b, _) = backend();
    let rows: Vec<(&str, &str, Value)> = ["a", "b", "ba", "bb", "c", "d"]
        .into_iter()
        .map(|sk| ("p", sk, json!({})))
        .chain([("other", "b", json!({})), ("p2", "a", json!({}))])
        .collect();
    commit_puts(&b, &rows);
    let mut s = b.session();
    use SortKeyCondition as C;
    let cases: Vec<(C, Vec<&str>)> = vec![
        (C::Any, vec!["a", "b", "ba", "bb", "c", "d"]),
        (C::Equals("ba".into()), vec!["ba"]),
        (C::Equals("zz".into()), vec![]),
        (C::BeginsWith("b".into()), vec!["b", "ba", "bb"]),
        (
            C::Between("b".into(), "c".into()),
            vec!["b", "ba", "bb", "c"],
        ),
        (C::LessThan("b".into()), vec!["a"]),
        (C::LessOrEqual("b".into()), vec!["a", "b"]),
        (C::GreaterThan("bb".into()), vec!["c", "d"]),
        (C::GreaterOrEqual("bb".into()), vec!["bb", "c", "d"]),
    ];
    for (cond, expected) in cases {
        let q = query("p", cond.clone());
        let page = s.table_query(T, &q).unwrap();
        assert_eq!(sks(&page), expected, "{cond:?} forward");
        assert_eq!(page.cursor, None);
        let page = s
            .table_query(
                T,
                &Query {
                    forward: false,
                    ..q
                },
            )
            .unwrap();
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(sks(&page), reversed, "{cond:?} reverse");
    }
    assert!(
        s.table_query(T, &query("none", C::Any))
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn query_pages_over_overlay_and_base_without_gaps_or_repeats() {
    let (b, _) = backend();
    let base: Vec<(&str, &str, Value)> = ["01", "03", "05", "07", "09"]
        .into_iter()
        .map(|sk| ("p", sk, json!({"from": "base"})))
        .collect();
    commit_puts(&b, &base);
    let mut s = b.session();
    s.begin_event("e");
    for sk in ["02", "04", "10"] {
        put(s.as_mut(), "p", sk, json!({"from": "overlay"}));
    }
    put(s.as_mut(), "p", "05", json!({"from": "overlay"}));
    s.table_delete(T, "p", "07", Condition::Always).unwrap();
    let expected = ["01", "02", "03", "04", "05", "09", "10"];
    for limit in 1..=8 {
        for forward in [true, false] {
            let q = Query {
                limit,
                forward,
                ..query("p", SortKeyCondition::Any)
            };
            let pages = all_pages(s.as_mut(), T, &q);
            let got: Vec<String> = pages.iter().flat_map(sks).collect();
            let mut want: Vec<&str> = expected.to_vec();
            if !forward {
                want.reverse();
            }
            assert_eq!(got, want, "limit {limit} forward {forward}");
            assert!(pages.iter().all(|p| p.items.len() <= limit));
            // Cursors are exact: only the last page lacks one, and no page is empty
            // unless the whole result is.
            assert_eq!(pages.len(), expected.len().div_ceil(limit));
        }
    }
    let page = s
        .table_query(T, &query("p", SortKeyCondition::Equals("05".into())))
        .unwrap();
    assert_eq!(page.items[0].doc, json!({"from": "overlay"}));
    assert_eq!(page.items[0].version, 2);
    // Pages also continue correctly with a sort-key condition.
    let q = Query {
        limit: 2,
        ..query("p", SortKeyCondition::Between("02".into(), "09".into()))
    };
    let got: Vec<String> = all_pages(s.as_mut(), T, &q).iter().flat_map(sks).collect();
    assert_eq!(got, ["02", "03", "04", "05", "09"]);
}

#[test]
fn query_cursor_format_and_malformed_cursors() {
    let (b, _) = backend();
    commit_puts(
        &b,
        &[
            ("p", "a", json!({"customer": "c"})),
            ("p", "b", json!({"customer": "c"})),
        ],
    );
    let mut s = b.session();
    let q = Query {
        limit: 1,
        ..query("p", SortKeyCondition::Any)
    };
    assert_eq!(
        s.table_query(T, &q).unwrap().cursor.as_deref(),
        Some(r#"["a"]"#)
    );
    let iq = Query {
        limit: 1,
        ..index_query("by_customer", "c")
    };
    assert_eq!(
        s.table_query(T, &iq).unwrap().cursor.as_deref(),
        Some(r#"["a","p","a"]"#)
    );
    for bad in ["", "nope", "[]", r#"["a","p","a"]"#, "[1]", r#"{"sk":"a"}"#] {
        let q = Query {
            cursor: Some(bad.into()),
            ..q.clone()
        };
        assert!(
            matches!(s.table_query(T, &q), Err(TableError::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    for bad in [r#"["a"]"#, "null"] {
        let iq = Query {
            cursor: Some(bad.into()),
            ..iq.clone()
        };
        assert!(matches!(
            s.table_query(T, &iq),
            Err(TableError::InvalidArgument(_))
        ));
    }
}

#[test]
fn index_with_sort_attribute() {
    let (b, _) = backend();
    commit_puts(
        &b,
        &[
            ("o1", "x", json!({"status": "open", "placed": "2026-03"})),
            ("o2", "x", json!({"status": "open", "placed": "2026-01"})),
            ("o3", "x", json!({"status": "done", "placed": "2026-02"})),
            // Ties on the index sort key are ordered by (pk, sk).
            ("o4", "y", json!({"status": "open", "placed": "2026-02"})),
            ("o4", "x", json!({"status": "open", "placed": "2026-02"})),
            // Sparse: missing or non-scalar attributes are not indexed.
            ("o5", "x", json!({"status": "open"})),
            ("o6", "x", json!({"placed": "2026-01"})),
            ("o7", "x", json!({"status": true, "placed": "2026-01"})),
            ("o8", "x", json!({"status": "open", "placed": {"y": 1}})),
        ],
    );
    let mut s = b.session();
    let page = s.table_query(T, &index_query("by_status", "open")).unwrap();
    assert_eq!(
        keys(&page.items),
        [("o2", "x"), ("o4", "x"), ("o4", "y"), ("o1", "x")]
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
    );
    let reverse = Query {
        forward: false,
        ..index_query("by_status", "open")
    };
    let got: Vec<_> = keys(&s.table_query(T, &reverse).unwrap().items);
    assert_eq!(
        got,
        [("o1", "x"), ("o4", "y"), ("o4", "x"), ("o2", "x")]
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
    );
    // The sort-key condition applies to the index sort key.
    let q = Query {
        sk: SortKeyCondition::GreaterOrEqual("2026-02".into()),
        ..index_query("by_status", "open")
    };
    let got: Vec<String> = s
        .table_query(T, &q)
        .unwrap()
        .items
        .iter()
        .map(|i| i.pk.clone())
        .collect();
    assert_eq!(got, ["o4", "o4", "o1"]);
    // Paging through the tie, one item at a time, in both directions.
    for forward in [true, false] {
        let q = Query {
            limit: 1,
            forward,
            ..index_query("by_status", "open")
        };
        let pages = all_pages(s.as_mut(), T, &q);
        assert_eq!(pages.len(), 4);
        let got: Vec<Item> = pages.into_iter().flat_map(|p| p.items).collect();
        let mut want = s
            .table_query(T, &index_query("by_status", "open"))
            .unwrap()
            .items;
        if !forward {
            want.reverse();
        }
        assert_eq!(got, want);
    }
    let done = s.table_query(T, &index_query("by_status", "done")).unwrap();
    assert_eq!(keys(&done.items), [("o3".to_owned(), "x".to_owned())]);
}

#[test]
fn index_without_sort_attribute_and_number_values() {
    let (b, _) = backend();
    commit_puts(
        &b,
        &[
            ("o1", "b", json!({"customer": "alice"})),
            ("o2", "a", json!({"customer": "alice"})),
            ("o1", "a", json!({"customer": "alice"})),
            ("o3", "a", json!({"customer": 42})),
            ("o4", "a", json!({"customer": 4.5})),
            ("o5", "a", json!({"customer": null})),
        ],
    );
    let mut s = b.session();
    // Ordered by base sk, then base pk.
    let page = s
        .table_query(T, &index_query("by_customer", "alice"))
        .unwrap();
    assert_eq!(
        keys(&page.items),
        [("o1", "a"), ("o2", "a"), ("o1", "b")].map(|(p, s)| (p.to_owned(), s.to_owned()))
    );
    let q = Query {
        sk: SortKeyCondition::Equals("b".into()),
        ..index_query("by_customer", "alice")
    };
    assert_eq!(sks(&s.table_query(T, &q).unwrap()), ["b"]);
    // Numbers are indexed under their JSON text.
    let page = s.table_query(T, &index_query("by_customer", "42")).unwrap();
    assert_eq!(keys(&page.items), [("o3".to_owned(), "a".to_owned())]);
    let page = s
        .table_query(T, &index_query("by_customer", "4.5"))
        .unwrap();
    assert_eq!(keys(&page.items), [("o4".to_owned(), "a".to_owned())]);
    assert!(
        s.table_query(T, &index_query("by_customer", "null"))
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn index_queries_reflect_the_overlay() {
    let (b, _) = backend();
    commit_puts(
        &b,
        &[
            ("o1", "x", json!({"customer": "alice"})),
            ("o2", "x", json!({"customer": "alice"})),
            ("o3", "x", json!({"customer": "alice"})),
            ("o4", "x", json!({"customer": "bob"})),
        ],
    );
    let mut s = b.session();
    s.begin_event("e");
    // Moves out of the partition, is deleted, moves into it, is new, loses the attribute.
    s.table_update(T, "o1", "x", &json!({"customer": "bob"}), Condition::Always)
        .unwrap();
    s.table_delete(T, "o2", "x", Condition::Always).unwrap();
    s.table_update(
        T,
        "o4",
        "x",
        &json!({"customer": "alice"}),
        Condition::Always,
    )
    .unwrap();
    put(s.as_mut(), "o0", "x", json!({"customer": "alice"}));
    put(s.as_mut(), "o5", "x", json!({"customer": "alice"}));
    s.table_update(T, "o5", "x", &json!({"customer": null}), Condition::Always)
        .unwrap();
    let q = Query {
        limit: 1,
        ..index_query("by_customer", "alice")
    };
    let got: Vec<String> = all_pages(s.as_mut(), T, &q)
        .iter()
        .flat_map(|p| p.items.iter().map(|i| i.pk.clone()))
        .collect();
    assert_eq!(got, ["o0", "o3", "o4"]);
    let bob = s
        .table_query(T, &index_query("by_customer", "bob"))
        .unwrap();
    assert_eq!(bob.items.len(), 1);
    assert_eq!(bob.items[0].pk, "o1");
    assert_eq!(bob.items[0].version, 2);
    // Nobody else sees any of it yet.
    let others = b
        .session()
        .table_query(T, &index_query("by_customer", "alice"))
        .unwrap();
    assert_eq!(others.items.len(), 3);
    s.finish_event(true);
    // Kept, not committed: still nobody else's.
    let kept = b
        .session()
        .table_query(T, &index_query("by_customer", "alice"))
        .unwrap();
    assert_eq!(kept, others);
    s.commit().unwrap();
    let after = b
        .session()
        .table_query(T, &index_query("by_customer", "alice"))
        .unwrap();
    assert_eq!(after.items.len(), 3);
    assert_eq!(after.items[0].pk, "o0");
    assert_eq!(
        keys(&after.items),
        [("o0", "x"), ("o3", "x"), ("o4", "x")].map(|(p, s)| (p.to_owned(), s.to_owned()))
    );
}

/// A tiny deterministic generator, so this test needs no extra dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_mixes_page_like_a_single_full_query() {
    let mut rng = Lcg(7);
    for round in 0..40 {
        let (b, _) = backend();
        let mut s = b.session();
        // Two layers of random writes: a committed one and an open one.
        for layer in 0..2 {
            s.begin_event("layer");
            for _ in 0..30 {
                let pk = format!("p{}", rng.below(2));
                let sk = format!("s{:02}", rng.below(20));
                let k = format!("k{:02}", rng.below(30));
                if rng.below(4) == 0 {
                    s.table_delete(T, &pk, &sk, Condition::Always).unwrap();
                    s.kv_delete("b", &k).unwrap();
                } else {
                    let status = format!("st{}", rng.below(3));
                    let doc = if rng.below(5) == 0 {
                        json!({})
                    } else {
                        json!({"status": status, "placed": format!("d{}", rng.below(4))})
                    };
                    put(s.as_mut(), &pk, &sk, doc);
                    s.kv_set("b", &k, vec![]).unwrap();
                }
            }
            if layer == 0 {
                s.finish_event(true);
                s.commit().unwrap();
            }
        }
        let limit = usize::try_from(rng.below(5) + 1).unwrap();
        for forward in [true, false] {
            for q in [
                query("p0", SortKeyCondition::Any),
                query("p1", SortKeyCondition::GreaterThan("s07".into())),
                index_query("by_status", "st1"),
                index_query("by_status", "st2"),
            ] {
                let full = s
                    .table_query(
                        T,
                        &Query {
                            forward,
                            ..q.clone()
                        },
                    )
                    .unwrap();
                assert_eq!(full.cursor, None);
                let paged: Vec<Item> = all_pages(
                    s.as_mut(),
                    T,
                    &Query {
                        forward,
                        limit,
                        ..q
                    },
                )
                .into_iter()
                .flat_map(|p| p.items)
                .collect();
                assert_eq!(paged, full.items, "round {round}");
            }
        }
        let full = s.kv_list("b", "k", None, usize::MAX).unwrap();
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.kv_list("b", "k", cursor.as_deref(), limit).unwrap();
            paged.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(paged, full.keys, "round {round}");
    }
}

#[test]
fn engine_rows_are_staged_in_the_batch_and_commit_or_roll_back_with_it() {
    use crate::records::{RecordTable, Scan};
    let b = MemoryBackend::new(vec![], Arc::new(crate::state::SystemClock));
    let mut s = b.open_session();
    let mut other = b.open_session();
    s.put_record(RecordTable::Executions, "e1", Some(b"v1".to_vec()))
        .unwrap();
    s.put_record(RecordTable::History, "e1/00000001", Some(b"h".to_vec()))
        .unwrap();
    assert_eq!(
        s.get_record(RecordTable::Executions, "e1").unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        other.get_record(RecordTable::Executions, "e1").unwrap(),
        None
    );
    s.commit().unwrap();
    assert_eq!(
        other.get_record(RecordTable::Executions, "e1").unwrap(),
        Some(b"v1".to_vec())
    );
    s.put_record(RecordTable::Executions, "e1", None).unwrap();
    s.rollback();
    let all = Scan {
        prefix: "e1",
        after: None,
        limit: 10,
        reverse: false,
    };
    assert_eq!(
        other
            .scan_records(RecordTable::History, &all)
            .unwrap()
            .len(),
        1
    );
    assert!(
        other
            .get_record(RecordTable::Executions, "e1")
            .unwrap()
            .is_some()
    );
}
