//! `/v1/triggers`: bind a stream's subjects to a stage or a workflow on the running host,
//! list, describe (with the consumer's lag and counts), delete.
//!
//! A trigger created here starts consuming at once and is recorded, so a restarted host runs
//! it again; a deleted one finishes the batches it holds, stops, and its durable consumer is
//! removed (a new trigger of the same name starts from the stream's beginning).

use std::future::Future;
use std::pin::Pin;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Scope;
use crate::problem::{Json, Problem};
use crate::{Api, Caller};

/// A future the service returns.
pub type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, Problem>> + Send + 'a>>;

/// What the trigger routes reach (the host implements it on its running triggers).
pub trait TriggerService: Send + Sync {
    /// Validate, record and start `definition` (the declaration's trigger shape).
    fn create(&self, definition: Value) -> Reply<'_, TriggerInfo>;
    /// Every trigger.
    fn list(&self) -> Reply<'_, Vec<TriggerInfo>>;
    /// One trigger, with its consumer's state.
    fn describe(&self, name: String) -> Reply<'_, TriggerInfo>;
    /// Stop and remove a trigger (and its durable consumer).
    fn delete(&self, name: String) -> Reply<'_, ()>;
}

/// A trigger and how it is doing.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TriggerInfo {
    /// Its name (also its durable consumer's).
    pub name: String,
    /// `running`, or `failed` (with `error`).
    pub status: String,
    /// Why it stopped, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its definition, as created.
    #[schema(value_type = Object)]
    pub definition: Value,
    /// The consumer's state (when asked for one trigger and the broker answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerState>,
}

/// A durable consumer's position and lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConsumerState {
    /// Messages of the filter not yet delivered (the lag).
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: u64,
    /// Redelivered at least once.
    pub redelivered: u64,
    /// The last stream sequence delivered.
    pub delivered_seq: u64,
    /// The stream sequence every message up to which is acknowledged.
    pub ack_floor_seq: u64,
}

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create_trigger, list_triggers))
        .routes(routes!(describe_trigger, delete_trigger))
}

/// The triggers of this host.
#[derive(Debug, Serialize, ToSchema)]
struct TriggerList {
    triggers: Vec<TriggerInfo>,
}

fn name_of(p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    let Path(name) = p.map_err(|e| Problem::bad_request(e.body_text()).at("name"))?;
    if name.is_empty() || name.len() > 64 {
        return Err(Problem::bad_request("a trigger name is 1 to 64 characters").at("name"));
    }
    Ok(name)
}

/// Create a trigger: it starts consuming at once.
#[utoipa::path(
    post,
    path = "/v1/triggers",
    tag = "triggers",
    request_body(content = Object, description = "`name`, `stream`, `stream_subjects`, `filter_subject`, `stage` or `workflow`, and optionally `batch_size`, `max_wait_ms`, `max_deliver`, `backoff_ms`, `ack_wait_ms`, `dead_letter_subject`, `output_subject`, `pattern`, `partitions`, `partition_key`"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created and running", body = TriggerInfo),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stage or workflow", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A trigger of that name exists, another stage trigger would run the same messages, or the stream or consumer conflicts", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid definition (the field is named)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker or the registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_trigger(
    State(api): State<Api>,
    caller: Caller,
    Json(definition): Json<Value>,
) -> Result<Response, Problem> {
    caller.require(Scope::Deploy)?;
    if !definition.is_object() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "a trigger definition is a JSON object",
        ));
    }
    let info = api.triggers.create(definition).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// List the triggers.
#[utoipa::path(
    get,
    path = "/v1/triggers",
    tag = "triggers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The triggers, by name", body = TriggerList),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_triggers(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<TriggerList>, Problem> {
    caller.require(Scope::Read)?;
    Ok(Json(TriggerList {
        triggers: api.triggers.list().await?,
    }))
}

/// Describe a trigger: its definition, status and consumer lag.
#[utoipa::path(
    get,
    path = "/v1/triggers/{name}",
    tag = "triggers",
    params(("name" = String, Path, description = "The trigger's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The trigger", body = TriggerInfo),
        (status = 400, description = "A malformed name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trigger", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn describe_trigger(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<TriggerInfo>, Problem> {
    caller.require(Scope::Read)?;
    Ok(Json(api.triggers.describe(name_of(name)?).await?))
}

/// Delete a trigger: it finishes its batches and stops; its consumer is removed.
#[utoipa::path(
    delete,
    path = "/v1/triggers/{name}",
    tag = "triggers",
    params(("name" = String, Path, description = "The trigger's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Stopped and removed"),
        (status = 400, description = "A malformed name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trigger", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_trigger(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::Deploy)?;
    api.triggers.delete(name_of(name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
