//! The query monitor: for every active grant, the queries of its workgroup are recorded (each
//! once, updated as it progresses) with what Athena will bill for them, and the grant's scan
//! budget is enforced: a warning at 80 %, the workgroup's per-query cutoff lowered to what is
//! left, and the grant revoked ("budget exhausted") once less than Athena's smallest cutoff
//! remains (AWS.md §4.6). The rule itself is `lakegate_domain::usage::assess_budget`.

use lakegate_domain::audit::AuditAction;
use lakegate_domain::naming::GrantResources;
use lakegate_domain::ports::QueryExecution;
use lakegate_domain::steps::RevokeStep;
use lakegate_domain::usage::{BudgetInput, Price, assess_budget, billed_bytes, estimate_cost};
use lakegate_domain::{AccessRequest, EndState, RequestId, RequestStatus};
use lakegate_store::requests;
use lakegate_store::usage::{self, Seen};
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::{AppError, Services, in_tx, record};

/// The reason a grant ends when its budget is spent.
pub const BUDGET_EXHAUSTED: &str = "budget exhausted";

/// What one look at every active grant did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorReport {
    /// Queries seen for the first time.
    pub new_queries: usize,
    /// Queries that moved on (state, bytes) since the last look.
    pub updated_queries: usize,
    pub warned: Vec<RequestId>,
    pub cutoff_lowered: Vec<(RequestId, i64)>,
    pub exhausted: Vec<RequestId>,
}

/// Looks at every active grant once. A grant whose look fails (AWS unavailable) is looked at
/// again next time; the others go on.
pub async fn monitor_once(svc: &Services) -> Result<MonitorReport, AppError> {
    let active = {
        let mut conn = svc.db.acquire().await?;
        requests::list_by_status(&mut conn, &[RequestStatus::Active], 10_000).await?
    };
    let mut report = MonitorReport::default();
    for grant in &active {
        if let Err(e) = watch(svc, grant, &mut report).await {
            tracing::warn!(request_id = %grant.id, error = %e, "could not look at the grant's queries");
        }
    }
    Ok(report)
}

/// Stores each of `executions` once (updated when it moved); returns how many were new and
/// how many moved.
async fn upsert_all(
    tx: &mut PgConnection,
    id: RequestId,
    executions: &[QueryExecution],
    price: Price,
    now: OffsetDateTime,
) -> Result<(usize, usize), AppError> {
    let (mut new, mut updated) = (0, 0);
    for q in executions {
        let billed = billed_bytes(q.state, q.bytes_scanned);
        let cost = estimate_cost(q.state, q.bytes_scanned, price);
        match usage::upsert(&mut *tx, id, q, billed, cost.0, now).await? {
            Seen::New => new += 1,
            Seen::Updated => updated += 1,
            Seen::Unchanged => {}
        }
    }
    Ok((new, updated))
}

/// Records the queries of a grant's workgroup without judging its budget: teardown's last
/// look, once the queries are stopped and before the workgroup is deleted.
pub(crate) async fn record_queries(
    svc: &Services,
    id: RequestId,
    workgroup: &str,
) -> Result<(), AppError> {
    let executions = svc.cloud.query_executions(workgroup).await?;
    let now = svc.clock.now();
    let price = svc.settings.monitor.price;
    in_tx(svc, async |tx: &mut PgConnection| {
        upsert_all(tx, id, &executions, price, now).await.map(drop)
    })
    .await
}

async fn watch(
    svc: &Services,
    grant: &AccessRequest,
    report: &mut MonitorReport,
) -> Result<(), AppError> {
    let id = grant.id;
    let workgroup =
        GrantResources::derive(id, svc.cloud.identity(), &svc.settings.results).workgroup;
    let executions = svc.cloud.query_executions(&workgroup).await?;
    let now = svc.clock.now();
    let price = svc.settings.monitor.price;

    // Record what was seen and judge the budget in one transaction.
    let judged = in_tx(svc, async |tx: &mut PgConnection| {
        let (new, updated) = upsert_all(&mut *tx, id, &executions, price, now).await?;
        let Some(budget) = grant.scan_budget_bytes else {
            return Ok((new, updated, None));
        };
        let (_, spent, cost) = usage::totals(&mut *tx, id).await?;
        let state = usage::budget_state(&mut *tx, id).await?;
        let cutoff = grant
            .scan_cutoff_bytes
            .unwrap_or(svc.settings.policy.defaults().scan_cutoff_bytes);
        let verdict = assess_budget(BudgetInput {
            spent_bytes: spent,
            budget_bytes: budget,
            per_query_cutoff_bytes: cutoff,
            current_cutoff_bytes: state.workgroup_cutoff_bytes.unwrap_or(cutoff),
            warned_already: state.warned_at.is_some(),
        });
        let detail = json!({
            "spent_bytes": spent,
            "budget_bytes": budget,
            "remaining_bytes": verdict.remaining_bytes,
            "percent_used": verdict.percent_used,
            "cost_micros": cost,
        });
        let warned = verdict.warn && usage::mark_budget_warned(&mut *tx, id, now).await?;
        if warned {
            record(
                &mut *tx,
                now,
                Some(id),
                None,
                AuditAction::BudgetWarning,
                detail.clone(),
            )
            .await?;
        }
        Ok((new, updated, Some((verdict, detail, warned))))
    })
    .await?;
    let (new, updated, budget) = judged;
    report.new_queries += new;
    report.updated_queries += updated;
    let Some((verdict, detail, warned)) = budget else {
        return Ok(());
    };
    if warned {
        report.warned.push(id);
    }

    if verdict.exhausted {
        // Stop what runs now (teardown stops queries too, but every second counts here), then
        // end the grant as a revoke with its reason.
        if let Err(e) = svc.cloud.stop_running_queries(&workgroup).await {
            tracing::warn!(request_id = %id, error = %e, "could not stop the grant's queries; teardown tries again");
        }
        let revoked = in_tx(svc, async |tx: &mut PgConnection| {
            // Guarded: a grant revoked or expired meanwhile is left as it is.
            let started = requests::begin_revoke(
                &mut *tx,
                id,
                RequestStatus::Active,
                EndState::Revoked,
                BUDGET_EXHAUSTED,
                RevokeStep::first().as_str(),
                now,
            )
            .await?;
            if started {
                let mut d = detail;
                d["end_state"] = json!("revoked");
                d["reason"] = json!(BUDGET_EXHAUSTED);
                d["from"] = json!("active");
                record(
                    &mut *tx,
                    now,
                    Some(id),
                    None,
                    AuditAction::RevokeRequested,
                    d,
                )
                .await?;
            }
            Ok(started)
        })
        .await?;
        if revoked {
            svc.sessions.forget(id);
            svc.wake.notify_one();
            report.exhausted.push(id);
            tracing::warn!(request_id = %id, "scan budget exhausted: revoking");
        }
        return Ok(());
    }
    if let Some(lower) = verdict.new_cutoff {
        svc.cloud.set_workgroup_cutoff(&workgroup, lower).await?;
        in_tx(svc, async |tx: &mut PgConnection| {
            usage::set_workgroup_cutoff(&mut *tx, id, lower).await?;
            let mut d = detail;
            d["cutoff_bytes"] = json!(lower);
            record(
                &mut *tx,
                now,
                Some(id),
                None,
                AuditAction::BudgetCutoffLowered,
                d,
            )
            .await
        })
        .await?;
        report.cutoff_lowered.push((id, lower));
    }
    Ok(())
}
