//! Sign-in events.

use lakegate_domain::Principal;
use lakegate_domain::audit::AuditAction;
use lakegate_store::audit::{self, NewAuditEvent};
use serde_json::json;

use crate::requests::actor;
use crate::{AppError, Services};

/// Records that `who` signed in, and how.
pub async fn record_sign_in(svc: &Services, who: &Principal, method: &str) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    audit::append(
        &mut conn,
        NewAuditEvent {
            at: svc.clock.now(),
            request: None,
            actor: Some(&actor(who)),
            action: AuditAction::SignedIn,
            detail: json!({ "method": method, "groups": who.groups }),
        },
    )
    .await?;
    Ok(())
}
