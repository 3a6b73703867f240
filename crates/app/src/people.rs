//! People known from their sign-ins, for the places that know someone only by email (Slack).

use lakegate_domain::Principal;

use crate::{AppError, Services};

/// The person most recently signed in with `email`, with the groups they were last seen
/// with: `None` for someone who never signed in to lakegate.
pub async fn by_email(svc: &Services, email: &str) -> Result<Option<Principal>, AppError> {
    let mut conn = svc.db.acquire().await?;
    let Some(p) = lakegate_store::people::find_by_email(&mut conn, email).await? else {
        return Ok(None);
    };
    Principal::new(p.subject, p.email, p.name, p.groups)
        .map(Some)
        .map_err(AppError::Invalid)
}
