//! The API over real HTTP on a loopback listener (port 0): health, the OpenAPI document,
//! tokens and their scopes, and every kind of refusal as a problem body that stores nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_api::stages::{Bytes, Reply};
use sluice_api::triggers::Reply as TriggerReply;
use sluice_api::workflows::Reply as WorkflowReply;
use sluice_api::{
    Api, Callback, Description, EventSink, Invocation, Invoked, Limits, Outgoing, Page, Problem,
    PublishFailure, Published, Readiness, StageFailure, StageService, StateService, Summary,
    TokenStore, TriggerInfo, TriggerService, Version, WorkflowService, auth, router,
};

/// Readiness a test switches: the store's, always ready; NATS's, as `nats_up` says.
struct Switch {
    nats_up: AtomicBool,
}

impl Readiness for Switch {
    fn check(&self) -> Vec<(String, Result<(), String>)> {
        let nats = if self.nats_up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("not connected".to_owned())
        };
        vec![("store".into(), Ok(())), ("nats".into(), nats)]
    }
}

/// Records what the API publishes, as a stream `TEST` capturing every subject but `void.>`
/// would: a repeated id is a duplicate.
#[derive(Default)]
struct Recorder {
    sent: parking_lot::Mutex<Vec<Outgoing>>,
}

impl EventSink for Recorder {
    fn publish(
        &self,
        m: Outgoing,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Published, PublishFailure>> + Send + '_>>
    {
        Box::pin(async move {
            if m.subject.starts_with("void.") {
                return Err(PublishFailure::NoStream);
            }
            let mut sent = self.sent.lock();
            if let Some(i) = sent.iter().position(|s| s.id == m.id) {
                return Ok(Published {
                    stream: "TEST".into(),
                    seq: i as u64 + 1,
                    duplicate: true,
                });
            }
            sent.push(m);
            Ok(Published {
                stream: "TEST".into(),
                seq: sent.len() as u64,
                duplicate: false,
            })
        })
    }
}

/// Stages for the HTTP layer's own checks (limits, concurrency): an upload is accepted as
/// version 1; an invocation echoes its data once `gate` lets it through. The stage routes on
/// real components are tested through `sluice up` (`host/sluice/tests/stages.rs`).
#[derive(Default)]
struct GatedStages {
    gate: tokio::sync::Notify,
    entered: std::sync::atomic::AtomicUsize,
}

impl StageService for GatedStages {
    fn deploy(&self, name: String, c: Option<Bytes>, _: Option<Value>) -> Reply<'_, Version> {
        Box::pin(async move {
            Ok(Version {
                stage: name,
                version: 1,
                sha256: String::new(),
                size: c.map_or(0, |c| c.len() as u64),
                world: "stage".into(),
                config: json!({}),
                created_ms: 0,
            })
        })
    }
    fn list(&self) -> Result<Vec<Summary>, StageFailure> {
        Ok(Vec::new())
    }
    fn describe(&self, name: &str) -> Result<Description, StageFailure> {
        Err(StageFailure::NotFound {
            detail: format!("no stage named '{name}'"),
            field: "name",
        })
    }
    fn set_alias(&self, _: String, _: String, _: u64) -> Reply<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn remove_alias(&self, _: &str, _: &str) -> Result<(), StageFailure> {
        Ok(())
    }
    fn delete(&self, _: &str) -> Result<(), StageFailure> {
        Ok(())
    }
    fn invoke(&self, i: Invocation) -> Reply<'_, Invoked> {
        Box::pin(async move {
            self.entered.fetch_add(1, Ordering::SeqCst);
            self.gate.notified().await;
            Ok(Invoked {
                version: 1,
                event_id: i.key.unwrap_or_default(),
                replayed: false,
                outcome: Ok(i.data),
            })
        })
    }
}

/// No triggers: the trigger routes on a real host are tested through `sluice up`
/// (`host/sluice/tests/live.rs`); here only what the HTTP layer refuses by itself.
struct NoTriggers;

impl TriggerService for NoTriggers {
    fn create(&self, _: Value) -> TriggerReply<'_, TriggerInfo> {
        Box::pin(async { Err(Problem::not_found("no such stage").at("/stage")) })
    }
    fn list(&self) -> TriggerReply<'_, Vec<TriggerInfo>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn describe(&self, name: String) -> TriggerReply<'_, TriggerInfo> {
        Box::pin(async move { Err(Problem::not_found(format!("no trigger named '{name}'"))) })
    }
    fn delete(&self, name: String) -> TriggerReply<'_, ()> {
        Box::pin(async move { Err(Problem::not_found(format!("no trigger named '{name}'"))) })
    }
}

/// No workflows: the workflow routes on a real engine are tested through `sluice up`
/// (`host/sluice/tests/workflows_api.rs`).
struct NoWorkflows;

