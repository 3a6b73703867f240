//! The audit trail through the API, for admins.

use axum::Json;
use axum::extract::State;
use lakegate_domain::api_token::Scope;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Params;
use super::model::{AuditActor, AuditEventView, AuditPage};
use crate::error::WebError;
use crate::extract::FreshApiUser;
use crate::routes::audit::FilterForm;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_page))
}

/// The audit page's filters; each may be left out.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// A request's id.
    #[param(value_type = Option<uuid::Uuid>)]
    request: Option<String>,
    /// The actor's email, or part of it.
    actor: Option<String>,
    /// An action, like `request.approved`.
    action: Option<String>,
    /// From this day (`2026-11-01`, UTC) or RFC 3339 time on.
    from: Option<String>,
    /// Until this day (inclusive) or RFC 3339 time.
    until: Option<String>,
    /// `older` of the page before.
    before: Option<i64>,
}

/// The audit trail, newest first, 100 events a page, filtered as on the audit page.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses((status = 200, body = AuditPage)),
    security(("token" = ["audit:read"]))
)]
async fn audit_page(
    State(state): State<AppState>,
    FreshApiUser(caller): FreshApiUser,
    Params(q): Params<AuditQuery>,
) -> Result<Json<AuditPage>, WebError> {
    caller.require(Scope::AuditRead).map_err(WebError::Json)?;
    let form = FilterForm {
        request: q.request.unwrap_or_default(),
        actor: q.actor.unwrap_or_default(),
        action: q.action.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        until: q.until.unwrap_or_default(),
    };
    let filter = form.parse(q.before).map_err(|e| WebError::Json(e.into()))?;
    let page = lakegate_app::audit::page(&state.services, &caller.principal, &filter)
        .await
        .map_err(WebError::Json)?;
    Ok(Json(AuditPage {
        events: page
            .events
            .iter()
            .map(|(e, hash)| AuditEventView {
                id: e.id,
                at: e.at,
                request_id: e.request.map(|r| r.0),
                actor: e.actor.as_ref().map(|a| AuditActor {
                    subject: a.subject.clone(),
                    email: a.email.clone(),
                }),
                action: e.action.as_str().to_owned(),
                detail: e.detail.clone(),
                hash: lakegate_app::audit::hex(hash),
            })
            .collect(),
        older: page.older,
    }))
}
