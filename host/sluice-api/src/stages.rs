//! `/v1/stages`: upload stage components as immutable versions, point aliases at them, list,
//! describe and delete stages, and invoke one synchronously.
//!
//! A **version** is a component and a configuration (limits and grants); neither changes once
//! it is made. `PUT /v1/stages/{name}` uploads a component (the body, or the `component` part
//! of a multipart form whose `config` part is the configuration) and makes the next version;
//! `PUT /v1/stages/{name}/config` makes one from the live version's component with a new
//! configuration. Either moves the `live` alias to the new version, so a rollback is one
//! `PUT /v1/stages/{name}/aliases/live`.
//!
//! **Invoke** answers by status, so a client tells the four kinds of outcome apart without
//! reading the body:
//!
//! | status | outcome |
//! |---|---|
//! | 200 | the stage's output (JSON as `application/json`, other bytes as `application/octet-stream`) |
//! | 422 `stage-error` | the stage returned a named error: `error`, `cause`, `retryable` in the problem |
//! | 502 `sandbox-error` (504 for `Sandbox.Timeout`) | the sandbox stopped the stage: a trap, a limit, a broken contract |
//! | 400, 404, 409, 413, 429 | the request: malformed, unknown stage or version, idempotency key reused with another body, too large, too many invocations at once |
//! | 503 `unavailable` | the platform (the store) failed; nothing was applied, retry |
//!
//! With an `Idempotency-Key` header the key is the event's id: a repeat (same stage, same
//! body) answers the first outcome again (with `Idempotent-Replayed: true`) and applies no
//! state twice; the same key with another stage or body is 409 `idempotency-key-reused`
//! (the IETF draft's 422 would be mistaken for a stage error here). Outcomes that would not
//! repeat (a retryable error, a platform fault) are not kept, so a retry runs again.

pub use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Scope;
use crate::problem::{Body, Json, Problem, too_large};
use crate::{Api, Caller};

mod invoke;

pub(crate) use invoke::{InvokeSlots, invoke_routes};
#[cfg(test)]
use invoke::{answer, check_key, error_problem};

/// A future the service returns.
pub type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, StageFailure>> + Send + 'a>>;

/// What the stage routes reach (the host implements it on its registry and runtime).
pub trait StageService: Send + Sync {
    /// Make the next version of `name` from `component` (or, when `None`, the live version's
    /// component) and `config` (or, when `None`, the live version's configuration), validated
    /// and precompiled, and move `live` to it.
    fn deploy(
        &self,
        name: String,
        component: Option<Bytes>,
        config: Option<Value>,
    ) -> Reply<'_, Version>;
    /// Every stage.
    fn list(&self) -> Result<Vec<Summary>, StageFailure>;
    /// One stage, with its versions and what uses it.
    fn describe(&self, name: &str) -> Result<Description, StageFailure>;
    /// Point `alias` of `name` at `version` (`live`: what triggers run from their next batch).
    fn set_alias(&self, name: String, alias: String, version: u64) -> Reply<'_, ()>;
    /// Remove `alias` of `name` (`live` cannot be removed).
    fn remove_alias(&self, name: &str, alias: &str) -> Result<(), StageFailure>;
    /// Delete `name` with every version (refused while a trigger or workflow uses it).
    fn delete(&self, name: &str) -> Result<(), StageFailure>;
    /// Run one event through `target` (see [`Invocation`]).
    fn invoke(&self, invocation: Invocation) -> Reply<'_, Invoked>;
}

/// Why a stage operation failed; each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageFailure {
    /// 404: no such stage, version or alias (`field` names which).
    NotFound {
        /// What is missing.
        detail: String,
        /// The parameter at fault.
        field: &'static str,
    },
    /// 422: the component or the configuration is not acceptable.
    Invalid {
        /// Why.
        detail: String,
        /// Where: `component`, or a JSON pointer into the configuration.
        field: String,
    },
    /// 413: the component is larger than this host accepts.
    TooLarge(String),
    /// 409: the stage is in use, or an idempotency key was used for another request.
    Conflict {
        /// The problem's kind (`in-use`, `idempotency-key-reused`).
        kind: &'static str,
        /// Why.
        detail: String,
    },
    /// 503: the platform failed; nothing was applied.
    Unavailable(String),
}

