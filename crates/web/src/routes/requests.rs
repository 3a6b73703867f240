//! The dashboard, the request form, a request's page, and its actions.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lakegate_app::requests::{
    self as verbs, Decided, Extended, ExtensionDetail, RequestDetail, SubmitInput, Submitted,
};
use lakegate_app::{AppError, credentials};
use lakegate_domain::duration::format_duration;
use lakegate_domain::naming::NAME_PREFIX;
use lakegate_domain::policy_file::{DEFAULTS, Evaluation, format_bytes};
use lakegate_domain::target::MAX_RESOURCES;
use lakegate_domain::{RequestId, RequestStatus};
use lakegate_store::extensions::ExtensionStatus;
use lakegate_store::requests::{Decision, DecisionRecord};
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{CsrfForm, CurrentUser};
use crate::session::{FlashKind, set_flash};
use crate::state::AppState;
use crate::views::chart::UsageChart;
use crate::views::requests::{
    CredentialsPage, DashboardPage, DecisionView, EventView, ExtensionRow, ExtensionView,
    NewRequestPage, PolicyView, QueryView, RequirementView, ResourceView, ShowRequestPage,
};
use crate::views::{Chrome, RequestRow, fmt_opt_time, fmt_time};
use lakegate_domain::usage::{Micros, approx_bytes, cumulative_bytes};

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
        pending: d.pending.iter().map(RequestRow::from).collect(),
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
    user: CurrentUser,
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

fn status_note(d: &RequestDetail) -> String {
    let r = &d.request;
    match r.status {
        RequestStatus::Pending if d.approval.missing.is_empty() => {
            "Waiting for an approver.".into()
        }
        RequestStatus::Pending => format!("Waiting for {}.", d.approval.missing.join("; ")),
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
        decisions: d.decisions.iter().map(decision_view).collect(),
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
        break_glass: r.break_glass,
        auto_approved: r.auto_approved,
        review: r.review.as_ref().map_or_else(String::new, |v| {
            format!(
                "reviewed by {} at {}{}",
                v.by_email,
                fmt_time(v.at),
                v.comment
                    .as_ref()
                    .map_or_else(String::new, |c| format!(": “{c}”"))
            )
        }),
        why: policy_view(&d),
        extensions: d.extensions.iter().map(extension_view).collect(),
        pending_extension: d
            .extensions
            .iter()
            .find(|e| e.extension.status == ExtensionStatus::Pending)
            .map(extension_view),
        scan_cutoff: format_bytes(
            r.scan_cutoff_bytes
                .unwrap_or(d.evaluation.scan_cutoff_bytes.value),
        ),
        show_usage: r.activated_at.is_some(),
        usage_summary: usage_summary(&d),
        usage_chart: usage_chart(&d, state.services.clock.now()),
        queries: d
            .queries
            .iter()
            .map(|q| QueryView {
                submitted: fmt_opt_time(q.execution.submitted_at),
                state: q.execution.state.as_str(),
                scanned: approx_bytes(q.execution.bytes_scanned),
                cost: Micros(q.cost_micros).to_string(),
                sql: q.execution.sql.clone(),
                reason: q.execution.state_change_reason.clone().unwrap_or_default(),
                flags: q.flags.iter().map(|f| f.description()).collect(),
            })
            .collect(),
        scan_budget: r
            .scan_budget_bytes
            .or(d.evaluation.scan_budget_bytes.as_ref().map(|l| l.value))
            .map_or_else(|| "none".to_owned(), format_bytes),
    })
}

