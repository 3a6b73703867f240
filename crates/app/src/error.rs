//! The one error type of the verbs. Each variant maps to one kind of answer at the edge.

use lakegate_domain::ports::CloudError;
use lakegate_domain::{PolicyError, TransitionError, ValidationError};
use lakegate_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Bad input; the message says what to fix.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Forbidden(#[from] PolicyError),
    /// The request is not in a state that allows this.
    #[error(transparent)]
    Conflict(#[from] TransitionError),
    /// The person decided this already (an approval stands: it cannot become a denial).
    #[error("{0}")]
    AlreadyDecided(&'static str),
    /// A credentials token that is missing or wrong.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A personal API token that is missing, malformed, expired or revoked; says which.
    #[error("{0}")]
    TokenRefused(String),
    /// The personal API token lacks the scope this needs.
    #[error("this API token lacks the `{0}` scope this needs")]
    MissingScope(lakegate_domain::api_token::Scope),
    /// The grant exists but credentials cannot be handed out (not active, expired).
    #[error("{0}")]
    NotUsable(String),
    /// AWS could not answer now; the person may try again.
    #[error("AWS is not available right now: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(CloudError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<CloudError> for AppError {
    fn from(e: CloudError) -> Self {
        match e {
            CloudError::Transient(m) => Self::Unavailable(m),
            other => Self::Cloud(other),
        }
    }
}
