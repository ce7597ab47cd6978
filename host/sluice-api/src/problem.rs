//! Errors as `application/problem+json` (RFC 9457): every refusal names its reason and,
//! where one is to blame, the field.
//!
//! Handlers return [`Problem`]; axum's own rejections (a body that is not JSON, a missing
//! header) are turned into one by [`Json`], so no client error ever reaches the client as
//! axum's plain-text default, and no handler error as a bare 500.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem detail: what went wrong, for a person (`detail`) and a program (`type`, the
/// status, `field`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:sluice:problem:<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What exactly was wrong with this request.
    pub detail: String,
    /// The request field at fault, as a JSON pointer into the body or a parameter's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Members of this kind of problem (RFC 9457 extensions), e.g. a stage error's `error`,
    /// `cause` and `retryable`.
    /// (Boxed: most problems have none, and a problem travels in every handler's `Err`.)
    #[serde(flatten, skip_serializing_if = "no_extensions")]
    #[schema(ignore)]
    pub extensions: Box<serde_json::Map<String, serde_json::Value>>,
}

#[expect(
    clippy::borrowed_box,
    reason = "serde's skip_serializing_if passes the field as it is"
)]
fn no_extensions(e: &Box<serde_json::Map<String, serde_json::Value>>) -> bool {
    e.is_empty()
}

impl Problem {
    /// A problem of `kind` (the last part of its `type`) with `status`.
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:sluice:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            extensions: Box::default(),
        }
    }

    /// The same problem, blaming `field`.
    #[must_use]
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 401: no credentials, or credentials that name no live token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403: a valid token without the scope the route needs.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404: nothing by that name.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 500: the platform failed (the request may be retried).
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sluice\""),
            );
        }
        r
    }
}

/// A JSON body whose rejections are problems: 415 without a JSON content type, 413 past the
/// body limit, 400 for bad syntax, 422 for JSON of the wrong shape (with serde's reason,
/// which names the field).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) => Err(from_json_rejection(&e)),
        }
    }
}

fn from_json_rejection(e: &JsonRejection) -> Problem {
    match e {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "the body must be JSON, sent with Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(d) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            d.body_text(),
        ),
        JsonRejection::JsonSyntaxError(s) => Problem::bad_request(s.body_text()),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            too_large()
        }
        other => Problem::new(other.status(), "bad-request", other.body_text()),
    }
}

/// 413: the body is past the route's limit.
pub fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "the request body is larger than this route accepts",
    )
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A raw body whose rejections are problems (413 past the route's body limit, 400 for a body
/// that could not be read), where axum's `Bytes` would answer plain text.
#[derive(Debug, Clone, Default)]
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    Problem::bad_request(e.body_text())
                }
            })
    }
}
