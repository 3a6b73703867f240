//! CSRF protection: a random token per session, carried in every form as `csrf_token` and
//! compared in constant time; plus an `Origin` check on every form post (a browser always sends
//! `Origin` on cross-site posts, so a mismatch is refused).

use axum::http::HeaderMap;
use axum::http::header::ORIGIN;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::error::WebError;
use crate::session::CSRF;

/// The session's CSRF token, created on first use.
pub(crate) async fn token(session: &Session) -> Result<String, WebError> {
    if let Some(t) = session.get::<String>(CSRF).await? {
        return Ok(t);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| WebError::Internal(format!("no randomness: {e}")))?;
    let t = URL_SAFE_NO_PAD.encode(bytes);
    session.insert(CSRF, &t).await?;
    Ok(t)
}

pub(crate) async fn verify(session: &Session, presented: Option<&str>) -> Result<(), WebError> {
    let Some(presented) = presented.filter(|p| !p.is_empty()) else {
        return Err(WebError::Csrf(
            "this form has no security token; reload the page and try again",
        ));
    };
    let expected = session.get::<String>(CSRF).await?;
    let ok = expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(presented.as_bytes())));
    if ok {
        Ok(())
    } else {
        Err(WebError::Csrf(
            "this form's security token is not valid (it may be from an old page); reload the page and try again",
        ))
    }
}

pub(crate) fn verify_origin(headers: &HeaderMap, expected_origin: &str) -> Result<(), WebError> {
    match headers.get(ORIGIN).map(|o| o.to_str()) {
        None => Ok(()),
        Some(Ok(origin)) if origin.eq_ignore_ascii_case(expected_origin) => Ok(()),
        Some(_) => Err(WebError::Csrf("this form was sent from another site")),
    }
}