impl From<StageFailure> for Problem {
    fn from(f: StageFailure) -> Self {
        match f {
            StageFailure::NotFound { detail, field } => Problem::not_found(detail).at(field),
            StageFailure::Invalid { detail, field } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-component",
                detail,
            )
            .at(field),
            StageFailure::TooLarge(detail) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail)
            }
            StageFailure::Conflict { kind, detail } => {
                Problem::new(StatusCode::CONFLICT, kind, detail)
            }
            StageFailure::Unavailable(detail) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
            }
        }
    }
}

/// One version of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Version {
    /// The stage.
    pub stage: String,
    /// 1, 2, ...: each upload or configuration change makes the next.
    pub version: u64,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// The component's size in bytes.
    pub size: u64,
    /// `stage`, or `batch-stage` when it also exports `handle-batch`.
    pub world: String,
    /// Limits and grants.
    #[schema(value_type = Object)]
    pub config: Value,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
}

/// A stage in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    /// Its name.
    pub name: String,
    /// Its newest version.
    pub latest: u64,
    /// Its aliases and the versions they point at.
    pub aliases: BTreeMap<String, u64>,
}

/// A stage described.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Description {
    /// Its name.
    pub name: String,
    /// Every version, oldest first.
    pub versions: Vec<Version>,
    /// Its aliases and the versions they point at.
    pub aliases: BTreeMap<String, u64>,
    /// The triggers that run it.
    pub triggers: Vec<String>,
    /// The workflows whose Tasks run it.
    pub workflows: Vec<String>,
}

/// One synchronous invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The stage.
    pub stage: String,
    /// A version number or an alias; `None` is `live`.
    pub qualifier: Option<String>,
    /// The event's id: the `Idempotency-Key`, when the request had one.
    pub key: Option<String>,
    /// The event's data.
    pub data: Vec<u8>,
    /// The body's media type, when it had one (the event's `content-type` header).
    pub content_type: Option<String>,
}

/// What an invocation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// The version that ran.
    pub version: u64,
    /// The event's id.
    pub event_id: String,
    /// True when this answers a repeat of an idempotency key from its first outcome.
    pub replayed: bool,
    /// The output, or the named error.
    pub outcome: Result<Vec<u8>, StageErrorInfo>,
}

/// A named error of an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageErrorInfo {
    /// `Order.Invalid`, `Sandbox.Trap`, ...
    pub name: String,
    /// The stage's (or the sandbox's) explanation.
    pub cause: String,
    /// Whether the same event may succeed later.
    pub retryable: bool,
}

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_stages))
        .routes(routes!(describe_stage, delete_stage))
        .routes(routes!(configure_stage))
        .routes(routes!(set_alias, remove_alias))
}

/// The routes that take a component (their own body limit and request time).
pub(crate) fn upload_routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new().routes(routes!(deploy_stage))
}

/// The longest stage or alias name.
const MAX_NAME: usize = 64;
/// The longest idempotency key.
const MAX_KEY: usize = 256;

/// A stage or alias name: 1 to 64 lower-case letters, digits, `-` and `_`, starting with a
/// letter (so a version number is never mistaken for an alias, and `name:qualifier` splits
/// one way).
fn check_name(name: &str, field: &str) -> Result<(), Problem> {
    let ok = name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(format!(
            "'{name}' is not a name: 1 to {MAX_NAME} lower-case letters, digits, '-' and '_', starting with a letter"
        ))
        .at(field))
    }
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    p.map(|Path(v)| v)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

/// The component and configuration of an upload.
struct Upload {
    component: Bytes,
    config: Option<Value>,
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if media.starts_with("multipart/form-data") {
            let mut form = Multipart::from_request(req, state)
                .await
                .map_err(|e| Problem::bad_request(e.body_text()))?;
            return multipart(&mut form).await;
        }
        let essence = media.split(';').next().unwrap_or("").trim().to_owned();
        if !essence.is_empty()
            && essence != "application/wasm"
            && essence != "application/octet-stream"
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the component as application/wasm, or as the `component` part of multipart/form-data",
            ));
        }
        let Body(component) = Body::from_request(req, state).await?;
        Ok(Self {
            component,
            config: None,
        })
    }
}

