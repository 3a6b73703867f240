//! The JSON API under `/api/v1`, for scripts, the CLI and agents, authorised by personal API
//! tokens (`Authorization: Bearer lgp_…`) with the same checks as the pages, and each route
//! within a scope. Bodies are JSON with no unknown fields; errors are `{"code","message"}`.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lakegate_app::console::{self, Outcome};
use lakegate_app::extensions::{self, Extended};
use lakegate_app::requests::{self as verbs, Decided, SubmitInput, Submitted};
use lakegate_app::{AppError, credentials};
use lakegate_domain::api_token::Scope;
use lakegate_domain::request::Decision;
use lakegate_domain::target::resources_from;
use lakegate_domain::{AccessRequest, RequestId, ValidationError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::WebError;
use crate::extract::ApiUser;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/requests", get(list_requests).post(submit))
        .route("/api/v1/requests/{id}", get(show_request))
        .route("/api/v1/requests/{id}/approve", post(approve))
        .route("/api/v1/requests/{id}/deny", post(deny))
        .route("/api/v1/requests/{id}/cancel", post(cancel))
        .route("/api/v1/requests/{id}/revoke", post(revoke))
        .route("/api/v1/requests/{id}/credentials", post(issue_credentials))
        .route("/api/v1/requests/{id}/extensions", post(extend))
        .route(
            "/api/v1/requests/{id}/extensions/{extension}/approve",
            post(approve_extension),
        )
        .route(
            "/api/v1/requests/{id}/extensions/{extension}/deny",
            post(deny_extension),
        )
        .route("/api/v1/requests/{id}/queries", post(run_query))
        .route("/api/v1/requests/{id}/queries/{query}", get(show_query))
        .route("/api/v1/audit", get(audit_page))
}

/// A JSON body whose every refusal (not JSON, wrong types, unknown or missing fields) is a
/// `422 InvalidInput` saying what is wrong; one over 1 MiB is a `413 TooLarge`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(WebError::JsonTooLarge),
            Err(e) => Err(invalid(match e {
                JsonRejection::MissingJsonContentType(_) => {
                    "send the body as JSON, with `Content-Type: application/json`".to_owned()
                }
                other => other.body_text(),
            })),
        }
    }
}

fn invalid(message: impl Into<String>) -> WebError {
    WebError::Json(AppError::Invalid(ValidationError::new(message)))
}

fn parse_id(id: &str) -> Result<RequestId, WebError> {
    id.parse().map_err(|_| WebError::Json(AppError::NotFound))
}

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// A request as lists show it.
fn summary(r: &AccessRequest) -> Value {
    json!({
        "id": r.id,
        "status": r.status.as_str(),
        "requester": { "email": r.requester.email, "name": r.requester.name },
        "resources": r.resources.iter().map(|s| json!({
            "database": s.database,
            "table": s.table,
            "columns": s.columns,
        })).collect::<Vec<_>>(),
        "duration_seconds": r.duration.whole_seconds(),
        "reason": r.reason,
        "break_glass": r.break_glass,
        "created_at": rfc3339(Some(r.created_at)),
        "expires_at": rfc3339(r.expires_at),
    })
}

