//! Personal API tokens: a signed-in person creates, lists and revokes them; a script, the CLI
//! or an agent presents one as `Authorization: Bearer lgp_…` and acts as that person, with
//! their groups as last seen at sign-in, and never beyond the token's scopes.

use lakegate_domain::Principal;
use lakegate_domain::api_token::{Scope, TOKEN_PREFIX, parse_lifetime, parse_name, parse_scopes};
use lakegate_domain::audit::AuditAction;
use lakegate_domain::request::Requester;
use lakegate_store::api_tokens::{self, ApiToken, NewApiToken};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::credentials::{hash_token, random_token};
use crate::requests::actor;
use crate::{AppError, Services, in_tx, record};

/// Tokens one person may have working at once.
pub const MAX_TOKENS_PER_PERSON: i64 = 50;

/// What the settings form sends.
pub struct NewToken<'a> {
    pub name: &'a str,
    pub scopes: Vec<&'a str>,
    /// `30d`, `12h`; empty for the default (30 days).
    pub expires_in: Option<&'a str>,
}

/// A token just created: its value is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedToken {
    pub id: Uuid,
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// Who a presented token acts as, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCaller {
    pub principal: Principal,
    pub token_id: Uuid,
    pub token_name: String,
    pub scopes: Vec<Scope>,
}

impl ApiCaller {
    /// Refused unless the token carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(AppError::MissingScope(scope))
        }
    }
}

#[tracing::instrument(skip_all, fields(owner = %who.subject))]
pub async fn create(
    svc: &Services,
    who: &Principal,
    input: NewToken<'_>,
) -> Result<CreatedToken, AppError> {
    let name = parse_name(input.name)?;
    let scopes = parse_scopes(input.scopes)?;
    let lifetime = parse_lifetime(input.expires_in)?;
    let token = random_token(TOKEN_PREFIX)?;
    let id = Uuid::new_v4();
    let now = svc.clock.now();
    let expires_at = now + lifetime;
    in_tx(svc, async |tx: &mut sqlx::PgConnection| {
        let usable = api_tokens::count_usable(&mut *tx, &who.subject, now).await?;
        if usable >= MAX_TOKENS_PER_PERSON {
            return Err(lakegate_domain::ValidationError::new(format!(
                "you already have {usable} working tokens, the most one person may have; revoke some you no longer use"
            ))
            .into());
        }
        api_tokens::insert(
            &mut *tx,
            NewApiToken {
                id,
                owner: &Requester {
                    subject: who.subject.clone(),
                    email: who.email.clone(),
                    name: who.name.clone(),
                },
                owner_groups: &who.groups,
                name: &name,
                scopes: &scopes,
                token_hash: &hash_token(&token),
                created_at: now,
                expires_at,
            },
        )
        .await?;
        record(
            &mut *tx,
            now,
            None,
            Some(&actor(who)),
            AuditAction::ApiTokenCreated,
            json!({
                "token_id": id,
                "name": name,
                "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "expires_at": expires_at,
            }),
        )
        .await
    })
    .await?;
    tracing::info!(token_id = %id, "API token created");
    Ok(CreatedToken {
        id,
        token,
        expires_at,
    })
}

/// The person's own tokens, newest first.
pub async fn list(svc: &Services, who: &Principal) -> Result<Vec<ApiToken>, AppError> {
    let mut conn = svc.db.acquire().await?;
    Ok(api_tokens::list_for_owner(&mut conn, &who.subject).await?)
}

/// The owner revokes one of their tokens; it stops working at once. Revoking it again is
/// harmless; someone else's token is not found.
#[tracing::instrument(skip_all, fields(owner = %who.subject, token_id = %id))]
pub async fn revoke(svc: &Services, who: &Principal, id: Uuid) -> Result<(), AppError> {
    let now = svc.clock.now();
    in_tx(
        svc,
        async |tx: &mut sqlx::PgConnection| match api_tokens::revoke(
            &mut *tx,
            &who.subject,
            id,
            now,
        )
        .await?
        {
            None => Err(AppError::NotFound),
            Some((_, false)) => Ok(()),
            Some((name, true)) => {
                record(
                    &mut *tx,
                    now,
                    None,
                    Some(&actor(who)),
                    AuditAction::ApiTokenRevoked,
                    json!({ "token_id": id, "name": name }),
                )
                .await
            }
        },
    )
    .await
}

/// The caller a presented `Authorization` value stands for: `Bearer lgp_…` of a token that
/// is neither expired nor revoked. Each refusal says why, without telling whose token it was.
pub async fn authenticate(
    svc: &Services,
    authorization: Option<&str>,
) -> Result<ApiCaller, AppError> {
    let Some(value) = authorization else {
        return Err(AppError::TokenRefused(
            "this needs a personal API token: send `Authorization: Bearer lgp_…` (create one on /settings/tokens)".into(),
        ));
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(TOKEN_PREFIX))
        .ok_or_else(|| {
            AppError::TokenRefused(
                "the Authorization header must be `Bearer lgp_…`, a personal API token".into(),
            )
        })?;
    let hash = hash_token(token);
    let now = svc.clock.now();
    let mut conn = svc.db.acquire().await?;
    let Some(t) = api_tokens::use_by_hash(&mut conn, &hash, now).await? else {
        let why = match api_tokens::state_by_hash(&mut conn, &hash).await? {
            Some((_, Some(_))) => "this API token was revoked",
            Some((expires_at, None)) if expires_at <= now => "this API token has expired",
            _ => "this API token is not valid",
        };
        return Err(AppError::TokenRefused(why.into()));
    };
    let principal = Principal::new(t.owner.subject, t.owner.email, t.owner.name, t.owner_groups)
        .map_err(|e| AppError::TokenRefused(format!("this API token's owner is not usable: {e}")))?
        .through_token(t.name.clone());
    Ok(ApiCaller {
        principal,
        token_id: t.id,
        token_name: t.name,
        scopes: t.scopes,
    })
}

/// The identity provider's tokens from the owner's latest sign-in, and when their groups were
/// last confirmed with them.
#[derive(Debug, Clone)]
pub struct ProviderLink {
    /// Opaque to lakegate-app: the web layer's OpenID Connect client reads them.
    pub tokens: serde_json::Value,
    pub checked_at: OffsetDateTime,
}

pub async fn provider_link(
    svc: &Services,
    subject: &str,
) -> Result<Option<ProviderLink>, AppError> {
    let mut conn = svc.db.acquire().await?;
    Ok(lakegate_store::provider_tokens::find(&mut conn, subject)
        .await?
        .map(|(tokens, checked_at)| ProviderLink { tokens, checked_at }))
}

/// The provider confirmed the owner's `groups` just now (with `tokens`, perhaps refreshed):
/// every token of theirs acts with them from now on.
pub async fn groups_confirmed(
    svc: &Services,
    subject: &str,
    groups: &[String],
    tokens: &serde_json::Value,
) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    api_tokens::refresh_owner_groups(&mut conn, subject, groups).await?;
    lakegate_store::people::groups_seen(&mut conn, subject, groups, svc.clock.now()).await?;
    lakegate_store::provider_tokens::save(&mut conn, subject, tokens, svc.clock.now()).await?;
    Ok(())
}

/// The provider no longer vouches for the owner: their tokens are refused until they sign in
/// again.
pub async fn provider_refused(svc: &Services, subject: &str) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    lakegate_store::provider_tokens::forget(&mut conn, subject).await?;
    Ok(())
}
