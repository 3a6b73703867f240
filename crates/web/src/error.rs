//! The one error type of the web layer. 4xx answers say what is wrong; 5xx answers show a
//! generic page with a reference, and the cause is logged once under that reference. Internal
//! text never reaches the client.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lakegate_app::AppError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A page or form failed; rendered as an HTML error page.
    #[error(transparent)]
    App(#[from] AppError),
    /// The same, for a JSON client (the credentials URL).
    #[error(transparent)]
    Api(AppError),
    /// The same, for the JSON API under `/api/v1`: `{"code","message"}`.
    #[error(transparent)]
    Json(AppError),
    /// The form could not be read (missing fields, wrong types).
    #[error("{0}")]
    BadForm(String),
    /// The body is larger than lakegate accepts.
    #[error("the form is too large")]
    TooLarge,
    /// The same, for the JSON API.
    #[error("the body is too large")]
    JsonTooLarge,
    /// CSRF token or Origin check failed.
    #[error("{0}")]
    Csrf(&'static str),
    /// Not allowed for a reason of the HTTP layer's own (not the approval policy's).
    #[error("{0}")]
    Forbidden(&'static str),
    /// Sign-in with the identity provider did not complete; nobody is signed in.
    #[error("{0}")]
    SignInFailed(String),
    /// Not signed in: go to sign-in, then come back.
    #[error("not signed in")]
    SignIn { next: String },
    /// Something broke that the person cannot fix.
    #[error("{0}")]
    Internal(String),
}

impl From<tower_sessions::session::Error> for WebError {
    fn from(e: tower_sessions::session::Error) -> Self {
        Self::Internal(format!("session store: {e}"))
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "errors/error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
    reference: Option<String>,
}

fn status_of(e: &AppError) -> (StatusCode, &'static str) {
    match e {
        AppError::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
        AppError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "InvalidInput"),
        AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
        AppError::Conflict(_) => (StatusCode::CONFLICT, "WrongState"),
        AppError::AlreadyDecided(_) => (StatusCode::CONFLICT, "AlreadyDecided"),
        AppError::Unauthorized(_) => (StatusCode::FORBIDDEN, "InvalidToken"),
        AppError::TokenRefused(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
        AppError::MissingScope(_) => (StatusCode::FORBIDDEN, "InsufficientScope"),
        AppError::NotUsable(_) => (StatusCode::FORBIDDEN, "GrantNotActive"),
        AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
        AppError::Store(_) | AppError::Cloud(_) | AppError::Db(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
        }
    }
}

fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "That did not work",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Not possible now",
        413 => "Too large",
        503 => "Try again shortly",
        _ => "Something went wrong",
    }
}

/// Logs a server-side failure once and returns the reference shown to the person.
fn log_internal(error: &dyn std::fmt::Display) -> String {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    tracing::error!(%reference, error = %error, "request failed");
    reference
}

fn page(status: StatusCode, message: String, reference: Option<String>) -> Response {
    let body = ErrorPage {
        status: status.as_u16(),
        title: title_of(status),
        message,
        reference,
    };
    (status, body).into_response()
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { next } => {
                let target = format!("/auth/login?next={}", urlencode(&next));
                Redirect::to(&target).into_response()
            }
            Self::Csrf(message) | Self::Forbidden(message) => {
                page(StatusCode::FORBIDDEN, message.to_owned(), None)
            }
            Self::SignInFailed(message) => page(
                StatusCode::BAD_REQUEST,
                format!("Sign-in failed: {message}"),
                None,
            ),
            Self::BadForm(message) => page(StatusCode::UNPROCESSABLE_ENTITY, message, None),
            Self::TooLarge => page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is larger than lakegate accepts.".into(),
                None,
            ),
            Self::Internal(message) => {
                let reference = log_internal(&message);
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "lakegate could not complete this. Nothing was changed that you were not told about.".into(),
                    Some(reference),
                )
            }
            Self::App(e) => {
                let (status, _) = status_of(&e);
                if status.is_server_error() {
                    let reference = log_internal(&e);
                    let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                        "AWS did not answer in time. Nothing was changed; please try again."
                            .to_owned()
                    } else {
                        "lakegate could not complete this. Nothing was changed that you were not told about."
                            .to_owned()
                    };
                    page(status, message, Some(reference))
                } else {
                    page(status, e.to_string(), None)
                }
            }
            Self::JsonTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({
                    "code": "TooLarge",
                    "message": "the body is larger than lakegate accepts (1 MiB)",
                })),
            )
                .into_response(),
            Self::Json(e) => {
                let (status, code, message) = api_error(&e);
                let mut res =
                    (status, Json(json!({ "code": code, "message": message }))).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    res.headers_mut().insert(
                        axum::http::header::WWW_AUTHENTICATE,
                        axum::http::HeaderValue::from_static("Bearer"),
                    );
                }
                res
            }
            Self::Api(e) => {
                let (status, code) = status_of(&e);
                let message = if status.is_server_error() {
                    let reference = log_internal(&e);
                    format!("lakegate could not mint credentials (reference {reference})")
                } else {
                    match &e {
                        AppError::NotFound => "no grant with this id".to_owned(),
                        other => other.to_string(),
                    }
                };
                (status, Json(json!({ "code": code, "message": message }))).into_response()
            }
        }
    }
}

/// What a JSON client is told of `e`: status, stable code, and a message (for a server-side
/// failure, only a reference to the log line that holds the cause).
pub(crate) fn api_error(e: &AppError) -> (StatusCode, &'static str, String) {
    let (status, code) = status_of(e);
    let message = if status.is_server_error() {
        let reference = log_internal(e);
        format!("lakegate could not complete this (reference {reference})")
    } else {
        e.to_string()
    };
    (status, code, message)
}

/// Percent-encodes a local path for a query parameter.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
