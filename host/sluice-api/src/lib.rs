//! The platform's HTTP API: JSON routes under `/v1`, described by an OpenAPI 3.1 document at
//! `/v1/openapi.json` that is generated from the same attributes as the routes
//! (`utoipa-axum`), so the two cannot drift.
//!
//! Every `/v1` route but the document needs a bearer token ([`auth`]) with the scope the
//! route names; `/healthz` and `/readyz` need none, so a load balancer can probe them. Every
//! refusal is an `application/problem+json` body ([`problem`]). Bodies are capped at
//! [`Limits::body_bytes`] and requests at [`Limits::request_time`].
//!
//! This crate is the HTTP layer only: what the routes reach (readiness today) comes through
//! traits the `sluice` binary implements, so it knows no wasmtime, redb or NATS.

pub mod auth;
pub mod events;
pub mod problem;
pub mod stages;
pub mod state;
mod tokens;
pub mod triggers;
pub mod workflows;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
pub use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub use auth::{Scope, TokenInfo, TokenStore};
pub use events::{EventSink, Outgoing, PublishFailure, Published};
pub use problem::{Json, Problem};
pub use stages::{
    Description, Invocation, Invoked, StageErrorInfo, StageFailure, StageService, Summary, Version,
};
pub use state::StateService;
pub use triggers::{ConsumerState, TriggerInfo, TriggerService};
pub use workflows::{Callback, Page, WorkflowService};

/// Whether the platform behind the API can serve: its store and its NATS connection.
pub trait Readiness: Send + Sync {
    /// Each dependency by name, and whether it is ready (with why not).
    fn check(&self) -> Vec<(String, Result<(), String>)>;
}

/// Where `/metrics` comes from: the host's Prometheus text, its scrape-time gauges
/// (consumer lag, outbox depth, open executions) refreshed first.
pub trait MetricsSource: Send + Sync {
    /// The metrics in the Prometheus text format.
    fn render(&self) -> std::pin::Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

/// The API's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body of a JSON route.
    pub body_bytes: usize,
    /// How long a request may take before it is answered 408.
    pub request_time: Duration,
    /// The largest component upload.
    pub component_bytes: usize,
    /// How long an upload (its validation and compilation) may take.
    pub upload_time: Duration,
    /// The largest event a synchronous invocation takes (Lambda's cap: 6 MB).
    pub invoke_bytes: usize,
    /// How many invocations may run at once; more are answered 429.
    pub invocations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 1 << 20,
            request_time: Duration::from_secs(30),
            // The runtime's own cap is 32 MiB; a little more so that it, with its precise
            // message, is what refuses a component just past it.
            component_bytes: (32 << 20) + (1 << 20),
            // Past the runtime's 60 s compile budget, which answers first with a named error.
            upload_time: Duration::from_secs(90),
            invoke_bytes: 6 << 20,
            invocations: 256,
        }
    }
}

/// What the routes share.
#[derive(Clone)]
pub struct Api {
    /// The host's tokens.
    pub tokens: Arc<TokenStore>,
    /// The platform's dependencies, for `/readyz`.
    pub readiness: Arc<dyn Readiness>,
    /// Where `POST /v1/events/{subject}` publishes.
    pub events: Arc<dyn EventSink>,
    /// The stages: versions, aliases, invocations.
    pub stages: Arc<dyn StageService>,
    /// The running triggers.
    pub triggers: Arc<dyn TriggerService>,
    /// The durable workflow engine.
    pub workflows: Arc<dyn WorkflowService>,
    /// The stages' state, read-only.
    pub state: Arc<dyn StateService>,
    /// `/metrics`.
    pub metrics: Arc<dyn MetricsSource>,
}

/// The caller of a `/v1` route: the token it presented, checked.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo);

impl Caller {
    /// Refuse (403) a caller without `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.0.allows(scope) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "the token '{}' lacks the scope '{}' this route needs",
                self.0.name,
                scope.name()
            )))
        }
    }
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(Problem::unauthorized(
                "this route needs a bearer token: Authorization: Bearer sl_...",
            ));
        };
        // The scheme's name is case-insensitive (RFC 9110).
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header is not 'Bearer <token>'")
            })?;
        api.tokens.verify(token.trim()).map(Caller).ok_or_else(|| {
            Problem::unauthorized("the bearer token is not a live token of this host")
        })
    }
}

