//! The orphan sweep: removes what exists in AWS under lakegate's names — roles under
//! `/lakegate/`, `lakegate-` workgroups, and the Lake Formation permissions of those roles —
//! that no request with resources (approved, active or revoking) backs. A crash between AWS's
//! answer and the database's record, a teardown interrupted by hand, or a resource someone made
//! under lakegate's names would otherwise be standing access nobody sees.
//!
//! AWS is listed before the database is read: a resource that exists when listed was recorded
//! (as approved) before it was created, so a live grant's resources are never taken for
//! orphans. Names that are not lakegate's own (`lakegate-<request id>`) are reported and left
//! alone. One replica sweeps at a time (a PostgreSQL advisory lock).

use std::collections::BTreeSet;

use lakegate_domain::RequestId;
use lakegate_domain::audit::AuditAction;
use lakegate_domain::naming::{NAME_PREFIX, ROLE_PATH};
use lakegate_domain::ports::CloudError;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{AppError, Services, in_tx, record};

/// The advisory lock key the sweep holds while it runs ("lakegate sweep").
const SWEEP_LOCK: i64 = 0x006c_6773_7765_6570;

/// What kind of AWS resource an orphan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrphanKind {
    Role,
    Workgroup,
}

impl OrphanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::Workgroup => "workgroup",
        }
    }
}

/// A resource under lakegate's names that no live request backs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Orphan {
    pub kind: OrphanKind,
    pub name: String,
}

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Orphans found (all of them, also in a dry run).
    pub found: Vec<Orphan>,
    /// Orphans removed (none in a dry run).
    pub removed: Vec<Orphan>,
    /// Orphans whose removal failed, with why; the next sweep tries again.
    pub failed: Vec<(Orphan, String)>,
    /// Resources under lakegate's path or prefix whose name is not one lakegate gives: left
    /// alone.
    pub foreign: Vec<Orphan>,
    /// Another replica was sweeping: nothing was looked at.
    pub skipped: bool,
}

/// `lakegate-<request id>` → the request id.
fn request_of(name: &str) -> Option<RequestId> {
    name.strip_prefix(NAME_PREFIX)?.parse().ok()
}

/// One sweep. With `dry_run`, only finds.
pub async fn sweep(svc: &Services, dry_run: bool) -> Result<SweepReport, AppError> {
    let mut lock = svc.db.acquire().await?;
    if !lakegate_store::try_advisory_lock(&mut lock, SWEEP_LOCK).await? {
        return Ok(SweepReport {
            skipped: true,
            ..SweepReport::default()
        });
    }
    let result = sweep_locked(svc, dry_run).await;
    if let Err(e) = lakegate_store::advisory_unlock(&mut lock, SWEEP_LOCK).await {
        // The lock goes with the connection; close it rather than hand it back held.
        tracing::warn!(error = %e, "could not release the sweep lock; dropping its connection");
        drop(lock.detach());
    }
    result
}

async fn sweep_locked(svc: &Services, dry_run: bool) -> Result<SweepReport, AppError> {
    let roles = svc.cloud.list_lakegate_roles().await?;
    let workgroups = svc.cloud.list_lakegate_workgroups().await?;
    let live: BTreeSet<RequestId> = {
        let mut conn = svc.db.acquire().await?;
        lakegate_store::requests::ids_with_resources(&mut conn)
            .await?
            .into_iter()
            .collect()
    };
    let mut report = SweepReport::default();
    let listed = roles
        .into_iter()
        .map(|name| Orphan {
            kind: OrphanKind::Role,
            name,
        })
        .chain(workgroups.into_iter().map(|name| Orphan {
            kind: OrphanKind::Workgroup,
            name,
        }));
    for resource in listed {
        match request_of(&resource.name) {
            None => report.foreign.push(resource),
            Some(id) if live.contains(&id) => {}
            Some(_) => report.found.push(resource),
        }
    }
    report.found.sort();
    if dry_run {
        return Ok(report);
    }
    for orphan in report.found.clone() {
        match remove(svc, &orphan).await {
            Ok(grants) => {
                let now = svc.clock.now();
                in_tx(svc, async |conn| {
                    record(
                        conn,
                        now,
                        None,
                        None,
                        AuditAction::OrphanRemoved,
                        json!({
                            "kind": orphan.kind.as_str(),
                            "name": orphan.name,
                            "lake_formation_grants": grants,
                        }),
                    )
                    .await
                })
                .await?;
                tracing::warn!(kind = orphan.kind.as_str(), name = %orphan.name, grants,
                    "removed an AWS resource that no live request backs");
                report.removed.push(orphan);
            }
            Err(e) => {
                tracing::warn!(kind = orphan.kind.as_str(), name = %orphan.name, error = %e,
                    "could not remove an orphan; the next sweep tries again");
                report.failed.push((orphan, e.to_string()));
            }
        }
    }
    Ok(report)
}

/// Removes one orphan the way teardown would; returns how many Lake Formation grants went
/// with it.
async fn remove(svc: &Services, orphan: &Orphan) -> Result<usize, CloudError> {
    let cloud = &svc.cloud;
    match orphan.kind {
        OrphanKind::Workgroup => {
            cloud.stop_running_queries(&orphan.name).await?;
            cloud.delete_workgroup(&orphan.name).await?;
            Ok(0)
        }
        OrphanKind::Role => {
            let arn = format!(
                "arn:aws:iam::{}:role{ROLE_PATH}{}",
                cloud.identity().account_id,
                orphan.name
            );
            // Sessions first, as in teardown: whatever else fails, the role is useless.
            cloud.deny_all_sessions(&orphan.name).await?;
            let grants = cloud.lake_formation_grants_of(&arn).await?;
            if !grants.is_empty() {
                cloud.revoke_lake_formation(&grants).await?;
            }
            cloud.delete_role(&orphan.name).await?;
            Ok(grants.len())
        }
    }
}

/// Sweeps every `interval` (the first a minute after start, when the worker has settled) until
/// `shutdown`.
pub async fn run(svc: Services, interval: std::time::Duration, shutdown: CancellationToken) {
    let first = tokio::time::Instant::now() + interval.min(std::time::Duration::from_secs(60));
    let mut tick = tokio::time::interval_at(first, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match sweep(&svc, false).await {
            Ok(r) if !r.found.is_empty() || !r.foreign.is_empty() => tracing::info!(
                found = r.found.len(),
                removed = r.removed.len(),
                failed = r.failed.len(),
                foreign = r.foreign.len(),
                "orphan sweep"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "orphan sweep failed; will try again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lakegates_own_names_are_orphans() {
        let id = RequestId(uuid::Uuid::new_v4());
        assert_eq!(request_of(&format!("lakegate-{id}")), Some(id));
        for foreign in ["lakegate-", "lakegate-admin", "other-role", &id.to_string()] {
            assert_eq!(request_of(foreign), None, "{foreign}");
        }
    }
}
