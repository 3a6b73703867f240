//! The JSON API under `/api/v1`, for scripts, the CLI and agents, authorised by personal API
//! tokens (`Authorization: Bearer lgp_…`) with the same checks as the pages. Errors are
//! `{"code","message"}`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use lakegate_app::AppError;
use lakegate_app::requests as verbs;
use lakegate_domain::RequestId;
use lakegate_domain::api_token::Scope;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::WebError;
use crate::extract::ApiUser;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/requests/{id}", get(show_request))
}

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
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
    let id: RequestId = id.parse().map_err(|_| WebError::Json(AppError::NotFound))?;
    let d = verbs::view(&state.services, &caller.principal, id)
        .await
        .map_err(WebError::Json)?;
    let r = &d.request;
    Ok(Json(json!({
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
        "activated_at": rfc3339(r.activated_at),
        "expires_at": rfc3339(r.expires_at),
        "ended_at": rfc3339(r.ended_at),
        "missing_approvals": d.approval.missing,
        "decisions": d.decisions.iter().map(|x| json!({
            "by": x.actor.email,
            "decision": x.decision.as_str(),
            "comment": x.comment,
            "at": rfc3339(Some(x.at)),
        })).collect::<Vec<_>>(),
        "usage": {
            "queries": d.usage.queries,
            "bytes_scanned": d.usage.bytes_scanned,
            "cost_usd_micros": d.usage.cost.0,
        },
    })))
}
