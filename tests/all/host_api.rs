//! Every state host function (`keyvalue`, `table`, `emit`) through the component boundary, on
//! both state backends (in-memory and redb), driven by the `state-script` guest: results,
//! WIT errors, the host's size caps, access control, and write-set semantics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_model::state::{Clock, Emitted, SystemClock};
use sluice_runtime::{Grants, Invocation, Stage, StageConfig, Worker};
use sluice_store::{Store, StoreConfig};
use sluice_test_artifacts as guests;
use sluice_tests::{Harness, event, orders_table};

/// Host caps, as documented in the WIT files and enforced by `sluice-runtime`.
const KV_MAX_KEY: usize = 1024;
const KV_MAX_VALUE: usize = 1 << 20;
const MAX_BATCH: usize = 1000;
const TABLE_MAX_KEY: usize = 1024;
const MAX_DOC: usize = 400 << 10;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 16 << 10;
const MAX_SUBJECT: usize = 256;
const MAX_EMIT_DATA: usize = 1 << 20;
const MAX_EMITS: usize = 256;
const MAX_HANDLES: usize = 256;

fn open_store(h: &Harness) -> Store {
    Store::open(
        &h.dir.path().join("state.redb"),
        StoreConfig {
            tables: vec![orders_table()],
            clock: Arc::new(SystemClock),
            dedupe_retention: Duration::from_secs(24 * 3600),
        },
    )
    .expect("open store")
}

/// Buckets `b` and `other`, the `orders` table with the indexes the backends declare, and
/// emits under `events.`.
fn deploy(h: &Harness) -> Arc<Stage> {
    let config = StageConfig {
        grants: Grants {
            kv_buckets: vec!["b".into(), "other".into()],
            tables: vec![orders_table()],
            emit_subjects: vec!["events.".into()],
            ..Grants::default()
        },
        ..StageConfig::default()
    };
    h.deploy("state-script", guests::STATE_SCRIPT, config)
}

type MakeWorker<'a> = Box<dyn Fn(Arc<Stage>) -> Worker + 'a>;

/// A worker constructor per backend: the harness's in-memory state and a redb store.
fn backends(h: &Harness) -> Vec<(&'static str, MakeWorker<'_>)> {
    let store = open_store(h);
    vec![
        ("memory", Box::new(|stage| h.worker(stage))),
        (
            "redb",
            Box::new(move |stage| Worker::new(stage, Box::new(store.open_session()))),
        ),
    ]
}

/// Event ids unique across the whole test binary: a repeated id would be answered from its
/// dedupe record instead of running.
static NEXT_EVENT: AtomicU64 = AtomicU64::new(0);

/// Runs scripts on one worker, one event per script.
struct Scripts {
    backend: &'static str,
    worker: Worker,
}

impl Scripts {
    fn new(backend: &'static str, worker: Worker) -> Self {
        eprintln!("backend: {backend}");
        Self { backend, worker }
    }

    fn event(&self, data: &Value) -> sluice_model::Event {
        let n = NEXT_EVENT.fetch_add(1, Ordering::Relaxed);
        event(&format!("script-{}-{n}", self.backend), data)
    }

    /// Run `data` (`{"ops":..,"fail":..}`) as a new event.
    fn invoke(&mut self, data: &Value) -> Invocation {
        let inv = self.worker.invoke(&self.event(data));
        assert!(inv.replayed.is_none(), "event ids are unique");
        inv
    }

    /// Run `ops` as a new event that must succeed; the results of its ops.
    fn run(&mut self, ops: Value) -> Vec<Value> {
        let data = Value::Object([("ops".to_owned(), ops)].into_iter().collect());
        results(&self.invoke(&data))
    }

    /// Run one op as its own event; its result.
    fn one(&mut self, op: Value) -> Value {
        self.run(Value::Array(vec![op])).remove(0)
    }
}

/// The results of a successful script.
fn results(inv: &Invocation) -> Vec<Value> {
    match &inv.outcome {
        Ok(bytes) => {
            let out: Value = serde_json::from_slice(bytes).expect("output is JSON");
            out["results"].as_array().expect("results").clone()
        }
        Err(e) => panic!("script failed: {e}"),
    }
}

/// The WIT error variant of an op's result; panics unless the op returned an error.
fn err(r: &Value) -> &str {
    let obj = r
        .as_object()
        .filter(|o| o.len() == 2 && o.get("message").is_some_and(Value::is_string))
        .unwrap_or_else(|| panic!("expected {{error, message}}, got {r}"));
    obj["error"].as_str().expect("error is a string")
}

/// An item as the guest reports it.
fn item(pk: &str, sk: &str, doc: Value, version: u64) -> Value {
    let mut item = json!({ "pk": pk, "sk": sk, "version": version, "expires_at": null });
    item["doc"] = doc;
    item
}

/// The sort keys of a query page.
fn sks(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a query page, got {page}"))
        .iter()
        .map(|i| i["sk"].as_str().unwrap())
        .collect()
}

/// The partition keys of a query page.
fn pks(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a query page, got {page}"))
        .iter()
        .map(|i| i["pk"].as_str().unwrap())
        .collect()
}

