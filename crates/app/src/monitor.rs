//! The query monitor: for every active grant, the queries of its workgroup are recorded (each
//! once, updated as it progresses) with what Athena will bill for them, and the grant's scan
//! budget is enforced: a warning at 80 %, the workgroup's per-query cutoff lowered to what is
//! left, and the grant revoked ("budget exhausted") once less than Athena's smallest cutoff
//! remains (docs/aws.md §14). Finished queries are flagged (`lakegate_domain::usage` has the
//! rules), each new flag an audit event.

use std::collections::HashMap;

use lakegate_domain::audit::AuditAction;
use lakegate_domain::naming::GrantResources;
use lakegate_domain::ports::{QueryExecution, TableLookup};
use lakegate_domain::sql_guard::{GuardContext, check};
use lakegate_domain::steps::RevokeStep;
use lakegate_domain::usage::{
    BudgetInput, PartitionKeys, Price, QueryFacts, QueryFlag, QueryFlagKind, assess_budget,
    billed_bytes, estimate_cost, find_bursts, flags_for_query,
};
use lakegate_domain::{AccessRequest, EndState, RequestId, RequestStatus};
use lakegate_store::requests;
use lakegate_store::usage::{self, Seen, StoredQuery};
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::requests::evaluate;
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
    /// Queries that gained a flag.
    pub flagged: usize,
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

/// A query whose flags change.
struct FlagChange {
    query_id: String,
    flags: Vec<QueryFlag>,
    /// Those it did not have before: they go into the audit trail.
    added: Vec<QueryFlag>,
}

/// Which queries' flags change with this look. A query's own flags (cutoff cancellation, large
/// scan, a partitioned table read without its keys, sensitive columns) are worked out once,
/// when it is first seen finished; the burst flag whenever a window of the rule holds it.
/// Glue is asked for partition keys only when some query has just finished.
async fn flags_to_set(
    svc: &Services,
    grant: &AccessRequest,
    executions: &[QueryExecution],
) -> Result<Vec<FlagChange>, AppError> {
    let rules = svc.settings.monitor.flags;
    let stored: HashMap<String, StoredQuery> = {
        let mut conn = svc.db.acquire().await?;
        usage::list(&mut conn, grant.id)
            .await?
            .into_iter()
            .map(|q| (q.execution.id.clone(), q))
            .collect()
    };
    let just_finished = |q: &QueryExecution| {
        q.state.is_final()
            && stored
                .get(&q.id)
                .is_none_or(|s| !s.execution.state.is_final())
    };
    let times: Vec<OffsetDateTime> = executions
        .iter()
        .map(|q| q.submitted_at.unwrap_or(grant.created_at))
        .collect();
    let bursts: HashMap<usize, QueryFlag> = find_bursts(&times, &rules.burst)
        .into_iter()
        .map(|hit| (hit.index, hit.flag(&rules.burst)))
        .collect();
    let context = if executions.iter().any(just_finished) {
        Some(flag_context(svc, grant).await?)
    } else {
        None
    };
    let mut changes = Vec::new();
    for (i, q) in executions.iter().enumerate() {
        let before: Vec<QueryFlag> = stored
            .get(&q.id)
            .map(|s| s.flags.clone())
            .unwrap_or_default();
        let mut flags: Vec<QueryFlag> = match &context {
            Some((keys, sensitive)) if just_finished(q) => {
                let reading = check(
                    &q.sql,
                    &GuardContext {
                        grant: &grant.resources,
                        catalog: &grant.catalog_columns,
                        default_database: q.database.as_deref(),
                        require_limit: false,
                    },
                );
                let unreadable = match &reading {
                    Err(refusal) if refusal.is_unreadable() => Some(refusal.to_string()),
                    _ => None,
                };
                let read_columns = reading.map(|c| c.columns).unwrap_or_default();
                let facts = QueryFacts {
                    sql: &q.sql,
                    default_database: q.database.as_deref(),
                    state: q.state,
                    state_change_reason: q.state_change_reason.as_deref(),
                    bytes_scanned: q.bytes_scanned,
                    read_columns: &read_columns,
                    unreadable: unreadable.as_deref(),
                };
                flags_for_query(&facts, &rules, keys, sensitive)
            }
            _ => before
                .iter()
                .filter(|f| f.kind() != QueryFlagKind::Burst)
                .cloned()
                .collect(),
        };
        // Once part of a burst, always: a burst does not stop having happened.
        match (
            bursts.get(&i),
            before.iter().find(|f| f.kind() == QueryFlagKind::Burst),
        ) {
            (Some(b), _) => flags.push(b.clone()),
            (None, Some(b)) => flags.push(b.clone()),
            (None, None) => {}
        }
        if flags != before {
            let added = flags
                .iter()
                .filter(|f| !before.iter().any(|b| b.kind() == f.kind()))
                .cloned()
                .collect();
            changes.push(FlagChange {
                query_id: q.id.clone(),
                flags,
                added,
            });
        }
    }
    Ok(changes)
}

/// The partition keys of the grant's tables (from Glue) and its sensitive columns (from the
/// policy).
async fn flag_context(
    svc: &Services,
    grant: &AccessRequest,
) -> Result<(PartitionKeys, Vec<(String, String, String)>), AppError> {
    let mut keys = PartitionKeys::new();
    for r in &grant.resources {
        if let TableLookup::Found(t) = svc.cloud.describe_table(&r.database, &r.table).await?
            && !t.partition_keys.is_empty()
        {
            keys.insert(
                (r.database.to_lowercase(), r.table.to_lowercase()),
                t.partition_keys
                    .iter()
                    .map(|k| k.name.to_lowercase())
                    .collect(),
            );
        }
    }
    let sensitive = evaluate(&svc.settings.policy, grant)
        .sensitive_columns
        .into_iter()
        .map(|c| (c.database, c.table, c.column))
        .collect();
    Ok((keys, sensitive))
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

    let flags = flags_to_set(svc, grant, &executions).await?;
    report.flagged += flags.iter().filter(|f| !f.added.is_empty()).count();

    // Record what was seen and judge the budget in one transaction.
    let judged = in_tx(svc, async |tx: &mut PgConnection| {
        let (new, updated) = upsert_all(&mut *tx, id, &executions, price, now).await?;
        for f in &flags {
            usage::set_flags(&mut *tx, id, &f.query_id, &f.flags).await?;
            if !f.added.is_empty() {
                record(
                    &mut *tx,
                    now,
                    Some(id),
                    None,
                    AuditAction::QueryFlagged,
                    json!({
                        "query_id": f.query_id,
                        "flags": f.added.iter().map(QueryFlag::as_str).collect::<Vec<_>>(),
                        "why": f.added.iter().map(QueryFlag::description).collect::<Vec<_>>(),
                    }),
                )
                .await?;
            }
        }
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
