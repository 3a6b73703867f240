//! The request form's catalog picker (`static/picker.js`): the Glue tables the policy makes
//! requestable, searched and paged, with their columns, types and sensitive columns; and what
//! the policy would make of the tables picked (durations, approvals needed) before anything is
//! submitted. Both answer JSON to a signed-in person; the form itself works without them.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lakegate_app::{catalog, requests};
use lakegate_domain::duration::format_duration;
use lakegate_domain::policy_file::format_bytes;
use serde::Deserialize;
use serde_json::json;

use crate::error::WebError;
use crate::extract::CurrentUser;
use crate::state::AppState;

/// Tables per page of the picker.
const PAGE: usize = 25;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/requests/new/tables", get(tables))
        .route("/requests/new/preview", get(preview))
}

#[derive(Debug, Deserialize)]
struct TablesQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    database: String,
    #[serde(default)]
    offset: usize,
}

/// `{"tables":[{"database","table","rules","columns":[{"name","type","sensitive"}]}],
/// "total","offset","next_offset","truncated"}`: one page of the requestable tables whose
/// `database.table` contains `q`.
async fn tables(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<TablesQuery>,
) -> Result<Response, WebError> {
    let database = Some(q.database.trim()).filter(|d| !d.is_empty());
    let listing = catalog::requestable(&state.services, &user.principal, database, Some(&q.q))
        .await
        .map_err(WebError::Json)?;
    let total = listing.tables.len();
    let page: Vec<_> = listing
        .tables
        .iter()
        .skip(q.offset)
        .take(PAGE)
        .map(|t| {
            json!({
                "database": t.database,
                "table": t.table,
                "rules": t.rules,
                "columns": t.columns.iter().map(|c| json!({
                    "name": c.name, "type": c.data_type, "sensitive": c.sensitive,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let next = q.offset + page.len();
    Ok(Json(json!({
        "tables": page,
        "total": total,
        "offset": q.offset,
        "next_offset": (next < total).then_some(next),
        "truncated": listing.truncated,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct PreviewQuery {
    #[serde(default)]
    resources: String,
    #[serde(default)]
    duration: String,
}

/// What the policy says of the picked tables: `{"default_duration","min_duration",
/// "max_duration","approvals":[{"label","groups","count"}],"sensitive_columns",
/// "auto_approved","auto_approval_reasons","scan_cutoff","scan_budget"}`; `422
/// {"code","message"}` for tables that cannot be asked for, with the form's own message.
async fn preview(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, WebError> {
    let e = requests::preview(
        &state.services,
        &user.principal,
        &q.resources,
        Some(&q.duration),
    )
    .await
    .map_err(WebError::Json)?;
    Ok(Json(json!({
        "duration": format_duration(e.duration),
        "default_duration": format_duration(e.default_duration),
        "min_duration": format_duration(e.min_duration.value),
        "max_duration": format_duration(e.max_duration.value),
        "max_duration_rule": e.max_duration.rule,
        "approvals": e.requirements.iter().map(|r| json!({
            "label": r.label(), "groups": r.groups, "count": r.count,
        })).collect::<Vec<_>>(),
        "sensitive_columns": e.sensitive_columns.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "auto_approved": e.auto_approval.allowed,
        "auto_approval_reasons": e.auto_approval.reasons,
        "scan_cutoff": format_bytes(e.scan_cutoff_bytes.value),
        "scan_budget": e.scan_budget_bytes.as_ref().map(|b| format_bytes(b.value)),
    }))
    .into_response())
}