async fn multipart(form: &mut Multipart) -> Result<Upload, Problem> {
    let mut component = None;
    let mut config = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => return Err(Problem::bad_request(e.body_text())),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Problem::bad_request(e.body_text())
            }
        })?;
        match name.as_str() {
            "component" => component = Some(bytes),
            "config" => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    Problem::bad_request(format!("the config part is not JSON: {e}")).at("config")
                })?;
                config = Some(v);
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unexpected form part '{other}': send `component` and optionally `config`"
                ))
                .at(other.to_owned()));
            }
        }
    }
    let component = component
        .ok_or_else(|| Problem::bad_request("the form has no `component` part").at("component"))?;
    Ok(Upload { component, config })
}

/// A version made.
#[derive(Debug, Serialize, ToSchema)]
struct Deployed {
    #[serde(flatten)]
    version: Version,
    /// The alias moved to it.
    alias: String,
}

/// A component upload as a form: the component, and optionally its configuration.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form in the OpenAPI document; `multipart` reads the parts"
)]
struct UploadForm {
    /// The component's bytes.
    #[schema(value_type = String, content_media_type = "application/wasm")]
    component: Vec<u8>,
    /// The configuration (`limits` and `grants`) as JSON; none granted without it.
    #[schema(value_type = Object)]
    config: Option<Value>,
}

/// Upload a component as the stage's next version (and move `live` to it).
#[utoipa::path(
    put,
    path = "/v1/stages/{name}",
    tag = "stages",
    params(("name" = String, Path, description = "The stage's name", pattern = "^[a-z][a-z0-9_-]{0,63}$")),
    // The raw bytes as either media type (no schema: OpenAPI 3.1's spelling of a binary
    // body), or the form.
    request_body(description = "The component, or a form with parts `component` and `config`", content(
        ("application/wasm"),
        ("application/octet-stream"),
        (inline(UploadForm) = "multipart/form-data", encoding(("config" = (content_type = "application/json")))),
    )),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new version, now live", body = Deployed),
        (status = 400, description = "A malformed name or form", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The component is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a component upload", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a component of the stage world, or an invalid configuration", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn deploy_stage(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    upload: Upload,
) -> Result<Response, Problem> {
    caller.require(Scope::Deploy)?;
    let name = path(name)?;
    check_name(&name, "name")?;
    let version = api
        .stages
        .deploy(name, Some(upload.component), upload.config)
        .await?;
    Ok(created(version))
}

fn created(version: Version) -> Response {
    (
        StatusCode::CREATED,
        Json(Deployed {
            version,
            alias: "live".into(),
        }),
    )
        .into_response()
}

/// Make the next version from the live one's component with a new configuration.
#[utoipa::path(
    put,
    path = "/v1/stages/{name}/config",
    tag = "stages",
    params(("name" = String, Path, description = "The stage's name", pattern = "^[a-z][a-z0-9_-]{0,63}$")),
    request_body(content = Object, description = "The configuration: `limits` and `grants`"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new version, now live", body = Deployed),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stage", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid configuration", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn configure_stage(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    Json(config): Json<Value>,
) -> Result<Response, Problem> {
    caller.require(Scope::Deploy)?;
    let name = path(name)?;
    check_name(&name, "name")?;
    let version = api.stages.deploy(name, None, Some(config)).await?;
    Ok(created(version))
}

/// The stages of this host.
#[derive(Debug, Serialize, ToSchema)]
struct StageList {
    stages: Vec<Summary>,
}

/// List the stages.
#[utoipa::path(
    get,
    path = "/v1/stages",
    tag = "stages",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stages, by name", body = StageList),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_stages(State(api): State<Api>, caller: Caller) -> Result<Json<StageList>, Problem> {
    caller.require(Scope::Read)?;
    Ok(Json(StageList {
        stages: api.stages.list()?,
    }))
}

