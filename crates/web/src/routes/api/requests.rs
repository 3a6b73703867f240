//! Requests through the API: ask, list, show, decide, cancel, revoke, extend, and issue a
//! credentials token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lakegate_app::extensions::{self, Extended as ExtendOutcome};
use lakegate_app::requests::{self as verbs, Decided, SubmitInput, Submitted as SubmitOutcome};
use lakegate_app::tokens::ApiCaller;
use lakegate_app::{AppError, credentials};
use lakegate_domain::AccessRequest;
use lakegate_domain::api_token::Scope;
use lakegate_domain::request::Decision;
use lakegate_domain::target::resources_from;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    CommentBody, DecisionView, ExtendBody, Extended, ExtensionView, IssuedCredentials, Person,
    RequestDetail, RequestList, RequestSummary, Resource, StatusChange, SubmitBody, Submitted,
    Usage,
};
use super::{Body, OptionalBody, Params, no_store, parse_id};
use crate::error::WebError;
use crate::extract::{ApiUser, FreshApiUser};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_requests, submit))
        .routes(routes!(show_request))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(cancel))
        .routes(routes!(revoke))
        .routes(routes!(issue_credentials))
        .routes(routes!(extend))
        .routes(routes!(approve_extension))
        .routes(routes!(deny_extension))
}

/// A request as lists show it.
pub(crate) fn summary(r: &AccessRequest) -> RequestSummary {
    RequestSummary {
        id: r.id.0,
        status: r.status.as_str().to_owned(),
        requester: Person {
            email: r.requester.email.clone(),
            name: r.requester.name.clone(),
        },
        agent: r.agent.clone(),
        on_behalf_of: r.agent.as_ref().map(|_| r.requester.email.clone()),
        resources: r
            .resources
            .iter()
            .map(|s| Resource {
                database: s.database.clone(),
                table: s.table.clone(),
                columns: s.columns.clone(),
            })
            .collect(),
        duration_seconds: r.duration.whole_seconds(),
        reason: r.reason.clone(),
        break_glass: r.break_glass,
        created_at: r.created_at,
        expires_at: r.expires_at,
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Filter {
    /// The token owner's own requests, newest first.
    #[default]
    Mine,
    /// Pending requests the owner may decide.
    ToApprove,
    /// Grants being set up, active or being removed that the owner approves (all, for admins).
    Live,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Which requests: `mine` (the default), `to_approve` or `live`.
    #[param(inline)]
    filter: Option<Filter>,
}

/// Lists requests: the token owner's, those they may approve, or the live grants they approve.
#[utoipa::path(
    get, path = "/api/v1/requests", tag = "requests",
    params(ListQuery),
    responses((status = 200, body = RequestList)),
    security(("token" = ["requests:read"]))
)]
async fn list_requests(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Params(query): Params<ListQuery>,
) -> Result<Json<RequestList>, WebError> {
    caller
        .require(Scope::RequestsRead)
        .map_err(WebError::Json)?;
    let filter = query.filter.unwrap_or_default();
    let board = verbs::dashboard(&state.services, &caller.principal)
        .await
        .map_err(WebError::Json)?;
    let (name, requests) = match filter {
        Filter::Mine => ("mine", board.mine),
        Filter::ToApprove => (
            "to_approve",
            board.pending.into_iter().map(|q| q.request).collect(),
        ),
        Filter::Live => ("live", board.live),
    };
    Ok(Json(RequestList {
        filter: name.to_owned(),
        requests: requests.iter().map(summary).collect(),
    }))
}

