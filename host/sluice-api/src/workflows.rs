//! `/v1/workflows` and `/v1/tasks`: Amazon States Language workflows on the running host,
//! their executions, and the task-token callbacks, mapped onto Step Functions' API:
//!
//! | route | Step Functions |
//! |---|---|
//! | `PUT /v1/workflows/{name}` | CreateStateMachine / UpdateStateMachine |
//! | `GET`, `DELETE /v1/workflows/{name}`, `GET /v1/workflows` | Describe / Delete / ListStateMachines |
//! | `POST /v1/workflows/{name}/executions` | StartExecution (idempotent by name) |
//! | `GET /v1/workflows/{name}/executions?status=&limit=&next=` | ListExecutions |
//! | `GET .../executions/{execution}` | DescribeExecution |
//! | `GET .../executions/{execution}/history?reverse=&limit=&next=` | GetExecutionHistory |
//! | `POST .../executions/{execution}/stop` | StopExecution |
//! | `POST /v1/tasks/success`, `/failure`, `/heartbeat` | SendTaskSuccess / Failure / Heartbeat |
//!
//! Errors carry AWS's error name (`ExecutionAlreadyExists`, `TaskTimedOut`, ...) as `error`.

use std::future::Future;
use std::pin::Pin;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Scope;
use crate::problem::{Json, Problem};
use crate::{Api, Caller};

/// A future the service returns.
pub type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, Problem>> + Send + 'a>>;

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page {
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<usize>,
    /// The `next` token of the previous page.
    pub next: Option<String>,
    /// For a history: newest first.
    pub reverse: Option<bool>,
    /// For executions: RUNNING (default), SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: Option<String>,
}

/// A task callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    /// SendTaskSuccess with the output.
    Success(Value),
    /// SendTaskFailure with an error and a cause.
    Failure(Option<String>, Option<String>),
    /// SendTaskHeartbeat.
    Heartbeat,
}

/// What the workflow routes reach (the host implements it on its durable engine). Answers
/// are the engine's own JSON (descriptions, history events, pages).
pub trait WorkflowService: Send + Sync {
    /// Create or replace `name` from an ASL `definition` of `kind` (`STANDARD`, `EXPRESS`);
    /// true if it is new.
    fn put(
        &self,
        name: String,
        definition: Value,
        kind: Option<String>,
    ) -> Reply<'_, (bool, Value)>;
    /// Every workflow.
    fn list(&self) -> Reply<'_, Value>;
    /// One workflow, with its definition.
    fn get(&self, name: String) -> Reply<'_, Value>;
    /// Delete `name` (refused while an execution of it runs or a trigger starts it).
    fn delete(&self, name: String) -> Reply<'_, ()>;
    /// Start an execution (named, or given a fresh name); true if it is new.
    fn start(
        &self,
        workflow: String,
        name: Option<String>,
        input: Value,
    ) -> Reply<'_, (bool, Value)>;
    /// Executions of `workflow`.
    fn executions(&self, workflow: String, page: Page) -> Reply<'_, Value>;
    /// One execution.
    fn describe(&self, workflow: String, execution: String) -> Reply<'_, Value>;
    /// An execution's history.
    fn history(&self, workflow: String, execution: String, page: Page) -> Reply<'_, Value>;
    /// Stop an execution (ABORTED).
    fn stop(
        &self,
        workflow: String,
        execution: String,
        error: Option<String>,
        cause: Option<String>,
    ) -> Reply<'_, Value>;
    /// Answer the Task waiting for `token`.
    fn callback(&self, token: String, callback: Callback) -> Reply<'_, ()>;
}

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_workflows))
        .routes(routes!(put_workflow, get_workflow, delete_workflow))
        .routes(routes!(start_execution, list_executions))
        .routes(routes!(describe_execution))
        .routes(routes!(execution_history))
        .routes(routes!(stop_execution))
        .routes(routes!(task_success))
        .routes(routes!(task_failure))
        .routes(routes!(task_heartbeat))
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    p.map(|Path(v)| v)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