#[test]
fn kv_get_set_exists_delete_increment_and_cas() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let r = s.run(json!([
            {"op": "kv.get", "bucket": "b", "key": "a"},
            {"op": "kv.exists", "bucket": "b", "key": "a"},
            {"op": "kv.set", "bucket": "b", "key": "a", "value": "1"},
            {"op": "kv.get", "bucket": "b", "key": "a"},
            {"op": "kv.exists", "bucket": "b", "key": "a"},
            {"op": "kv.get", "bucket": "other", "key": "a"},
            {"op": "kv.set", "bucket": "b", "key": "a", "value": "héllo"},
            {"op": "kv.get", "bucket": "b", "key": "a"},
            {"op": "kv.set", "bucket": "b", "key": "", "value": ""},
            {"op": "kv.get", "bucket": "b", "key": ""},
            {"op": "kv.exists", "bucket": "b", "key": ""},
            {"op": "kv.set", "bucket": "b", "key": "gone", "value": "x"},
            {"op": "kv.delete", "bucket": "b", "key": "gone"},
            {"op": "kv.get", "bucket": "b", "key": "gone"},
            {"op": "kv.exists", "bucket": "b", "key": "gone"},
            {"op": "kv.delete", "bucket": "b", "key": "never-set"},
        ]));
        assert_eq!(
            r,
            [
                json!(null),
                json!(false),
                json!(null),
                json!("1"),
                json!(true),
                json!(null),
                json!(null),
                json!("héllo"),
                json!(null),
                json!(""),
                json!(true),
                json!(null),
                json!(null),
                json!(null),
                json!(false),
                json!(null),
            ]
        );
        // Committed: the next event sees the survivors.
        let r = s.run(json!([
            {"op": "kv.get", "bucket": "b", "key": "a"},
            {"op": "kv.exists", "bucket": "b", "key": "gone"},
            {"op": "kv.delete", "bucket": "b", "key": "a"},
        ]));
        assert_eq!(r, [json!("héllo"), json!(false), json!(null)]);
        assert_eq!(
            s.one(json!({"op": "kv.exists", "bucket": "b", "key": "a"})),
            false
        );

        // increment: a missing key counts as 0; 8 little-endian bytes.
        let r = s.run(json!([
            {"op": "kv.increment", "bucket": "b", "key": "n", "delta": 5},
            {"op": "kv.increment", "bucket": "b", "key": "n", "delta": -7},
            {"op": "kv.set", "bucket": "b", "key": "text", "value": "abc"},
            {"op": "kv.increment", "bucket": "b", "key": "text", "delta": 1},
            {"op": "kv.get", "bucket": "b", "key": "text"},
            {"op": "kv.set", "bucket": "b", "key": "eight", "value": "\u{1}\0\0\0\0\0\0\0"},
            {"op": "kv.increment", "bucket": "b", "key": "eight", "delta": 1},
            {"op": "kv.increment", "bucket": "b", "key": "max", "delta": i64::MAX},
            {"op": "kv.increment", "bucket": "b", "key": "max", "delta": 1},
            {"op": "kv.increment", "bucket": "b", "key": "max", "delta": 0},
        ]));
        assert_eq!(r[0], 5);
        assert_eq!(r[1], -2);
        assert_eq!(r[2], Value::Null);
        assert_eq!(err(&r[3]), "invalid-value");
        assert_eq!(r[4], "abc", "a refused increment leaves the value alone");
        assert_eq!(r[6], 2, "an 8-byte value is read as a little-endian i64");
        assert_eq!(r[7], i64::MAX);
        assert_eq!(err(&r[8]), "invalid-value", "overflow is refused");
        assert_eq!(r[9], i64::MAX);
        assert_eq!(
            s.one(json!({"op": "kv.increment", "bucket": "b", "key": "n", "delta": 3})),
            1,
            "increments are committed"
        );

        // compare-and-swap: `null` expects the key absent.
        let r = s.run(json!([
            {"op": "kv.cas", "bucket": "b", "key": "c", "expected": null, "new": "1"},
            {"op": "kv.cas", "bucket": "b", "key": "c", "expected": null, "new": "2"},
            {"op": "kv.cas", "bucket": "b", "key": "c", "expected": "2", "new": "3"},
            {"op": "kv.get", "bucket": "b", "key": "c"},
            {"op": "kv.cas", "bucket": "b", "key": "c", "expected": "1", "new": "3"},
            {"op": "kv.get", "bucket": "b", "key": "c"},
        ]));
        assert_eq!(
            r,
            [
                json!(true),
                json!(false),
                json!(false),
                json!("1"),
                json!(true),
                json!("3")
            ]
        );
        let r = s.run(json!([
            {"op": "kv.cas", "bucket": "b", "key": "c", "expected": "1", "new": "4"},
            {"op": "kv.cas", "bucket": "b", "key": "c", "expected": "3", "new": "4"},
            {"op": "kv.get", "bucket": "b", "key": "c"},
        ]));
        assert_eq!(r, [json!(false), json!(true), json!("4")]);
    }
}

#[test]
fn kv_get_many_and_set_many() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let r = s.run(json!([
            {"op": "kv.set-many", "bucket": "b", "entries": [["x", "1"], ["y", "2"], ["x", "3"]]},
            {"op": "kv.get-many", "bucket": "b", "keys": ["x", "y", "z", "x"]},
            {"op": "kv.get-many", "bucket": "b", "keys": []},
            {"op": "kv.set-many", "bucket": "b", "entries": []},
        ]));
        assert_eq!(
            r,
            [
                json!(null),
                json!(["3", "2", null, "3"]),
                json!([]),
                json!(null)
            ],
            "set-many applies entries in order"
        );
        // Exactly the batch cap works, in one event and in the next.
        let r = s.run(json!([
            {"op": "kv.set-many", "bucket": "b", "count": MAX_BATCH},
            {"op": "kv.get-many", "bucket": "b", "count": MAX_BATCH},
        ]));
        assert_eq!(r[0], Value::Null);
        let want: Vec<Value> = (0..MAX_BATCH).map(|i| json!(format!("v{i}"))).collect();
        assert_eq!(r[1], Value::Array(want.clone()));
        let r = s.one(json!({"op": "kv.get-many", "bucket": "b", "count": MAX_BATCH}));
        assert_eq!(r, Value::Array(want));
    }
}

#[test]
fn kv_caps_and_access_control() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let max_key = "k".repeat(KV_MAX_KEY);
        let long_key = "k".repeat(KV_MAX_KEY + 1);
        let r = s.run(json!([
            {"op": "kv.set", "bucket": "b", "key": long_key, "value": "v"},
            {"op": "kv.get", "bucket": "b", "key": long_key},
            {"op": "kv.exists", "bucket": "b", "key": long_key},
            {"op": "kv.delete", "bucket": "b", "key": long_key},
            {"op": "kv.increment", "bucket": "b", "key": long_key, "delta": 1},
            {"op": "kv.cas", "bucket": "b", "key": long_key, "expected": null, "new": "v"},
            {"op": "kv.list", "bucket": "b", "prefix": long_key, "limit": 10},
            {"op": "kv.set", "bucket": "b", "key": max_key, "value": "v"},
            {"op": "kv.get", "bucket": "b", "key": max_key},
            {"op": "kv.set", "bucket": "b", "key": "big", "size": KV_MAX_VALUE + 1},
            {"op": "kv.exists", "bucket": "b", "key": "big"},
            {"op": "kv.set", "bucket": "b", "key": "big", "size": KV_MAX_VALUE},
            {"op": "kv.exists", "bucket": "b", "key": "big"},
            {"op": "kv.get-many", "bucket": "b", "count": MAX_BATCH + 1},
            {"op": "kv.get-many", "bucket": "b", "keys": ["a", long_key]},
        ]));
        for (i, r) in r[..7].iter().enumerate() {
            assert_eq!(err(r), "too-large", "op {i}: a {}-byte key", KV_MAX_KEY + 1);
        }
        assert_eq!(r[7], Value::Null, "a key of exactly the cap is fine");
        assert_eq!(r[8], "v");
        assert_eq!(err(&r[9]), "too-large");
        assert_eq!(r[10], false);
        assert_eq!(r[11], Value::Null, "a value of exactly the cap is fine");
        assert_eq!(r[12], true);
        assert_eq!(err(&r[13]), "too-large");
        assert_eq!(err(&r[14]), "too-large");

        // A refused set-many writes nothing, not even its valid entries.
        let r = s.run(json!([
            {"op": "kv.set-many", "bucket": "b", "count": MAX_BATCH + 1},
            {"op": "kv.get-many", "bucket": "b", "keys": ["k0", "k999", "k1000"]},
            {"op": "kv.set-many", "bucket": "b", "entries": [["ok", "1"], [long_key, "2"]]},
            {"op": "kv.set-many", "bucket": "b", "entries": [["ok", "1"], ["huge", "x".repeat(KV_MAX_VALUE + 1)]]},
            {"op": "kv.exists", "bucket": "b", "key": "ok"},
        ]));
        assert_eq!(err(&r[0]), "too-large");
        assert_eq!(r[1], json!([null, null, null]));
        assert_eq!(err(&r[2]), "too-large");
        assert_eq!(err(&r[3]), "too-large");
        assert_eq!(r[4], false);
        let r = s.one(
            json!({"op": "kv.get-many", "bucket": "b", "keys": ["k0", "k1000", "ok", "huge"]}),
        );
        assert_eq!(r, json!([null, null, null, null]));

        // A bucket not granted is refused at `open`, whatever the call.
        let r = s.run(json!([
            {"op": "kv.get", "bucket": "secret", "key": "a"},
            {"op": "kv.set", "bucket": "secret", "key": "a", "value": "1"},
            {"op": "kv.list", "bucket": "secret", "prefix": ""},
            {"op": "kv.open-many", "bucket": "secret", "count": 3},
        ]));
        assert_eq!(err(&r[0]), "access-denied");
        assert_eq!(err(&r[1]), "access-denied");
        assert_eq!(err(&r[2]), "access-denied");
        assert_eq!(r[3]["opened"], 0);
        assert_eq!(err(&r[3]["error"]), "access-denied");

        // At most 256 handles at once; dropping them frees the slots, within the event and
        // for the next one.
        let r = s.run(json!([
            {"op": "kv.open-many", "bucket": "b", "count": MAX_HANDLES + 1},
            {"op": "kv.open-many", "bucket": "b", "count": MAX_HANDLES},
            {"op": "kv.get", "bucket": "b", "key": max_key},
        ]));
        assert_eq!(r[0]["opened"], MAX_HANDLES);
        assert_eq!(err(&r[0]["error"]), "too-large");
        assert_eq!(r[1], json!({"opened": MAX_HANDLES, "error": null}));
        assert_eq!(r[2], "v");
        let r = s.one(json!({"op": "kv.open-many", "bucket": "b", "count": MAX_HANDLES}));
        assert_eq!(r, json!({"opened": MAX_HANDLES, "error": null}));
    }
}

