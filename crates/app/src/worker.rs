//! The background worker, one in every replica: provisions approved requests, expires active
//! grants when their time is up, and tears down revoking ones (docs/aws.md §11, §12). It claims
//! work with `for update skip locked` under a lease, records each step before taking it, and
//! treats every step as idempotent, so a crash anywhere is repaired by the next pass of any
//! replica.

use crate::record;
use futures_util::StreamExt as _;
use lakegate_domain::audit::AuditAction;
use lakegate_domain::iam_policy::{access_policy, session_policy, trust_policy};
use lakegate_domain::naming::{
    ACCESS_POLICY_NAME, GrantResources, ROLE_PATH, TAG_OWNER, TAG_REQUEST, session_name,
    source_identity, tag_value,
};
use lakegate_domain::ports::{CloudError, RoleSpec, SessionSpec, WorkgroupSpec};
use lakegate_domain::steps::{ProvisionStep, RevokeStep};
use lakegate_domain::{EndState, RequestId, RequestStatus};
use lakegate_store::requests;
use lakegate_store::work::{self, Lane, WorkItem};
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{AppError, Services};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkReport {
    pub activated: Vec<RequestId>,
    /// Grants whose sessions were denied this pass, their cleanup still to come.
    pub denied: Vec<RequestId>,
    pub ended: Vec<(RequestId, EndState)>,
    /// Requests whose step failed this pass and will be retried.
    pub retrying: Vec<RequestId>,
}

impl WorkReport {
    pub fn is_empty(&self) -> bool {
        self.activated.is_empty()
            && self.denied.is_empty()
            && self.ended.is_empty()
            && self.retrying.is_empty()
    }
}

enum Outcome {
    /// Every step done.
    Done,
    /// The request moved on under us (revoked while provisioning): let go.
    Superseded,
    /// A step failed; retry later.
    Failed {
        step: &'static str,
        error: CloudError,
    },
}

/// Exponential backoff: base × 2^attempts, capped (millisecond precision, so sub-second bases
/// work in tests).
fn backoff(svc: &Services, attempts: i32) -> Duration {
    let w = &svc.settings.worker;
    let factor = 1i64 << attempts.clamp(0, 20);
    let millis = i64::try_from(w.retry_base.whole_milliseconds())
        .unwrap_or(i64::MAX)
        .saturating_mul(factor);
    Duration::milliseconds(millis).min(w.retry_cap)
}

