//! The dashboard, the request form, a request's page, and its actions.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lakegate_app::extensions::{self, Extended};
use lakegate_app::requests::{self as verbs, Decided, SubmitInput, Submitted};
use lakegate_app::{AppError, credentials};
use lakegate_domain::RequestId;
use lakegate_domain::duration::format_duration;
use lakegate_domain::naming::NAME_PREFIX;
use lakegate_domain::request::Decision;
use lakegate_domain::target::MAX_RESOURCES;
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{CsrfForm, CurrentUser, Fresh};
use crate::session::{FlashKind, set_flash};
use crate::state::AppState;
use crate::views::requests::QueueRow;
use crate::views::requests::{
    CredentialsPage, DashboardPage, ExtensionRow, NewRequestPage, ShowRequestPage,
};
use crate::views::{Chrome, RequestRow, fmt_time};

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
        .route("/requests/{id}/review", post(review_request))
        .route("/requests/{id}/extend", post(extend_request))
        .route(
            "/requests/{id}/extensions/{extension}/approve",
            post(approve_extension),
        )
        .route(
            "/requests/{id}/extensions/{extension}/deny",
            post(deny_extension),
        )
}

fn parse_id(id: &str) -> Result<RequestId, WebError> {
    id.parse().map_err(|_| WebError::App(AppError::NotFound))
}

