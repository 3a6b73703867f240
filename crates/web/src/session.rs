//! Sessions in PostgreSQL, and the typed values lakegate keeps in them.
//!
//! The store keys each session by the SHA-256 of its id, so the ids (the cookies' values) are
//! never stored: reading the table does not let anyone ride a session (docs/architecture.md,
//! "Non-negotiables"). The SQL lives in lakegate-store; this is the tower-sessions adapter.

use async_trait::async_trait;
use lakegate_domain::Principal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tower_sessions::Session;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::error::WebError;
use crate::oidc::ProviderTokens;

pub(crate) const USER: &str = "user";
/// When the person signed in (unix seconds): sessions end `session_max` after it.
pub(crate) const SIGNED_IN_AT: &str = "signed_in_at";
/// The identity provider's tokens, to re-read the person's groups.
pub(crate) const PROVIDER_TOKENS: &str = "oidc_tokens";
/// When the groups were last read from the identity provider (unix seconds).
pub(crate) const GROUPS_CHECKED_AT: &str = "groups_checked_at";
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

/// Sessions in PostgreSQL, keyed by a hash of the session id.
#[derive(Clone)]
pub struct PgSessionStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSessionStore").finish_non_exhaustive()
    }
}

/// The session store over the application's pool (its table comes with the migrations).
pub fn session_store(pool: PgPool) -> PgSessionStore {
    PgSessionStore { pool }
}

/// What is stored instead of the id.
fn key(id: &Id) -> [u8; 32] {
    Sha256::digest(id.0.to_le_bytes()).into()
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<serde_json::Value> {
    serde_json::to_value(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for PgSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        // 128 random bits collide practically never; if one does, take another id.
        while !lakegate_store::sessions::insert_new(
            &mut conn,
            &key(&record.id),
            &data,
            record.expiry_date,
        )
        .await
        .map_err(backend)?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        lakegate_store::sessions::save(&mut conn, &key(&record.id), &data, record.expiry_date)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let Some((data, expiry_date)) =
            lakegate_store::sessions::load(&mut conn, &key(id), OffsetDateTime::now_utc())
                .await
                .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_value(data)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        lakegate_store::sessions::delete(&mut conn, &key(id))
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl ExpiredDeletion for PgSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        lakegate_store::sessions::delete_expired(&mut conn, OffsetDateTime::now_utc())
            .await
            .map(drop)
            .map_err(backend)
    }
}

/// Deletes expired sessions every minute until `shutdown` fires.
pub async fn run_session_sweeper(store: PgSessionStore, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "could not delete expired sessions; will try again");
        }
    }
}

/// Begins a signed-in session: a new session id (a session fixed before sign-in is worthless
/// after it) and a new CSRF token (one seen before sign-in is worthless too).
pub(crate) async fn start(
    session: &Session,
    principal: &Principal,
    tokens: Option<&ProviderTokens>,
) -> Result<(), WebError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    session.cycle_id().await?;
    session.remove_value(CSRF).await?;
    session.insert(USER, principal).await?;
    session.insert(SIGNED_IN_AT, now).await?;
    if let Some(tokens) = tokens {
        session.insert(PROVIDER_TOKENS, tokens).await?;
        session.insert(GROUPS_CHECKED_AT, now).await?;
    }
    Ok(())
}

/// The signed-in person, if the session has not outlived `session_max` since sign-in. A
/// session past it (or one without a sign-in time) is ended here.
pub(crate) async fn user(
    session: &Session,
    config: &crate::WebConfig,
) -> Result<Option<Principal>, WebError> {
    user_checked(session, config, false).await
}

/// The signed-in person as [`user`] finds them; with OpenID Connect, their groups re-read from
/// the identity provider when `LAKEGATE_GROUPS_REFRESH` has passed since the last read, or at
/// once when `force` (before decisions and admin actions). A person the provider no longer
/// answers for is signed out: lakegate never acts on groups it could not confirm.
pub(crate) async fn user_checked(
    session: &Session,
    config: &crate::WebConfig,
    force: bool,
) -> Result<Option<Principal>, WebError> {
    let Some(principal) = session.get::<Principal>(USER).await? else {
        return Ok(None);
    };
    let signed_in_at = session.get::<i64>(SIGNED_IN_AT).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let fresh =
        signed_in_at.is_some_and(|at| now.saturating_sub(at) < config.session_max.whole_seconds());
    if !fresh {
        tracing::info!(email = %principal.email, "session ended: older than LAKEGATE_SESSION_MAX");
        session.flush().await?;
        return Ok(None);
    }
    let Some(oidc) = config.oidc() else {
        return Ok(Some(principal));
    };
    let checked = session.get::<i64>(GROUPS_CHECKED_AT).await?.unwrap_or(0);
    if !force && now.saturating_sub(checked) < config.groups_refresh.whole_seconds() {
        return Ok(Some(principal));
    }
    let Some(mut tokens) = session.get::<ProviderTokens>(PROVIDER_TOKENS).await? else {
        tracing::info!(email = %principal.email,
            "session ended: no identity provider tokens to re-read groups with");
        session.flush().await?;
        return Ok(None);
    };
    let updated = match oidc.current_groups(&principal.subject, &mut tokens).await {
        Ok(groups) => Principal::new(
            principal.subject.clone(),
            principal.email.clone(),
            principal.name.clone(),
            groups,
        )
        .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match updated {
        Ok(updated) => {
            if updated.groups != principal.groups {
                tracing::info!(email = %principal.email, before = ?principal.groups,
                    after = ?updated.groups, "groups changed at the identity provider");
            }
            session.insert(USER, &updated).await?;
            session.insert(PROVIDER_TOKENS, &tokens).await?;
            session.insert(GROUPS_CHECKED_AT, now).await?;
            Ok(Some(updated))
        }
        Err(e) => {
            tracing::warn!(email = %principal.email, error = %e,
                "session ended: the identity provider did not confirm the person's groups");
            session.flush().await?;
            Ok(None)
        }
    }
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
