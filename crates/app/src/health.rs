//! Is this replica able to serve?

use crate::{AppError, Services};

/// The database answers.
pub async fn check(svc: &Services) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    lakegate_store::ping(&mut conn).await?;
    Ok(())
}
