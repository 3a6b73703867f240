//! lakegate's storage in PostgreSQL: every query lives here. Functions take a
//! `&mut PgConnection`, so the caller (a use case in lakegate-app) owns the transaction and can
//! put a state change and its audit row into the same one.
#![forbid(unsafe_code)]

pub mod audit;
pub mod error;
pub mod extensions;
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
