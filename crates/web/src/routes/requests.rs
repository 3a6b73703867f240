//! The dashboard, the request form, a request's page, and its actions.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lakegate_app::requests::{self as verbs, RequestDetail, SubmitInput};
use lakegate_app::{AppError, credentials};
use lakegate_domain::duration::format_duration;
use lakegate_domain::naming::NAME_PREFIX;
use lakegate_domain::target::MAX_RESOURCES;
use lakegate_domain::{RequestId, RequestStatus};
use lakegate_store::requests::Decision;
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{CsrfForm, CurrentUser};
use crate::session::{FlashKind, set_flash};
use crate::state::AppState;
use crate::views::requests::{
    CredentialsPage, DashboardPage, DecisionView, EventView, NewRequestPage, ResourceView,
    ShowRequestPage,
};
use crate::views::{Chrome, RequestRow, fmt_opt_time, fmt_time};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/requests", post(submit_request))
        .route("/requests/new", get(new_request))
        .route("/requests/{id}", get(show_request))
        .route("/requests/{id}/approve", post(approve_request))
        .route("/requests/{id}/deny", post(deny_request))
        .route("/requests/{id}/cancel", post(cancel_request))
        .route("/requests/{id}/revoke", post(revoke_request))
        .route("/requests/{id}/credentials", post(issue_credentials))
}

fn parse_id(id: &str) -> Result<RequestId, WebError> {
    id.parse().map_err(|_| WebError::App(AppError::NotFound))
}