fn no_workflow<T>() -> WorkflowReply<'static, T> {
    Box::pin(async { Err(Problem::not_found("no such workflow")) })
}

impl WorkflowService for NoWorkflows {
    fn put(&self, _: String, _: Value, _: Option<String>) -> WorkflowReply<'_, (bool, Value)> {
        no_workflow()
    }
    fn list(&self) -> WorkflowReply<'_, Value> {
        Box::pin(async { Ok(json!({"workflows": []})) })
    }
    fn get(&self, _: String) -> WorkflowReply<'_, Value> {
        no_workflow()
    }
    fn delete(&self, _: String) -> WorkflowReply<'_, ()> {
        no_workflow()
    }
    fn start(&self, _: String, _: Option<String>, _: Value) -> WorkflowReply<'_, (bool, Value)> {
        no_workflow()
    }
    fn executions(&self, _: String, _: Page) -> WorkflowReply<'_, Value> {
        no_workflow()
    }
    fn describe(&self, _: String, _: String) -> WorkflowReply<'_, Value> {
        no_workflow()
    }
    fn history(&self, _: String, _: String, _: Page) -> WorkflowReply<'_, Value> {
        no_workflow()
    }
    fn stop(
        &self,
        _: String,
        _: String,
        _: Option<String>,
        _: Option<String>,
    ) -> WorkflowReply<'_, Value> {
        no_workflow()
    }
    fn callback(&self, _: String, _: Callback) -> WorkflowReply<'_, ()> {
        no_workflow()
    }
}

/// An empty store: the state routes on a real one are tested through `sluice up`.
struct NoState;

impl StateService for NoState {
    fn kv_get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, Problem> {
        Ok(None)
    }
    fn kv_list(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> Result<sluice_model::state::KeyPage, Problem> {
        Ok(sluice_model::state::KeyPage::default())
    }
    fn query(
        &self,
        _: &str,
        _: sluice_model::state::Query,
    ) -> Result<sluice_model::state::QueryPage, Problem> {
        Ok(sluice_model::state::QueryPage::default())
    }
}

/// Fixed metrics text.
struct FixedMetrics;

impl sluice_api::MetricsSource for FixedMetrics {
    fn render(&self) -> std::pin::Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async { "sluice_test 1\n".to_owned() })
    }
}

struct Host {
    events: Arc<Recorder>,
    stages: Arc<GatedStages>,
    base: String,
    admin: String,
    tokens: Arc<TokenStore>,
    switch: Arc<Switch>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Arc::new(TokenStore::open(&dir.path().join("tokens.json")).unwrap());
    let admin = auth::admin_token(dir.path(), &tokens, 1).unwrap();
    let switch = Arc::new(Switch {
        nats_up: AtomicBool::new(true),
    });
    let events = Arc::new(Recorder::default());
    let stages = Arc::new(GatedStages::default());
    let api = Api {
        tokens: Arc::clone(&tokens),
        readiness: switch.clone(),
        events: events.clone(),
        stages: stages.clone(),
        triggers: Arc::new(NoTriggers),
        workflows: Arc::new(NoWorkflows),
        state: Arc::new(NoState),
        metrics: Arc::new(FixedMetrics),
    };
    let limits = Limits {
        body_bytes: 4096,
        component_bytes: 16384,
        invoke_bytes: 8192,
        invocations: 1,
        ..Limits::default()
    };
    let (listener, addr): (_, SocketAddr) = sluice_api::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sluice_api::serve(listener, router(api, &limits), async {
        let _ = stopped.await;
    }));
    Host {
        events,
        stages,
        base: format!("http://{addr}"),
        admin,
        tokens,
        switch,
        http: reqwest::Client::new(),
        _dir: dir,
        _stop: stop,
    }
}

/// The status and body of a problem answer, checked to be one.
async fn problem(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "a problem body for {status}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:sluice:problem:")
    );
    assert!(!body["detail"].as_str().unwrap().is_empty());
    (status, body)
}

#[tokio::test]
async fn health_needs_no_token_and_readiness_names_what_is_down() {
    let h = host().await;
    let r = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = h
        .http
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    h.switch.nats_up.store(false, Ordering::SeqCst);
    let r = h
        .http
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["checks"],
        json!([{"name": "store", "ready": true}, {"name": "nats", "ready": false, "reason": "not connected"}])
    );
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_the_routes_and_their_auth() {
    let h = host().await;
    let r = h
        .http
        .get(format!("{}/v1/openapi.json", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/tokens",
        "/v1/tokens/{id}",
        "/v1/events/{subject}",
        "/v1/stages",
        "/v1/stages/{name}",
        "/v1/stages/{name}/config",
        "/v1/stages/{name}/aliases/{alias}",
        "/v1/stages/{target}/invoke",
        "/v1/triggers",
        "/v1/triggers/{name}",
        "/v1/workflows",
        "/v1/workflows/{name}",
        "/v1/workflows/{name}/executions",
        "/v1/workflows/{name}/executions/{execution}",
        "/v1/workflows/{name}/executions/{execution}/history",
        "/v1/workflows/{name}/executions/{execution}/stop",
        "/v1/tasks/success",
        "/v1/tasks/failure",
        "/v1/tasks/heartbeat",
        "/v1/state/kv/{bucket}",
        "/v1/state/kv/{bucket}/{key}",
        "/v1/state/tables/{table}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is described");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["paths"]["/v1/tokens"]["post"]["security"],
        json!([{"bearer": []}])
    );
}