/// The ops listing `keys` page by page with `limit`, each page's cursor being the last key of
/// the previous page, and the page each should return.
fn list_pages(prefix: &str, keys: &[String], limit: usize) -> (Vec<Value>, Vec<Value>) {
    let chunks: Vec<&[String]> = keys.chunks(limit).collect();
    let mut ops = Vec::new();
    let mut pages = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let cursor = i.checked_sub(1).map(|p| chunks[p].last().unwrap());
        ops.push(json!({"op": "kv.list", "bucket": "b", "prefix": prefix, "cursor": cursor, "limit": limit}));
        let next = (i + 1 < chunks.len()).then(|| chunk.last().unwrap());
        pages.push(json!({"keys": chunk, "cursor": next}));
    }
    (ops, pages)
}

/// Every key under `prefix`, one event per page, following the returned cursors.
fn walk_keys(s: &mut Scripts, prefix: &str, limit: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = s.one(json!({"op": "kv.list", "bucket": "b", "prefix": prefix, "cursor": cursor, "limit": limit}));
        let got = page["keys"].as_array().unwrap();
        assert!(got.len() <= limit, "{page}");
        keys.extend(got.iter().map(|k| k.as_str().unwrap().to_owned()));
        cursor = page["cursor"].clone();
        if cursor.is_null() {
            return keys;
        }
        assert_eq!(got.len(), limit, "only the last page is short: {page}");
        assert_eq!(
            &cursor,
            got.last().unwrap(),
            "the cursor is the page's last key"
        );
    }
}

#[test]
fn kv_list_pages_by_prefix_in_key_order() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let committed: Vec<String> = (0..25).map(|i| format!("p/{i:02}")).collect();
        // Neighbours outside the prefix, on both sides; `other` is another bucket.
        let mut entries: Vec<Value> = ["p", "p0", "o/1", "q/1", "p.x"]
            .iter()
            .map(|k| json!([k, "n"]))
            .collect();
        // Written in reverse order: the listing orders them.
        entries.extend(committed.iter().rev().map(|k| json!([k, "v"])));
        s.run(json!([
            {"op": "kv.set-many", "bucket": "b", "entries": entries},
            {"op": "kv.set", "bucket": "other", "key": "p/00x", "value": "1"},
        ]));
        // Across events, from the committed data: 10 + 10 + 5.
        assert_eq!(walk_keys(&mut s, "p/", 10), committed);
        assert_eq!(walk_keys(&mut s, "p/", 1000), committed);
        let (ops, pages) = list_pages("p/", &committed, 10);
        assert_eq!(s.run(Value::Array(ops)), pages);
        // A limit of 0 is read as 1; the cursor says more follow.
        assert_eq!(
            s.one(json!({"op": "kv.list", "bucket": "b", "prefix": "p/", "limit": 0})),
            json!({"keys": ["p/00"], "cursor": "p/00"})
        );
        assert_eq!(
            s.one(json!({"op": "kv.list", "bucket": "b", "prefix": "none/", "limit": 10})),
            json!({"keys": [], "cursor": null})
        );
        // An empty prefix lists the whole bucket.
        let mut all: Vec<String> = committed.clone();
        all.extend(["p", "p0", "o/1", "q/1", "p.x"].map(String::from));
        all.sort();
        assert_eq!(walk_keys(&mut s, "", 7), all);

        // Within one event, over the event's own writes: deletions hide committed keys, new
        // keys (one equal to the prefix) show up in order.
        let mut expected: BTreeSet<String> = committed.iter().cloned().collect();
        let mut ops = Vec::new();
        for k in ["p/00", "p/05", "p/06", "p/24"] {
            ops.push(json!({"op": "kv.delete", "bucket": "b", "key": k}));
            expected.remove(k);
        }
        for k in ["p/", "p/055", "p/99", "p/05/a"] {
            ops.push(json!({"op": "kv.set", "bucket": "b", "key": k, "value": "new"}));
            expected.insert(k.to_owned());
        }
        let expected: Vec<String> = expected.into_iter().collect();
        assert_eq!(expected.len(), 25);
        let setup = ops.len();
        for limit in [5, 10] {
            let (list_ops, pages) = list_pages("p/", &expected, limit);
            let mut script = ops.clone();
            script.extend(list_ops);
            let r = s.run(Value::Array(script));
            assert_eq!(r[setup..], pages, "limit {limit}");
        }
        // Committed (the last of those events): the same listing from the store.
        assert_eq!(walk_keys(&mut s, "p/", 5), expected);
        assert_eq!(walk_keys(&mut s, "p/", 10), expected);
    }
}