async fn dashboard(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<DashboardPage, WebError> {
    let d = verbs::dashboard(&state.services, &user.principal).await?;
    Ok(DashboardPage {
        chrome: Chrome::new(&state, &user.session, Some(&user.principal)).await?,
        mine: d.mine.iter().map(RequestRow::from).collect(),
        is_approver: d.is_approver,
        approver_group: state.services.settings.policy.approver_group.clone(),
        pending: d.pending.iter().map(RequestRow::from).collect(),
        live: d.live.iter().map(RequestRow::from).collect(),
    })
}

fn new_page(state: &AppState, chrome: Chrome) -> NewRequestPage {
    let policy = &state.services.settings.policy;
    NewRequestPage {
        chrome,
        error: None,
        resources: String::new(),
        duration: "1h".into(),
        reason: String::new(),
        min_duration: format_duration(policy.min_duration),
        max_duration: format_duration(policy.max_duration),
        max_resources: MAX_RESOURCES,
    }
}

async fn new_request(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<NewRequestPage, WebError> {
    let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
    Ok(new_page(&state, chrome))
}

#[derive(Deserialize)]
struct NewRequestForm {
    #[serde(default)]
    resources: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
}

async fn submit_request(
    State(state): State<AppState>,
    user: CurrentUser,
    CsrfForm(form): CsrfForm<NewRequestForm>,
) -> Result<Response, WebError> {
    let input = SubmitInput {
        resources: &form.resources,
        duration: &form.duration,
        reason: &form.reason,
    };
    match verbs::submit(&state.services, &user.principal, input).await {
        Ok(id) => {
            set_flash(
                &user.session,
                FlashKind::Success,
                "Request submitted. An approver has been asked.",
            )
            .await?;
            Ok(Redirect::to(&format!("/requests/{id}")).into_response())
        }
        // Show the form again, with what was typed and what is wrong.
        Err(AppError::Invalid(e)) => {
            let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
            let page = NewRequestPage {
                error: Some(e.to_string()),
                resources: form.resources,
                duration: form.duration,
                reason: form.reason,
                ..new_page(&state, chrome)
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn status_note(d: &RequestDetail) -> String {
    let r = &d.request;
    match r.status {
        RequestStatus::Pending => "Waiting for an approver.".into(),
        RequestStatus::Approved => {
            "Approved. lakegate is creating the role, workgroup and grants…".into()
        }
        RequestStatus::Active => format!("Access is live until {}.", fmt_opt_time(r.expires_at)),
        RequestStatus::Revoking => "Access is being removed…".into(),
        RequestStatus::Expired => "The requested time ran out; access was removed.".into(),
        RequestStatus::Revoked => "Access was ended early and removed.".into(),
        RequestStatus::Denied => "An approver denied this request.".into(),
        RequestStatus::Cancelled => "The requester withdrew this request.".into(),
        RequestStatus::Failed => {
            "lakegate could not set up access; whatever it created was removed.".into()
        }
    }
}

async fn show_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<ShowRequestPage, WebError> {
    let id = parse_id(&id)?;
    let d = verbs::view(&state.services, &user.principal, id).await?;
    let r = &d.request;
    Ok(ShowRequestPage {
        chrome: Chrome::new(&state, &user.session, Some(&user.principal)).await?,
        id: r.id.to_string(),
        status: r.status.as_str(),
        status_note: status_note(&d),
        in_progress: matches!(r.status, RequestStatus::Approved | RequestStatus::Revoking),
        requester: match &r.requester.name {
            Some(name) => format!("{name} <{}>", r.requester.email),
            None => r.requester.email.clone(),
        },
        reason: r.reason.clone(),
        duration: format_duration(r.duration),
        created_at: fmt_time(r.created_at),
        activated_at: fmt_opt_time(r.activated_at),
        expires_at: fmt_opt_time(r.expires_at),
        ended_at: fmt_opt_time(r.ended_at),
        end_reason: r.end_reason.clone().unwrap_or_default(),
        last_error: r.last_error.clone().unwrap_or_default(),
        workgroup: format!("{NAME_PREFIX}{}", r.id),
        resources: r
            .resources
            .iter()
            .map(|s| ResourceView {
                table: s.qualified_table(),
                columns: s
                    .columns
                    .as_ref()
                    .map_or_else(|| "all columns".to_owned(), |c| c.join(", ")),
            })
            .collect(),
        decisions: d
            .decisions
            .iter()
            .map(|x| DecisionView {
                who: x.actor.email.clone(),
                decision: match x.decision {
                    Decision::Approve => "approved",
                    Decision::Deny => "denied",
                },
                comment: x.comment.clone().unwrap_or_default(),
                at: fmt_time(x.at),
            })
            .collect(),
        timeline: d
            .timeline
            .iter()
            .map(|e| EventView {
                at: fmt_time(e.at),
                who: e
                    .actor
                    .as_ref()
                    .map_or_else(|| "lakegate".to_owned(), |a| a.email.clone()),
                what: e.action.describe(),
                detail: event_detail(&e.detail),
            })
            .collect(),
        actions: d.actions,
        has_token: r.has_credentials_token,
    })
}

/// The interesting part of an event's detail, as one line.
fn event_detail(detail: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for key in [
        "comment",
        "reason",
        "step",
        "error",
        "end_state",
        "session_name",
    ] {
        if let Some(v) = detail.get(key).and_then(|v| v.as_str()) {
            parts.push(format!("{key}: {v}"));
        }
    }
    parts.join(" · ")
}

#[derive(Deserialize)]
struct CommentForm {
    comment: Option<String>,
}

async fn decide(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    decision: Decision,
    comment: Option<&str>,
) -> Result<Redirect, WebError> {
    let id = parse_id(id)?;
    verbs::decide(&state.services, &user.principal, id, decision, comment).await?;
    let message = match decision {
        Decision::Approve => "Approved. Access is being set up.",
        Decision::Deny => "Denied.",
    };
    set_flash(&user.session, FlashKind::Success, message).await?;
    Ok(Redirect::to(&format!("/requests/{id}")))
}

async fn approve_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> Result<Redirect, WebError> {
    decide(
        &state,
        &user,
        &id,
        Decision::Approve,
        form.comment.as_deref(),
    )
    .await
}

async fn deny_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> Result<Redirect, WebError> {
    decide(&state, &user, &id, Decision::Deny, form.comment.as_deref()).await
}

async fn cancel_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<CommentForm>,
) -> Result<Redirect, WebError> {
    let id = parse_id(&id)?;
    verbs::cancel(&state.services, &user.principal, id).await?;
    set_flash(&user.session, FlashKind::Success, "Request cancelled.").await?;
    Ok(Redirect::to(&format!("/requests/{id}")))
}

async fn revoke_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> Result<Redirect, WebError> {
    let id = parse_id(&id)?;
    verbs::revoke(
        &state.services,
        &user.principal,
        id,
        form.comment.as_deref(),
    )
    .await?;
    set_flash(
        &user.session,
        FlashKind::Success,
        "Access revoked: credentials stop working now, and the AWS resources are being removed.",
    )
    .await?;
    Ok(Redirect::to(&format!("/requests/{id}")))
}

/// Issues a fresh token and shows it once. Not a redirect: the token must never be stored in
/// the session or appear in a URL.
async fn issue_credentials(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<CommentForm>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let issued = credentials::issue_token(&state.services, &user.principal, id).await?;
    let d = verbs::view(&state.services, &user.principal, id).await?;
    let example_table = d
        .request
        .resources
        .first()
        .map_or_else(String::new, |r| r.qualified_table());
    let page = CredentialsPage {
        chrome: Chrome::new(&state, &user.session, Some(&user.principal)).await?,
        id: id.to_string(),
        short_id: id.0.simple().to_string()[..8].to_owned(),
        url: format!("{}/credentials/{id}", state.config.public_url),
        token: issued.token,
        expires_at: fmt_time(issued.expires_at),
        region: state.services.cloud.identity().region.clone(),
        workgroup: format!("{NAME_PREFIX}{id}"),
        example_table,
    };
    let mut res = page.into_response();
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