/// Who the token acts as, and what it may do: any working token may ask.
async fn me(ApiUser(caller): ApiUser) -> Json<Value> {
    let p = &caller.principal;
    Json(json!({
        "subject": p.subject,
        "email": p.email,
        "name": p.name,
        "groups": p.groups,
        "token": {
            "id": caller.token_id,
            "name": caller.token_name,
            "scopes": caller.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        },
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `mine` (the default), `to_approve` or `live`.
    filter: Option<String>,
}

/// `mine`: the owner's requests, newest first; `to_approve`: pending requests they may decide;
/// `live`: grants being set up, active or being removed that they approve (all, for admins).
async fn list_requests(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, WebError> {
    caller
        .require(Scope::RequestsRead)
        .map_err(WebError::Json)?;
    let Query(query) = query.map_err(|e| invalid(e.body_text()))?;
    let filter = query.filter.as_deref().unwrap_or("mine");
    let board = verbs::dashboard(&state.services, &caller.principal)
        .await
        .map_err(WebError::Json)?;
    let requests = match filter {
        "mine" => board.mine,
        "to_approve" => board.pending,
        "live" => board.live,
        other => {
            return Err(invalid(format!(
                "`{other}` is not a filter; use mine, to_approve or live"
            )));
        }
    };
    Ok(Json(json!({
        "filter": filter,
        "requests": requests.iter().map(summary).collect::<Vec<_>>(),
    })))
}

/// One request as its page shows it (needs `requests:read`, and that the token's owner may see
/// the request).
async fn show_request(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, WebError> {
    caller
        .require(Scope::RequestsRead)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    let d = verbs::view(&state.services, &caller.principal, id)
        .await
        .map_err(WebError::Json)?;
    let r = &d.request;
    let mut body = summary(r);
    body["activated_at"] = rfc3339(r.activated_at);
    body["ended_at"] = rfc3339(r.ended_at);
    body["missing_approvals"] = json!(d.approval.missing);
    body["decisions"] = d
        .decisions
        .iter()
        .map(|x| {
            json!({
                "by": x.actor.email,
                "decision": x.decision.as_str(),
                "comment": x.comment,
                "at": rfc3339(Some(x.at)),
            })
        })
        .collect();
    body["extensions"] = d
        .extensions
        .iter()
        .map(|x| {
            json!({
                "id": x.extension.id,
                "extra_seconds": x.extension.extra.whole_seconds(),
                "reason": x.extension.reason,
                "status": x.extension.status.as_str(),
                "missing_approvals": x.approval.missing,
            })
        })
        .collect();
    body["usage"] = json!({
        "queries": d.usage.queries,
        "bytes_scanned": d.usage.bytes_scanned,
        "cost_usd_micros": d.usage.cost.0,
    });
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceBody {
    database: String,
    table: String,
    columns: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    resources: Vec<ResourceBody>,
    duration: String,
    reason: String,
    #[serde(default)]
    break_glass: bool,
}

/// Asks for access, exactly as the form does: `201 {"id","status","url"}`.
async fn submit(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Body(body): Body<SubmitBody>,
) -> Result<Response, WebError> {
    caller
        .require(Scope::RequestsWrite)
        .map_err(WebError::Json)?;
    let resources = resources_from(
        body.resources
            .iter()
            .map(|r| (r.database.as_str(), r.table.as_str(), r.columns.as_deref())),
    )
    .map_err(|e| WebError::Json(e.into()))?;
    let (id, outcome) = verbs::submit_resources(
        &state.services,
        &caller.principal,
        resources,
        SubmitInput {
            resources: "",
            duration: &body.duration,
            reason: &body.reason,
            break_glass: body.break_glass,
        },
    )
    .await
    .map_err(WebError::Json)?;
    let status = match outcome {
        Submitted::Pending => "pending",
        Submitted::AutoApproved | Submitted::BreakGlass => "approved",
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "status": status,
            "break_glass": outcome == Submitted::BreakGlass,
            "url": format!("{}/requests/{id}", state.config.public_url),
        })),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    comment: Option<String>,
}

/// An optional body: nothing at all is the same as `{}`.
async fn optional_comment(req: Request, state: &AppState) -> Result<Option<String>, WebError> {
    let empty = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .is_some_and(|l| l == "0")
        || !req.headers().contains_key(axum::http::header::CONTENT_TYPE);
    if empty {
        return Ok(None);
    }
    let Body(body) = Body::<CommentBody>::from_request(req, state).await?;
    Ok(body.comment)
}

async fn decide(
    state: AppState,
    caller: &lakegate_app::tokens::ApiCaller,
    id: &str,
    decision: Decision,
    comment: Option<String>,
) -> Result<Json<Value>, WebError> {
    caller
        .require(Scope::ApprovalsWrite)
        .map_err(WebError::Json)?;
    let id = parse_id(id)?;
    let outcome = verbs::decide(
        &state.services,
        &caller.principal,
        id,
        decision,
        comment.as_deref(),
    )
    .await
    .map_err(WebError::Json)?;
    Ok(Json(match outcome {
        Decided::Approved => json!({ "id": id, "status": "approved" }),
        Decided::Denied => json!({ "id": id, "status": "denied" }),
        Decided::NeedsMore(missing) => {
            json!({ "id": id, "status": "pending", "missing_approvals": missing })
        }
    }))
}

async fn approve(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, WebError> {
    let comment = optional_comment(req, &state).await?;
    decide(state, &caller, &id, Decision::Approve, comment).await
}

async fn deny(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, WebError> {
    let comment = optional_comment(req, &state).await?;
    decide(state, &caller, &id, Decision::Deny, comment).await
}

async fn cancel(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, WebError> {
    optional_comment(req, &state).await?;
    caller
        .require(Scope::RequestsWrite)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    verbs::cancel(&state.services, &caller.principal, id)
        .await
        .map_err(WebError::Json)?;
    Ok(Json(json!({ "id": id, "status": "cancelled" })))
}

async fn revoke(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, WebError> {
    let comment = optional_comment(req, &state).await?;
    caller
        .require(Scope::RequestsWrite)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    verbs::revoke(&state.services, &caller.principal, id, comment.as_deref())
        .await
        .map_err(WebError::Json)?;
    Ok(Json(json!({ "id": id, "status": "revoking" })))
}

/// A new credentials token for the owner's active grant (the previous one stops, and so do
/// the sessions minted under it): `{"url","token","expires_at"}`, shown this once.
async fn issue_credentials(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    caller.require(Scope::Credentials).map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    let issued = credentials::issue_token(&state.services, &caller.principal, id)
        .await
        .map_err(WebError::Json)?;
    let mut res = Json(json!({
        "url": format!("{}/credentials/{id}", state.config.public_url),
        "token": issued.token,
        "expires_at": rfc3339(Some(issued.expires_at)),
    }))
    .into_response();
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    /// More time, like `30m`.
    extra: String,
    reason: String,
}

/// The requester asks for more time: `201 {"status":"approved","expires_at"}` when the policy
/// approves it at once, else `201 {"status":"pending"}` for the approvers.
async fn extend(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    Body(body): Body<ExtendBody>,
) -> Result<Response, WebError> {
    caller
        .require(Scope::RequestsWrite)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    let outcome = extensions::extend(
        &state.services,
        &caller.principal,
        id,
        &body.extra,
        &body.reason,
    )
    .await
    .map_err(WebError::Json)?;
    let answer = match outcome {
        Extended::Now(expires_at) => {
            json!({ "id": id, "status": "approved", "expires_at": rfc3339(Some(expires_at)) })
        }
        Extended::Pending => json!({ "id": id, "status": "pending" }),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn decide_extension(
    state: AppState,
    caller: &lakegate_app::tokens::ApiCaller,
    (id, extension): (String, String),
    decision: Decision,
    comment: Option<String>,
) -> Result<Json<Value>, WebError> {
    caller
        .require(Scope::ApprovalsWrite)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    let extension: i64 = extension
        .parse()
        .map_err(|_| WebError::Json(AppError::NotFound))?;
    let outcome = extensions::decide_extension(
        &state.services,
        &caller.principal,
        id,
        extension,
        decision,
        comment.as_deref(),
    )
    .await
    .map_err(WebError::Json)?;
    Ok(Json(match outcome {
        Decided::Approved => json!({ "id": id, "extension": extension, "status": "approved" }),
        Decided::Denied => json!({ "id": id, "extension": extension, "status": "denied" }),
        Decided::NeedsMore(missing) => json!({
            "id": id, "extension": extension, "status": "pending", "missing_approvals": missing,
        }),
    }))
}

async fn approve_extension(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(ids): Path<(String, String)>,
    req: Request,
) -> Result<Json<Value>, WebError> {
    let comment = optional_comment(req, &state).await?;
    decide_extension(state, &caller, ids, Decision::Approve, comment).await
}

async fn deny_extension(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(ids): Path<(String, String)>,
    req: Request,
) -> Result<Json<Value>, WebError> {
    let comment = optional_comment(req, &state).await?;
    decide_extension(state, &caller, ids, Decision::Deny, comment).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    sql: String,
    /// One of the grant's databases, for unqualified table names.
    database: Option<String>,
    /// 16 to 128 letters, digits, `-` or `_` of the client's choosing (a UUID will do): the
    /// same one sent again starts no second query.
    client_token: Option<String>,
}

/// Runs a statement through the guarded console, as the grant's session:
/// `201 {"id","state","url"}`, or `422 {"code":"QueryRefused","message":<the guard's reason>}`.
async fn run_query(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    Body(body): Body<QueryBody>,
) -> Result<Response, WebError> {
    caller.require(Scope::Console).map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    if let Some(t) = &body.client_token
        && !((16..=128).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(invalid(
            "client_token must be 16 to 128 letters, digits, - or _ (a UUID will do)",
        ));
    }
    let svc = &state.services;
    let outcome = console::run(
        svc,
        &caller.principal,
        id,
        &body.sql,
        body.database.as_deref(),
        body.client_token.as_deref(),
    )
    .await
    .map_err(WebError::Json)?;
    match outcome {
        Outcome::Refused(reason) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "code": "QueryRefused", "message": reason })),
        )
            .into_response()),
        Outcome::Started(query) => {
            let state_now = match console::status(svc, &caller.principal, id, &query).await {
                Ok(q) => Value::String(q.execution.state.as_str().to_owned()),
                Err(e) => {
                    tracing::warn!(%query, error = %e, "could not read a console query just started");
                    Value::Null
                }
            };
            Ok((
                StatusCode::CREATED,
                Json(json!({
                    "id": query,
                    "state": state_now,
                    "url": format!("/api/v1/requests/{id}/queries/{query}"),
                })),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowsQuery {
    /// `next_cursor` of the answer before.
    cursor: Option<String>,
}

/// A console query now: state, bytes, cost, and once it has succeeded a page of its rows
/// (Athena's pages, up to 1,000 rows) with `next_cursor` for the next, `null` on the last.
async fn show_query(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path((id, query)): Path<(String, String)>,
    params: Result<Query<RowsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    caller.require(Scope::Console).map_err(WebError::Json)?;
    let Query(params) = params.map_err(|e| invalid(e.body_text()))?;
    let id = parse_id(&id)?;
    let svc = &state.services;
    let q = console::status(svc, &caller.principal, id, &query)
        .await
        .map_err(WebError::Json)?;
    let e = &q.execution;
    let mut body = json!({
        "id": e.id,
        "state": e.state.as_str(),
        "state_reason": e.state_change_reason,
        "sql": e.sql,
        "database": e.database,
        "bytes_scanned": e.bytes_scanned,
        "billed_bytes": q.billed_bytes,
        "cost_usd_micros": q.cost.0,
        "submitted_at": rfc3339(e.submitted_at),
        "completed_at": rfc3339(e.completed_at),
        "columns": Value::Null,
        "rows": Value::Null,
        "next_cursor": Value::Null,
    });
    if e.state == lakegate_domain::usage::QueryState::Succeeded {
        let page = console::rows(svc, &caller.principal, id, &query, params.cursor.as_deref())
            .await
            .map_err(WebError::Json)?;
        body["columns"] = json!(page.columns);
        body["rows"] = json!(page.rows);
        body["next_cursor"] = json!(page.next);
    }
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(flatten)]
    filter: crate::routes::audit::FilterForm,
    /// `older` of the page before.
    before: Option<i64>,
}

/// The audit trail for admins (`audit:read`), newest first, 100 a page, with the pages'
/// filters: `{"events":[…],"older"}`.
async fn audit_page(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    params: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, WebError> {
    caller.require(Scope::AuditRead).map_err(WebError::Json)?;
    let Query(q) = params.map_err(|e| invalid(e.body_text()))?;
    let filter = q
        .filter
        .parse(q.before)
        .map_err(|e| WebError::Json(e.into()))?;
    let page = lakegate_app::audit::page(&state.services, &caller.principal, &filter)
        .await
        .map_err(WebError::Json)?;
    Ok(Json(json!({
        "events": page.events.iter().map(|(e, hash)| json!({
            "id": e.id,
            "at": rfc3339(Some(e.at)),
            "request_id": e.request,
            "actor": e.actor.as_ref().map(|a| json!({ "subject": a.subject, "email": a.email })),
            "action": e.action.as_str(),
            "detail": e.detail,
            "hash": lakegate_app::audit::hex(hash),
        })).collect::<Vec<_>>(),
        "older": page.older,
    })))
}