/// One request as its page shows it: decisions, approvals still missing, extensions, usage.
#[utoipa::path(
    get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, body = RequestDetail),
        (status = 404, description = "`NotFound`: no such request, or not one the owner may see", body = super::model::ApiError),
    ),
    security(("token" = ["requests:read"]))
)]
async fn show_request(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<RequestDetail>, WebError> {
    caller
        .require(Scope::RequestsRead)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    let d = verbs::view(&state.services, &caller.principal, id)
        .await
        .map_err(WebError::Json)?;
    Ok(Json(detail(&d)))
}

/// A request in full, as `GET /api/v1/requests/{id}` shows it.
pub(crate) fn detail(d: &verbs::RequestDetail) -> RequestDetail {
    let r = &d.request;
    RequestDetail {
        summary: summary(r),
        activated_at: r.activated_at,
        ended_at: r.ended_at,
        missing_approvals: d.approval.missing.clone(),
        decisions: d
            .decisions
            .iter()
            .map(|x| DecisionView {
                by: x.actor.email.clone(),
                decision: x.decision.as_str().to_owned(),
                comment: x.comment.clone(),
                at: x.at,
            })
            .collect(),
        extensions: d
            .extensions
            .iter()
            .map(|x| ExtensionView {
                id: x.extension.id,
                extra_seconds: x.extension.extra.whole_seconds(),
                reason: x.extension.reason.clone(),
                status: x.extension.status.as_str().to_owned(),
                missing_approvals: x.approval.missing.clone(),
            })
            .collect(),
        usage: Usage {
            queries: u64::try_from(d.usage.queries).unwrap_or(u64::MAX),
            bytes_scanned: d.usage.bytes_scanned,
            cost_usd_micros: d.usage.cost.0,
        },
    }
}

/// Asks for access, exactly as the form does.
#[utoipa::path(
    post, path = "/api/v1/requests", tag = "requests",
    request_body = SubmitBody,
    responses(
        (status = 201, description = "Made: `pending` for the approvers, or `approved` by the policy at once", body = Submitted),
        (status = 409, description = "`WrongState`: too many requests of this person are pending", body = super::model::ApiError),
        (status = 413, description = "`TooLarge`: the body is over 1 MiB", body = super::model::ApiError),
    ),
    security(("token" = ["requests:write"]))
)]
async fn submit(
    State(state): State<AppState>,
    FreshApiUser(caller): FreshApiUser,
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
        SubmitOutcome::Pending => "pending",
        SubmitOutcome::AutoApproved | SubmitOutcome::BreakGlass => "approved",
    };
    Ok((
        StatusCode::CREATED,
        Json(Submitted {
            id: id.0,
            status: status.to_owned(),
            break_glass: outcome == SubmitOutcome::BreakGlass,
            url: format!("{}/requests/{id}", state.config.public_url),
        }),
    )
        .into_response())
}

fn decided(
    id: lakegate_domain::RequestId,
    extension: Option<i64>,
    outcome: Decided,
) -> StatusChange {
    let (status, missing_approvals) = match outcome {
        Decided::Approved => ("approved", Vec::new()),
        Decided::Denied => ("denied", Vec::new()),
        Decided::NeedsMore(missing) => ("pending", missing),
    };
    StatusChange {
        id: id.0,
        extension,
        status: status.to_owned(),
        missing_approvals,
    }
}

async fn decide(
    state: &AppState,
    caller: &ApiCaller,
    id: &str,
    decision: Decision,
    comment: Option<String>,
) -> Result<Json<StatusChange>, WebError> {
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
    Ok(Json(decided(id, None, outcome)))
}

/// Approves a pending request, as an approver the policy names (never its requester).
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/approve", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body(content = Option<CommentBody>, description = "An optional comment"),
    responses(
        (status = 200, description = "`approved`, or `pending` with the approvals still missing", body = StatusChange),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`AlreadyDecided` by this approver, or `WrongState`: no longer pending", body = super::model::ApiError),
    ),
    security(("token" = ["approvals:write"]))
)]
async fn approve(
    State(state): State<AppState>,
    FreshApiUser(caller): FreshApiUser,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<CommentBody>,
) -> Result<Json<StatusChange>, WebError> {
    decide(&state, &caller, &id, Decision::Approve, body.comment).await
}

/// Denies a pending request.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/deny", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body(content = Option<CommentBody>, description = "An optional comment"),
    responses(
        (status = 200, description = "`denied`", body = StatusChange),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`AlreadyDecided` or `WrongState`", body = super::model::ApiError),
    ),
    security(("token" = ["approvals:write"]))
)]
async fn deny(
    State(state): State<AppState>,
    FreshApiUser(caller): FreshApiUser,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<CommentBody>,
) -> Result<Json<StatusChange>, WebError> {
    decide(&state, &caller, &id, Decision::Deny, body.comment).await
}

/// The requester withdraws a pending request.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body(content = Option<CommentBody>, description = "An optional comment (not recorded)"),
    responses(
        (status = 200, description = "`cancelled`", body = StatusChange),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`WrongState`: no longer pending", body = super::model::ApiError),
    ),
    security(("token" = ["requests:write"]))
)]
async fn cancel(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    OptionalBody(_): OptionalBody<CommentBody>,
) -> Result<Json<StatusChange>, WebError> {
    caller
        .require(Scope::RequestsWrite)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    verbs::cancel(&state.services, &caller.principal, id)
        .await
        .map_err(WebError::Json)?;
    Ok(Json(StatusChange {
        id: id.0,
        extension: None,
        status: "cancelled".to_owned(),
        missing_approvals: Vec::new(),
    }))
}