#[test]
fn table_put_conditions_get_update_and_delete() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let put = |sk: &str, doc: Value, cond: Value| json!({"op": "table.put", "table": "orders", "pk": "c", "sk": sk, "doc": doc, "cond": cond});
        let r = s.run(json!([
            put("1", json!({"a": 1}), json!("must-not-exist")),
            put("1", json!({"a": 9}), json!("must-not-exist")),
            put("1", json!({"a": 2}), json!({"version-is": 1})),
            put("1", json!({"a": 9}), json!({"version-is": 1})),
            put("1", json!({"a": 9}), json!({"version-is": 3})),
            put("1", json!({"a": 3}), json!("must-exist")),
            put("2", json!({"b": 9}), json!("must-exist")),
            put("2", json!({"b": 9}), json!({"version-is": 1})),
            put("2", json!({"b": true}), json!("always")),
            {"op": "table.get", "table": "orders", "pk": "c", "sk": "1"},
            {"op": "table.get", "table": "orders", "pk": "c", "sk": "404"},
        ]));
        assert_eq!(r[0], 1);
        assert_eq!(err(&r[1]), "condition-failed");
        assert_eq!(r[2], 2);
        assert_eq!(err(&r[3]), "condition-failed");
        assert_eq!(err(&r[4]), "condition-failed");
        assert_eq!(r[5], 3);
        assert_eq!(err(&r[6]), "condition-failed");
        assert_eq!(err(&r[7]), "condition-failed");
        assert_eq!(r[8], 1);
        assert_eq!(r[9], item("c", "1", json!({"a": 3}), 3));
        assert_eq!(r[10], Value::Null);

        // Committed; versions keep counting in the next event.
        let r = s.run(json!([
            {"op": "table.get", "table": "orders", "pk": "c", "sk": "2"},
            put("1", json!({"a": 4}), json!({"version-is": 3})),
            put("1", json!({"a": 5}), json!(null)),
        ]));
        assert_eq!(r[0], item("c", "2", json!({"b": true}), 1));
        assert_eq!(r[1], 4);
        assert_eq!(r[2], 5);

        // update: an RFC 7386 merge patch; creates a missing item unless the condition forbids.
        let update = |sk: &str, patch: Value, cond: Value| json!({"op": "table.update", "table": "orders", "pk": "c", "sk": sk, "patch": patch, "cond": cond});
        let r = s.run(json!([
            update("1", json!({"b": {"x": 1, "y": 2}, "a": null}), json!(null)),
            update("1", json!({"b": {"y": null, "z": [3]}}), json!({"version-is": 6})),
            update("1", json!({"c": 1}), json!({"version-is": 6})),
            update("new", json!({"n": 1, "gone": null}), json!("always")),
            update("none", json!({"n": 1}), json!("must-exist")),
            update("none", json!({"n": 1}), json!({"version-is": 1})),
            update("new", json!({"n": 2}), json!("must-not-exist")),
            {"op": "table.get", "table": "orders", "pk": "c", "sk": "none"},
            {"op": "table.update", "table": "orders", "pk": "c", "sk": "1", "patch_raw": "[1]"},
            {"op": "table.update", "table": "orders", "pk": "c", "sk": "1", "patch_raw": "nope"},
        ]));
        assert_eq!(r[0], item("c", "1", json!({"b": {"x": 1, "y": 2}}), 6));
        assert_eq!(r[1], item("c", "1", json!({"b": {"x": 1, "z": [3]}}), 7));
        assert_eq!(err(&r[2]), "condition-failed");
        assert_eq!(r[3], item("c", "new", json!({"n": 1}), 1));
        assert_eq!(err(&r[4]), "condition-failed");
        assert_eq!(err(&r[5]), "condition-failed");
        assert_eq!(err(&r[6]), "condition-failed");
        assert_eq!(r[7], Value::Null);
        assert_eq!(err(&r[8]), "invalid-argument");
        assert_eq!(err(&r[9]), "invalid-argument");
        assert_eq!(
            s.one(json!({"op": "table.get", "table": "orders", "pk": "c", "sk": "1"})),
            item("c", "1", json!({"b": {"x": 1, "z": [3]}}), 7)
        );

        // delete with conditions: returns whether an item was removed.
        let delete = |sk: &str, cond: Value| json!({"op": "table.delete", "table": "orders", "pk": "c", "sk": sk, "cond": cond});
        let r = s.run(json!([
            delete("2", json!({"version-is": 2})),
            delete("2", json!("must-not-exist")),
            delete("2", json!("must-exist")),
            delete("2", json!("always")),
            delete("2", json!("must-exist")),
            delete("new", json!({"version-is": 1})),
            {"op": "table.get", "table": "orders", "pk": "c", "sk": "2"},
            delete("never", json!("must-not-exist")),
        ]));
        assert_eq!(err(&r[0]), "condition-failed");
        assert_eq!(err(&r[1]), "condition-failed");
        assert_eq!(r[2], true);
        assert_eq!(r[3], false);
        assert_eq!(err(&r[4]), "condition-failed");
        assert_eq!(r[5], true);
        assert_eq!(r[6], Value::Null);
        assert_eq!(r[7], false);
        let r = s.run(json!([
            {"op": "table.get", "table": "orders", "pk": "c", "sk": "2"},
            {"op": "table.get", "table": "orders", "pk": "c", "sk": "new"},
            // A deleted item starts again at version 1.
            put("2", json!({}), json!("must-not-exist")),
        ]));
        assert_eq!(r, [json!(null), json!(null), json!(1)]);
    }
}

/// Every item of a query, one event per page, following the returned cursors.
fn walk_query(s: &mut Scripts, query: &Value, limit: u64) -> Vec<Value> {
    let mut items = Vec::new();
    let mut q = query.clone();
    q["op"] = json!("table.query");
    q["table"] = json!("orders");
    q["limit"] = json!(limit);
    loop {
        let page = s.one(q.clone());
        let got = page["items"].as_array().unwrap();
        items.extend(got.iter().cloned());
        if page["cursor"].is_null() {
            return items;
        }
        assert_eq!(
            got.len(),
            usize::try_from(limit).unwrap(),
            "only the last page is short: {page}"
        );
        q["cursor"] = page["cursor"].clone();
    }
}

#[test]
fn table_queries_on_the_base_table() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let sort_keys = ["a1", "a2", "b1", "b2", "c1"];
        // Out of order, with neighbouring partitions that must not leak in.
        let mut ops: Vec<Value> = [3, 0, 4, 1, 2]
            .iter()
            .map(|&i| json!({"op": "table.put", "table": "orders", "pk": "q", "sk": sort_keys[i], "doc": {"n": i}}))
            .collect();
        for pk in ["p", "qq", "q0"] {
            ops.push(
                json!({"op": "table.put", "table": "orders", "pk": pk, "sk": "b1", "doc": {}}),
            );
        }
        s.run(Value::Array(ops));
        let query = |sk: Value, forward: bool| json!({"op": "table.query", "table": "orders", "pk": "q", "sk": sk, "forward": forward});
        let r = s.run(json!([
            {"op": "table.query", "table": "orders", "pk": "q"},
            query(json!({"any": true}), false),
            query(json!({"equals": "b1"}), true),
            query(json!({"equals": "b"}), true),
            query(json!({"begins-with": "b"}), true),
            query(json!({"begins-with": "b"}), false),
            query(json!({"between": ["a2", "b2"]}), true),
            query(json!({"between": ["a2", "b2"]}), false),
            query(json!({"lt": "b1"}), true),
            query(json!({"le": "b1"}), true),
            query(json!({"gt": "b1"}), true),
            query(json!({"ge": "b1"}), true),
            query(json!({"gt": "a1"}), false),
            query(json!({"lt": "a1"}), true),
            {"op": "table.query", "table": "orders", "pk": "nobody"},
        ]));
        let want: [&[&str]; 15] = [
            &["a1", "a2", "b1", "b2", "c1"],
            &["c1", "b2", "b1", "a2", "a1"],
            &["b1"],
            &[],
            &["b1", "b2"],
            &["b2", "b1"],
            &["a2", "b1", "b2"],
            &["b2", "b1", "a2"],
            &["a1", "a2"],
            &["a1", "a2", "b1"],
            &["b2", "c1"],
            &["b1", "b2", "c1"],
            &["c1", "b2", "b1", "a2"],
            &[],
            &[],
        ];
        for (i, (page, want)) in r.iter().zip(want).enumerate() {
            assert_eq!(sks(page), want, "query {i}");
            assert_eq!(page["cursor"], Value::Null, "query {i}: complete");
        }
        assert_eq!(r[0]["items"][0], item("q", "a1", json!({"n": 0}), 1));
        assert_eq!(r[0]["items"][4], item("q", "c1", json!({"n": 4}), 1));

        // Limit and cursor: walked one event per page, in both directions, with a condition.
        let all = r[0]["items"].as_array().unwrap().clone();
        let mut reversed = all.clone();
        reversed.reverse();
        for limit in [1, 2, 5, 1000] {
            let q = json!({"pk": "q"});
            assert_eq!(walk_query(&mut s, &q, limit), all, "limit {limit}");
            let q = json!({"pk": "q", "forward": false});
            assert_eq!(walk_query(&mut s, &q, limit), reversed, "limit {limit}");
        }
        let q = json!({"pk": "q", "sk": {"ge": "a2"}, "forward": false});
        assert_eq!(walk_query(&mut s, &q, 2), reversed[..4]);
        let page = s.one(json!({"op": "table.query", "table": "orders", "pk": "q", "limit": 2}));
        assert_eq!(sks(&page), ["a1", "a2"]);
        assert!(page["cursor"].is_string(), "{page}");
        let page = s.one(json!({"op": "table.query", "table": "orders", "pk": "q", "limit": 0}));
        assert_eq!(sks(&page), ["a1"], "a limit of 0 is read as 1");
        assert!(page["cursor"].is_string(), "{page}");

        // Within one event the query sees the event's own writes and deletions.
        let r = s.run(json!([
            {"op": "table.delete", "table": "orders", "pk": "q", "sk": "a2"},
            {"op": "table.put", "table": "orders", "pk": "q", "sk": "b15", "doc": {}},
            {"op": "table.update", "table": "orders", "pk": "q", "sk": "c1", "patch": {"m": 1}},
            {"op": "table.query", "table": "orders", "pk": "q", "limit": 2},
            {"op": "table.query", "table": "orders", "pk": "q", "forward": false},
        ]));
        assert_eq!(sks(&r[3]), ["a1", "b1"]);
        assert_eq!(sks(&r[4]), ["c1", "b2", "b15", "b1", "a1"]);
        assert_eq!(
            r[4]["items"][0],
            item("q", "c1", json!({"n": 4, "m": 1}), 2)
        );
        let got: Vec<Value> = walk_query(&mut s, &json!({"pk": "q"}), 2);
        assert_eq!(
            got,
            r[4]["items"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .cloned()
                .collect::<Vec<_>>()
        );
    }
}

