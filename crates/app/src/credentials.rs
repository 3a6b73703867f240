//! The credentials URL: tokens that unlock it, and the temporary STS credentials it serves.
//!
//! A token is 256 random bits, shown once, stored only as its SHA-256 and compared in constant
//! time. Sessions are cached per grant and re-minted when under 20 minutes remain, so an SDK's
//! fetch is answered from memory well within its 2-second timeout. Every fetch re-reads the
//! grant from the database first, so a revoked or expired grant stops at the next refresh. The
//! query console gets sessions of the same role the same way, cached apart from the URL's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::record;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lakegate_domain::audit::AuditAction;
use lakegate_domain::iam_policy::session_policy;
use lakegate_domain::naming::{GrantResources, TAG_REQUEST, session_name, source_identity};
use lakegate_domain::ports::{CloudError, SessionCredentials, SessionSpec};
use lakegate_domain::{Principal, RequestId, RequestStatus};
use lakegate_store::requests::{self, CredentialsView};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::requests::actor;
use crate::{AppError, Services};

/// Tokens start with this, so they are recognisable in a leak scanner.
const TOKEN_PREFIX: &str = "lgt_";
/// STS limits: sessions last at least 15 minutes; a broker on role credentials is capped at 1 h.
const MIN_SESSION: Duration = Duration::seconds(900);
const MAX_SESSION: Duration = Duration::seconds(3600);
/// Re-mint when a cached session has less than this left (SDKs refresh 10–15 min early).
const REMINT_BELOW: Duration = Duration::minutes(20);

/// A freshly issued token, to be shown once.
#[derive(Clone)]
pub struct IssuedToken {
    pub request: RequestId,
    pub token: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("request", &self.request)
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn token_matches(stored: Option<&[u8]>, presented_hash: &[u8; 32]) -> bool {
    stored.is_some_and(|stored| bool::from(stored.ct_eq(presented_hash)))
}

/// What is stored of a token: its SHA-256.
pub(crate) fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn new_token() -> Result<String, AppError> {
    random_token(TOKEN_PREFIX)
}

/// `prefix` and 256 random bits, base64url.
pub(crate) fn random_token(prefix: &str) -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Unavailable(format!("no randomness available: {e}")))?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Issues a new token for the requester's active grant; the previous token stops working.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn issue_token(
    svc: &Services,
    who: &Principal,
    id: RequestId,
) -> Result<IssuedToken, AppError> {
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let request = requests::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let evaluation = crate::requests::evaluate(&svc.settings.policy, &request);
    let access = lakegate_domain::access::RequestAccess {
        policy: &svc.settings.policy,
        request: &request,
        evaluation: &evaluation,
        approvals: &[],
    };
    access.check_view(who)?;
    access.check_credentials(who)?;
    let Some(expires_at) = request.expires_at.filter(|_| request.is_usable_at(now)) else {
        return Err(AppError::NotUsable(format!(
            "credentials are only available while access is active; this request is {}",
            request.status
        )));
    };
    let token = new_token()?;
    // Sessions handed out before this token stop working, not only the old token: the role
    // denies every session issued before the cutoff (docs/aws.md §8). Written before the new
    // token exists, so no session minted under it can fall before the cutoff unnoticed.
    let role = GrantResources::derive(id, svc.cloud.identity(), &svc.settings.results).role_name;
    let cutoff = superseded_cutoff(now);
    match svc.cloud.deny_sessions_issued_before(&role, cutoff).await {
        Ok(()) => {}
        Err(CloudError::NotFound(_)) => {
            return Err(AppError::NotUsable("access is no longer active".into()));
        }
        Err(e) => return Err(e.into()),
    }
    if !requests::set_credentials_token(&mut tx, id, &hash_token(&token), now).await? {
        return Err(AppError::NotUsable("access is no longer active".into()));
    }
    record(
        &mut tx,
        now,
        Some(id),
        Some(&actor(who)),
        AuditAction::CredentialsTokenIssued,
        json!({
            "replaces_previous": request.has_credentials_token,
            "sessions_denied_before": cutoff.unix_timestamp(),
        }),
    )
    .await?;
    tx.commit().await?;
    // Sessions minted under the old token are not handed out again.
    svc.forget_grant(id);
    Ok(IssuedToken {
        request: id,
        token,
        expires_at,
    })
}

/// Sessions issued before this instant are denied once a token issued at `issued_at` is in
/// force: the next whole second, so a session minted in the same second as the token, before
/// it, is cut off too (IAM compares whole seconds).
pub fn superseded_cutoff(issued_at: OffsetDateTime) -> OffsetDateTime {
    let floor = issued_at.replace_nanosecond(0).unwrap_or(issued_at);
    if floor == issued_at {
        floor
    } else {
        floor + Duration::SECOND
    }
}