/// Ends a grant now (its requester, an approver of it, or an admin): sessions are denied at
/// once, then the role, the workgroup and the Lake Formation grants are removed.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/revoke", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body(content = Option<CommentBody>, description = "An optional comment, recorded in the audit"),
    responses(
        (status = 200, description = "`revoking`: the teardown has started", body = StatusChange),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`WrongState`: nothing to revoke", body = super::model::ApiError),
    ),
    security(("token" = ["requests:write"]))
)]
async fn revoke(
    State(state): State<AppState>,
    FreshApiUser(caller): FreshApiUser,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<CommentBody>,
) -> Result<Json<StatusChange>, WebError> {
    caller
        .require(Scope::RequestsWrite)
        .map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    verbs::revoke(
        &state.services,
        &caller.principal,
        id,
        body.comment.as_deref(),
    )
    .await
    .map_err(WebError::Json)?;
    Ok(Json(StatusChange {
        id: id.0,
        extension: None,
        status: "revoking".to_owned(),
        missing_approvals: Vec::new(),
    }))
}

/// A new credentials token for the owner's active grant, shown this once; the previous one
/// stops working, and so do the sessions minted under it.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/credentials", tag = "credentials",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "Point an AWS SDK at `url` with `token`", body = IssuedCredentials),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`WrongState`: the grant is not active", body = super::model::ApiError),
    ),
    security(("token" = ["credentials"]))
)]
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
    Ok(no_store(Json(IssuedCredentials {
        url: format!("{}/credentials/{id}", state.config.public_url),
        token: issued.token,
        expires_at: issued.expires_at,
    })))
}

/// The requester asks for more time on an active grant.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/extensions", tag = "requests",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = ExtendBody,
    responses(
        (status = 201, description = "`approved` by the policy at once (with the new end), or `pending`", body = Extended),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`WrongState`: not active, or an extension is already pending", body = super::model::ApiError),
        (status = 413, description = "`TooLarge`", body = super::model::ApiError),
    ),
    security(("token" = ["requests:write"]))
)]
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
    let (status, expires_at) = match outcome {
        ExtendOutcome::Now(at) => ("approved", Some(at)),
        ExtendOutcome::Pending => ("pending", None),
    };
    Ok((
        StatusCode::CREATED,
        Json(Extended {
            id: id.0,
            status: status.to_owned(),
            expires_at,
        }),
    )
        .into_response())
}

async fn decide_extension(
    state: &AppState,
    caller: &ApiCaller,
    (id, extension): (String, String),
    decision: Decision,
    comment: Option<String>,
) -> Result<Json<StatusChange>, WebError> {
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
    Ok(Json(decided(id, Some(extension), outcome)))
}

/// Approves a pending extension.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/extensions/{extension}/approve", tag = "requests",
    params(
        ("id" = uuid::Uuid, Path, description = "The request's id"),
        ("extension" = i64, Path, description = "The extension's id"),
    ),
    request_body(content = Option<CommentBody>, description = "An optional comment"),
    responses(
        (status = 200, description = "`approved`, or `pending` with the approvals still missing", body = StatusChange),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`AlreadyDecided` or `WrongState`", body = super::model::ApiError),
    ),
    security(("token" = ["approvals:write"]))
)]
async fn approve_extension(
    State(state): State<AppState>,
    FreshApiUser(caller): FreshApiUser,
    Path(ids): Path<(String, String)>,
    OptionalBody(body): OptionalBody<CommentBody>,
) -> Result<Json<StatusChange>, WebError> {
    decide_extension(&state, &caller, ids, Decision::Approve, body.comment).await
}

/// Denies a pending extension.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/extensions/{extension}/deny", tag = "requests",
    params(
        ("id" = uuid::Uuid, Path, description = "The request's id"),
        ("extension" = i64, Path, description = "The extension's id"),
    ),
    request_body(content = Option<CommentBody>, description = "An optional comment"),
    responses(
        (status = 200, description = "`denied`", body = StatusChange),
        (status = 404, description = "`NotFound`", body = super::model::ApiError),
        (status = 409, description = "`AlreadyDecided` or `WrongState`", body = super::model::ApiError),
    ),
    security(("token" = ["approvals:write"]))
)]
async fn deny_extension(
    State(state): State<AppState>,
    FreshApiUser(caller): FreshApiUser,
    Path(ids): Path<(String, String)>,
    OptionalBody(body): OptionalBody<CommentBody>,
) -> Result<Json<StatusChange>, WebError> {
    decide_extension(&state, &caller, ids, Decision::Deny, body.comment).await
}
