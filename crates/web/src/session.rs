//! Sessions in Postgres (tower-sessions), and the typed values lakegate keeps in them.

use lakegate_domain::Principal;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_sessions::Session;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions_sqlx_store::PostgresStore;

use crate::error::WebError;

pub(crate) const USER: &str = "user";
pub(crate) const CSRF: &str = "csrf";
pub(crate) const FLASH: &str = "flash";

/// A one-time message shown on the next page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlashKind {
    Success,
    Error,
}

impl FlashKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
        }
    }
}

/// Creates the session table if needed and returns the store.
pub async fn session_store(pool: PgPool) -> Result<PostgresStore, sqlx::Error> {
    let store = PostgresStore::new(pool);
    store.migrate().await?;
    Ok(store)
}

/// Deletes expired sessions every minute until `shutdown` fires.
pub async fn run_session_sweeper(store: PostgresStore, shutdown: CancellationToken) {
    let sweep = store.continuously_delete_expired(std::time::Duration::from_secs(60));
    tokio::select! {
        () = shutdown.cancelled() => {}
        result = sweep => {
            if let Err(e) = result {
                tracing::error!(error = %e, "session sweeper stopped");
            }
        }
    }
}

pub(crate) async fn user(session: &Session) -> Result<Option<Principal>, WebError> {
    Ok(session.get::<Principal>(USER).await?)
}

pub(crate) async fn set_flash(
    session: &Session,
    kind: FlashKind,
    message: impl Into<String>,
) -> Result<(), WebError> {
    session
        .insert(
            FLASH,
            Flash {
                kind,
                message: message.into(),
            },
        )
        .await?;
    Ok(())
}

pub(crate) async fn take_flash(session: &Session) -> Result<Option<Flash>, WebError> {
    Ok(session.remove::<Flash>(FLASH).await?)
}
