//! Is this replica able to serve, and what does the work look like right now?

use lakegate_domain::RequestStatus;

use crate::{AppError, Services};

/// The database answers.
pub async fn check(svc: &Services) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    lakegate_store::ping(&mut conn).await?;
    Ok(())
}

/// Why this replica should not be sent traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The database does not answer.
    Database(String),
    /// The database lacks migrations this binary needs (another replica may be migrating).
    Migrations(Vec<i64>),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database(e) => write!(f, "the database does not answer: {e}"),
            Self::Migrations(v) => write!(
                f,
                "the database lacks migrations {}",
                v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// The database answers and has every migration this binary carries.
pub async fn ready(svc: &Services) -> Result<(), NotReady> {
    let mut conn = svc
        .db
        .acquire()
        .await
        .map_err(|e| NotReady::Database(e.to_string()))?;
    let pending = lakegate_store::pending_migrations(&mut conn)
        .await
        .map_err(|e| NotReady::Database(e.to_string()))?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(NotReady::Migrations(pending))
    }
}

/// How many requests are in each status, every status listed (zero included).
pub async fn request_counts(svc: &Services) -> Result<Vec<(RequestStatus, i64)>, AppError> {
    let mut conn = svc.db.acquire().await?;
    let counts = lakegate_store::requests::count_by_status(&mut conn).await?;
    Ok(RequestStatus::ALL
        .into_iter()
        .map(|st| {
            let n = counts.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n);
            (st, n)
        })
        .collect())
}