/// An order document for the `by-user` and `by-status` indexes.
fn order_doc(user: Option<&str>, created: &str, status: &str) -> Value {
    let mut doc = json!({"createdAt": created, "status": status});
    if let Some(user) = user {
        doc["userId"] = json!(user);
    }
    doc
}

#[test]
fn table_queries_on_secondary_indexes() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let orders = [
            ("o1", Some("u1"), "2026-01-03", "open"),
            ("o2", Some("u1"), "2026-01-01", "done"),
            ("o3", Some("u2"), "2026-01-02", "open"),
            ("o4", Some("u1"), "2026-01-02", "open"),
            // No userId: in by-status only (sparse index).
            ("o5", None, "2026-01-05", "open"),
        ];
        let ops: Vec<Value> = orders
            .iter()
            .map(|(id, user, created, status)| {
                json!({"op": "table.put", "table": "orders", "pk": id, "sk": "META", "doc": order_doc(*user, created, status)})
            })
            .collect();
        s.run(Value::Array(ops));
        let q = |index: &str, pk: &str, sk: Value, forward: bool| json!({"op": "table.query", "table": "orders", "index": index, "pk": pk, "sk": sk, "forward": forward});
        let r = s.run(json!([
            q("by-user", "u1", json!(null), true),
            q("by-user", "u1", json!(null), false),
            q("by-user", "u1", json!({"ge": "2026-01-02"}), true),
            q(
                "by-user",
                "u1",
                json!({"between": ["2026-01-01", "2026-01-02"]}),
                true
            ),
            q("by-user", "u1", json!({"lt": "2026-01-02"}), true),
            q("by-user", "u1", json!({"le": "2026-01-02"}), false),
            q("by-user", "u1", json!({"gt": "2026-01-02"}), true),
            q("by-user", "u1", json!({"equals": "2026-01-02"}), true),
            q("by-user", "u1", json!({"begins-with": "2026-01-0"}), false),
            q("by-user", "u2", json!(null), true),
            q("by-user", "u3", json!(null), true),
            // Ties on createdAt are ordered by the base keys.
            q("by-status", "open", json!(null), true),
            q("by-status", "open", json!(null), false),
            q("by-status", "done", json!(null), true),
            // The index partition key is the attribute value, not the base partition key.
            q("by-status", "o1", json!(null), true),
        ]));
        let want: [&[&str]; 15] = [
            &["o2", "o4", "o1"],
            &["o1", "o4", "o2"],
            &["o4", "o1"],
            &["o2", "o4"],
            &["o2"],
            &["o4", "o2"],
            &["o1"],
            &["o4"],
            &["o1", "o4", "o2"],
            &["o3"],
            &[],
            &["o3", "o4", "o1", "o5"],
            &["o5", "o1", "o4", "o3"],
            &["o2"],
            &[],
        ];
        for (i, (page, want)) in r.iter().zip(want).enumerate() {
            assert_eq!(pks(page), want, "query {i}");
            assert_eq!(page["cursor"], Value::Null, "query {i}: complete");
        }
        assert_eq!(
            r[0]["items"][0],
            item("o2", "META", order_doc(Some("u1"), "2026-01-01", "done"), 1)
        );

        // Limit and cursor walks, through the tie, both ways.
        let open = r[11]["items"].as_array().unwrap().clone();
        let open_rev = r[12]["items"].as_array().unwrap().clone();
        for limit in [1, 2, 3, 4] {
            let fwd = json!({"index": "by-status", "pk": "open"});
            assert_eq!(walk_query(&mut s, &fwd, limit), open, "limit {limit}");
            let rev = json!({"index": "by-status", "pk": "open", "forward": false});
            assert_eq!(walk_query(&mut s, &rev, limit), open_rev, "limit {limit}");
        }
        let q2 =
            json!({"index": "by-user", "pk": "u1", "sk": {"ge": "2026-01-02"}, "forward": false});
        assert_eq!(
            pks(&json!({"items": walk_query(&mut s, &q2, 1)})),
            ["o1", "o4"]
        );

        // Writes move items between index partitions, within the event and after it.
        let r = s.run(json!([
            {"op": "table.update", "table": "orders", "pk": "o4", "sk": "META", "patch": {"status": "done"}},
            {"op": "table.delete", "table": "orders", "pk": "o3", "sk": "META"},
            {"op": "table.update", "table": "orders", "pk": "o5", "sk": "META", "patch": {"userId": "u1"}},
            {"op": "table.put", "table": "orders", "pk": "o6", "sk": "META", "doc": order_doc(Some("u1"), "2026-01-00", "open")},
            q("by-status", "done", json!(null), true),
            q("by-status", "open", json!(null), true),
            q("by-user", "u1", json!(null), true),
            q("by-user", "u2", json!(null), true),
        ]));
        assert_eq!(pks(&r[4]), ["o2", "o4"]);
        assert_eq!(pks(&r[5]), ["o6", "o1", "o5"]);
        assert_eq!(pks(&r[6]), ["o6", "o2", "o4", "o1", "o5"]);
        assert_eq!(pks(&r[7]), Vec::<&str>::new());
        let r = s.run(json!([
            q("by-status", "done", json!(null), true),
            q("by-status", "open", json!(null), false),
            q("by-user", "u1", json!({"gt": "2026-01-01"}), true),
            q("by-user", "u2", json!(null), true),
        ]));
        assert_eq!(pks(&r[0]), ["o2", "o4"]);
        assert_eq!(pks(&r[1]), ["o5", "o1", "o6"]);
        assert_eq!(pks(&r[2]), ["o4", "o1", "o5"]);
        assert_eq!(pks(&r[3]), Vec::<&str>::new());
        assert_eq!(r[0]["items"][1]["version"], 2);

        let r = s.run(json!([
            q("by-nothing", "u1", json!(null), true),
            {"op": "table.query", "table": "orders", "index": "by-user", "pk": "u1", "cursor": "garbage"},
            {"op": "table.query", "table": "orders", "pk": "o1", "cursor": "[\"a\",\"b\"]"},
        ]));
        assert_eq!(err(&r[0]), "no-such-index");
        assert_eq!(err(&r[1]), "invalid-argument");
        assert_eq!(err(&r[2]), "invalid-argument");
    }
}