async fn dashboard(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<DashboardPage, WebError> {
    let d = verbs::dashboard(&state.services, &user.principal).await?;
    let policy = &state.services.settings.policy;
    Ok(DashboardPage {
        chrome: Chrome::new(&state, &user.session, Some(&user.principal)).await?,
        mine: d.mine.iter().map(RequestRow::from).collect(),
        is_approver: d.is_approver || d.is_admin,
        is_admin: d.is_admin,
        approver_groups: policy
            .approver_groups()
            .into_iter()
            .filter(|g| user.principal.in_group(g))
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(", "),
        pending: d.pending.iter().map(QueueRow::from).collect(),
        extensions: d
            .extensions
            .iter()
            .map(|(r, e)| ExtensionRow {
                request: RequestRow::from(r),
                extra: format_duration(e.extra),
                reason: e.reason.clone(),
            })
            .collect(),
        needs_review: d.needs_review.iter().map(RequestRow::from).collect(),
        live: d.live.iter().map(RequestRow::from).collect(),
    })
}

fn new_page(state: &AppState, chrome: Chrome, user: &lakegate_domain::Principal) -> NewRequestPage {
    let defaults = state.services.settings.policy.defaults();
    NewRequestPage {
        chrome,
        error: None,
        resources: String::new(),
        duration: format_duration(defaults.default_duration),
        reason: String::new(),
        min_duration: format_duration(defaults.min_duration),
        max_duration: format_duration(defaults.max_duration),
        max_resources: MAX_RESOURCES,
        may_break_glass: state.services.settings.policy.may_break_glass(user),
        break_glass: false,
    }
}

async fn new_request(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<NewRequestPage, WebError> {
    let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
    Ok(new_page(&state, chrome, &user.principal))
}

#[derive(Deserialize)]
struct NewRequestForm {
    #[serde(default)]
    resources: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
    /// A checkbox: present (`on`) when ticked.
    #[serde(default)]
    break_glass: Option<String>,
}

async fn submit_request(
    State(state): State<AppState>,
    Fresh(user): Fresh,
    CsrfForm(form): CsrfForm<NewRequestForm>,
) -> Result<Response, WebError> {
    let break_glass = form.break_glass.as_deref().is_some_and(|v| !v.is_empty());
    let input = SubmitInput {
        resources: &form.resources,
        duration: &form.duration,
        reason: &form.reason,
        break_glass,
    };
    match verbs::submit(&state.services, &user.principal, input).await {
        Ok((id, outcome)) => {
            let message = match outcome {
                Submitted::Pending => "Request submitted. Its approvers have been asked.",
                Submitted::AutoApproved => {
                    "Approved automatically by the policy. Access is being set up."
                }
                Submitted::BreakGlass => {
                    "Break-glass access is being set up now. It is flagged, approvers have been \
                     notified, and they will review it."
                }
            };
            set_flash(&user.session, FlashKind::Success, message).await?;
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
                break_glass,
                ..new_page(&state, chrome, &user.principal)
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `?queries=<page>&events=<page>` on a request's page; anything else there is ignored.
#[derive(Deserialize, Default)]
struct PageParams {
    queries: Option<String>,
    events: Option<String>,
}

impl PageParams {
    fn pages(&self) -> verbs::DetailPages {
        let page = |p: &Option<String>| {
            p.as_deref()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .unwrap_or(1)
        };
        verbs::DetailPages {
            queries: page(&self.queries),
            events: page(&self.events),
        }
    }
}

async fn show_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<ShowRequestPage, WebError> {
    let id = parse_id(&id)?;
    let d = verbs::view_pages(&state.services, &user.principal, id, params.pages()).await?;
    let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
    Ok(ShowRequestPage::new(chrome, &d, state.services.clock.now()))
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
    let outcome = verbs::decide(&state.services, &user.principal, id, decision, comment).await?;
    let message = decided_message(outcome, "Approved. Access is being set up.", "Denied.");
    set_flash(&user.session, FlashKind::Success, message).await?;
    Ok(Redirect::to(&format!("/requests/{id}")))
}

/// What a decision did, for the flash: `approved` or `denied`, or what is still missing.
fn decided_message(outcome: Decided, approved: &str, denied: &str) -> String {
    match outcome {
        Decided::Approved => approved.to_owned(),
        Decided::NeedsMore(missing) => format!(
            "Your approval is recorded. Still needed: {}.",
            missing.join("; ")
        ),
        Decided::Denied => denied.to_owned(),
    }
}

async fn approve_request(
    State(state): State<AppState>,
    Fresh(user): Fresh,
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
    Fresh(user): Fresh,
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
    Fresh(user): Fresh,
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

async fn review_request(
    State(state): State<AppState>,
    Fresh(user): Fresh,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> Result<Redirect, WebError> {
    let id = parse_id(&id)?;
    verbs::review(
        &state.services,
        &user.principal,
        id,
        form.comment.as_deref(),
    )
    .await?;
    set_flash(&user.session, FlashKind::Success, "Marked as reviewed.").await?;
    Ok(Redirect::to(&format!("/requests/{id}")))
}

#[derive(Deserialize)]
struct ExtendForm {
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
}

async fn extend_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ExtendForm>,
) -> Result<Redirect, WebError> {
    let id = parse_id(&id)?;
    let (kind, message) = match extensions::extend(
        &state.services,
        &user.principal,
        id,
        &form.duration,
        &form.reason,
    )
    .await
    {
        Ok(Extended::Now(expires_at)) => (
            FlashKind::Success,
            format!(
                "Extended by the policy: access now lasts until {}.",
                fmt_time(expires_at)
            ),
        ),
        Ok(Extended::Pending) => (
            FlashKind::Success,
            "More time asked for. Its approvers have been asked.".to_owned(),
        ),
        // Back to the page, with what is wrong.
        Err(AppError::Invalid(e)) => (FlashKind::Error, e.to_string()),
        Err(e) => return Err(e.into()),
    };
    set_flash(&user.session, kind, &message).await?;
    Ok(Redirect::to(&format!("/requests/{id}")))
}

async fn decide_extension(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    extension: i64,
    decision: Decision,
    comment: Option<&str>,
) -> Result<Redirect, WebError> {
    let id = parse_id(id)?;
    let outcome = extensions::decide_extension(
        &state.services,
        &user.principal,
        id,
        extension,
        decision,
        comment,
    )
    .await?;
    let message = decided_message(
        outcome,
        "Extension approved: the grant lasts longer.",
        "Extension denied.",
    );
    set_flash(&user.session, FlashKind::Success, message).await?;
    Ok(Redirect::to(&format!("/requests/{id}")))
}

async fn approve_extension(
    State(state): State<AppState>,
    Fresh(user): Fresh,
    Path((id, extension)): Path<(String, i64)>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> Result<Redirect, WebError> {
    decide_extension(
        &state,
        &user,
        &id,
        extension,
        Decision::Approve,
        form.comment.as_deref(),
    )
    .await
}

async fn deny_extension(
    State(state): State<AppState>,
    Fresh(user): Fresh,
    Path((id, extension)): Path<(String, i64)>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> Result<Redirect, WebError> {
    decide_extension(
        &state,
        &user,
        &id,
        extension,
        Decision::Deny,
        form.comment.as_deref(),
    )
    .await
}