/// When STS issued a session: its expiration less the duration asked for (STS does not say).
fn issued_at(raw_expiration: OffsetDateTime, duration_seconds: i32) -> OffsetDateTime {
    raw_expiration - Duration::seconds(i64::from(duration_seconds))
}

/// How far behind ours STS's clock may be, beyond the whole second its expirations round to,
/// before a new session is suspected of being denied by the cutoff.
const MAX_CLOCK_LAG: Duration = Duration::seconds(1);

/// Accepts what SDKs send (the raw token) and `Bearer <token>`.
pub fn token_from_header(value: &str) -> &str {
    let v = value.trim();
    match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => v,
    }
}

/// Who a session is minted for. Each has its own cached session per grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The credentials URL, under the token with this SHA-256.
    Url([u8; 32]),
    /// The query console, for the signed-in requester.
    Console,
}

impl Holder {
    fn channel(self) -> Channel {
        match self {
            Self::Url(_) => Channel::Url,
            Self::Console => Channel::Console,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Channel {
    Url,
    Console,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Url => "credentials_url",
            Self::Console => "query_console",
        }
    }
}

#[derive(Clone)]
struct CachedSession {
    holder: Holder,
    credentials: SessionCredentials,
}

/// One grant's cached session; the async lock makes concurrent fetches mint only once.
type Slot = Arc<tokio::sync::Mutex<Option<CachedSession>>>;

/// Minted sessions, per grant and holder, in this replica's memory only (never persisted).
#[derive(Clone, Default)]
pub struct SessionCache {
    inner: Arc<Mutex<HashMap<(RequestId, Channel), Slot>>>,
    /// When expired sessions were last dropped (unix seconds): at most every few seconds, not
    /// at every fetch.
    pruned_at: Arc<std::sync::atomic::AtomicI64>,
}

/// How often expired sessions are dropped from the cache.
const PRUNE_EVERY_SECONDS: i64 = 10;

impl SessionCache {
    fn slot(&self, id: RequestId, channel: Channel) -> Slot {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((id, channel)).or_default().clone()
    }

    /// Drops a grant's cached sessions (revoked, new token).
    pub fn forget(&self, id: RequestId) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|(grant, _), _| *grant != id);
    }

    /// Drops sessions that have expired (at most every few seconds).
    fn prune(&self, now: OffsetDateTime) {
        use std::sync::atomic::Ordering;
        let at = now.unix_timestamp();
        let last = self.pruned_at.load(Ordering::Relaxed);
        if at - last < PRUNE_EVERY_SECONDS
            || self
                .pruned_at
                .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, slot| match slot.try_lock() {
            Ok(guard) => guard
                .as_ref()
                .is_some_and(|c| c.credentials.expiration > now),
            Err(_) => true,
        });
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long to ask STS for: what the grant has left, within STS's bounds.
pub fn session_duration(now: OffsetDateTime, expires_at: OffsetDateTime) -> Duration {
    (expires_at - now).clamp(MIN_SESSION, MAX_SESSION)
}

/// Credentials for the grant, answering the credentials URL.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn mint(
    svc: &Services,
    id: RequestId,
    presented: &str,
) -> Result<SessionCredentials, AppError> {
    // From memory while the live view is trusted and the grant active in it; otherwise (a
    // grant that is not active, a view not trusted) from PostgreSQL.
    let view = match svc.live.active(id) {
        Some(view) => view,
        None => {
            let mut conn = svc.db.acquire().await?;
            std::sync::Arc::new(
                requests::credentials_view(&mut conn, id)
                    .await?
                    .ok_or(AppError::NotFound)?,
            )
        }
    };
    if presented.is_empty() {
        return Err(AppError::Unauthorized(
            "the Authorization header with the grant's token is missing",
        ));
    }
    let presented_hash = hash_token(presented);
    if !token_matches(view.token_hash.as_deref(), &presented_hash) {
        // The same answer whatever the grant's state: no token, no information.
        return Err(AppError::Unauthorized(
            "the token is not valid for this grant",
        ));
    }
    grant_session(svc, id, &view, Holder::Url(presented_hash)).await
}