#[test]
fn table_ttl_documents_keys_and_access() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let before = SystemClock.now_ms();
        let r = s.run(json!([
            {"op": "table.put", "table": "orders", "pk": "ttl", "sk": "short", "doc": {"a": 1}, "ttl_ms": 1},
            {"op": "table.put", "table": "orders", "pk": "ttl", "sk": "long", "doc": {"a": 2}, "ttl_ms": 3_600_000},
            {"op": "table.get", "table": "orders", "pk": "ttl", "sk": "long"},
        ]));
        let after = SystemClock.now_ms();
        assert_eq!(r[0], 1);
        assert_eq!(r[1], 1);
        let expires = r[2]["expires_at"].as_u64().expect("expires_at is set");
        assert!(
            (before + 3_600_000..=after + 3_600_000).contains(&expires),
            "{expires} not within [{before}, {after}] + 1 h"
        );
        std::thread::sleep(Duration::from_millis(20));
        let r = s.run(json!([
            {"op": "table.get", "table": "orders", "pk": "ttl", "sk": "short"},
            {"op": "table.query", "table": "orders", "pk": "ttl"},
            {"op": "table.update", "table": "orders", "pk": "ttl", "sk": "short", "patch": {"b": 1}, "cond": "must-exist"},
            {"op": "table.delete", "table": "orders", "pk": "ttl", "sk": "short", "cond": "must-exist"},
            // An expired item counts as absent: versions start again, without the expiry.
            {"op": "table.put", "table": "orders", "pk": "ttl", "sk": "short", "doc": {"a": 3}, "cond": "must-not-exist"},
            {"op": "table.get", "table": "orders", "pk": "ttl", "sk": "short"},
        ]));
        assert_eq!(r[0], Value::Null, "an expired item is invisible");
        assert_eq!(sks(&r[1]), ["long"]);
        assert_eq!(err(&r[2]), "condition-failed");
        assert_eq!(err(&r[3]), "condition-failed");
        assert_eq!(r[4], 1);
        assert_eq!(r[5], item("ttl", "short", json!({"a": 3}), 1));
        // An update keeps the item's expiry.
        let r = s.one(json!({"op": "table.update", "table": "orders", "pk": "ttl", "sk": "long", "patch": {"b": 1}}));
        assert_eq!(r["expires_at"], expires);
        assert_eq!(r["version"], 2);

        // Documents must be JSON objects of at most 400 KiB.
        let put_raw = |raw: &str| json!({"op": "table.put", "table": "orders", "pk": "d", "sk": "1", "doc_raw": raw});
        let r = s.run(json!([
            put_raw("[1,2]"),
            put_raw("not json"),
            put_raw("\"text\""),
            put_raw("null"),
            put_raw(""),
            put_raw("{\"a\":1}"),
            {"op": "table.put", "table": "orders", "pk": "d", "sk": "2", "doc_size": MAX_DOC + 1},
            {"op": "table.update", "table": "orders", "pk": "d", "sk": "2", "patch_size": MAX_DOC + 1},
            {"op": "table.put", "table": "orders", "pk": "d", "sk": "2", "doc_size": MAX_DOC},
            {"op": "table.query", "table": "orders", "pk": "d", "sk": {"equals": "1"}},
        ]));
        for (i, r) in r[..5].iter().enumerate() {
            assert_eq!(err(r), "invalid-argument", "doc {i}");
        }
        assert_eq!(r[5], 1);
        assert_eq!(err(&r[6]), "too-large");
        assert_eq!(err(&r[7]), "too-large");
        assert_eq!(r[8], 1, "a document of exactly 400 KiB is fine");
        assert_eq!(r[9]["items"], json!([item("d", "1", json!({"a": 1}), 1)]));

        // Keys: the partition key must not be empty, and neither key may exceed 1 KiB.
        let long = "k".repeat(TABLE_MAX_KEY + 1);
        let max = "k".repeat(TABLE_MAX_KEY);
        let r = s.run(json!([
            {"op": "table.put", "table": "orders", "pk": "", "sk": "1", "doc": {}},
            {"op": "table.get", "table": "orders", "pk": "", "sk": "1"},
            {"op": "table.delete", "table": "orders", "pk": "", "sk": "1"},
            {"op": "table.update", "table": "orders", "pk": "", "sk": "1", "patch": {}},
            {"op": "table.query", "table": "orders", "pk": ""},
            {"op": "table.put", "table": "orders", "pk": long, "sk": "1", "doc": {}},
            {"op": "table.put", "table": "orders", "pk": "k", "sk": long, "doc": {}},
            {"op": "table.get", "table": "orders", "pk": "k", "sk": long},
            {"op": "table.query", "table": "orders", "pk": long},
            {"op": "table.put", "table": "orders", "pk": max, "sk": max, "doc": {}},
            {"op": "table.put", "table": "orders", "pk": "k", "sk": "", "doc": {"empty-sk": true}},
            {"op": "table.get", "table": "orders", "pk": "k", "sk": ""},
        ]));
        for (i, r) in r[..5].iter().enumerate() {
            assert_eq!(err(r), "invalid-argument", "empty pk, op {i}");
        }
        for (i, r) in r[5..9].iter().enumerate() {
            assert_eq!(err(r), "too-large", "long key, op {i}");
        }
        assert_eq!(r[9], 1);
        assert_eq!(r[10], 1, "an empty sort key is allowed");
        assert_eq!(r[11], item("k", "", json!({"empty-sk": true}), 1));

        // A table not granted is refused at `open`.
        let r = s.run(json!([
            {"op": "table.get", "table": "secret", "pk": "a", "sk": "b"},
            {"op": "table.put", "table": "secret", "pk": "a", "sk": "b", "doc": {}},
            {"op": "table.query", "table": "secret", "pk": "a"},
        ]));
        for r in &r {
            assert_eq!(err(r), "access-denied");
        }
    }
}

