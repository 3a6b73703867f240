//! The URL table, one module per noun.

pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod console;
pub mod credentials;
pub mod health;
pub mod requests;
pub mod settings;

use axum::response::{IntoResponse, Response};

use crate::error::WebError;

pub async fn not_found() -> Response {
    WebError::App(lakegate_app::AppError::NotFound).into_response()
}