/// `3 queries (1 failed) · 94 MB scanned · about $0.0005`.
fn usage_summary(d: &RequestDetail) -> String {
    let u = &d.usage;
    let mut parts = vec![format!(
        "{} {}",
        u.queries,
        if u.queries == 1 { "query" } else { "queries" }
    )];
    for (n, what) in [
        (u.failed, "failed"),
        (u.cancelled, "cancelled"),
        (u.in_progress, "in progress"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!(
        "{} · {} scanned · about {}",
        parts.join(", "),
        approx_bytes(u.bytes_scanned),
        u.cost
    )
}

/// Cumulative bytes over the grant's time, against its budget.
fn usage_chart(d: &RequestDetail, now: time::OffsetDateTime) -> String {
    let r = &d.request;
    let from = r.activated_at.unwrap_or(r.created_at);
    let until = r.ended_at.or(r.expires_at).unwrap_or(now).max(from);
    let points: Vec<_> = d
        .queries
        .iter()
        .map(|q| {
            (
                q.execution
                    .completed_at
                    .or(q.execution.submitted_at)
                    .unwrap_or(from),
                q.execution.bytes_scanned,
            )
        })
        .collect();
    UsageChart {
        cumulative: &cumulative_bytes(&points),
        budget: r.scan_budget_bytes,
        from,
        until,
    }
    .to_svg()
}

fn decision_view(x: &DecisionRecord) -> DecisionView {
    DecisionView {
        who: x.actor.email.clone(),
        groups: x.groups.join(", "),
        decision: match x.decision {
            Decision::Approve => "approved",
            Decision::Deny => "denied",
        },
        comment: x.comment.clone().unwrap_or_default(),
        at: fmt_time(x.at),
    }
}

fn extension_view(e: &ExtensionDetail) -> ExtensionView {
    let x = &e.extension;
    ExtensionView {
        id: x.id,
        extra: format_duration(x.extra),
        reason: x.reason.clone(),
        status: x.status.as_str(),
        requested_at: fmt_time(x.requested_at),
        decided_at: fmt_opt_time(x.decided_at),
        auto_approved: x.auto_approved,
        decisions: e.decisions.iter().map(decision_view).collect(),
        missing: if x.status == ExtensionStatus::Pending {
            e.approval.missing.clone()
        } else {
            Vec::new()
        },
    }
}

/// `rule hr`, or `the defaults`.
fn source(rule: &str) -> String {
    if rule == DEFAULTS {
        "the defaults".to_owned()
    } else {
        format!("rule {rule}")
    }
}

/// How the policy applies to the request, for the "why" panel.
fn policy_view(d: &RequestDetail) -> PolicyView {
    let e: &Evaluation = &d.evaluation;
    let mut limits = vec![
        (
            "Longest access".to_owned(),
            format_duration(e.max_duration.value),
            source(&e.max_duration.rule),
        ),
        (
            "Shortest access".to_owned(),
            format_duration(e.min_duration.value),
            source(&e.min_duration.rule),
        ),
        (
            "Per-query scan cutoff".to_owned(),
            format_bytes(e.scan_cutoff_bytes.value),
            source(&e.scan_cutoff_bytes.rule),
        ),
    ];
    if let Some(b) = &e.scan_budget_bytes {
        limits.push((
            "Total scan budget".to_owned(),
            format_bytes(b.value),
            source(&b.rule),
        ));
    }
    PolicyView {
        tables: e
            .tables
            .iter()
            .map(|t| {
                (
                    format!("{}.{}", t.database, t.table),
                    t.rules
                        .iter()
                        .map(|r| source(r))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
            .collect(),
        requirements: e
            .requirements
            .iter()
            .zip(&d.approval.progress)
            .map(|(req, p)| RequirementView {
                what: format!(
                    "{} {} from {}",
                    req.count,
                    if req.count == 1 {
                        "approval"
                    } else {
                        "approvals"
                    },
                    req.groups.join(" or ")
                ),
                from: req.label(),
                approved_by: p.approved_by.join(", "),
                still_needed: p.still_needed,
            })
            .collect(),
        pending: d.request.status == RequestStatus::Pending,
        missing: if d.request.status == RequestStatus::Pending {
            d.approval.missing.clone()
        } else {
            Vec::new()
        },
        sensitive: e
            .sensitive_columns
            .iter()
            .map(|c| format!("{c} ({})", source(&c.rule)))
            .collect(),
        limits,
        auto_approval: if e.auto_approval.allowed {
            "yes".to_owned()
        } else {
            format!("no: {}", e.auto_approval.reasons.join("; "))
        },
        break_glass: if e.break_glass.allowed {
            e.break_glass.max_duration.as_ref().map_or_else(
                || "yes".to_owned(),
                |m| format!("yes, for at most {}", format_duration(m.value)),
            )
        } else {
            format!("no: {}", e.break_glass.reasons.join("; "))
        },
    }
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
    // What a partial approval still misses, one line each.
    if let Some(items) = detail.get("missing").and_then(|v| v.as_array())
        && !items.is_empty()
    {
        let items: Vec<&str> = items.iter().filter_map(|v| v.as_str()).collect();
        parts.push(format!("still missing: {}", items.join("; ")));
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

async fn review_request(
    State(state): State<AppState>,
    user: CurrentUser,
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
    let (kind, message) = match verbs::extend(
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
    let outcome = verbs::decide_extension(
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
    user: CurrentUser,
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
    user: CurrentUser,
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
