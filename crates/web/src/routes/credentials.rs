//! The credentials URL: what the AWS SDKs' container-credentials provider and
//! `credential_process` read (docs/aws.md §15, §16). JSON in, JSON out, never an HTML page.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lakegate_app::credentials::{mint, token_from_header};
use lakegate_app::{AppError, Services};
use lakegate_domain::RequestId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::WebError;
use crate::middleware::QuietAccessLog;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/credentials/{id}", get(get_credentials))
}

#[derive(Deserialize)]
struct Format {
    format: Option<String>,
}

/// RFC 3339 in UTC with `Z`: the Rust SDK refuses `+00:00` (docs/aws.md §15).
fn expiration(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

async fn get_credentials(
    State(svc): State<Services>,
    Path(id): Path<String>,
    query: Result<Query<Format>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Ok(Query(q)) = query else {
        return Err(WebError::Api(AppError::Invalid(
            lakegate_domain::ValidationError::new(
                "the query string could not be read; the only parameter is `format`",
            ),
        )));
    };
    let process = match q.format.as_deref() {
        None | Some("container") => false,
        Some("process") => true,
        Some(other) => {
            return Err(WebError::Api(AppError::Invalid(
                lakegate_domain::ValidationError::new(format!(
                    "unknown format `{other}`; use `container` (default) or `process`"
                )),
            )));
        }
    };
    let id: RequestId = id.parse().map_err(|_| WebError::Api(AppError::NotFound))?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(token_from_header)
        .unwrap_or_default();
    let c = mint(&svc, id, presented).await.map_err(WebError::Api)?;
    let expiration = expiration(c.expiration);
    let mut res = if process {
        Json(ProcessCredentials {
            version: 1,
            access_key_id: &c.access_key_id,
            secret_access_key: &c.secret_access_key,
            session_token: &c.session_token,
            expiration: &expiration,
        })
        .into_response()
    } else {
        Json(ContainerCredentials {
            access_key_id: &c.access_key_id,
            secret_access_key: &c.secret_access_key,
            token: &c.session_token,
            expiration: &expiration,
        })
        .into_response()
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.extensions_mut().insert(QuietAccessLog);
    Ok(res)
}

/// What the container-credentials provider reads (docs/aws.md §15).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentials<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
}

/// What `credential_process` reads (docs/aws.md §16).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessCredentials<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: &'a str,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::expiration;

    #[test]
    fn expiration_is_utc_with_z() {
        assert_eq!(
            expiration(datetime!(2026-01-01 10:00:00.75 +02:00)),
            "2026-01-01T08:00:00Z"
        );
    }
}