/// A session of the grant's own role for `holder`: the cached one while it has long enough
/// left, otherwise a new one from STS (audited). Only while the grant is active; the caller has
/// checked who is asking.
pub(crate) async fn grant_session(
    svc: &Services,
    id: RequestId,
    view: &CredentialsView,
    holder: Holder,
) -> Result<SessionCredentials, AppError> {
    let now = svc.clock.now();
    let (Some(expires_at), Some(role_arn)) = (view.expires_at, view.role_arn.clone()) else {
        return Err(AppError::NotUsable(format!("access is {}", view.status)));
    };
    if view.status != RequestStatus::Active || now >= expires_at {
        svc.forget_grant(id);
        return Err(AppError::NotUsable(
            if view.status == RequestStatus::Active {
                "access has expired".to_owned()
            } else {
                format!("access is {}", view.status)
            },
        ));
    }

    svc.sessions.prune(now);
    let slot = svc.sessions.slot(id, holder.channel());
    let mut cached = slot.lock().await;
    if let Some(c) = cached.as_ref() {
        let left = c.credentials.expiration - now;
        if c.holder == holder && left >= REMINT_BELOW.min(expires_at - now) {
            served(holder, "cache");
            return Ok(c.credentials.clone());
        }
    }
    let duration = session_duration(now, expires_at);
    let spec = SessionSpec {
        role_arn,
        session_name: session_name(&view.requester.email, id),
        duration_seconds: i32::try_from(duration.whole_seconds()).unwrap_or(900),
        session_policy: session_policy(expires_at),
        source_identity: source_identity(&view.requester.email),
        tags: vec![(TAG_REQUEST.to_owned(), id.to_string())],
    };
    let cutoff = view.token_issued_at.map(superseded_cutoff);
    if let Some(wait) = cutoff
        .map(|c| c - svc.clock.now())
        .filter(|w| w.is_positive())
    {
        // The role denies sessions issued before the cutoff, up to a second after the token.
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
    let mut credentials = svc.cloud.assume_role(&spec).await?;
    if let Some(cutoff) = cutoff {
        let stamped = issued_at(credentials.expiration, spec.duration_seconds);
        // STS states the expiration in whole seconds; more than that and AWS's clock is behind
        // ours: the session would be denied, so it is not handed out.
        if stamped + MAX_CLOCK_LAG < cutoff {
            return Err(AppError::Unavailable(format!(
                "STS stamped a new session {} before this server's clock; check the server's time (NTP)",
                cutoff - stamped
            )));
        }
    }
    // Never promise more than the grant has left; the session policy enforces the same.
    credentials.expiration = credentials.expiration.min(expires_at);

    // A revoke or a new token may have landed while STS answered: check again before handing
    // the session out. (A session that slips through is still cut off: revoking denies every
    // session of the role.)
    let again = {
        let mut conn = svc.db.acquire().await?;
        requests::credentials_view(&mut conn, id).await?
    };
    let still_valid = again.as_ref().is_some_and(|v| {
        v.status == RequestStatus::Active
            && match holder {
                Holder::Url(hash) => token_matches(v.token_hash.as_deref(), &hash),
                Holder::Console => true,
            }
            && v.expires_at.is_some_and(|e| svc.clock.now() < e)
    });
    if !still_valid {
        svc.forget_grant(id);
        return Err(AppError::NotUsable(
            "access ended while credentials were being minted".into(),
        ));
    }

    let mut tx = svc.db.begin().await?;
    record(
        &mut tx,
        now,
        Some(id),
        None,
        AuditAction::CredentialsMinted,
        json!({
            "access_key_id": credentials.access_key_id,
            "session_name": spec.session_name,
            "expiration": credentials.expiration.unix_timestamp(),
            "for": holder.channel().as_str(),
        }),
    )
    .await?;
    tx.commit().await?;
    served(holder, "sts");
    *cached = Some(CachedSession {
        holder,
        credentials: credentials.clone(),
    });
    Ok(credentials)
}

/// Counts a session handed out through the credentials URL, from the cache or fresh from STS.
fn served(holder: Holder, source: &'static str) {
    if matches!(holder, Holder::Url(_)) {
        metrics::counter!(crate::metrics::CREDENTIALS_SERVED, "source" => source).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("lgt_"));
        assert_eq!(a.len(), 4 + 43, "256 bits in unpadded base64url");
        assert!(!a.contains('\n'));
    }

    #[test]
    fn authorization_header_forms() {
        assert_eq!(token_from_header("lgt_abc"), "lgt_abc");
        assert_eq!(token_from_header("Bearer lgt_abc"), "lgt_abc");
        assert_eq!(token_from_header("bearer   lgt_abc "), "lgt_abc");
        assert_eq!(token_from_header(""), "");
    }

    #[test]
    fn the_cutoff_is_the_next_whole_second() {
        let t = datetime!(2026-01-01 10:00:00 UTC);
        assert_eq!(superseded_cutoff(t), t);
        assert_eq!(
            superseded_cutoff(t + Duration::milliseconds(1)),
            t + Duration::SECOND
        );
        assert_eq!(
            issued_at(t + Duration::hours(1), 3600),
            t,
            "issue time from the expiration"
        );
    }

    #[test]
    fn session_duration_is_clamped_to_sts_bounds() {
        let now = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            session_duration(now, now + Duration::hours(5)),
            Duration::hours(1)
        );
        assert_eq!(
            session_duration(now, now + Duration::minutes(30)),
            Duration::minutes(30)
        );
        assert_eq!(
            session_duration(now, now + Duration::minutes(2)),
            Duration::minutes(15)
        );
    }
}