/// Describe a stage: its versions, aliases, and the triggers and workflows that use it.
#[utoipa::path(
    get,
    path = "/v1/stages/{name}",
    tag = "stages",
    params(("name" = String, Path, description = "The stage's name", pattern = "^[a-z][a-z0-9_-]{0,63}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stage", body = Description),
        (status = 400, description = "A malformed name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stage", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn describe_stage(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Description>, Problem> {
    caller.require(Scope::Read)?;
    let name = path(name)?;
    check_name(&name, "name")?;
    Ok(Json(api.stages.describe(&name)?))
}

/// Delete a stage and every version (refused while a trigger or workflow uses it).
#[utoipa::path(
    delete,
    path = "/v1/stages/{name}",
    tag = "stages",
    params(("name" = String, Path, description = "The stage's name", pattern = "^[a-z][a-z0-9_-]{0,63}$")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A malformed name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stage", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A trigger or workflow uses it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_stage(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::Deploy)?;
    let name = path(name)?;
    check_name(&name, "name")?;
    api.stages.delete(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where an alias points.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AliasTarget {
    /// The version.
    version: u64,
}

/// Point an alias at a version (`live` moves what triggers, workflows and unqualified
/// invocations run).
#[utoipa::path(
    put,
    path = "/v1/stages/{name}/aliases/{alias}",
    tag = "stages",
    params(
        ("name" = String, Path, description = "The stage's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
        ("alias" = String, Path, description = "The alias's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
    ),
    request_body = AliasTarget,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The alias now points at the version", body = AliasTarget),
        (status = 400, description = "A malformed name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stage or version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn set_alias(
    State(api): State<Api>,
    caller: Caller,
    names: Result<Path<(String, String)>, PathRejection>,
    Json(target): Json<AliasTarget>,
) -> Result<Json<AliasTarget>, Problem> {
    caller.require(Scope::Deploy)?;
    let (name, alias) = path(names)?;
    check_name(&name, "name")?;
    check_name(&alias, "alias")?;
    api.stages.set_alias(name, alias, target.version).await?;
    Ok(Json(target))
}

/// Remove an alias (not `live`).
#[utoipa::path(
    delete,
    path = "/v1/stages/{name}/aliases/{alias}",
    tag = "stages",
    params(
        ("name" = String, Path, description = "The stage's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
        ("alias" = String, Path, description = "The alias's name", pattern = "^[a-z][a-z0-9_-]{0,63}$"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A malformed name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stage or alias", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`live` cannot be removed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn remove_alias(
    State(api): State<Api>,
    caller: Caller,
    names: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::Deploy)?;
    let (name, alias) = path(names)?;
    check_name(&name, "name")?;
    check_name(&alias, "alias")?;
    if alias == "live" {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "in-use",
            "the `live` alias cannot be removed; point it at another version instead",
        )
        .at("alias"));
    }
    api.stages.remove_alias(&name, &alias)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    fn err(name: &str) -> StageErrorInfo {
        StageErrorInfo {
            name: name.into(),
            cause: "why".into(),
            retryable: false,
        }
    }

    #[test]
    fn each_kind_of_error_has_its_own_status() {
        let cases = [
            ("Order.Invalid", 422, "stage-error"),
            ("Sandbox.Trap", 502, "sandbox-error"),
            ("Sandbox.MemoryLimit", 502, "sandbox-error"),
            ("Sandbox.Timeout", 504, "sandbox-error"),
            ("State.Unavailable", 503, "unavailable"),
        ];
        for (name, status, kind) in cases {
            let p = error_problem(&err(name));
            assert_eq!(p.status, status, "{name}");
            assert_eq!(p.kind, format!("urn:sluice:problem:{kind}"), "{name}");
            assert_eq!(p.extensions["error"], name);
            assert_eq!(p.extensions["cause"], "why");
            assert_eq!(p.extensions["retryable"], false);
        }
    }

    #[test]
    fn names_and_keys_are_checked() {
        for good in ["a", "validate-order", "s_1", &"a".repeat(64)] {
            assert!(check_name(good, "name").is_ok(), "{good}");
        }
        for bad in ["", "1a", "A", "a:b", "a.b", "a/b", &"a".repeat(65), "ä"] {
            let p = check_name(bad, "name").unwrap_err();
            assert_eq!((p.status, p.field.as_deref()), (400, Some("name")), "{bad}");
        }
        assert!(check_key(&HeaderValue::from_static("order-1")).is_ok());
        for bad in ["", "a b", "a/b"] {
            assert!(
                check_key(&HeaderValue::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
        assert!(check_key(&HeaderValue::from_str(&"k".repeat(257)).unwrap()).is_err());
    }

    #[test]
    fn json_output_is_json_and_other_bytes_are_octets() {
        let ok = |out: &[u8]| Invoked {
            version: 3,
            event_id: "e1".into(),
            replayed: true,
            outcome: Ok(out.to_vec()),
        };
        let r = answer(ok(br#"{"a":1}"#));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()["sluice-version"], "3");
        assert_eq!(r.headers()["sluice-event-id"], "e1");
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        let r = answer(ok(b"\x00\x01 not json"));
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
    }
}