#[test]
fn emit_queues_events_and_enforces_subjects_and_caps() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let emit = |subject: &str| json!({"op": "emit", "subject": subject, "data": {"n": 1}});
        let headers: Vec<Value> = (0..MAX_HEADERS)
            .map(|i| json!([format!("h{i}"), "v"]))
            .collect();
        let mut too_many = headers.clone();
        too_many.push(json!(["one", "more"]));
        let inv = s.invoke(&json!({"ops": [
            {"op": "emit", "subject": "events.created", "data": {"a": [1, "two"]}, "headers": [["h1", "v1"], ["h2", "v2"]]},
            emit("orders.created"),
            emit("events.*"),
            emit("events.>"),
            emit("events"),
            emit(""),
            emit("events..x"),
            emit("events.a b"),
            emit(">"),
            {"op": "emit", "subject": "events.headers", "data": {}, "headers": headers},
            {"op": "emit", "subject": "events.headers", "data": {}, "headers": too_many},
            {"op": "emit", "subject": "events.big", "data_size": MAX_EMIT_DATA},
            {"op": "emit", "subject": "events.big", "data_size": MAX_EMIT_DATA + 1},
            {"op": "emit", "subject": "events.last", "data_raw": "raw", "repeat": 2},
        ]}));
        let r = results(&inv);
        assert_eq!(r[0], 1);
        for (i, r) in r[1..9].iter().enumerate() {
            assert_eq!(err(r), "invalid-subject", "subject {i}");
        }
        assert_eq!(r[9], 1, "{MAX_HEADERS} headers are fine");
        assert_eq!(err(&r[10]), "too-large");
        assert_eq!(r[11], 1, "exactly 1 MiB of data is fine");
        assert_eq!(err(&r[12]), "too-large");
        assert_eq!(r[13], 2);
        // Only the accepted emits, in call order, as the guest made them.
        let subjects: Vec<&str> = inv.emitted.iter().map(|e| e.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "events.created",
                "events.headers",
                "events.big",
                "events.last",
                "events.last"
            ]
        );
        let first = &inv.emitted[0];
        assert_eq!(
            serde_json::from_slice::<Value>(&first.data).unwrap(),
            json!({"a": [1, "two"]})
        );
        assert_eq!(
            first.headers,
            [("h1", "v1"), ("h2", "v2")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(inv.emitted[1].headers.len(), MAX_HEADERS);
        assert_eq!(inv.emitted[2].data.len(), MAX_EMIT_DATA);
        assert_eq!(
            inv.emitted[4],
            Emitted {
                subject: "events.last".into(),
                data: b"raw".to_vec(),
                headers: vec![]
            }
        );

        // Subjects of at most 256 bytes; headers of at most 16 KiB in all.
        let subject = format!("events.{}", "s".repeat(MAX_SUBJECT - "events.".len()));
        let r = s.run(json!([
            {"op": "emit", "subject": subject, "data": {}},
            {"op": "emit", "subject": format!("{subject}s"), "data": {}},
            {"op": "emit", "subject": "events.h", "data": {}, "headers": [["h", "v".repeat(MAX_HEADER_BYTES - 1)]]},
            {"op": "emit", "subject": "events.h", "data": {}, "headers": [["h", "v".repeat(MAX_HEADER_BYTES)]]},
        ]));
        assert_eq!(r[0], 1);
        assert_eq!(err(&r[1]), "invalid-subject");
        assert_eq!(r[2], 1);
        assert_eq!(err(&r[3]), "too-large");

        // At most 256 emits per event, counting every emit of the event.
        let inv = s.invoke(&json!({"ops": [
            {"op": "emit", "subject": "events.many", "data": 1, "repeat": MAX_EMITS + 1},
            emit("events.one-more"),
        ]}));
        let r = results(&inv);
        assert_eq!(err(&r[0]), "too-large");
        assert_eq!(err(&r[1]), "too-large");
        assert_eq!(inv.emitted.len(), MAX_EMITS, "the first 256 were kept");
        let inv = s.invoke(&json!({"ops": [
            {"op": "emit", "subject": "events.many", "data": 1, "repeat": MAX_EMITS - 1},
            emit("events.one-more"),
            emit("events.one-too-many"),
        ]}));
        let r = results(&inv);
        assert_eq!(
            r[0],
            MAX_EMITS - 1,
            "the count starts again with each event"
        );
        assert_eq!(r[1], 1);
        assert_eq!(err(&r[2]), "too-large");
        assert_eq!(inv.emitted.len(), MAX_EMITS);
        assert_eq!(inv.emitted[MAX_EMITS - 1].subject, "events.one-more");
    }
}

#[test]
fn a_failed_event_drops_its_writes_and_emits() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let writes = json!([
            {"op": "kv.set", "bucket": "b", "key": "ws", "value": "1"},
            {"op": "table.put", "table": "orders", "pk": "ws", "sk": "1", "doc": {"userId": "ws-user", "createdAt": "t"}},
            {"op": "emit", "subject": "events.ws", "data": {}},
            // The event reads its own writes.
            {"op": "kv.get", "bucket": "b", "key": "ws"},
            {"op": "kv.list", "bucket": "b", "prefix": "ws"},
            {"op": "table.get", "table": "orders", "pk": "ws", "sk": "1"},
            {"op": "table.query", "table": "orders", "index": "by-user", "pk": "ws-user"},
        ]);
        let seen = json!([
            null,
            1,
            1,
            "1",
            {"keys": ["ws"], "cursor": null},
            item("ws", "1", json!({"userId": "ws-user", "createdAt": "t"}), 1),
            {"items": [item("ws", "1", json!({"userId": "ws-user", "createdAt": "t"}), 1)], "cursor": null},
        ]);
        let inv = s.invoke(&json!({"ops": writes, "fail": "Script.Failed"}));
        let e = inv.outcome.as_ref().unwrap_err();
        assert_eq!(e.name, "Script.Failed");
        assert!(!e.retryable);
        assert_eq!(
            serde_json::from_str::<Value>(&e.cause).unwrap(),
            json!({"results": seen})
        );
        assert!(inv.emitted.is_empty(), "a failed event emits nothing");

        let reads = json!([
            {"op": "kv.get", "bucket": "b", "key": "ws"},
            {"op": "kv.exists", "bucket": "b", "key": "ws"},
            {"op": "kv.list", "bucket": "b", "prefix": "ws"},
            {"op": "table.get", "table": "orders", "pk": "ws", "sk": "1"},
            {"op": "table.query", "table": "orders", "pk": "ws"},
            {"op": "table.query", "table": "orders", "index": "by-user", "pk": "ws-user"},
        ]);
        let nothing = [
            json!(null),
            json!(false),
            json!({"keys": [], "cursor": null}),
            json!(null),
            json!({"items": [], "cursor": null}),
            json!({"items": [], "cursor": null}),
        ];
        assert_eq!(s.run(reads.clone()), nothing);

        // The same writes in a successful event are visible to the next one.
        let inv = s.invoke(&json!({"ops": writes}));
        assert_eq!(results(&inv), seen.as_array().unwrap().as_slice());
        assert_eq!(inv.emitted.len(), 1);
        assert_eq!(inv.emitted[0].subject, "events.ws");
        let r = s.run(reads.clone());
        assert_eq!(r[0], "1");
        assert_eq!(r[1], true);
        assert_eq!(r[2], json!({"keys": ["ws"], "cursor": null}));
        assert_eq!(r[3], seen[5]);
        assert_eq!(r[4], json!({"items": [seen[5]], "cursor": null}));
        assert_eq!(r[5], json!({"items": [seen[5]], "cursor": null}));

        // A failed delete and update leave the committed data alone.
        let inv = s.invoke(&json!({"ops": [
            {"op": "kv.delete", "bucket": "b", "key": "ws"},
            {"op": "kv.increment", "bucket": "b", "key": "counter", "delta": 1},
            {"op": "table.update", "table": "orders", "pk": "ws", "sk": "1", "patch": {"userId": null}},
            {"op": "table.delete", "table": "orders", "pk": "ws", "sk": "1"},
        ], "fail": "Script.Failed"}));
        assert_eq!(inv.outcome.unwrap_err().name, "Script.Failed");
        let r = s.run(reads);
        assert_eq!(r[0], "1");
        assert_eq!(r[3], seen[5]);
        assert_eq!(r[5], json!({"items": [seen[5]], "cursor": null}));
        assert_eq!(
            s.one(json!({"op": "kv.get", "bucket": "b", "key": "counter"})),
            Value::Null
        );
    }
}

