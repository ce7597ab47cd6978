//! `/v1/tokens`: create, list and revoke bearer tokens (scope `admin`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Scope, TokenInfo};
use crate::problem::{Json, Problem};
use crate::{Api, Caller, now_ms};

/// The longest token name.
const MAX_NAME: usize = 128;

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    /// What it is for (1 to 128 characters).
    name: String,
    /// What it may do (at least one).
    scopes: Vec<Scope>,
}

/// A created token: the token itself is shown this once.
#[derive(Debug, Serialize, ToSchema)]
struct CreatedToken {
    #[serde(flatten)]
    info: TokenInfo,
    /// `sl_<id>_<secret>`: send it as `Authorization: Bearer <token>`.
    token: String,
}

/// The tokens of this host.
#[derive(Debug, Serialize, ToSchema)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

/// Create a token.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    request_body = CreateToken,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the token is in the body, shown once", body = CreatedToken),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `admin`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than this route accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_token(
    State(api): State<Api>,
    caller: Caller,
    Json(req): Json<CreateToken>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Scope::Admin)?;
    let invalid = |detail: &str, field: &str| {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", detail).at(field)
    };
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(invalid(
            "the name must be 1 to 128 characters, without control characters",
            "/name",
        ));
    }
    if req.scopes.is_empty() {
        return Err(invalid("a token needs at least one scope", "/scopes"));
    }
    let (info, token) = api
        .tokens
        .create(name, &req.scopes, now_ms())
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })))
}

/// List the tokens (never their secrets).
#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens", body = TokenList),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `admin`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_tokens(State(api): State<Api>, caller: Caller) -> Result<Json<TokenList>, Problem> {
    caller.require(Scope::Admin)?;
    Ok(Json(TokenList {
        tokens: api.tokens.list(),
    }))
}

/// Revoke a token: it stops working at once.
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "A parameter is not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `admin`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn revoke_token(
    State(api): State<Api>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::Admin)?;
    let Path(id) = id.map_err(|e| Problem::bad_request(e.body_text()).at("id"))?;
    match api.tokens.revoke(&id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(Problem::not_found(format!("no token has the id '{id}'")).at("id")),
        Err(e) => Err(Problem::internal(e.to_string())),
    }
}
