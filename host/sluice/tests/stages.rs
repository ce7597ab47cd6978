//! `/v1/stages` on a real `sluice up` (managed nats-server, real redb files, real guests over
//! loopback HTTP): upload, versions and aliases, describe and delete, invocations with and
//! without an `Idempotency-Key`, every kind of refusal, and the registry surviving a restart.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_test_artifacts as guests;

mod common;
use common::{Api, Host};

/// A problem body's status and `type` suffix, checked to be a problem.
async fn problem(r: reqwest::Response) -> (StatusCode, String, Value) {
    let status = r.status();
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{status}"
    );
    let body: Value = r.json().await.unwrap();
    let kind = body["type"]
        .as_str()
        .unwrap()
        .strip_prefix("urn:sluice:problem:")
        .unwrap();
    (status, kind.to_owned(), body)
}

/// The value of the series `name` in the host's /metrics.
async fn metric(api: &Api, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

fn counter(key: &str, delta: i64) -> Value {
    json!({"bucket": "counters", "key": key, "delta": delta})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_are_uploaded_versioned_aliased_invoked_once_per_key_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::spawn(dir.path(), &[]);
    let api = Api::of(&host, dir.path());

    // Refused uploads store nothing: garbage, a core module, a component of another world.
    for (bytes, why) in [
        (b"not wasm at all".to_vec(), "not a WebAssembly component"),
        (
            vec![0, b'a', b's', b'm', 1, 0, 0, 0],
            "core WebAssembly module",
        ),
        (
            b"(component)".to_vec(),
            "does not export `sluice:platform/handler@0.1.0`",
        ),
    ] {
        let (status, body) = api.upload("counter", bytes).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["field"], "component", "{body}");
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
    }
    let (status, body) = api.upload("Bad:Name", b"x".to_vec()).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("name"))
    );
    let r = api
        .req(reqwest::Method::PUT, "/v1/stages/counter")
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(api.get("/v1/stages").await.1, json!({"stages": []}));

    // Version 1: the component alone (no grants), then version 2 with the bucket granted,
    // through a multipart upload of both.
    let component = sluice_test_artifacts::read(guests::KV_COUNTER);
    let (status, v1) = api.upload("counter", component.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(
        (v1["version"].as_u64(), v1["alias"].as_str()),
        (Some(1), Some("live"))
    );
    assert_eq!(v1["world"], "stage");
    assert_eq!(v1["size"], component.len());
    let r = api.invoke("counter", None, counter("a", 1)).await;
    let (status, kind, body) = problem(r).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "stage-error")
    );
    assert_eq!(body["error"], "State.AccessDenied", "{body}");
    assert_eq!(body["retryable"], false);

    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(component.clone()),
        )
        .text(
            "config",
            json!({"grants": {"kv_buckets": ["counters"]}}).to_string(),
        );
    let r = api
        .req(reqwest::Method::PUT, "/v1/stages/counter")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v2: Value = r.json().await.unwrap();
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["sha256"], v1["sha256"], "the same component");
    assert_eq!(v2["config"]["grants"]["kv_buckets"], json!(["counters"]));

    // A configuration that grants host directories is refused over the API.
    let r = api
        .req(reqwest::Method::PUT, "/v1/stages/counter/config")
        .json(&json!({"grants": {"dirs": [["/etc", "/etc"]]}}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "config/grants/dirs");
    let r = api
        .req(reqwest::Method::PUT, "/v1/stages/counter/config")
        .json(&json!({"limits": {"no_such_limit": 1}}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(r).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("config"))
    );

    // An invocation with a key runs once: the repeat answers the first output and the
    // counter moved once; the same key with another body is refused.
    let first = api
        .invoke("counter", Some("order-1"), counter("a", 5))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["sluice-version"], "2");
    assert_eq!(first.headers()["sluice-event-id"], "order-1");
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(first.json::<Value>().await.unwrap(), json!({"value": 5}));
    let again = api
        .invoke("counter", Some("order-1"), counter("a", 5))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), json!({"value": 5}));
    let reused = api
        .invoke("counter", Some("order-1"), counter("a", 6))
        .await;
    let (status, kind, _) = problem(reused).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::CONFLICT, "idempotency-key-reused")
    );
    // Without a key, each call is a new event.
    for want in [6, 7] {
        let r = api.invoke("counter", None, counter("a", 1)).await;
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"value": want}));
    }
    // Concurrent invocations share commits and each counts once.
    let calls = (0..40).map(|n| {
        let key = format!("burst-{n}");
        let api = &api;
        async move {
            api.invoke("counter", Some(&key), counter("b", 1))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let r = api.invoke("counter", None, counter("b", 0)).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"value": 40}));

    // A stage's named error is 422, a sandbox's 502.
    let r = api.invoke("counter", None, json!({"bucket": 1})).await;
    let (status, kind, body) = problem(r).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "stage-error")
    );
    assert_eq!(body["error"], "Input.Invalid");
    let (status, _) = api
        .upload("panics", sluice_test_artifacts::read(guests::TRAP_PANIC))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let r = api.invoke("panics", None, json!({})).await;
    let (status, kind, body) = problem(r).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::BAD_GATEWAY, "sandbox-error"),
        "{body}"
    );
    assert_eq!(body["error"], "Sandbox.Trap");

    // Aliases: live back to version 1 (no grant), a named alias at 2, explicit versions.
    let r = api
        .req(reqwest::Method::PUT, "/v1/stages/counter/aliases/live")
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = api
        .req(reqwest::Method::PUT, "/v1/stages/counter/aliases/granted")
        .json(&json!({"version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = api.invoke("counter", None, counter("a", 1)).await;
    assert_eq!(r.headers()["sluice-version"], "1");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for target in ["counter:granted", "counter:2"] {
        let r = api.invoke(target, None, counter("a", 0)).await;
        assert_eq!(r.headers()["sluice-version"], "2", "{target}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"value": 7}),
            "{target}"
        );
    }
    for (target, field) in [
        ("counter:9", "target"),
        ("counter:beta", "target"),
        ("nope", "target"),
    ] {
        let (status, kind, body) = problem(api.invoke(target, None, json!({})).await).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::NOT_FOUND, "not-found"),
            "{target}"
        );
        assert_eq!(body["field"], field, "{target}");
    }
    let r = api
        .req(reqwest::Method::PUT, "/v1/stages/counter/aliases/live")
        .json(&json!({"version": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);

    let (status, d) = api.get("/v1/stages/counter").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["aliases"], json!({"granted": 2, "live": 1}));
    assert_eq!(d["versions"].as_array().unwrap().len(), 2);
    assert_eq!(d["triggers"], json!([]));
    let (_, list) = api.get("/v1/stages").await;
    let names: Vec<&str> = list["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["counter", "panics"]);

    // What happened shows in /metrics (no token, as /healthz).
    let text = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // 1 refused + 2 keyed (one replayed, not run) + 2 unkeyed + 40 + 1 read + 1 invalid + 2 aliases...:
    // at least the 46 that ran before this point.
    assert!(
        value("sluice_invocations_total{stage=\"counter\"}") >= 46.0,
        "{text}"
    );
    assert!(
        value("sluice_invocation_errors_total{stage=\"counter\",error=\"Input.Invalid\"}") >= 1.0
    );
    assert!(
        value("sluice_invocation_errors_total{stage=\"panics\",error=\"Sandbox.Trap\"}") >= 1.0
    );
    assert!(value("sluice_invocation_seconds_count{stage=\"counter\"}") >= 46.0);
    assert!(value("sluice_batch_size_bucket{stage=\"counter\",le=\"64\"}") >= 1.0);
    assert!(value("sluice_commit_seconds_count") >= 1.0);
    assert!(
        value(
            "sluice_http_requests_total{route=\"/v1/stages/{target}/invoke\",method=\"POST\",status=\"200\"}"
        ) >= 40.0,
        "{text}"
    );
    assert_eq!(value("sluice_outbox_depth"), 0.0);

    // Without a key, an invocation that writes nothing commits nothing: its id was drawn for
    // it, so no dedupe record is kept. With a key it commits (its kept outcome), once.
    let (status, _) = api
        .upload("pass", sluice_test_artifacts::read(guests::PASSTHROUGH))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let before = metric(&api, "sluice_commit_seconds_count").await;
    for n in 0..5 {
        let r = api.invoke("pass", None, json!({"n": n})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"n": n}));
    }
    assert_eq!(metric(&api, "sluice_commit_seconds_count").await, before);
    for _ in 0..2 {
        let r = api.invoke("pass", Some("pass-1"), json!({"n": 1})).await;
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"n": 1}));
    }
    assert_eq!(
        metric(&api, "sluice_commit_seconds_count").await,
        before + 1.0
    );

    // A read-only token may look but not deploy or invoke.
    let r = api
        .req(reqwest::Method::POST, "/v1/tokens")
        .json(&json!({"name": "ro", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    let ro = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ro_api = api.with_token(&ro);
    assert_eq!(ro_api.get("/v1/stages/counter").await.0, StatusCode::OK);
    // The state the invocations wrote, read-only: the counters (8-byte little-endian
    // integers, so not JSON: hex), keys by prefix, paged.
    let (status, keys) = ro_api.get("/v1/state/kv/counters").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys, json!({"keys": ["a", "b"], "cursor": null}));
    let (_, page) = ro_api.get("/v1/state/kv/counters?limit=1").await;
    assert_eq!(page, json!({"keys": ["a"], "cursor": "a"}));
    let (_, page) = ro_api.get("/v1/state/kv/counters?cursor=a").await;
    assert_eq!(page["keys"], json!(["b"]));
    let (_, a) = ro_api.get("/v1/state/kv/counters/a").await;
    assert_eq!(
        a,
        json!({"bucket": "counters", "key": "a", "hex": "0700000000000000"})
    );
    let (status, _) = ro_api.get("/v1/state/kv/counters/zz").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, empty) = ro_api.get("/v1/state/tables/orders?pk=u-1").await;
    assert_eq!(
        (status, empty),
        (StatusCode::OK, json!({"items": [], "cursor": null}))
    );
    for (q, field) in [
        ("", "pk"),
        ("?pk=u&op=near&sk=1", "op"),
        ("?pk=u&op=between&sk=1", "sk2"),
        ("?pk=u&limit=0", "limit"),
    ] {
        let (status, p) = ro_api.get(&format!("/v1/state/tables/orders{q}")).await;
        assert_eq!(
            (status, &p["field"]),
            (StatusCode::BAD_REQUEST, &json!(field)),
            "{q}"
        );
    }
    assert_eq!(
        ro_api.upload("x", component.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ro_api.invoke("counter", None, json!({})).await.status(),
        StatusCode::FORBIDDEN
    );

    // Delete: gone from the listing, and from invocation.
    let r = api
        .req(reqwest::Method::DELETE, "/v1/stages/panics")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.get("/v1/stages/panics").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        api.invoke("panics", None, json!({})).await.status(),
        StatusCode::NOT_FOUND
    );

    // After a restart the registry serves the same versions and aliases, and a kept
    // outcome still answers its key.
    host.stop();
    let host = Host::spawn(dir.path(), &[]);
    let api = Api::of(&host, dir.path());
    let (_, d2) = api.get("/v1/stages/counter").await;
    assert_eq!(d2["aliases"], d["aliases"]);
    assert_eq!(d2["versions"], d["versions"]);
    let again = api
        .invoke("counter:2", Some("order-1"), counter("a", 5))
        .await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), json!({"value": 5}));
    let r = api.invoke("counter:granted", None, counter("a", 0)).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"value": 7}));
    host.stop();
}
