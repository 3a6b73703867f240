//! The guarded console through the API: run a statement as the grant's session, read its
//! state and its rows a page at a time.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lakegate_app::console::{self, Outcome};
use lakegate_domain::api_token::Scope;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{ApiError, QueryBody, QueryStarted, QueryView};
use super::{Body, Params, invalid, no_store, parse_id};
use crate::error::WebError;
use crate::extract::ApiUser;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_query))
        .routes(routes!(show_query))
}

/// Runs one statement through the SQL guard and, if it passes, in the grant's workgroup as the
/// grant's session, under its budget.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/queries", tag = "console",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = QueryBody,
    responses(
        (status = 201, description = "Started; read it at `url`", body = QueryStarted),
        (status = 404, description = "`NotFound`", body = ApiError),
        (status = 409, description = "`WrongState`: the grant is not active", body = ApiError),
        (status = 413, description = "`TooLarge`", body = ApiError),
        (status = 422, description = "`QueryRefused` with the guard's reason, or `InvalidInput`", body = ApiError),
    ),
    security(("token" = ["console"]))
)]
async fn run_query(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(id): Path<String>,
    Body(body): Body<QueryBody>,
) -> Result<Response, WebError> {
    caller.require(Scope::Console).map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    if let Some(t) = &body.client_token
        && !console::plausible_client_token(t)
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
            Json(ApiError {
                code: "QueryRefused".to_owned(),
                message: reason,
            }),
        )
            .into_response()),
        Outcome::Started(query) => {
            let state_now = match console::status(svc, &caller.principal, id, &query).await {
                Ok(q) => Some(q.execution.state.as_str().to_owned()),
                Err(e) => {
                    tracing::warn!(%query, error = %e, "could not read a console query just started");
                    None
                }
            };
            Ok((
                StatusCode::CREATED,
                Json(QueryStarted {
                    url: format!("/api/v1/requests/{id}/queries/{query}"),
                    id: query,
                    state: state_now,
                }),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RowsQuery {
    /// `next_cursor` of the answer before.
    cursor: Option<String>,
}

/// A console query now: state, bytes, cost, and once it has succeeded a page of its rows
/// (Athena's pages, up to 1,000 rows) with `next_cursor` for the next.
#[utoipa::path(
    get, path = "/api/v1/requests/{id}/queries/{query}", tag = "console",
    params(
        ("id" = uuid::Uuid, Path, description = "The request's id"),
        ("query" = String, Path, description = "The query's id, as `POST …/queries` answered"),
        RowsQuery,
    ),
    responses(
        (status = 200, body = QueryView),
        (status = 404, description = "`NotFound`: no such query of this grant's console", body = ApiError),
        (status = 409, description = "`WrongState`: the grant has ended", body = ApiError),
    ),
    security(("token" = ["console"]))
)]
async fn show_query(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path((id, query)): Path<(String, String)>,
    Params(params): Params<RowsQuery>,
) -> Result<Response, WebError> {
    caller.require(Scope::Console).map_err(WebError::Json)?;
    let id = parse_id(&id)?;
    let svc = &state.services;
    let q = console::status_with_rows(svc, &caller.principal, id, &query, params.cursor.as_deref())
        .await
        .map_err(WebError::Json)?;
    let view = query_view(q);
    Ok(no_store(Json(view)))
}

/// A console query as the API shows it, with the page of rows `q` holds (once it has
/// succeeded).
pub(crate) fn query_view(q: console::QueryPage) -> QueryView {
    let e = q.execution;
    let (columns, rows, next_cursor) = match q.results {
        Some(page) => (Some(page.columns), Some(page.rows), page.next),
        None => (None, None, None),
    };
    QueryView {
        id: e.id,
        state: e.state.as_str().to_owned(),
        state_reason: e.state_change_reason,
        sql: e.sql,
        database: e.database,
        bytes_scanned: e.bytes_scanned,
        billed_bytes: q.billed_bytes,
        cost_usd_micros: q.cost.0,
        submitted_at: e.submitted_at,
        completed_at: e.completed_at,
        columns,
        rows,
        next_cursor,
    }
}
