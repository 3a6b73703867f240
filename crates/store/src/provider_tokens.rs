//! The identity provider's tokens of each person's latest sign-in (opaque JSON to the store).

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::error::StoreError;

/// Keeps `tokens` for `subject`, with the time their groups were last confirmed.
pub async fn save(
    conn: &mut PgConnection,
    subject: &str,
    tokens: &serde_json::Value,
    checked_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into provider_tokens (subject, tokens, groups_checked_at) values ($1, $2, $3)
         on conflict (subject) do update set tokens = excluded.tokens,
             groups_checked_at = excluded.groups_checked_at",
    )
    .bind(subject)
    .bind(tokens)
    .bind(checked_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tokens kept for `subject`, and when their groups were last confirmed.
pub async fn find(
    conn: &mut PgConnection,
    subject: &str,
) -> Result<Option<(serde_json::Value, OffsetDateTime)>, StoreError> {
    Ok(
        sqlx::query_as("select tokens, groups_checked_at from provider_tokens where subject = $1")
            .bind(subject)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn forget(conn: &mut PgConnection, subject: &str) -> Result<(), StoreError> {
    sqlx::query("delete from provider_tokens where subject = $1")
        .bind(subject)
        .execute(conn)
        .await?;
    Ok(())
}