fn query(q: Result<Query<Page>, QueryRejection>) -> Result<Page, Problem> {
    let Query(page) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    if page.limit.is_some_and(|l| l == 0 || l > 1000) {
        return Err(Problem::bad_request("limit is 1 to 1000").at("limit"));
    }
    Ok(page)
}

/// A workflow to put.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PutWorkflow {
    /// The Amazon States Language definition.
    #[schema(value_type = Object)]
    definition: Value,
    /// STANDARD (default) or EXPRESS.
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Create or replace a workflow.
#[utoipa::path(
    put,
    path = "/v1/workflows/{name}",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body = PutWorkflow,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Object),
        (status = 200, description = "Replaced", body = Object),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid definition: `field` points at the first problem, `problems` lists all", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_workflow(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    Json(body): Json<PutWorkflow>,
) -> Result<Response, Problem> {
    caller.require(Scope::Deploy)?;
    let name = path(name)?;
    let (created, info) = api.workflows.put(name, body.definition, body.kind).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

/// List the workflows.
#[utoipa::path(
    get,
    path = "/v1/workflows",
    tag = "workflows",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The workflows", body = Object),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_workflows(State(api): State<Api>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    Ok(Json(api.workflows.list().await?))
}

/// A workflow and its definition.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The workflow", body = Object),
        (status = 400, description = "A parameter is not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_workflow(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    Ok(Json(api.workflows.get(path(name)?).await?))
}

/// Delete a workflow (refused while an execution of it runs or a trigger starts it).
#[utoipa::path(
    delete,
    path = "/v1/workflows/{name}",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A parameter is not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `deploy`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "In use", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_workflow(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::Deploy)?;
    api.workflows.delete(path(name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An execution to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StartExecution {
    /// Its name (1 to 80 letters, digits, `-` and `_`); a fresh one when absent. The same
    /// name and input while it runs answers the running execution.
    name: Option<String>,
    /// Its input (default `{}`).
    #[schema(value_type = Object)]
    input: Option<Value>,
}

/// Start an execution (idempotent by name, as StartExecution).
#[utoipa::path(
    post,
    path = "/v1/workflows/{name}/executions",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body = StartExecution,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Started", body = Object),
        (status = 200, description = "Already running with this input", body = Object),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `invoke`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "ExecutionAlreadyExists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid name or input", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "ExecutionLimitExceeded", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn start_execution(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    Json(body): Json<StartExecution>,
) -> Result<Response, Problem> {
    caller.require(Scope::Invoke)?;
    let workflow = path(name)?;
    let input = body
        .input
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    let (created, info) = api.workflows.start(workflow, body.name, input).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

/// List a workflow's executions of one status, newest first.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}/executions",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("limit" = Option<usize>, Query, description = "At most this many (1 to 1000, default 100)"),
        ("next" = Option<String>, Query, description = "The `next` token of the previous page"),
        ("status" = Option<String>, Query, description = "RUNNING (default), SUCCEEDED, FAILED, TIMED_OUT or ABORTED"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page: `executions` and `next`", body = Object),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_executions(
    State(api): State<Api>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    Ok(Json(
        api.workflows.executions(path(name)?, query(page)?).await?,
    ))
}

/// Describe an execution.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}/executions/{execution}",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("execution" = String, Path, description = "The execution's name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The execution", body = Object),
        (status = 400, description = "A parameter is not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn describe_execution(
    State(api): State<Api>,
    caller: Caller,
    names: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    let (workflow, execution) = path(names)?;
    Ok(Json(api.workflows.describe(workflow, execution).await?))
}

/// An execution's history, paged.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}/executions/{execution}/history",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("execution" = String, Path, description = "The execution's name"),
        ("limit" = Option<usize>, Query, description = "At most this many (1 to 1000, default 100)"),
        ("next" = Option<String>, Query, description = "The `next` token of the previous page"),
        ("reverse" = Option<bool>, Query, description = "Newest first"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page: `events` and `next`", body = Object),
        (status = 400, description = "A malformed query or page token", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn execution_history(
    State(api): State<Api>,
    caller: Caller,
    names: Result<Path<(String, String)>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    let (workflow, execution) = path(names)?;
    Ok(Json(
        api.workflows
            .history(workflow, execution, query(page)?)
            .await?,
    ))
}

/// Why an execution is stopped.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StopExecution {
    error: Option<String>,
    cause: Option<String>,
}

/// Stop an execution: it ends ABORTED.
#[utoipa::path(
    post,
    path = "/v1/workflows/{name}/executions/{execution}/stop",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("execution" = String, Path, description = "The execution's name"),
    ),
    request_body = StopExecution,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The execution, stopped (or already closed)", body = Object),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `invoke`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine is stopping or the store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stop_execution(
    State(api): State<Api>,
    caller: Caller,
    names: Result<Path<(String, String)>, PathRejection>,
    Json(body): Json<StopExecution>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Invoke)?;
    let (workflow, execution) = path(names)?;
    Ok(Json(
        api.workflows
            .stop(workflow, execution, body.error, body.cause)
            .await?,
    ))
}

/// SendTaskSuccess.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TaskSuccess {
    /// The task token the Task was given (`$$.Task.Token`).
    #[serde(rename = "taskToken")]
    token: String,
    /// The Task's output.
    #[schema(value_type = Object)]
    output: Value,
}

