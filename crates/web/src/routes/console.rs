//! The guarded query console of an active grant: the form, a query's page (state, progress,
//! cost, rows), stopping a query, and its results as CSV.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lakegate_app::AppError;
use lakegate_app::console::{self, Outcome, Stopped};
use lakegate_domain::RequestId;
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{CsrfForm, CurrentUser};
use crate::session::{FlashKind, set_flash};
use crate::state::AppState;
use crate::views::Chrome;
use crate::views::console::{ConsolePage, QueryPageView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/requests/{id}/query", get(console_page).post(run_query))
        .route("/requests/{id}/query/{query}", get(query_page))
        .route("/requests/{id}/query/{query}/stop", post(stop_query))
        .route(
            "/requests/{id}/query/{query}/results.csv",
            get(download_csv),
        )
}

fn parse_id(id: &str) -> Result<RequestId, WebError> {
    id.parse().map_err(|_| WebError::App(AppError::NotFound))
}

/// Athena's query ids are UUIDs; anything else cannot be one of the grant's queries.
fn check_query_id(query: &str) -> Result<(), WebError> {
    let plausible = !query.is_empty()
        && query.len() <= 128
        && query
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plausible {
        Ok(())
    } else {
        Err(WebError::App(AppError::NotFound))
    }
}

#[derive(Deserialize)]
struct ConsoleQuery {
    /// Start from this query's SQL and database ("edit and run again").
    from: Option<String>,
}

async fn console_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<ConsoleQuery>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let from = q.from.as_deref().filter(|f| check_query_id(f).is_ok());
    let c = console::open(&state.services, &user.principal, id, from).await?;
    let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
    let (sql, database) = c.from.as_ref().map_or((String::new(), None), |q| {
        (
            q.execution.sql.clone(),
            Some(q.execution.database.clone().unwrap_or_default()),
        )
    });
    let page = ConsolePage::new(chrome, &c, &state.services.settings, sql, database, None);
    // Each rendering carries a fresh run token: a page restored from the history must not
    // send an old one with new SQL.
    Ok(no_store(page.into_response()))
}

#[derive(Deserialize)]
struct RunForm {
    #[serde(default)]
    sql: String,
    #[serde(default)]
    database: Option<String>,
    /// The form's random token: the same form sent twice starts one query.
    #[serde(default)]
    run_token: Option<String>,
}

/// Runs the statement and answers its page at once (after a few seconds' wait, so quick
/// statements show their rows); its own address, which the page refreshes to while it runs,
/// is `/requests/{id}/query/{query}`. The form's run token makes a resubmission (a reload of
/// this answer) return the same query instead of running it again. A refused statement
/// answers 422 with the form as it was and the reason.
async fn run_query(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RunForm>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let svc = &state.services;
    let outcome = console::run(
        svc,
        &user.principal,
        id,
        &form.sql,
        form.database.as_deref(),
        form.run_token.as_deref(),
    )
    .await?;
    match outcome {
        Outcome::Refused(reason) => {
            let c = console::open(svc, &user.principal, id, None).await?;
            let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
            let page = ConsolePage::new(
                chrome,
                &c,
                &svc.settings,
                form.sql,
                Some(form.database.unwrap_or_default()),
                Some(reason),
            );
            Ok(no_store(
                (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            ))
        }
        Outcome::Started(query) => {
            let q = match console::show(svc, &user.principal, id, &query, true).await {
                Ok(q) => q,
                // It runs: never an error page that invites running it again. Its own page
                // says how it is doing (or what went wrong).
                Err(e) => {
                    tracing::warn!(%query, error = %e, "could not show a console query just started");
                    return Ok(
                        Redirect::to(&format!("/requests/{id}/query/{query}")).into_response()
                    );
                }
            };
            let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
            let mut res = QueryPageView::new(chrome, &q, svc.clock.now()).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/requests/{id}/query/{query}")) {
                res.headers_mut().insert(header::CONTENT_LOCATION, v);
            }
            Ok(no_store(res))
        }
    }
}

async fn query_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, query)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    check_query_id(&query)?;
    let svc = &state.services;
    let q = console::show(svc, &user.principal, id, &query, false).await?;
    let chrome = Chrome::new(&state, &user.session, Some(&user.principal)).await?;
    Ok(no_store(
        QueryPageView::new(chrome, &q, svc.clock.now()).into_response(),
    ))
}

#[derive(Deserialize)]
struct EmptyForm {}

async fn stop_query(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, query)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<Redirect, WebError> {
    let id = parse_id(&id)?;
    check_query_id(&query)?;
    let message = match console::stop(&state.services, &user.principal, id, &query).await? {
        Stopped::Stopped => "Stop requested.".to_owned(),
        Stopped::AlreadyFinished(st) => format!(
            "The query had already finished ({}); nothing was stopped.",
            st.as_str().to_lowercase()
        ),
    };
    set_flash(&user.session, FlashKind::Success, &message).await?;
    Ok(Redirect::to(&format!("/requests/{id}/query/{query}")))
}

/// Every row, streamed a page of Athena's results at a time.
async fn download_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, query)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    check_query_id(&query)?;
    let reader = console::csv(&state.services, &user.principal, id, &query).await?;
    let stream = futures_util::stream::try_unfold(reader, |mut reader| async move {
        match reader.next_chunk().await {
            Ok(Some(chunk)) => Ok(Some((chunk, reader))),
            Ok(None) => Ok(None),
            Err(e) => {
                // The status line is sent already; the download ends short, and the log says why.
                tracing::error!(error = %e, "query results download failed");
                Err(std::io::Error::other(e.to_string()))
            }
        }
    });
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{query}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(no_store(res))
}

/// Query results are the grant's data: never kept by a browser or proxy cache.
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_that_could_be_athenas_are_looked_up() {
        assert!(check_query_id("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b").is_ok());
        assert!(check_query_id("fake-query-0001").is_ok());
        for bad in ["", "../..", "a/b", "q id", "q%2F", &"x".repeat(129)] {
            assert!(check_query_id(bad).is_err(), "{bad}");
        }
    }
}
