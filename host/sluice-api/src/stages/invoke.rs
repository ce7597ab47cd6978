//! `POST /v1/stages/{target}/invoke`: one event through a stage, answered by status (the
//! table in the parent module's docs), with the concurrency limit and the idempotency key.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Invocation, Invoked, MAX_KEY, StageErrorInfo, check_name, path};
use crate::auth::Scope;
use crate::problem::{Body, Problem};
use crate::{Api, Caller};

/// The invoke route (its own body limit, and the concurrency limit).
pub(crate) fn invoke_routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new().routes(routes!(invoke_stage))
}

/// Bounds the invocations running at once (429 past it).
#[derive(Clone)]
pub(crate) struct InvokeSlots(pub Arc<tokio::sync::Semaphore>);

/// Run one event through a stage and answer its output.
#[utoipa::path(
    post,
    path = "/v1/stages/{target}/invoke",
    tag = "stages",
    params(
        ("target" = String, Path, description = "`name`, `name:version` or `name:alias` (default `live`)", pattern = "^[a-z][a-z0-9_-]{0,63}(:([0-9]+|[a-z][a-z0-9_-]{0,63}))?$"),
        ("Idempotency-Key" = Option<String>, Header, description = "The event's id: a repeat answers the first outcome"),
    ),
    request_body(description = "The event's data (any media type; JSON by convention)", content(
        (Value = "application/json"),
        ("application/octet-stream"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stage's output", content(
            (Value = "application/json"),
            ("application/octet-stream"),
        )),
        (status = 400, description = "A malformed target or key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `invoke`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stage, version or alias", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The idempotency key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The event is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The stage returned a named error", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many invocations at once", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The sandbox stopped the stage", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The platform failed; nothing applied", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The stage ran past its deadline", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn invoke_stage(
    State(api): State<Api>,
    axum::Extension(slots): axum::Extension<InvokeSlots>,
    caller: Caller,
    target: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    caller.require(Scope::Invoke)?;
    let target = path(target)?;
    let (stage, qualifier) = match target.split_once(':') {
        Some((s, q)) => (s.to_owned(), Some(q.to_owned())),
        None => (target.clone(), None),
    };
    check_name(&stage, "target")?;
    if let Some(q) = &qualifier
        && q.parse::<u64>().is_err()
    {
        check_name(q, "target")?;
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(check_key(v)?),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(_slot) = slots.0.try_acquire() else {
        let mut r = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-invocations",
            "this host runs as many invocations at once as it allows; retry shortly",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Ok(r);
    };
    let invoked = api
        .stages
        .invoke(Invocation {
            stage,
            qualifier,
            key,
            data: body.to_vec(),
            content_type,
        })
        .await?;
    Ok(answer(invoked))
}

pub(super) fn check_key(v: &HeaderValue) -> Result<String, Problem> {
    let key = v.to_str().unwrap_or("");
    // Printable ASCII without '/' (the host's own event ids use it).
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY
        && key.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'/');
    if ok {
        Ok(key.to_owned())
    } else {
        Err(Problem::bad_request(format!(
            "the Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters, without spaces or '/'"
        ))
        .at("Idempotency-Key"))
    }
}

/// The response to an invocation: by status, as the module's table says.
pub(super) fn answer(invoked: Invoked) -> Response {
    let mut r = match invoked.outcome {
        Ok(output) => {
            let media = if serde_json::from_slice::<serde::de::IgnoredAny>(&output).is_ok() {
                "application/json"
            } else {
                "application/octet-stream"
            };
            let mut r = (StatusCode::OK, output).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
            r
        }
        Err(e) => error_problem(&e).into_response(),
    };
    let h = r.headers_mut();
    h.insert("sluice-version", HeaderValue::from(invoked.version));
    if let Ok(id) = HeaderValue::from_str(&invoked.event_id) {
        h.insert("sluice-event-id", id);
    }
    if invoked.replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

/// A named error as its problem: the stage's (422), the sandbox's (502, 504 past the
/// deadline) or the platform's (503).
pub(super) fn error_problem(e: &StageErrorInfo) -> Problem {
    let (status, kind) = if e.name == sluice_model::names::SANDBOX_TIMEOUT {
        (StatusCode::GATEWAY_TIMEOUT, "sandbox-error")
    } else if e.name.starts_with("Sandbox.") {
        (StatusCode::BAD_GATEWAY, "sandbox-error")
    } else if sluice_model::names::is_platform_fault(&e.name) {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, "stage-error")
    };
    let mut p = Problem::new(status, kind, format!("{}: {}", e.name, e.cause));
    p.extensions.insert("error".into(), e.name.clone().into());
    p.extensions.insert("cause".into(), e.cause.clone().into());
    p.extensions.insert("retryable".into(), e.retryable.into());
    p
}
