//! Sign-in events.

use crate::record;
use lakegate_domain::Principal;
use lakegate_domain::audit::AuditAction;
use serde_json::json;

use crate::requests::actor;
use crate::{AppError, Services};

/// Records that `who` signed in, and how; their API tokens act with the groups seen now.
pub async fn record_sign_in(svc: &Services, who: &Principal, method: &str) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    lakegate_store::api_tokens::refresh_owner_groups(&mut conn, &who.subject, &who.groups).await?;
    record(
        &mut conn,
        svc.clock.now(),
        None,
        Some(&actor(who)),
        AuditAction::SignedIn,
        json!({ "method": method, "groups": who.groups }),
    )
    .await?;
    Ok(())
}
