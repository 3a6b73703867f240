//! Storage errors, with constraint violations given a meaning at this boundary.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or check constraint refused the write.
    #[error("conflicts with existing data ({constraint})")]
    Conflict { constraint: String },
    /// A row holds a value this version of lakegate does not understand.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && let Some(constraint) = db.constraint()
            && (db.is_unique_violation() || db.is_check_violation())
        {
            return Self::Conflict {
                constraint: constraint.to_owned(),
            };
        }
        Self::Db(e)
    }
}