#[test]
fn events_of_one_batch_see_the_kept_writes_of_earlier_ones_only() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let events = [
            json!({"ops": [
                {"op": "kv.set", "bucket": "b", "key": "dropped", "value": "1"},
                {"op": "table.put", "table": "orders", "pk": "batch", "sk": "dropped", "doc": {}},
            ], "fail": "Script.Failed"}),
            json!({"ops": [
                {"op": "kv.get", "bucket": "b", "key": "dropped"},
                {"op": "table.get", "table": "orders", "pk": "batch", "sk": "dropped"},
                {"op": "kv.set", "bucket": "b", "key": "kept", "value": "2"},
                {"op": "table.put", "table": "orders", "pk": "batch", "sk": "kept", "doc": {"v": 1}, "cond": "must-not-exist"},
            ]}),
            json!({"ops": [
                {"op": "kv.get", "bucket": "b", "key": "kept"},
                {"op": "table.put", "table": "orders", "pk": "batch", "sk": "kept", "doc": {"v": 2}, "cond": {"version-is": 1}},
                {"op": "table.query", "table": "orders", "pk": "batch"},
            ]}),
        ]
        .map(|data| s.event(&data));
        let invs = s.worker.invoke_batch(&events);
        assert_eq!(invs[0].outcome.as_ref().unwrap_err().name, "Script.Failed");
        assert_eq!(
            results(&invs[1]),
            [json!(null), json!(null), json!(null), json!(1)]
        );
        let r = results(&invs[2]);
        assert_eq!(r[0], "2");
        assert_eq!(r[1], 2);
        assert_eq!(sks(&r[2]), ["kept"]);
        let r = s.run(json!([
            {"op": "kv.get-many", "bucket": "b", "keys": ["dropped", "kept"]},
            {"op": "table.query", "table": "orders", "pk": "batch"},
        ]));
        assert_eq!(r[0], json!([null, "2"]));
        assert_eq!(
            r[1]["items"],
            json!([item("batch", "kept", json!({"v": 2}), 2)])
        );
    }
}

#[test]
fn malformed_scripts_fail_with_input_invalid() {
    let h = Harness::new();
    let stage = deploy(&h);
    let mut s = Scripts::new("memory", h.worker(stage));
    for data in [
        json!("not an object"),
        json!({"ops": "nope"}),
        json!({"ops": [{"op": "kv.fly", "bucket": "b"}]}),
        json!({"ops": [{"op": "kv.get", "bucket": "b"}]}),
        json!({"ops": [{"op": "table.put", "table": "orders", "pk": "a", "sk": "b"}]}),
        json!({"ops": [{"op": "table.query", "table": "orders", "pk": "a", "sk": {"near": "x"}}]}),
        json!({"ops": [{"op": "emit", "subject": "events.x"}]}),
        json!({"ops": [], "fail": 7}),
    ] {
        let inv = s.invoke(&data);
        let e = inv.outcome.unwrap_err();
        assert_eq!(e.name, "Input.Invalid", "{data}");
        assert!(!e.retryable);
    }
    // An empty script succeeds with no results.
    assert!(s.run(json!([])).is_empty());
}

#[test]
fn table_updates_may_not_grow_a_document_past_the_cap() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let three_quarters = MAX_DOC * 3 / 4;
        let r = s.run(json!([
            {"op": "table.put", "table": "orders", "pk": "g", "sk": "1", "doc_size": three_quarters},
            // Each patch is under the cap; the merged document would not be.
            {"op": "table.update", "table": "orders", "pk": "g", "sk": "1", "patch": {"more": "y".repeat(three_quarters)}},
            {"op": "table.get", "table": "orders", "pk": "g", "sk": "1"},
        ]));
        assert_eq!(r[0], 1);
        assert_eq!(err(&r[1]), "too-large");
        assert_eq!(r[2]["version"], 1, "the refused update wrote nothing");
        assert!(r[2]["doc"].get("more").is_none());
        // Replacing the padding keeps it within the cap. (One big result per event: outputs
        // are capped at 1 MiB.)
        let r = s.one(json!({"op": "table.update", "table": "orders", "pk": "g", "sk": "1", "patch_size": MAX_DOC}));
        assert_eq!(r["version"], 2);
        assert_eq!(r["doc"].to_string().len(), MAX_DOC);
        // A missing item is created from the patch: exactly the cap is fine, one more byte not.
        let r = s.one(json!({"op": "table.update", "table": "orders", "pk": "g", "sk": "2", "patch_size": MAX_DOC}));
        assert_eq!(r["version"], 1);
        let r = s.one(json!({"op": "table.update", "table": "orders", "pk": "g", "sk": "2", "patch": {"x": 1}}));
        assert_eq!(err(&r), "too-large");
    }
}

#[test]
fn pages_are_capped_and_inverted_ranges_are_empty() {
    let h = Harness::new();
    let stage = deploy(&h);
    for (name, make) in backends(&h) {
        let mut s = Scripts::new(name, make(stage.clone()));
        let mut ops: Vec<Value> = (0..=MAX_BATCH)
            .map(|i| json!({"op": "table.put", "table": "orders", "pk": "big", "sk": format!("{i:04}"), "doc": {}}))
            .collect();
        ops.push(json!({"op": "kv.set-many", "bucket": "b", "count": MAX_BATCH}));
        ops.push(json!({"op": "kv.set", "bucket": "b", "key": "k9999", "value": "last"}));
        s.run(Value::Array(ops));
        let r = s.run(json!([
            {"op": "table.query", "table": "orders", "pk": "big", "limit": 5000},
            {"op": "kv.list", "bucket": "b", "prefix": "k", "limit": 5000},
        ]));
        assert_eq!(r[0]["items"].as_array().unwrap().len(), MAX_BATCH);
        assert!(r[0]["cursor"].is_string());
        assert_eq!(r[1]["keys"].as_array().unwrap().len(), MAX_BATCH);
        assert!(r[1]["cursor"].is_string());
        let r = s.run(json!([
            {"op": "table.query", "table": "orders", "pk": "big", "limit": 5000, "cursor": r[0]["cursor"]},
            {"op": "kv.list", "bucket": "b", "prefix": "k", "limit": 5000, "cursor": r[1]["cursor"]},
        ]));
        assert_eq!(sks(&r[0]), ["1000"]);
        assert_eq!(r[0]["cursor"], Value::Null);
        assert_eq!(r[1], json!({"keys": ["k9999"], "cursor": null}));

        // Inverted ranges and cursors outside the range match nothing (and do not fail).
        s.run(json!([
            {"op": "table.put", "table": "orders", "pk": "inv", "sk": "a", "doc": {"userId": "inv", "createdAt": "a"}},
            {"op": "table.put", "table": "orders", "pk": "inv", "sk": "c", "doc": {"userId": "inv", "createdAt": "c"}},
        ]));
        let r = s.run(json!([
            {"op": "table.query", "table": "orders", "pk": "inv", "sk": {"between": ["b", "a"]}},
            {"op": "table.query", "table": "orders", "pk": "inv", "sk": {"lt": "b"}, "cursor": "[\"zzz\"]"},
            {"op": "table.query", "table": "orders", "pk": "inv", "sk": {"gt": "b"}, "cursor": "[\"a\"]", "forward": false},
            {"op": "table.query", "table": "orders", "index": "by-user", "pk": "inv", "sk": {"between": ["b", "a"]}},
            {"op": "table.query", "table": "orders", "index": "by-user", "pk": "inv", "sk": {"lt": "b"}, "cursor": "[\"zzz\",\"inv\",\"z\"]"},
            {"op": "kv.list", "bucket": "b", "prefix": "k1", "cursor": "zzz"},
        ]));
        for page in &r[..5] {
            assert_eq!(page, &json!({"items": [], "cursor": null}));
        }
        assert_eq!(r[5], json!({"keys": [], "cursor": null}));
    }
}
