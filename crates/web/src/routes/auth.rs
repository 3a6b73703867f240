//! Sign-in and sign-out: OpenID Connect with the organisation's identity provider, or the
//! development sign-in, which exists only when explicitly enabled, which the server refuses to
//! enable with a public URL that is not loopback, and which answers only requests made directly
//! from this machine (never through a proxy).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lakegate_domain::Principal;
use serde::Deserialize;
use tower_sessions::Session;

use crate::SignIn;
use crate::error::WebError;
use crate::extract::{CsrfForm, Peer};
use crate::oidc::PendingSignIn;
use crate::session::{self, FlashKind, set_flash};
use crate::state::AppState;
use crate::views::Chrome;
use crate::views::auth::DevLoginPage;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/dev", get(dev_form).post(dev_sign_in))
        .route("/auth/logout", post(logout))
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only plain local paths: never redirect off-site after sign-in. Browsers drop tabs and line
/// breaks from URLs and read `\\` as `/`, so `/\t/evil` or `/\\evil` would become `//evil`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2048
                && n.chars().all(|c| c.is_ascii_graphic() && c != '\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

const PENDING_SIGN_IN: &str = "oidc_pending";

async fn login(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<Next>,
) -> Result<Response, WebError> {
    let next = safe_next(q.next.as_deref());
    match &state.config.sign_in {
        SignIn::Oidc(oidc) => {
            let (url, pending) = oidc.start(next);
            // One sign-in in flight per session; starting again replaces it.
            session.insert(PENDING_SIGN_IN, &pending).await?;
            Ok(Redirect::to(&url).into_response())
        }
        SignIn::Development => Ok(Redirect::to(&format!(
            "/auth/dev?next={}",
            crate::error::urlencode(&next)
        ))
        .into_response()),
    }
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    /// RFC 9207: who sent the person back.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn sign_in_refused(message: String) -> WebError {
    WebError::SignInFailed(message)
}

/// The identity provider sends the person back here with a code (or an error).
async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<Callback>,
) -> Result<Response, WebError> {
    let Some(oidc) = state.config.oidc() else {
        return Err(WebError::App(lakegate_app::AppError::NotFound));
    };
    // Taken out whatever happens next: a callback can be used once.
    let pending = session.remove::<PendingSignIn>(PENDING_SIGN_IN).await?;
    let Some(pending) = pending else {
        return Err(sign_in_refused(
            "this sign-in link is not valid any more (it was used already, or it expired). Please sign in again.".into(),
        ));
    };
    let state_ok = q.state.as_deref().is_some_and(|s| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            s.as_bytes(),
            pending.state.as_bytes(),
        ))
    });
    if !state_ok {
        return Err(sign_in_refused(
            "the sign-in answer does not belong to the sign-in this browser started. Please sign in again.".into(),
        ));
    }
    if let Some(iss) = &q.iss
        && iss.trim_end_matches('/') != oidc.issuer()
    {
        return Err(sign_in_refused(format!(
            "the sign-in answer came from {iss}, not from the configured identity provider"
        )));
    }
    if let Some(error) = &q.error {
        let detail = q.error_description.as_deref().unwrap_or("no details given");
        return Err(sign_in_refused(format!(
            "the identity provider did not sign you in ({error}: {detail})"
        )));
    }
    let Some(code) = q.code else {
        return Err(sign_in_refused("the sign-in answer carries no code".into()));
    };
    let identity = oidc.finish(&pending, code).await.map_err(|e| {
        tracing::warn!(error = %e, "OpenID Connect sign-in refused");
        sign_in_refused(e.to_string())
    })?;
    let identity_tokens = identity.tokens;
    let principal = Principal::new(
        identity.subject,
        identity.email,
        identity.name,
        identity.groups,
    )
    .map_err(|e| sign_in_refused(format!("the identity provider's answer is not usable: {e}")))?;
    session::start(&session, &principal, Some(&identity_tokens)).await?;
    let kept = serde_json::to_value(&identity_tokens)
        .map_err(|e| WebError::Internal(format!("provider tokens: {e}")))?;
    lakegate_app::sessions::record_sign_in(&state.services, &principal, "oidc", Some(&kept))
        .await?;
    set_flash(
        &session,
        FlashKind::Success,
        format!("Signed in as {}.", principal.email),
    )
    .await?;
    Ok(Redirect::to(&safe_next(Some(&pending.next))).into_response())
}

/// Headers a proxy adds: a request that carries one did not come straight from this machine,
/// whatever its peer address says.
const PROXY_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

/// The development sign-in exists only when enabled, and answers only a peer on loopback that
/// no proxy stands in front of. A request whose peer is unknown is refused too.
fn dev_enabled(state: &AppState, peer: &Peer, headers: &HeaderMap) -> Result<(), WebError> {
    if !state.config.dev_login() {
        return Err(WebError::App(lakegate_app::AppError::NotFound));
    }
    let direct = peer.0.is_some_and(|addr| addr.ip().is_loopback());
    let proxied = PROXY_HEADERS.iter().any(|h| headers.contains_key(*h));
    if direct && !proxied {
        return Ok(());
    }
    tracing::warn!(
        peer = ?peer.0.map(|a| a.ip()),
        proxied,
        "development sign-in refused: the request did not come straight from this machine"
    );
    Err(WebError::Forbidden(
        "the development sign-in answers only requests made directly from this machine, \
         never through a proxy",
    ))
}

async fn dev_form(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    session: Session,
    Query(q): Query<Next>,
) -> Result<DevLoginPage, WebError> {
    dev_enabled(&state, &peer, &headers)?;
    let user = session::user(&session, &state.config).await?;
    Ok(DevLoginPage {
        chrome: Chrome::new(&state, &session, user.as_ref()).await?,
        next: safe_next(q.next.as_deref()),
        error: None,
        email: String::new(),
        name: String::new(),
        groups: String::new(),
    })
}

#[derive(Deserialize)]
struct DevSignIn {
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    groups: String,
    next: Option<String>,
}

async fn dev_sign_in(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    session: Session,
    CsrfForm(form): CsrfForm<DevSignIn>,
) -> Result<Response, WebError> {
    dev_enabled(&state, &peer, &headers)?;
    let groups = form.groups.split(',').map(str::to_owned);
    let name = Some(form.name.clone()).filter(|n| !n.trim().is_empty());
    let principal = match Principal::new(form.email.trim(), form.email.trim(), name, groups) {
        Ok(p) => p,
        Err(e) => {
            let page = DevLoginPage {
                chrome: Chrome::new(&state, &session, None).await?,
                next: safe_next(form.next.as_deref()),
                error: Some(e.to_string()),
                email: form.email,
                name: form.name,
                groups: form.groups,
            };
            return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    session::start(&session, &principal, None).await?;
    lakegate_app::sessions::record_sign_in(&state.services, &principal, "development", None)
        .await?;
    set_flash(
        &session,
        FlashKind::Success,
        format!("Signed in as {}.", principal.email),
    )
    .await?;
    Ok(Redirect::to(&safe_next(form.next.as_deref())).into_response())
}

#[derive(Deserialize)]
struct Empty {}

async fn logout(session: Session, CsrfForm(_): CsrfForm<Empty>) -> Result<Redirect, WebError> {
    session.flush().await?;
    Ok(Redirect::to("/"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/requests/1")), "/requests/1");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
