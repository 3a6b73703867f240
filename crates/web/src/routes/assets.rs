//! Static assets, compiled into the binary: lakegate ships as one file and a page can never
//! meet a stylesheet of another version.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

const APP_CSS: &str = include_str!("../../../../static/app.css");
const COPY_JS: &str = include_str!("../../../../static/copy.js");
const LIVE_JS: &str = include_str!("../../../../static/live.js");
const PICKER_JS: &str = include_str!("../../../../static/picker.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(app_css))
        .route("/static/copy.js", get(copy_js))
        .route("/static/live.js", get(live_js))
        .route("/static/picker.js", get(picker_js))
}

async fn live_js() -> impl IntoResponse {
    script(LIVE_JS)
}

fn script(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}

async fn picker_js() -> impl IntoResponse {
    script(PICKER_JS)
}

async fn copy_js() -> impl IntoResponse {
    script(COPY_JS)
}

async fn app_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        APP_CSS,
    )
}
