//! The URL table, one module per noun.

pub mod assets;
pub mod audit;
pub mod auth;
pub mod credentials;
pub mod health;
pub mod requests;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::WebError;

pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        WebError::App(lakegate_app::AppError::NotFound),
    )
        .into_response()
}
