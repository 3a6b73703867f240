//! lakegate's storage in PostgreSQL: every query lives here. Functions take a
//! `&mut PgConnection`, so the caller (a use case in lakegate-app) owns the transaction and can
//! put a state change and its audit row into the same one.
#![forbid(unsafe_code)]

pub mod api_tokens;
pub mod audit;
pub mod error;
pub mod extensions;
pub mod outbox;
pub mod people;
pub mod provider_tokens;
pub mod requests;
pub mod sessions;
pub mod usage;
pub mod work;

pub use error::StoreError;
pub use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// The schema migrations, embedded into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A round trip to the database.
pub async fn ping(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("select 1").execute(conn).await?;
    Ok(())
}

/// Migrations embedded in this binary that the database has not applied (successfully).
pub async fn pending_migrations(conn: &mut PgConnection) -> Result<Vec<i64>, StoreError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where success order by version")
            .fetch_all(conn)
            .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect())
}

/// Takes the session-level advisory lock `key` on this connection if nobody holds it:
/// `Ok(false)` when another connection (another replica) does. Released by [`advisory_unlock`]
/// or when the connection closes, so a crashed holder never keeps it.
pub async fn try_advisory_lock(conn: &mut PgConnection, key: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(conn)
        .await?)
}

pub async fn advisory_unlock(conn: &mut PgConnection, key: i64) -> Result<(), StoreError> {
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}
