//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: it can serve people).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::SignIn;
use crate::state::AppState;

/// How long `/readyz` waits for the database.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// 200 while the process runs: a load balancer or orchestrator restarts it otherwise.
async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

/// 200 when the database answers with every migration applied (the identity provider was
/// discovered before the server started listening); 503 with the reason otherwise.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let sign_in = match &state.config.sign_in {
        SignIn::Oidc(o) => format!("OpenID Connect at {}, discovered", o.issuer()),
        SignIn::Development => "development sign-in".to_owned(),
    };
    // Bounded: a load balancer's probe must get an answer, not wait out the pool's timeout.
    let checked = tokio::time::timeout(READY_WITHIN, lakegate_app::health::ready(&state.services))
        .await
        .unwrap_or_else(|_| {
            Err(lakegate_app::health::NotReady::Database(format!(
                "no answer within {READY_WITHIN:?}"
            )))
        });
    match checked {
        Ok(()) => (
            StatusCode::OK,
            Json(
                json!({ "ready": true, "database": "ok", "migrations": "applied", "sign_in": sign_in }),
            ),
        ),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false, "reason": reason.to_string(), "sign_in": sign_in })),
            )
        }
    }
}
