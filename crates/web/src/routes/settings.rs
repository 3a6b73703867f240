//! A signed-in person's own settings: personal API tokens (create, list, revoke).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lakegate_app::AppError;
use lakegate_app::tokens::{self, NewToken};
use lakegate_domain::api_token::Scope;
use tower_sessions::Session;

use crate::error::WebError;
use crate::extract::{CsrfForm, CurrentUser};
use crate::session::{FlashKind, set_flash};
use crate::state::AppState;
use crate::views::settings::{ScopeChoice, TokenRow, TokensPage};
use crate::views::{Chrome, fmt_opt_time, fmt_time};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/tokens", get(tokens_page).post(create_token))
        .route("/settings/tokens/{id}/revoke", post(revoke_token))
}

/// What the page shows besides the list: a token just created, or the form as typed with
/// what was wrong.
#[derive(Default)]
struct Outcome {
    created: Option<String>,
    error: Option<String>,
    name: String,
    scopes: Vec<String>,
    expires_in: String,
}

async fn render(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    outcome: Outcome,
) -> Result<TokensPage, WebError> {
    let now = state.services.clock.now();
    let tokens = tokens::list(&state.services, &user.principal)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            scopes: t
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created_at: fmt_time(t.created_at),
            expires_at: fmt_time(t.expires_at),
            last_used_at: t
                .last_used_at
                .map_or_else(|| "never".to_owned(), |at| fmt_opt_time(Some(at))),
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "active"
            },
            name: t.name,
        })
        .collect();
    // Read-only by default: a token gets more only when its owner ticks it.
    let scopes = Scope::ALL
        .into_iter()
        .map(|s| ScopeChoice {
            value: s.as_str(),
            description: s.describe(),
            checked: if outcome.error.is_some() {
                outcome.scopes.iter().any(|x| x == s.as_str())
            } else {
                s == Scope::RequestsRead
            },
        })
        .collect();
    Ok(TokensPage {
        chrome: Chrome::new(state, session, Some(&user.principal)).await?,
        tokens,
        scopes,
        created: outcome.created,
        error: outcome.error,
        name: outcome.name,
        expires_in: outcome.expires_in,
    })
}

async fn tokens_page(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<TokensPage, WebError> {
    render(&state, &user.session, &user, Outcome::default()).await
}

/// Creates a token and shows it once, on this answer (never in a redirect or a flash, which
/// would keep it in the session).
async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let name = field("name").unwrap_or_default().to_owned();
    let expires_in = field("expires_in").unwrap_or_default().to_owned();
    let scopes: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "scopes")
        .map(|(_, v)| v.clone())
        .collect();
    let made = tokens::create(
        &state.services,
        &user.principal,
        NewToken {
            name: &name,
            scopes: scopes.iter().map(String::as_str).collect(),
            expires_in: Some(&expires_in),
        },
    )
    .await;
    let mut page = match made {
        Ok(created) => {
            let outcome = Outcome {
                created: Some(created.token),
                ..Outcome::default()
            };
            render(&state, &user.session, &user, outcome)
                .await?
                .into_response()
        }
        Err(AppError::Invalid(e)) => {
            let outcome = Outcome {
                error: Some(e.to_string()),
                name,
                scopes,
                expires_in,
                ..Outcome::default()
            };
            let page = render(&state, &user.session, &user, outcome).await?;
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        Err(e) => return Err(e.into()),
    };
    page.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(page)
}

#[derive(serde::Deserialize)]
struct Empty {}

async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Redirect, WebError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    tokens::revoke(&state.services, &user.principal, id).await?;
    set_flash(&user.session, FlashKind::Success, "Token revoked.").await?;
    Ok(Redirect::to("/settings/tokens"))
}
