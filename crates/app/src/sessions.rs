//! Sign-in events.

use crate::record;
use lakegate_domain::Principal;
use lakegate_domain::audit::AuditAction;
use serde_json::json;

use crate::requests::actor;
use crate::{AppError, Services};

/// Records that `who` signed in, and how; their API tokens act with the groups seen now, and
/// with the identity provider's `provider_tokens` (opaque here) their groups are re-read later,
/// as a session's are. A sign-in without them (the development form) keeps none.
pub async fn record_sign_in(
    svc: &Services,
    who: &Principal,
    method: &str,
    provider_tokens: Option<&serde_json::Value>,
) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    lakegate_store::api_tokens::refresh_owner_groups(&mut conn, &who.subject, &who.groups).await?;
    lakegate_store::people::seen(
        &mut conn,
        &lakegate_store::people::Person {
            subject: who.subject.clone(),
            email: who.email.clone(),
            name: who.name.clone(),
            groups: who.groups.clone(),
            seen_at: svc.clock.now(),
        },
    )
    .await?;
    match provider_tokens {
        Some(tokens) => {
            lakegate_store::provider_tokens::save(&mut conn, &who.subject, tokens, svc.clock.now())
                .await?;
        }
        None => lakegate_store::provider_tokens::forget(&mut conn, &who.subject).await?,
    }
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