/// Renews a claimed batch's leases every quarter lease while the worker goes through it, so
/// leases can be short: a worker that dies stops renewing, and its work is due again within
/// one lease. Stops when dropped (a pass that is abandoned renews nothing).
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(svc: &Services, owner: &str, ids: Vec<RequestId>) -> Self {
        let svc = svc.clone();
        let owner = owner.to_owned();
        let lease = svc.settings.worker.lease;
        let every = std::time::Duration::try_from(lease / 4)
            .unwrap_or(std::time::Duration::from_secs(1))
            .max(std::time::Duration::from_millis(50));
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let until = svc.clock.now() + lease;
                let renewed = match svc.db.acquire().await {
                    Ok(mut conn) => work::renew(&mut conn, &ids, &owner, until)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = renewed {
                    tracing::warn!(error = %e, "could not renew the leases of the work in hand");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Requests claimed at a time.
const CLAIM_BATCH: i64 = 16;
/// Requests worked on at once (each one step at a time, in order; a step's calls side by side).
const CONCURRENCY: usize = 8;

/// One pass: claims what is due now, in both lanes, the deny lane first, until neither has
/// anything due (a provisioning that gives up, for one, has its sessions to deny next).
pub async fn work_once(svc: &Services, owner: &str) -> Result<WorkReport, AppError> {
    let mut report = WorkReport::default();
    loop {
        let mut claimed = false;
        for lane in [Lane::Deny, Lane::Rest] {
            claimed |= work_lane(svc, owner, lane, &mut report).await?;
        }
        if !claimed {
            return Ok(report);
        }
    }
}

/// Claims what is due now in `lane`, batch after batch, and works on it, adding what it did to
/// `report`. Whether it claimed anything.
async fn work_lane(
    svc: &Services,
    owner: &str,
    lane: Lane,
    report: &mut WorkReport,
) -> Result<bool, AppError> {
    let mut any = false;
    loop {
        let now = svc.clock.now();
        let claimed = {
            let mut tx = svc.db.begin().await?;
            let lease = svc.settings.worker.lease;
            let c = work::claim_due(&mut tx, lane, now, owner, lease, CLAIM_BATCH).await?;
            tx.commit().await?;
            c
        };
        if claimed.is_empty() {
            return Ok(any);
        }
        any = true;
        // Until the batch is done (or this pass is dropped), its leases stay alive.
        let _alive = Heartbeat::start(svc, owner, claimed.iter().map(|(id, _)| *id).collect());
        // Different grants' steps run side by side, a bounded number at a time: one slow AWS
        // call holds up only its own grant.
        let mut passes = futures_util::stream::iter(claimed)
            .map(|(id, status)| async move {
                let mut mine = WorkReport::default();
                if let Err(e) = work_on(svc, owner, id, status, &mut mine).await {
                    // Database trouble: leave the lease to run out and carry on with the rest.
                    tracing::error!(request_id = %id, error = %e, "work on request failed");
                }
                mine
            })
            .buffer_unordered(CONCURRENCY);
        while let Some(mine) = passes.next().await {
            report.activated.extend(mine.activated);
            report.denied.extend(mine.denied);
            report.ended.extend(mine.ended);
            report.retrying.extend(mine.retrying);
        }
    }
}

async fn work_on(
    svc: &Services,
    owner: &str,
    id: RequestId,
    status: RequestStatus,
    report: &mut WorkReport,
) -> Result<(), AppError> {
    match status {
        RequestStatus::Approved => provision(svc, owner, id, report).await,
        RequestStatus::Active => {
            expire(svc, id).await?;
            teardown(svc, owner, id, report).await
        }
        RequestStatus::Revoking => teardown(svc, owner, id, report).await,
        other => {
            tracing::warn!(request_id = %id, status = %other, "claimed a request with nothing to do");
            release(svc, owner, id).await
        }
    }
}

/// active → revoking, because its time is up.
async fn expire(svc: &Services, id: RequestId) -> Result<(), AppError> {
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    // Under the row's lock, and only if still due: an extension approved since the claim wins.
    if requests::begin_expiry(
        &mut tx,
        id,
        "the requested time ran out",
        RevokeStep::first().as_str(),
        now,
    )
    .await?
    {
        record(
            &mut tx,
            now,
            Some(id),
            None,
            AuditAction::RevokeRequested,
            json!({ "end_state": "expired", "reason": "the requested time ran out", "from": "active" }),
        )
        .await?;
    }
    tx.commit().await?;
    svc.forget_grant(id);
    Ok(())
}

async fn load(svc: &Services, id: RequestId) -> Result<Option<WorkItem>, AppError> {
    let mut conn = svc.db.acquire().await?;
    Ok(work::load(&mut conn, id).await?)
}

async fn provision(
    svc: &Services,
    owner: &str,
    id: RequestId,
    report: &mut WorkReport,
) -> Result<(), AppError> {
    let started = std::time::Instant::now();
    let Some(item) = load(svc, id).await? else {
        return Ok(());
    };
    if item.status != RequestStatus::Approved {
        return release(svc, owner, id).await;
    }
    let start = ProvisionStep::resume_at(item.step.as_deref());
    let mut timing = Timing::default();
    match run_provision_steps(svc, owner, &item, start, &mut timing).await? {
        Outcome::Done => {
            let now = svc.clock.now();
            let expires_at = now + item.duration;
            let mut tx = svc.db.begin().await?;
            if requests::activate(&mut tx, id, now, expires_at).await? {
                record(
                    &mut tx,
                    now,
                    Some(id),
                    None,
                    AuditAction::GrantActivated,
                    json!({
                        "role_arn": item.role_arn,
                        "workgroup": item.workgroup,
                        "expires_at": expires_at.unix_timestamp(),
                    }),
                )
                .await?;
                tx.commit().await?;
                let took = started.elapsed();
                metrics::histogram!(crate::metrics::PROVISION_DURATION).record(took.as_secs_f64());
                if start == ProvisionStep::first() {
                    // A pass over every step: the time not spent waiting for AWS is ours.
                    metrics::histogram!(crate::metrics::PROVISION_OVERHEAD)
                        .record(took.saturating_sub(timing.aws).as_secs_f64());
                }
                tracing::info!(request_id = %id, "grant active");
                report.activated.push(id);
            } else {
                drop(tx);
                release(svc, owner, id).await?;
            }
            Ok(())
        }
        Outcome::Superseded => release(svc, owner, id).await,
        Outcome::Failed { step, error } => {
            let now = svc.clock.now();
            let give_up = !error.is_retryable()
                || item.attempts + 1 >= svc.settings.worker.max_provision_attempts;
            let mut tx = svc.db.begin().await?;
            let failure = StepFailure {
                status: RequestStatus::Approved,
                step,
                error: &error,
                action: AuditAction::ProvisioningStepFailed,
                giving_up: Some(give_up),
            };
            if !record_step_failure(&mut tx, svc, owner, &item, failure).await? {
                // Revoked meanwhile (or taken over): let go so teardown starts at once.
                drop(tx);
                return release(svc, owner, id).await;
            }
            if give_up {
                let reason = format!("provisioning failed at {step}: {error}");
                if requests::begin_revoke(
                    &mut tx,
                    id,
                    RequestStatus::Approved,
                    EndState::Failed,
                    &reason,
                    RevokeStep::first().as_str(),
                    now,
                )
                .await?
                {
                    record(
                        &mut tx,
                        now,
                        Some(id),
                        None,
                        AuditAction::RevokeRequested,
                        json!({ "end_state": "failed", "reason": reason, "from": "approved" }),
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            metrics::counter!(crate::metrics::STEP_FAILURES, "step" => step).increment(1);
            tracing::warn!(request_id = %id, step, %error, give_up, "provisioning step failed");
            report.retrying.push(id);
            Ok(())
        }
    }
}

/// A step that failed, for the record.
struct StepFailure<'a> {
    status: RequestStatus,
    step: &'a str,
    error: &'a CloudError,
    action: AuditAction,
    /// For provisioning: whether this failure ends the attempts.
    giving_up: Option<bool>,
}

/// Records a failed step (why, and when to retry) with its audit row, in `tx`, and lets go of
/// the lease. `false` when the request moved on or another worker holds it: nothing written.
async fn record_step_failure(
    tx: &mut sqlx::PgConnection,
    svc: &Services,
    owner: &str,
    item: &WorkItem,
    f: StepFailure<'_>,
) -> Result<bool, AppError> {
    let now = svc.clock.now();
    let Some(attempt) = work::record_failure(
        tx,
        item.id,
        f.status,
        owner,
        &format!("{}: {}", f.step, f.error),
        now + backoff(svc, item.attempts),
    )
    .await?
    else {
        return Ok(false);
    };
    let mut detail = json!({ "step": f.step, "error": f.error.to_string(), "attempt": attempt });
    if let Some(giving_up) = f.giving_up {
        detail["giving_up"] = giving_up.into();
    }
    record(tx, now, Some(item.id), None, f.action, detail).await?;
    Ok(true)
}

/// The calls of a step that run one after the other, side by side with the step's other calls.
type Calls<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// The call that failed, named for the record (`*.step_failed`, the metrics, the end reason of
/// a failed grant), and why.
struct Failure {
    call: &'static str,
    error: CloudError,
}

/// Names a call's failure.
async fn call<T>(
    name: &'static str,
    call: impl Future<Output = Result<T, CloudError>>,
) -> Result<T, Failure> {
    call.await.map_err(|error| Failure { call: name, error })
}

/// Runs a step's calls side by side, each to its end (none is cut off midway when another
/// fails), and gives the first failure in the step's order; any other is logged.
async fn side_by_side(id: RequestId, calls: Vec<Calls<'_>>) -> Result<(), Failure> {
    let mut first = None;
    for result in futures_util::future::join_all(calls).await {
        if let Err(f) = result {
            if first.is_none() {
                first = Some(f);
            } else {
                tracing::warn!(request_id = %id, call = f.call, error = %f.error, "call failed beside another");
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// Time spent in the steps' AWS calls, against the whole of a worker's pass over a request:
/// what is left is the broker's own overhead (`lakegate_provision_overhead_seconds`).
#[derive(Default)]
struct Timing {
    aws: std::time::Duration,
}

async fn run_provision_steps(
    svc: &Services,
    owner: &str,
    item: &WorkItem,
    start: ProvisionStep,
    timing: &mut Timing,
) -> Result<Outcome, AppError> {
    let g = GrantResources::derive(item.id, svc.cloud.identity(), &svc.settings.results);
    let mut step = Some(start);
    while let Some(s) = step {
        if !record_step(svc, owner, item.id, RequestStatus::Approved, s.as_str()).await? {
            return Ok(Outcome::Superseded);
        }
        let began = std::time::Instant::now();
        let done = provision_step(svc, item, &g, s).await;
        timing.aws += began.elapsed();
        if let Err(Failure { call, error }) = done {
            return Ok(Outcome::Failed { step: call, error });
        }
        step = s.next();
    }
    Ok(Outcome::Done)
}

/// Writes the step about to be taken, extending the lease. `false`: stop, the request moved on.
async fn record_step(
    svc: &Services,
    owner: &str,
    id: RequestId,
    status: RequestStatus,
    step: &str,
) -> Result<bool, AppError> {
    let lease_until = svc.clock.now() + svc.settings.worker.lease;
    let mut conn = svc.db.acquire().await?;
    Ok(work::set_step(&mut conn, id, status, step, owner, lease_until).await?)
}

async fn provision_step(
    svc: &Services,
    item: &WorkItem,
    g: &GrantResources,
    step: ProvisionStep,
) -> Result<(), Failure> {
    let cloud = &svc.cloud;
    let tags = || {
        vec![
            (TAG_REQUEST.to_owned(), item.id.to_string()),
            (TAG_OWNER.to_owned(), tag_value(&item.requester.email)),
        ]
    };
    let calls: Vec<Calls<'_>> = match step {
        ProvisionStep::CreateRoleAndWorkgroup => {
            let role = RoleSpec {
                name: item.role_name.clone(),
                path: ROLE_PATH.to_owned(),
                trust_policy: trust_policy(&cloud.identity().broker_principal_arn),
                permissions_boundary_arn: svc.settings.permissions_boundary_arn.clone(),
                max_session_seconds: 3600,
                tags: tags(),
            };
            let workgroup = WorkgroupSpec {
                name: item.workgroup.clone(),
                output_location: item.results_uri.clone(),
                bytes_scanned_cutoff: item
                    .scan_cutoff_bytes
                    .unwrap_or(svc.settings.policy.defaults().scan_cutoff_bytes),
                tags: tags(),
            };
            vec![
                Box::pin(async move { call("create_role", cloud.create_role(&role)).await }),
                Box::pin(async move {
                    call("create_workgroup", cloud.create_workgroup(&workgroup)).await
                }),
            ]
        }
        ProvisionStep::GrantAccess => {
            let mut databases: Vec<String> =
                item.resources.iter().map(|r| r.database.clone()).collect();
            databases.sort();
            databases.dedup();
            let policy = access_policy(g, &databases);
            vec![
                Box::pin(async move {
                    let put = cloud.put_role_policy(&item.role_name, ACCESS_POLICY_NAME, &policy);
                    call("put_access_policy", put).await
                }),
                Box::pin(call(
                    "grant_lake_formation",
                    cloud.grant_lake_formation(&item.lf_grants),
                )),
            ]
        }
        ProvisionStep::AwaitPropagation => {
            // The gate: only a role that STS lets us assume is handed out (docs/aws.md §11).
            let spec = SessionSpec {
                role_arn: item.role_arn.clone(),
                session_name: session_name("lakegate-check", item.id),
                duration_seconds: 900,
                session_policy: session_policy(svc.clock.now() + Duration::minutes(15)),
                source_identity: source_identity(&item.requester.email),
                tags: vec![(TAG_REQUEST.to_owned(), item.id.to_string())],
            };
            vec![Box::pin(async move {
                call("await_propagation", cloud.assume_role(&spec))
                    .await
                    .map(drop)
            })]
        }
    };
    side_by_side(item.id, calls).await
}

/// The teardown, step after step from where it stands. A teardown that has its sessions still
/// to deny (the deny lane's work) stops after that step, recording when, and lets go of the
/// request, which is due again at once in the rest lane; that lane claims nothing while any
/// grant's deny is unclaimed (`work::claim_due`): under a burst of expiries, every grant's
/// sessions are denied before any grant's slower cleanup starts.
async fn teardown(
    svc: &Services,
    owner: &str,
    id: RequestId,
    report: &mut WorkReport,
) -> Result<(), AppError> {
    let Some(item) = load(svc, id).await? else {
        return Ok(());
    };
    if item.status != RequestStatus::Revoking {
        return release(svc, owner, id).await;
    }
    let mut step = Some(RevokeStep::resume_at(item.step.as_deref()));
    while let Some(s) = step {
        if !record_step(svc, owner, id, RequestStatus::Revoking, s.as_str()).await? {
            return release(svc, owner, id).await;
        }
        if let Err(Failure { call, error }) = revoke_step(svc, &item, s).await {
            let mut tx = svc.db.begin().await?;
            let failure = StepFailure {
                status: RequestStatus::Revoking,
                step: call,
                error: &error,
                action: AuditAction::RevokeStepFailed,
                giving_up: None,
            };
            if !record_step_failure(&mut tx, svc, owner, &item, failure).await? {
                drop(tx);
                return release(svc, owner, id).await;
            }
            tx.commit().await?;
            metrics::counter!(crate::metrics::STEP_FAILURES, "step" => call).increment(1);
            tracing::warn!(request_id = %id, step = call, %error, "revoke step failed; will retry");
            report.retrying.push(id);
            return Ok(());
        }
        if s == RevokeStep::DenySessions
            && let Some(next) = s.next()
        {
            let now = svc.clock.now();
            if let Some(expires_at) = item.expires_at
                && item.end_state == Some(EndState::Expired)
            {
                let lag = (now - expires_at).as_seconds_f64().max(0.0);
                metrics::histogram!(crate::metrics::REAPER_LAG, "step" => "deny_sessions")
                    .record(lag);
            }
            let mut conn = svc.db.acquire().await?;
            if work::sessions_denied(&mut conn, id, next.as_str(), owner, now).await? {
                report.denied.push(id);
                return Ok(());
            }
            drop(conn);
            return release(svc, owner, id).await;
        }
        step = s.next();
    }
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    if let Some(end) = requests::finish(&mut tx, id, now).await? {
        let queries = lakegate_store::usage::points(&mut tx, id).await?;
        let usage = crate::requests::summarize_queries(&queries, svc.settings.monitor.price);
        record(
            &mut tx,
            now,
            Some(id),
            None,
            AuditAction::GrantEnded,
            json!({
                "end_state": end.as_str(),
                "usage": {
                    "queries": usage.queries,
                    "succeeded": usage.succeeded,
                    "failed": usage.failed,
                    "cancelled": usage.cancelled,
                    "bytes_scanned": usage.bytes_scanned,
                    "billed_bytes": usage.billed_bytes,
                    "cost_micros": usage.cost.0,
                    "flags": usage.flags,
                },
                "sessions_denied_at": item.sessions_denied_at.map(OffsetDateTime::unix_timestamp),
                "deny_lag_seconds": deny_lag(&item, end),
            }),
        )
        .await?;
        tx.commit().await?;
        if end == EndState::Expired
            && let Some(expires_at) = item.expires_at
        {
            metrics::histogram!(crate::metrics::REAPER_LAG, "step" => "done")
                .record((now - expires_at).as_seconds_f64().max(0.0));
        }
        tracing::info!(request_id = %id, end_state = end.as_str(), "grant torn down");
        report.ended.push((id, end));
    }
    Ok(())
}

/// How long the grant's sessions stayed usable past the end: from its expiry (an expired grant)
/// or from the revoke's start (any other end) to the deny step, to the millisecond.
fn deny_lag(item: &WorkItem, end: EndState) -> Option<f64> {
    let denied = item.sessions_denied_at?;
    let from = if end == EndState::Expired {
        item.expires_at?
    } else {
        item.revoke_started_at?
    };
    let ms = (denied - from).whole_milliseconds().max(0);
    #[allow(clippy::cast_precision_loss, reason = "milliseconds of a lag")]
    Some(ms as f64 / 1000.0)
}

async fn revoke_step(svc: &Services, item: &WorkItem, step: RevokeStep) -> Result<(), Failure> {
    let cloud = &svc.cloud;
    let calls: Vec<Calls<'_>> = match step {
        // `false`: the role is already gone (never created, or deleted by an earlier pass); the
        // later steps still run, each treating "already gone" as done.
        RevokeStep::DenySessions => vec![Box::pin(async move {
            call("deny_sessions", cloud.deny_all_sessions(&item.role_name))
                .await
                .map(drop)
        })],
        RevokeStep::RevokeAccess => vec![
            Box::pin(async move {
                call("stop_queries", cloud.stop_running_queries(&item.workgroup)).await?;
                // The last look at the grant's queries, now that they are stopped and before
                // the workgroup (and Athena's record of them) goes: the end summary counts
                // them all.
                if let Err(e) = crate::monitor::record_queries(svc, item.id, &item.workgroup).await
                {
                    tracing::warn!(request_id = %item.id, error = %e, "could not record the grant's last queries");
                }
                Ok(())
            }),
            Box::pin(call(
                "revoke_lake_formation",
                cloud.revoke_lake_formation(&item.lf_grants),
            )),
        ],
        RevokeStep::DeleteResources => vec![
            Box::pin(async move {
                call("delete_workgroup", cloud.delete_workgroup(&item.workgroup)).await?;
                // After the workgroup: no query of the grant can write results any more.
                let n = call("delete_results", cloud.delete_results(&item.results_uri)).await?;
                if n > 0 {
                    tracing::info!(request_id = %item.id, objects = n, "deleted the grant's query results");
                }
                Ok(())
            }),
            // After `RevokeAccess`: no Lake Formation grant is left on the role's ARN.
            Box::pin(call("delete_role", cloud.delete_role(&item.role_name))),
        ],
    };
    side_by_side(item.id, calls).await
}

async fn release(svc: &Services, owner: &str, id: RequestId) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    work::release(&mut conn, id, owner).await?;
    Ok(())
}

/// Runs until cancelled: the two lanes of work, each in a loop of its own (a pass, then sleep
/// until the next thing is due, a wake-up, or `max_idle` at the most), so a deny never waits
/// for a batch of slower work to finish. An approval or a revoke wakes both; a lane's pass that
/// claimed anything wakes the other. The query monitor runs on a
/// task of its own ([`crate::monitor::run`]): nothing a grant holder does to their queries
/// delays a revoke or an expiry here.
pub async fn run(svc: Services, owner: String, shutdown: CancellationToken) {
    tracing::info!(%owner, "worker started");
    let deny = Arc::new(Notify::new());
    let rest = Arc::new(Notify::new());
    let fan_out = async {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = svc.wake.notified() => {
                    deny.notify_one();
                    rest.notify_one();
                }
            }
        }
    };
    tokio::join!(
        fan_out,
        run_lane(&svc, &owner, Lane::Deny, &deny, &rest, &shutdown),
        run_lane(&svc, &owner, Lane::Rest, &rest, &deny, &shutdown),
    );
    tracing::info!("worker stopped");
}

/// The shortest sleep between passes of a lane: work that is due but could not be claimed (the
/// rest lane's, while a deny waits) is looked at again this soon at the latest.
const MIN_SLEEP: std::time::Duration = std::time::Duration::from_millis(50);

/// One lane's loop. After a pass that claimed anything it wakes the other lane: a deny makes
/// the rest of its teardown due; a provisioning let go because of a revoke, or given up, makes
/// a deny due.
async fn run_lane(
    svc: &Services,
    owner: &str,
    lane: Lane,
    wake: &Notify,
    other: &Notify,
    shutdown: &CancellationToken,
) {
    loop {
        let mut report = WorkReport::default();
        match work_lane(svc, owner, lane, &mut report).await {
            Ok(claimed) => {
                if claimed {
                    other.notify_one();
                }
                if !report.is_empty() {
                    tracing::debug!(?lane, ?report, "worker pass");
                }
            }
            Err(e) => tracing::error!(?lane, error = %e, "worker pass failed"),
        }
        let now = svc.clock.now();
        let next = match svc.db.acquire().await {
            Ok(mut conn) => work::next_due_at(&mut conn, lane, now).await.ok().flatten(),
            Err(_) => None,
        };
        let sleep = sleep_until(now, next, svc.settings.worker.max_idle).max(MIN_SLEEP);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// How long to sleep: until `next` (plus a beat, so the row is due when we look), at most `max`.
fn sleep_until(
    now: OffsetDateTime,
    next: Option<OffsetDateTime>,
    max: Duration,
) -> std::time::Duration {
    let wait = next.map_or(max, |n| (n - now + Duration::milliseconds(50)).min(max));
    std::time::Duration::try_from(wait.max(Duration::ZERO)).unwrap_or(std::time::Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn sleeps_until_the_next_due_time_within_bounds() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let max = Duration::seconds(30);
        assert_eq!(
            sleep_until(now, None, max),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            sleep_until(now, Some(now + Duration::seconds(5)), max),
            std::time::Duration::from_millis(5_050)
        );
        assert_eq!(
            sleep_until(now, Some(now - Duration::seconds(5)), max),
            std::time::Duration::ZERO
        );
        assert_eq!(
            sleep_until(now, Some(now + Duration::hours(5)), max),
            std::time::Duration::from_secs(30)
        );
    }
}
