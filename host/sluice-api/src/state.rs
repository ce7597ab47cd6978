//! `/v1/state`: the stages' state, read-only, for operators (scope `read`): a key-value
//! key, a bucket's keys by prefix, a table queried by partition key and sort-key condition
//! (on the table or a secondary index), each paged. Writes happen only through stages, where
//! they commit exactly once with their events.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_model::state::{Item, KeyPage, QueryPage, SortKeyCondition};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Scope;
use crate::problem::{Json, Problem};
use crate::{Api, Caller};

/// What the state routes read (the host implements it on its store, in read-only sessions).
pub trait StateService: Send + Sync {
    /// The value under `key` in `bucket`.
    fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Problem>;
    /// `bucket`'s keys starting with `prefix`, after `cursor`.
    fn kv_list(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<KeyPage, Problem>;
    /// A page of `table` (or its `index`) for partition `pk` under `sk`.
    fn query(&self, table: &str, query: sluice_model::state::Query) -> Result<QueryPage, Problem>;
}

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_keys))
        .routes(routes!(get_key))
        .routes(routes!(query_table))
}

/// The most a page holds.
const MAX_PAGE: usize = 1000;

fn limit(l: Option<usize>) -> Result<usize, Problem> {
    match l {
        None => Ok(100),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Problem::bad_request(format!("limit is 1 to {MAX_PAGE}")).at("limit")),
    }
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    p.map(|Path(v)| v)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(v)| v)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

/// A value as JSON when it is JSON, else as hex.
fn value_json(bytes: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => json!({ "value": v }),
        Err(_) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            json!({ "hex": hex })
        }
    }
}

/// A page of keys.
#[derive(Debug, Deserialize)]
struct KeysQuery {
    prefix: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// List a bucket's keys by prefix.
#[utoipa::path(
    get,
    path = "/v1/state/kv/{bucket}",
    tag = "state",
    params(
        ("bucket" = String, Path, description = "The bucket"),
        ("prefix" = Option<String>, Query, description = "Keys starting with this"),
        ("cursor" = Option<String>, Query, description = "The `cursor` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000 (default 100)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`keys` in byte order, and `cursor` when there are more", body = Object),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_keys(
    State(api): State<Api>,
    caller: Caller,
    bucket: Result<Path<String>, PathRejection>,
    q: Result<Query<KeysQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    let bucket = path(bucket)?;
    let q = query(q)?;
    let page = api.state.kv_list(
        &bucket,
        q.prefix.as_deref().unwrap_or(""),
        q.cursor.as_deref(),
        limit(q.limit)?,
    )?;
    Ok(Json(json!({"keys": page.keys, "cursor": page.cursor})))
}

/// Read one key: its value as JSON (`value`) or, when it is not JSON, as `hex`.
#[utoipa::path(
    get,
    path = "/v1/state/kv/{bucket}/{key}",
    tag = "state",
    params(
        ("bucket" = String, Path, description = "The bucket"),
        ("key" = String, Path, description = "The key"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The value", body = Object),
        (status = 400, description = "A parameter is not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_key(
    State(api): State<Api>,
    caller: Caller,
    names: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    let (bucket, key) = path(names)?;
    match api.state.kv_get(&bucket, &key)? {
        Some(v) => {
            let mut out = value_json(&v);
            out["bucket"] = bucket.into();
            out["key"] = key.into();
            Ok(Json(out))
        }
        None => Err(Problem::not_found(format!("bucket '{bucket}' has no key '{key}'")).at("key")),
    }
}

/// A table query.
#[derive(Debug, Deserialize)]
struct TableQuery {
    pk: Option<String>,
    index: Option<String>,
    /// `eq`, `begins_with`, `lt`, `le`, `gt`, `ge`, `between`.
    op: Option<String>,
    sk: Option<String>,
    /// The upper bound of `between`.
    sk2: Option<String>,
    /// Descending when false.
    forward: Option<bool>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn condition(q: &TableQuery) -> Result<SortKeyCondition, Problem> {
    let sk = || {
        q.sk.clone()
            .ok_or_else(|| Problem::bad_request("this op needs `sk`").at("sk"))
    };
    Ok(match q.op.as_deref() {
        None if q.sk.is_none() => SortKeyCondition::Any,
        None | Some("eq") => SortKeyCondition::Equals(sk()?),
        Some("begins_with") => SortKeyCondition::BeginsWith(sk()?),
        Some("lt") => SortKeyCondition::LessThan(sk()?),
        Some("le") => SortKeyCondition::LessOrEqual(sk()?),
        Some("gt") => SortKeyCondition::GreaterThan(sk()?),
        Some("ge") => SortKeyCondition::GreaterOrEqual(sk()?),
        Some("between") => SortKeyCondition::Between(
            sk()?,
            q.sk2
                .clone()
                .ok_or_else(|| Problem::bad_request("between needs `sk2`").at("sk2"))?,
        ),
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "'{other}' is not an op: eq, begins_with, lt, le, gt, ge, between"
            ))
            .at("op"));
        }
    })
}

fn item_json(i: &Item) -> Value {
    json!({"pk": i.pk, "sk": i.sk, "doc": i.doc, "version": i.version, "expires_at": i.expires_at})
}

/// Query a table (or a secondary index) by partition key and sort-key condition.
#[utoipa::path(
    get,
    path = "/v1/state/tables/{table}",
    tag = "state",
    params(
        ("table" = String, Path, description = "The table"),
        ("pk" = String, Query, description = "The partition key (the index's, with `index`)"),
        ("index" = Option<String>, Query, description = "A secondary index"),
        ("op" = Option<String>, Query, description = "eq (default with `sk`), begins_with, lt, le, gt, ge, between"),
        ("sk" = Option<String>, Query, description = "The sort-key operand"),
        ("sk2" = Option<String>, Query, description = "The upper bound of `between`"),
        ("forward" = Option<bool>, Query, description = "Ascending (default) or not"),
        ("cursor" = Option<String>, Query, description = "The `cursor` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000 (default 100)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`items` and `cursor` when there are more", body = Object),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No live token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such table or index", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn query_table(
    State(api): State<Api>,
    caller: Caller,
    table: Result<Path<String>, PathRejection>,
    q: Result<Query<TableQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::Read)?;
    let table = path(table)?;
    let q = query(q)?;
    let pk =
        q.pk.clone()
            .ok_or_else(|| Problem::bad_request("a query needs `pk`").at("pk"))?;
    let page = api.state.query(
        &table,
        sluice_model::state::Query {
            index: q.index.clone(),
            pk,
            sk: condition(&q)?,
            forward: q.forward.unwrap_or(true),
            limit: limit(q.limit)?,
            cursor: q.cursor.clone(),
        },
    )?;
    let items: Vec<Value> = page.items.iter().map(item_json).collect();
    Ok(Json(json!({"items": items, "cursor": page.cursor})))
}