/// The OpenAPI document's frame; the routes add their paths.
#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice", description = "The Sluice platform API: stages, workflows, triggers, events, tokens."),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "Bearer tokens and their scopes"),
        (name = "events", description = "Events published to JetStream (plain JSON or CloudEvents)"),
        (name = "stages", description = "Stage components: versions, aliases, synchronous invocation"),
        (name = "triggers", description = "Streams bound to stages or workflows on the running host"),
        (name = "workflows", description = "Amazon States Language workflows, executions and task tokens"),
        (name = "state", description = "The stages' key-value and table state, read-only"),
    ),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole API as one axum router, with its OpenAPI document.
pub fn router(api: Api, limits: &Limits) -> axum::Router {
    // Each group carries its own body limit and request time: a component upload is larger
    // and slower (it compiles) than a JSON call, an invocation's event may be larger too.
    let timeout =
        |t| tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, t);
    let json = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tokens::routes())
        .merge(events::routes())
        .merge(stages::routes())
        .merge(triggers::routes())
        .merge(workflows::routes())
        .merge(state::routes())
        .layer(axum::extract::DefaultBodyLimit::max(limits.body_bytes))
        .layer(timeout(limits.request_time));
    let uploads = stages::upload_routes()
        .layer(axum::extract::DefaultBodyLimit::max(limits.component_bytes))
        .layer(timeout(limits.upload_time));
    let invoke = stages::invoke_routes()
        .layer(axum::Extension(stages::InvokeSlots(Arc::new(
            tokio::sync::Semaphore::new(limits.invocations),
        ))))
        .layer(axum::extract::DefaultBodyLimit::max(limits.invoke_bytes))
        .layer(timeout(limits.request_time));
    let (routes, doc) = json.merge(uploads).merge(invoke).split_for_parts();
    let doc = Arc::new(doc);
    routes
        .route(
            "/v1/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method",
            )
        })
        // A time-out's bare 408 becomes a problem body too.
        .layer(axum::middleware::map_response(timed_out_as_problem))
        // Outermost: every answer is counted, by route and status, with its latency.
        .layer(axum::middleware::from_fn(count_request))
        .with_state(api)
}

/// A 408 without a body (the time-out layer's) as a problem.
async fn timed_out_as_problem(r: Response) -> Response {
    if r.status() == StatusCode::REQUEST_TIMEOUT && !r.headers().contains_key(header::CONTENT_TYPE)
    {
        return Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request took longer than this host allows",
        )
        .into_response();
    }
    r
}

/// Count the request by its route's pattern (not its path: names in paths would make one
/// series per stage or execution), method and status.
async fn count_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let r = next.run(req).await;
    let status = r.status().as_u16().to_string();
    metrics::histogram!("sluice_http_request_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "sluice_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .increment(1);
    r
}

/// `/metrics` (no token, as `/healthz`): Prometheus text.
async fn metrics_text(State(api): State<Api>) -> Response {
    let text = api.metrics.render().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `/healthz`: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// One dependency's readiness.
#[derive(Debug, Serialize, ToSchema)]
struct Check {
    name: String,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `/readyz`: 200 when every dependency is ready, else 503; each one's state either way.
async fn readyz(State(api): State<Api>) -> Response {
    let checks: Vec<Check> = api
        .readiness
        .check()
        .into_iter()
        .map(|(name, r)| Check {
            name,
            ready: r.is_ok(),
            reason: r.err(),
        })
        .collect();
    let status = if checks.iter().all(|c| c.ready) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(serde_json::json!({ "checks": checks }))).into_response()
}

/// Serve `router` on `listener` until `shutdown` resolves, finishing requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bind `addr` (port 0: any free port); the listener and the address it got.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let l = tokio::net::TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

/// Now, ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bare_timeout_becomes_a_problem_and_other_answers_pass() {
        let bare = StatusCode::REQUEST_TIMEOUT.into_response();
        let r = timed_out_as_problem(bare).await;
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(r.headers()[header::CONTENT_TYPE], problem::PROBLEM_JSON);
        let ok = timed_out_as_problem("fine".into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_ne!(ok.headers()[header::CONTENT_TYPE], problem::PROBLEM_JSON);
    }
}
