//! Sign-in sessions. Rows are keyed by a hash of the session id that the caller computes; this
//! module never sees the id itself.

use serde_json::Value;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::error::StoreError;

/// Stores a new session; `Ok(false)` if one with this key exists already (the caller picks
/// another id).
pub async fn insert_new(
    conn: &mut PgConnection,
    id_hash: &[u8],
    data: &Value,
    expires_at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "insert into web_session (id_hash, data, expires_at) values ($1, $2, $3)
         on conflict (id_hash) do nothing",
    )
    .bind(id_hash)
    .bind(data)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a session's current data and expiry. Only a session that still exists is updated: a
/// request that was in flight on a session when it was signed out (deleted) must not bring it
/// back when it saves.
pub async fn save(
    conn: &mut PgConnection,
    id_hash: &[u8],
    data: &Value,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("update web_session set data = $2, expires_at = $3 where id_hash = $1")
        .bind(id_hash)
        .bind(data)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// A session that has not expired at `now`: its data and expiry.
pub async fn load(
    conn: &mut PgConnection,
    id_hash: &[u8],
    now: OffsetDateTime,
) -> Result<Option<(Value, OffsetDateTime)>, StoreError> {
    Ok(sqlx::query_as(
        "select data, expires_at from web_session where id_hash = $1 and expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

pub async fn delete(conn: &mut PgConnection, id_hash: &[u8]) -> Result<(), StoreError> {
    sqlx::query("delete from web_session where id_hash = $1")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes sessions that expired before `now`; returns how many.
pub async fn delete_expired(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("delete from web_session where expires_at <= $1")
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
