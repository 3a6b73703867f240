//! Upkeep of requests nobody is acting on: approver groups brought up to date with the policy
//! in force at start-up, and undecided requests and extensions lapsing once their time is up.

use lakegate_domain::RequestId;
use lakegate_domain::audit::AuditAction;
use lakegate_store::{extensions, requests};
use serde_json::json;
use time::Duration;
use time::format_description::well_known::Rfc3339;

use crate::requests::evaluate;
use crate::{AppError, Services, in_tx, record};

/// Brings every open request's stored approver groups up to date with the policy in force
/// (it may have changed since they were submitted): run at start-up, before the queues matter.
pub async fn refresh_approver_groups(svc: &Services) -> Result<u64, AppError> {
    let mut conn = svc.db.acquire().await?;
    let mut after = None;
    let mut changed = 0;
    loop {
        let page = requests::list_open_after(&mut conn, after, 200).await?;
        let Some(last) = page.last() else {
            return Ok(changed);
        };
        after = Some(last.id);
        for r in &page {
            let groups = evaluate(&svc.settings.policy, r).approver_groups();
            if groups != r.approver_groups {
                requests::set_approver_groups(&mut conn, r.id, &groups).await?;
                changed += 1;
            }
        }
    }
}

/// What one upkeep pass ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lapsed {
    pub requests: Vec<RequestId>,
    pub extensions: Vec<(RequestId, i64)>,
}

/// Pending requests older than `LAKEGATE_PENDING_TTL` lapse, and so do extensions still
/// pending when their grant has ended; each is audited (`request.lapsed`, `extension.lapsed`).
pub async fn lapse_due(svc: &Services) -> Result<Lapsed, AppError> {
    const BATCH: i64 = 200;
    let ttl = svc.settings.requests.pending_ttl;
    let mut lapsed = Lapsed::default();
    loop {
        let now = svc.clock.now();
        let (reqs, exts) = in_tx(svc, async |tx: &mut sqlx::PgConnection| {
            let reqs = requests::lapse_pending(&mut *tx, now - ttl, now, BATCH).await?;
            for id in &reqs {
                record(
                    &mut *tx,
                    now,
                    Some(*id),
                    None,
                    AuditAction::RequestLapsed,
                    json!({ "pending_ttl_seconds": ttl.whole_seconds() }),
                )
                .await?;
            }
            let exts = extensions::lapse_orphaned(&mut *tx, now, BATCH).await?;
            for (id, extension) in &exts {
                record(
                    &mut *tx,
                    now,
                    Some(*id),
                    None,
                    AuditAction::ExtensionLapsed,
                    json!({ "extension_id": extension }),
                )
                .await?;
            }
            Ok((reqs, exts))
        })
        .await?;
        let done = i64::try_from(reqs.len()).unwrap_or(0) < BATCH
            && i64::try_from(exts.len()).unwrap_or(0) < BATCH;
        lapsed.requests.extend(reqs);
        lapsed.extensions.extend(exts);
        if done {
            return Ok(lapsed);
        }
    }
}

/// How long before a grant ends its requester is told.
pub const EXPIRY_NOTICE: Duration = Duration::minutes(10);

/// Grants ending within [`EXPIRY_NOTICE`] that have not been told so: each gets a
/// `grant.expiring_soon` audit event (and so a notification). Returns how many.
pub async fn notice_expiring(svc: &Services) -> Result<usize, AppError> {
    const BATCH: i64 = 200;
    let mut told = 0;
    loop {
        let now = svc.clock.now();
        let n = in_tx(svc, async |tx: &mut sqlx::PgConnection| {
            let due =
                requests::mark_expiry_notices(&mut *tx, now, now + EXPIRY_NOTICE, BATCH).await?;
            for (id, expires_at) in &due {
                record(
                    &mut *tx,
                    now,
                    Some(*id),
                    None,
                    AuditAction::GrantExpiringSoon,
                    json!({
                        "expires_at": expires_at.format(&Rfc3339).unwrap_or_default(),
                        "seconds_left": (*expires_at - now).whole_seconds(),
                    }),
                )
                .await?;
            }
            Ok(due.len())
        })
        .await?;
        told += n;
        if i64::try_from(n).unwrap_or(0) < BATCH {
            return Ok(told);
        }
    }
}

/// Runs until cancelled: brings approver groups up to date once, then every `every` lapses
/// what is due and tells grants that end soon.
pub async fn run_upkeep(
    svc: Services,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    match refresh_approver_groups(&svc).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            requests = n,
            "approver groups brought up to date with the policy"
        ),
        Err(e) => {
            tracing::error!(error = %e, "could not bring approver groups up to date with the policy")
        }
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match lapse_due(&svc).await {
            Ok(l) if l.requests.is_empty() && l.extensions.is_empty() => {}
            Ok(l) => tracing::info!(
                requests = l.requests.len(),
                extensions = l.extensions.len(),
                "undecided requests lapsed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not lapse undecided requests; will try again")
            }
        }
        if let Err(e) = notice_expiring(&svc).await {
            tracing::warn!(error = %e, "could not tell grants that end soon; will try again");
        }
    }
}
