//! Extractors for the rules every handler shares: who is signed in, and forms that pass the
//! CSRF check before they are read.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::Method;
use axum::http::request::Parts;
use lakegate_domain::Principal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use crate::error::WebError;
use crate::state::AppState;
use crate::{csrf, session};

/// The signed-in person. Pages redirect to sign-in (and back) when nobody is.
pub struct CurrentUser {
    pub principal: Principal,
    pub session: Session,
}

async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Session, WebError> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, m)| WebError::Internal(format!("no session layer: {m}")))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        current(parts, state, false).await
    }
}

/// The signed-in person with their groups confirmed by the identity provider just now: for
/// decisions (approve, deny, review, extensions), revokes, requests (break-glass) and the audit
/// trail, where a group removed at the provider must not count any more.
pub struct Fresh(pub CurrentUser);

impl FromRequestParts<AppState> for Fresh {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        current(parts, state, true).await.map(Self)
    }
}

async fn current(
    parts: &mut Parts,
    state: &AppState,
    force: bool,
) -> Result<CurrentUser, WebError> {
    let session = session_of(parts, state).await?;
    match session::user_checked(&session, &state.config, force).await? {
        Some(principal) => Ok(CurrentUser { principal, session }),
        None => {
            // After sign-in, come back to the page (a GET) that was asked for.
            let next = if parts.method == Method::GET {
                parts
                    .uri
                    .path_and_query()
                    .map_or("/".to_owned(), |p| p.as_str().to_owned())
            } else {
                "/".to_owned()
            };
            Err(WebError::SignIn { next })
        }
    }
}

/// Who a personal API token acts as (`Authorization: Bearer lgp_…`), for the JSON API. Every
/// refusal is a JSON error.
pub struct ApiUser(pub lakegate_app::tokens::ApiCaller);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        api_caller(parts, state, false).await.map(Self)
    }
}

/// The same, with the owner's groups confirmed by the identity provider just now: for
/// requests, decisions, revokes and the audit trail, as [`Fresh`] is for the pages.
pub struct FreshApiUser(pub lakegate_app::tokens::ApiCaller);

impl FromRequestParts<AppState> for FreshApiUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        api_caller(parts, state, true).await.map(Self)
    }
}

/// The token's caller. With OpenID Connect, the owner's groups are re-read from the provider
/// (with the tokens of their latest sign-in) when `LAKEGATE_GROUPS_REFRESH` has passed since
/// the last read, or at once when `force`: a token acts only on groups the provider confirms,
/// exactly as a session does, and one the provider stops vouching for is refused until its
/// owner signs in again.
async fn api_caller(
    parts: &Parts,
    state: &AppState,
    force: bool,
) -> Result<lakegate_app::tokens::ApiCaller, WebError> {
    use lakegate_app::tokens;

    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let mut caller = tokens::authenticate(&state.services, header)
        .await
        .map_err(WebError::Json)?;
    let confirmed = confirm_groups(state, &caller.principal, force).await?;
    caller.principal = confirmed.through_token(caller.token_name.clone());
    Ok(caller)
}

/// `p` with the groups their identity provider confirms (with the tokens of their latest
/// sign-in): re-read when `LAKEGATE_GROUPS_REFRESH` has passed since the last read, or at once
/// when `force`. Someone the provider stops vouching for is refused until they sign in again.
/// Without OpenID Connect (the development sign-in), `p` as it is.
pub(crate) async fn confirm_groups(
    state: &AppState,
    p: &Principal,
    force: bool,
) -> Result<Principal, WebError> {
    use lakegate_app::AppError;
    use lakegate_app::tokens;

    let svc = &state.services;
    let Some(oidc) = state.config.oidc() else {
        return Ok(p.clone());
    };
    let refused = |why: &str| {
        WebError::Json(AppError::TokenRefused(format!(
            "{why}; sign in to lakegate again and your tokens work again"
        )))
    };
    let Some(link) = tokens::provider_link(svc, &p.subject)
        .await
        .map_err(WebError::Json)?
    else {
        return Err(refused(
            "your identity provider has not confirmed your groups since your last sign-in",
        ));
    };
    if !force && svc.clock.now() - link.checked_at < state.config.groups_refresh {
        return Ok(p.clone());
    }
    let Ok(mut provider) = serde_json::from_value::<crate::oidc::ProviderTokens>(link.tokens)
    else {
        return Err(refused(
            "the identity provider's tokens kept for you are not readable",
        ));
    };
    let confirmed = match oidc.current_groups(&p.subject, &mut provider).await {
        Ok(groups) => Principal::new(p.subject.clone(), p.email.clone(), p.name.clone(), groups)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match confirmed {
        Ok(now) => {
            let kept = serde_json::to_value(&provider)
                .map_err(|e| WebError::Internal(format!("provider tokens: {e}")))?;
            tokens::groups_confirmed(svc, &now.subject, &now.groups, &kept)
                .await
                .map_err(WebError::Json)?;
            if now.groups != p.groups {
                tracing::info!(email = %p.email, before = ?p.groups, after = ?now.groups,
                    "groups changed at the identity provider");
            }
            Ok(now)
        }
        Err(e) => {
            tracing::warn!(email = %p.email, error = %e,
                "refused: the identity provider did not confirm the person's groups");
            tokens::provider_refused(svc, &p.subject)
                .await
                .map_err(WebError::Json)?;
            Err(refused(
                "your identity provider no longer confirms your sign-in",
            ))
        }
    }
}

/// The TCP peer of the request, when the server was started with connection info (a router
/// driven without it, as in tests, has none).
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::ConnectInfo;
        Ok(Self(
            ConnectInfo::<std::net::SocketAddr>::from_request_parts(parts, state)
                .await
                .ok()
                .map(|ConnectInfo(addr)| addr),
        ))
    }
}

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

/// A urlencoded form whose `csrf_token` and `Origin` were checked before `T` was read.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        csrf::verify_origin(&parts.headers, state.config.origin())?;
        let session = session_of(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                WebError::TooLarge
            } else {
                WebError::BadForm(format!("the form could not be read: {}", e.body_text()))
            }
        })?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::BadForm(format!("the form could not be read: {e}")))?;
        csrf::verify(&session, field.csrf_token.as_deref()).await?;
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::BadForm(format!("the form is incomplete: {e}")))?;
        Ok(Self(form))
    }
}
