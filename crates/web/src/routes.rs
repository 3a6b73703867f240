//! The URL table, one module per noun.

pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod console;
pub mod credentials;
pub mod health;
pub mod mcp;
pub mod picker;
pub mod requests;
pub mod settings;
pub mod slack;

use axum::response::{IntoResponse, Response};

use crate::error::WebError;

/// No such page; under `/api/` the JSON API's `404 NotFound`.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let e = lakegate_app::AppError::NotFound;
    if uri.path().starts_with("/api/") {
        WebError::Json(e).into_response()
    } else {
        WebError::App(e).into_response()
    }
}