#[tokio::test]
async fn tokens_are_created_listed_scoped_and_revoked() {
    let h = host().await;
    let url = format!("{}/v1/tokens", h.base);
    let r = h
        .http
        .post(&url)
        .bearer_auth(&h.admin)
        .json(&json!({"name": "reader", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let reader = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], json!(["read"]));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(reader.starts_with(&format!("sl_{id}_")));

    let list: Value = h
        .http
        .get(&url)
        .bearer_auth(&h.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"admin") && names.contains(&"reader"));
    assert!(
        !list
            .to_string()
            .contains(reader.rsplit('_').next().unwrap()),
        "no secret listed"
    );

    // A read token may not manage tokens.
    let (status, body) = problem(h.http.get(&url).bearer_auth(&reader).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["detail"].as_str().unwrap().contains("admin"));

    // The scheme's name is case-insensitive; a path that is no UTF-8 is a problem too.
    let r = h
        .http
        .get(&url)
        .header("authorization", format!("bearer {}", h.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = problem(
        h.http
            .delete(format!("{url}/%FF"))
            .bearer_auth(&h.admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "id");
    let r = h
        .http
        .delete(format!("{url}/{id}"))
        .bearer_auth(&h.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = problem(h.http.get(&url).bearer_auth(&reader).send().await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token is refused at once"
    );
    let (status, body) = problem(
        h.http
            .delete(format!("{url}/{id}"))
            .bearer_auth(&h.admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["field"], "id");
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_are_401_with_a_challenge() {
    let h = host().await;
    let url = format!("{}/v1/tokens", h.base);
    let forged = format!("{}0", &h.admin[..h.admin.len() - 1]);
    let attempts = [
        h.http.get(&url),
        h.http
            .get(&url)
            .header("authorization", "Basic YWRtaW46YWRtaW4="),
        h.http.get(&url).bearer_auth("sl_nonsense"),
        h.http.get(&url).bearer_auth(if forged == h.admin {
            "sl_0000000000000000_00"
        } else {
            &forged
        }),
    ];
    for a in attempts {
        let r = a.send().await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"sluice\"");
        let (status, _) = problem(r).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn bad_bodies_are_named_problems_and_store_nothing() {
    let h = host().await;
    let url = format!("{}/v1/tokens", h.base);
    let before = h.tokens.list();
    let post = || h.http.post(&url).bearer_auth(&h.admin);
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, Option<&str>)> = vec![
        (
            post().body("{\"name\":\"x\"}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            post()
                .header("content-type", "application/json")
                .body("{\"name\":"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            post().json(&json!({"name": "x", "scopes": ["read"], "extra": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            post().json(&json!({"name": "x", "scopes": ["root"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            post().json(&json!({"name": "x", "scopes": []})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/scopes"),
        ),
        (
            post().json(&json!({"name": " ", "scopes": ["read"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/name"),
        ),
        (
            post().json(&json!({"name": "x".repeat(129), "scopes": ["read"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/name"),
        ),
        (
            post().json(&json!({"name": "x".repeat(5000), "scopes": ["read"]})),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
    ];
    for (i, (req, want, field)) in cases.into_iter().enumerate() {
        let (status, body) = problem(req.send().await.unwrap()).await;
        assert_eq!(status, want, "case {i}: {body}");
        if let Some(f) = field {
            assert_eq!(body["field"], f, "case {i}");
        }
    }
    assert_eq!(h.tokens.list(), before, "a rejected request stores nothing");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let h = host().await;
    let (status, _) = problem(
        h.http
            .get(format!("{}/v1/nothing", h.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = problem(
        h.http
            .put(format!("{}/v1/tokens", h.base))
            .bearer_auth(&h.admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// `POST /v1/events/{subject}`: plain JSON with an `Idempotency-Key` (a repeat is a
/// duplicate, stored once), binary and structured CloudEvents mapped to `ce-*` headers, and
/// each refusal (scope, reserved subject, missing attribute, media type, no stream) a
/// problem that publishes nothing.
#[tokio::test]
async fn events_are_published_once_per_id_in_every_mode() {
    let h = host().await;
    let url = |subject: &str| format!("{}/v1/events/{subject}", h.base);
    let post = |subject: &str| h.http.post(url(subject)).bearer_auth(&h.admin);
    let post_json = |subject: &str, body: &'static str| {
        post(subject)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post("orders.new")
        .header("content-type", "application/json")
        .header("idempotency-key", "order-1")
        .body(r#"{"order":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": "order-1", "stream": "TEST", "seq": 1, "duplicate": false})
    );
    let again: Value = post("orders.new")
        .header("content-type", "application/json")
        .header("idempotency-key", "order-1")
        .body(r#"{"order":1}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["duplicate"], true);
    // Binary mode.
    let r = post("orders.new")
        .header("ce-specversion", "1.0")
        .header("ce-id", "ce-1")
        .header("ce-source", "/shop")
        .header("ce-type", "order.created")
        .header("content-type", "application/json")
        .body(r#"{"order":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Structured mode.
    let r = post("orders.new")
        .header("content-type", "application/cloudevents+json")
        .body(r#"{"specversion":"1.0","id":"ce-2","source":"/shop","type":"order.created","data":{"order":3}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    {
        let sent = h.events.sent.lock();
        assert_eq!(sent.len(), 3, "the duplicate was not stored twice");
        assert_eq!(sent[1].id, "ce-1");
        assert!(
            sent[1]
                .headers
                .contains(&("ce-type".into(), "order.created".into()))
        );
        assert_eq!(sent[2].payload, br#"{"order":3}"#);
    }
    // Refusals.
    let reader = h
        .tokens
        .create("reader", &[sluice_api::Scope::Read], 1)
        .unwrap()
        .1;
    let r = h
        .http
        .post(url("orders.new"))
        .bearer_auth(reader)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::FORBIDDEN);
    let r = post_json("$JS.API.STREAM.DELETE.ORDERS", "{}")
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("subject"))
    );
    let r = post("orders.new")
        .header("content-type", "application/cloudevents+json")
        .body(r#"{"specversion":"1.0","id":"x","type":"t"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/source"))
    );
    let r = post("orders.new")
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = post_json("void.x", "{}").await.unwrap();
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        h.events.sent.lock().len(),
        3,
        "no refusal published anything"
    );
}

#[tokio::test]
async fn uploads_and_invocations_have_their_own_body_limits_and_invocations_a_concurrency_limit() {
    let h = host().await;
    let put = |len: usize| {
        h.http
            .put(format!("{}/v1/stages/s", h.base))
            .bearer_auth(&h.admin)
            .header("content-type", "application/wasm")
            .body(vec![0u8; len])
            .send()
    };
    // Past the JSON routes' 4 KiB, within the uploads' 16 KiB.
    assert_eq!(put(10_000).await.unwrap().status(), StatusCode::CREATED);
    let (status, _) = problem(put(20_000).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let invoke = |len: usize| {
        h.http
            .post(format!("{}/v1/stages/s/invoke", h.base))
            .bearer_auth(&h.admin)
            .header("idempotency-key", "k-1")
            .body(vec![b'x'; len])
            .send()
    };
    let (status, _) = problem(invoke(9000).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // One invocation at a time: the second, while the first waits at the gate, is 429.
    let first = tokio::spawn(invoke(6000));
    while h.stages.entered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = invoke(10).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "1");
    let (_, body) = problem(second).await;
    assert_eq!(body["type"], "urn:sluice:problem:too-many-invocations");
    h.stages.gate.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["sluice-event-id"], "k-1");
    assert_eq!(first.headers()["content-type"], "application/octet-stream");
    assert_eq!(first.bytes().await.unwrap().len(), 6000);
    // A malformed key is the client's error.
    let r = h
        .http
        .post(format!("{}/v1/stages/s/invoke", h.base))
        .bearer_auth(&h.admin)
        .header("idempotency-key", "a/b")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("Idempotency-Key"))
    );
}

#[tokio::test]
async fn a_trigger_definition_must_be_an_object_and_needs_deploy() {
    let h = host().await;
    let post = |token: &str, body: Value| {
        h.http
            .post(format!("{}/v1/triggers", h.base))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let (status, _) = problem(post(&h.admin, json!([1, 2])).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, reader) = h.tokens.create("r", &[sluice_api::Scope::Read], 1).unwrap();
    let (status, _) = problem(post(&reader, json!({})).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let r = h
        .http
        .get(format!("{}/v1/triggers", h.base))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"triggers": []}));
}

#[tokio::test]
async fn metrics_need_no_token_and_are_prometheus_text() {
    let h = host().await;
    let r = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(r.text().await.unwrap(), "sluice_test 1\n");
}