/// SendTaskFailure.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TaskFailure {
    #[serde(rename = "taskToken")]
    token: String,
    error: Option<String>,
    cause: Option<String>,
}

/// SendTaskHeartbeat.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TaskHeartbeat {
    #[serde(rename = "taskToken")]
    token: String,
}

async fn callback(
    api: &Api,
    caller: &Caller,
    token: String,
    cb: Callback,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::Invoke)?;
    api.workflows.callback(token, cb).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Complete the Task waiting for a token with its output.
#[utoipa::path(
    post,
    path = "/v1/tasks/success",
    tag = "workflows",
    request_body = TaskSuccess,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The Task succeeded"),
        (status = 400, description = "Malformed, or InvalidToken", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `invoke`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "TaskDoesNotExist", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TaskTimedOut: no Task waits for it", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body, or InvalidOutput", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn task_success(
    State(api): State<Api>,
    caller: Caller,
    Json(b): Json<TaskSuccess>,
) -> Result<StatusCode, Problem> {
    callback(&api, &caller, b.token, Callback::Success(b.output)).await
}

/// Fail the Task waiting for a token.
#[utoipa::path(
    post,
    path = "/v1/tasks/failure",
    tag = "workflows",
    request_body = TaskFailure,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The Task failed"),
        (status = 400, description = "Malformed, or InvalidToken", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `invoke`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "TaskDoesNotExist", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TaskTimedOut: no Task waits for it", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn task_failure(
    State(api): State<Api>,
    caller: Caller,
    Json(b): Json<TaskFailure>,
) -> Result<StatusCode, Problem> {
    callback(&api, &caller, b.token, Callback::Failure(b.error, b.cause)).await
}

/// Tell the Task waiting for a token that its worker is alive.
#[utoipa::path(
    post,
    path = "/v1/tasks/heartbeat",
    tag = "workflows",
    request_body = TaskHeartbeat,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Malformed, or InvalidToken", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `invoke`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "TaskDoesNotExist", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TaskTimedOut: no Task waits for it", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn task_heartbeat(
    State(api): State<Api>,
    caller: Caller,
    Json(b): Json<TaskHeartbeat>,
) -> Result<StatusCode, Problem> {
    callback(&api, &caller, b.token, Callback::Heartbeat).await
}
