//! The query monitor: for every active grant, the queries of its workgroup are recorded (each
//! once, updated as it progresses) with what Athena will bill for them, and the grant's scan
//! budget is enforced: a warning at 80 %, the workgroup's per-query cutoff lowered to what is
//! left, and the grant revoked ("budget exhausted") once less than Athena's smallest cutoff
//! remains (docs/aws.md §14). Finished queries are flagged (`lakegate_domain::usage` has the
//! rules), each new flag an audit event.
//!
//! No grant holder can make a look long (ADR 0014): it runs on a task of its own, never in
//! front of the reaper; each look asks Athena only about queries it has not seen finish, takes
//! in at most [`NEW_PER_LOOK`] new ones (oldest first, the rest next time), keeps at most
//! [`KEPT_SQL_BYTES`] of each one's SQL, parses on blocking threads, and revokes a grant whose
//! holder submits more than the configured number of queries a minute ("query flood"). One
//! replica at a time looks at a given grant.

use std::collections::{HashMap, HashSet};

use lakegate_domain::audit::AuditAction;
use lakegate_domain::naming::GrantResources;
use lakegate_domain::ports::{QueryExecution, TableLookup};
use lakegate_domain::sql_guard::{GuardContext, check};
use lakegate_domain::steps::RevokeStep;
use lakegate_domain::usage::{
    BudgetInput, PartitionKeys, Price, QueryFacts, QueryFlag, QueryFlagKind, QueryState,
    assess_budget, billed_bytes, estimate_cost, find_bursts, flags_for_query,
};
use lakegate_domain::{AccessRequest, EndState, RequestId, RequestStatus};
use lakegate_store::requests;
use lakegate_store::usage::{self, KeptSql, Seen};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::requests::evaluate;
use crate::{AppError, Services, in_tx, record};

/// The reason a grant ends when its budget is spent.
pub const BUDGET_EXHAUSTED: &str = "budget exhausted";
/// The reason a grant ends when its holder submits queries faster than the limit.
pub const QUERY_FLOOD: &str = "query flood";

/// Most queries not seen before that one look at a grant takes in; the rest wait for the
/// next look, oldest first.
pub const NEW_PER_LOOK: usize = 500;
/// Queries described and recorded together: what Athena describes in one call.
const CHUNK: usize = 50;
/// Most of a query's SQL that is kept (its whole length and SHA-256 are kept beside it).
pub const KEPT_SQL_BYTES: usize = 16 * 1024;

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
    /// Grants revoked for a query flood.
    pub flooded: Vec<RequestId>,
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

/// Runs until cancelled: a look at every active grant, then `interval`'s wait. On a task of
/// its own: however long a look takes, the reaper and revokes do not wait for it.
pub async fn run(svc: Services, shutdown: CancellationToken) {
    let every = std::time::Duration::try_from(svc.settings.monitor.interval)
        .unwrap_or(std::time::Duration::from_secs(30));
    tracing::info!(every = ?every, "query monitor started");
    loop {
        let look = tokio::select! {
            () = shutdown.cancelled() => break,
            r = monitor_once(&svc) => r,
        };
        match look {
            Ok(report) if report != MonitorReport::default() => {
                tracing::debug!(?report, "query monitor pass");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "query monitor pass failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    tracing::info!("query monitor stopped");
}

/// What the store knows of a grant's queries (state and flags), and which to ask Athena
/// about in this look: every one not yet final, and up to [`NEW_PER_LOOK`] new ones.
async fn to_look_at(
    svc: &Services,
    id: RequestId,
    workgroup: &str,
) -> Result<(HashMap<String, (QueryState, Vec<QueryFlag>)>, Vec<String>), AppError> {
    let known = {
        let mut conn = svc.db.acquire().await?;
        usage::known(&mut conn, id).await?
    };
    let seen: HashSet<String> = known.keys().cloned().collect();
    let mut new = svc.cloud.new_query_ids(workgroup, &seen).await?;
    // Athena lists newest first; take the oldest in, so none is passed over for good.
    new.reverse();
    if new.len() > NEW_PER_LOOK {
        tracing::info!(request_id = %id, waiting = new.len() - NEW_PER_LOOK,
            "more new queries than one look takes in; the rest come next time");
        new.truncate(NEW_PER_LOOK);
    }
    let mut ids: Vec<String> = known
        .iter()
        .filter(|(_, (state, _))| !state.is_final())
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort_unstable();
    ids.extend(new);
    Ok((known, ids))
}

/// The first [`KEPT_SQL_BYTES`] of `sql` (cut at a character boundary), its whole length and
/// its SHA-256.
fn keep_sql(sql: &str) -> (&str, i64, String) {
    let mut cut = sql.len().min(KEPT_SQL_BYTES);
    while !sql.is_char_boundary(cut) {
        cut -= 1;
    }
    let sha = Sha256::digest(sql.as_bytes());
    let hex = sha.iter().map(|b| format!("{b:02x}")).collect();
    (
        &sql[..cut],
        i64::try_from(sql.len()).unwrap_or(i64::MAX),
        hex,
    )
}

/// Stores each of `executions`: new ones with their kept SQL, known ones as they moved (their
/// SQL is not sent again). Returns how many were new and how many moved.
async fn record_chunk(
    tx: &mut PgConnection,
    id: RequestId,
    executions: &[QueryExecution],
    known: &HashMap<String, (QueryState, Vec<QueryFlag>)>,
    price: Price,
    now: OffsetDateTime,
) -> Result<(usize, usize), AppError> {
    let (mut new, mut updated) = (0, 0);
    for q in executions {
        let billed = billed_bytes(q.state, q.bytes_scanned);
        let cost = estimate_cost(q.state, q.bytes_scanned, price).0;
        let seen = if known.contains_key(&q.id) {
            usage::update(&mut *tx, id, q, billed, cost, now).await?
        } else {
            let (text, bytes, sha256) = keep_sql(&q.sql);
            let kept = KeptSql {
                text,
                bytes,
                sha256: &sha256,
            };
            usage::insert(&mut *tx, id, q, kept, billed, cost, now).await?
        };
        match seen {
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
    let (known, ids) = to_look_at(svc, id, workgroup).await?;
    let price = svc.settings.monitor.price;
    for chunk in ids.chunks(CHUNK) {
        let executions = svc.cloud.describe_queries(chunk).await?;
        let now = svc.clock.now();
        in_tx(svc, async |tx: &mut PgConnection| {
            record_chunk(tx, id, &executions, &known, price, now)
                .await
                .map(drop)
        })
        .await?;
    }
    Ok(())
}

/// A query whose flags change.
struct FlagChange {
    query_id: String,
    flags: Vec<QueryFlag>,
    /// Those it did not have before: they go into the audit trail.
    added: Vec<QueryFlag>,
}

/// The flags of the queries in `executions` that have just finished: their own flags (cutoff
/// cancellation, large scan, a partitioned table read without its keys, sensitive columns,
/// unreadable SQL), worked out once, on a blocking thread; a burst flag they had is kept.
/// Glue is asked for partition keys only when some query has just finished.
async fn finished_flags(
    svc: &Services,
    grant: &AccessRequest,
    executions: Vec<QueryExecution>,
    known: &HashMap<String, (QueryState, Vec<QueryFlag>)>,
    context: &mut Option<FlagContext>,
) -> Result<Vec<FlagChange>, AppError> {
    let finished: Vec<(QueryExecution, Vec<QueryFlag>)> = executions
        .into_iter()
        .filter(|q| q.state.is_final())
        .filter_map(|q| match known.get(&q.id) {
            Some((state, _)) if state.is_final() => None,
            Some((_, flags)) => {
                let flags = flags.clone();
                Some((q, flags))
            }
            None => Some((q, Vec::new())),
        })
        .collect();
    if finished.is_empty() {
        return Ok(Vec::new());
    }
    let FlagContext {
        keys, sensitive, ..
    } = match context {
        Some(context) => context.clone(),
        None => context.insert(flag_context(svc, grant).await?).clone(),
    };
    let rules = svc.settings.monitor.flags;
    let resources = grant.resources.clone();
    let catalog = grant.catalog_columns.clone();
    tokio::task::spawn_blocking(move || {
        finished
            .into_iter()
            .filter_map(|(q, before)| {
                let reading = check(
                    &q.sql,
                    &GuardContext {
                        grant: &resources,
                        catalog: &catalog,
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
                let mut flags = flags_for_query(&facts, &rules, &keys, &sensitive);
                flags.extend(
                    before
                        .iter()
                        .filter(|f| f.kind() == QueryFlagKind::Burst)
                        .cloned(),
                );
                let added: Vec<QueryFlag> = flags
                    .iter()
                    .filter(|f| !before.iter().any(|b| b.kind() == f.kind()))
                    .cloned()
                    .collect();
                (flags != before).then_some(FlagChange {
                    query_id: q.id,
                    flags,
                    added,
                })
            })
            .collect()
    })
    .await
    .map_err(|e| AppError::Unavailable(format!("flagging queries: {e}")))
}

/// The queries of the grant that a window of the burst rule now holds, and did not hold
/// before: they gain the burst flag (once part of a burst, always).
async fn burst_flags(svc: &Services, id: RequestId) -> Result<Vec<FlagChange>, AppError> {
    let rule = svc.settings.monitor.flags.burst;
    let submissions = {
        let mut conn = svc.db.acquire().await?;
        usage::submissions(&mut conn, id).await?
    };
    let times: Vec<OffsetDateTime> = submissions.iter().map(|(_, at, _)| *at).collect();
    Ok(find_bursts(&times, &rule)
        .into_iter()
        .filter_map(|hit| {
            let (query_id, _, before) = submissions.get(hit.index)?;
            if before.iter().any(|f| f.kind() == QueryFlagKind::Burst) {
                return None;
            }
            let burst = hit.flag(&rule);
            let mut flags = before.clone();
            flags.push(burst.clone());
            Some(FlagChange {
                query_id: query_id.clone(),
                flags,
                added: vec![burst],
            })
        })
        .collect())
}

/// Stores flag changes, each new flag an audit event.
async fn store_flags(
    tx: &mut PgConnection,
    id: RequestId,
    changes: &[FlagChange],
    now: OffsetDateTime,
) -> Result<(), AppError> {
    for f in changes {
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
    Ok(())
}

/// What flagging a grant's queries needs to know, asked for once a look.
#[derive(Debug, Clone)]
struct FlagContext {
    /// The partition keys of the grant's tables (from Glue).
    keys: PartitionKeys,
    /// Its sensitive columns (from the policy).
    sensitive: Vec<(String, String, String)>,
    /// `table: [columns]` the grant's all-columns tables have gained since they were requested:
    /// the grant does not cover them (its columns are an explicit list).
    gained: serde_json::Map<String, serde_json::Value>,
}

/// The [`FlagContext`] of a grant: asked for once a look, when some query has just finished.
async fn flag_context(svc: &Services, grant: &AccessRequest) -> Result<FlagContext, AppError> {
    let mut keys = PartitionKeys::new();
    let mut gained = serde_json::Map::new();
    for (i, r) in grant.resources.iter().enumerate() {
        let TableLookup::Found(t) = svc.cloud.describe_table(&r.database, &r.table).await? else {
            continue;
        };
        if !t.partition_keys.is_empty() {
            keys.insert(
                (r.database.to_lowercase(), r.table.to_lowercase()),
                t.partition_keys
                    .iter()
                    .map(|k| k.name.to_lowercase())
                    .collect(),
            );
        }
        if r.columns.is_none()
            && let Some(requested) = grant.catalog_columns.get(i).filter(|c| !c.is_empty())
        {
            let new: Vec<&str> = t
                .column_names()
                .filter(|c| !requested.iter().any(|r| r == c))
                .collect();
            if !new.is_empty() {
                gained.insert(r.qualified_table(), json!(new));
            }
        }
    }
    let sensitive = evaluate(&svc.settings.policy, grant)
        .sensitive_columns
        .into_iter()
        .map(|c| (c.database, c.table, c.column))
        .collect();
    Ok(FlagContext {
        keys,
        sensitive,
        gained,
    })
}

/// Records that the grant's tables have gained columns it does not cover
/// (`grant.columns_changed`), unless the last such event already said the same.
async fn note_gained_columns(
    tx: &mut PgConnection,
    id: RequestId,
    gained: &serde_json::Map<String, serde_json::Value>,
    now: OffsetDateTime,
) -> Result<(), AppError> {
    let last = lakegate_store::audit::latest_detail(&mut *tx, id, AuditAction::GrantColumnsChanged)
        .await?;
    if last
        .as_ref()
        .and_then(|d| d.get("not_granted"))
        .and_then(|v| v.as_object())
        == Some(gained)
    {
        return Ok(());
    }
    record(
        &mut *tx,
        now,
        Some(id),
        None,
        AuditAction::GrantColumnsChanged,
        json!({ "not_granted": gained, "when": "active" }),
    )
    .await
}

/// Ends an active grant as a revoke with `reason` (the budget, a flood), stopping what runs
/// first: every second counts here. `detail` goes into the audit event.
async fn revoke_for(
    svc: &Services,
    id: RequestId,
    workgroup: &str,
    reason: &'static str,
    mut detail: serde_json::Value,
    now: OffsetDateTime,
) -> Result<bool, AppError> {
    if let Err(e) = svc.cloud.stop_running_queries(workgroup).await {
        tracing::warn!(request_id = %id, error = %e, "could not stop the grant's queries; teardown tries again");
    }
    let revoked = in_tx(svc, async |tx: &mut PgConnection| {
        // Guarded: a grant revoked or expired meanwhile is left as it is.
        let started = requests::begin_revoke(
            &mut *tx,
            id,
            RequestStatus::Active,
            EndState::Revoked,
            reason,
            RevokeStep::first().as_str(),
            now,
        )
        .await?;
        if started {
            detail["end_state"] = json!("revoked");
            detail["reason"] = json!(reason);
            detail["from"] = json!("active");
            record(
                &mut *tx,
                now,
                Some(id),
                None,
                AuditAction::RevokeRequested,
                detail,
            )
            .await?;
        }
        Ok(started)
    })
    .await?;
    if revoked {
        svc.forget_grant(id);
        svc.wake.notify_one();
        tracing::warn!(request_id = %id, %reason, "revoking the grant");
    }
    Ok(revoked)
}

/// One look at one grant, while this replica holds it (another replica looking at it
/// already: nothing to do).
async fn watch(
    svc: &Services,
    grant: &AccessRequest,
    report: &mut MonitorReport,
) -> Result<(), AppError> {
    let id = grant.id;
    let mut hold = svc.db.begin().await?;
    if !usage::try_hold_for_monitor(&mut hold, id).await? {
        return Ok(());
    }
    let workgroup =
        GrantResources::derive(id, svc.cloud.identity(), &svc.settings.results).workgroup;
    let price = svc.settings.monitor.price;
    let (known, ids) = to_look_at(svc, id, &workgroup).await?;
    let mut context = None;
    for chunk in ids.chunks(CHUNK) {
        let executions = svc.cloud.describe_queries(chunk).await?;
        let now = svc.clock.now();
        let (new, updated) = in_tx(svc, async |tx: &mut PgConnection| {
            record_chunk(tx, id, &executions, &known, price, now).await
        })
        .await?;
        report.new_queries += new;
        report.updated_queries += updated;
        let flags = finished_flags(svc, grant, executions, &known, &mut context).await?;
        report.flagged += flags.iter().filter(|f| !f.added.is_empty()).count();
        in_tx(svc, async |tx: &mut PgConnection| {
            store_flags(tx, id, &flags, now).await
        })
        .await?;
        if flooded(svc, id, &workgroup, now).await? {
            report.flooded.push(id);
            return Ok(());
        }
    }
    let now = svc.clock.now();
    let bursts = burst_flags(svc, id).await?;
    report.flagged += bursts.len();
    let gained = context.map(|c| c.gained).unwrap_or_default();
    in_tx(svc, async |tx: &mut PgConnection| {
        store_flags(tx, id, &bursts, now).await?;
        if gained.is_empty() {
            Ok(())
        } else {
            note_gained_columns(tx, id, &gained, now).await
        }
    })
    .await?;
    judge_budget(svc, grant, &workgroup, report, now).await?;
    hold.commit().await?;
    Ok(())
}

/// Revokes the grant if more queries than the flood limit were submitted within a minute.
async fn flooded(
    svc: &Services,
    id: RequestId,
    workgroup: &str,
    now: OffsetDateTime,
) -> Result<bool, AppError> {
    let limit = svc.settings.monitor.flood_per_minute;
    if limit == 0 {
        return Ok(false);
    }
    let count = {
        let mut conn = svc.db.acquire().await?;
        usage::submitted_in_last(&mut conn, id, time::Duration::minutes(1)).await?
    };
    if count <= i64::from(limit) {
        return Ok(false);
    }
    let detail = json!({ "queries_in_a_minute": count, "limit_per_minute": limit });
    revoke_for(svc, id, workgroup, QUERY_FLOOD, detail, now).await
}

/// Judges the grant's scan budget on what is recorded: a warning at 80 %, the cutoff lowered,
/// the grant revoked once it is spent.
async fn judge_budget(
    svc: &Services,
    grant: &AccessRequest,
    workgroup: &str,
    report: &mut MonitorReport,
    now: OffsetDateTime,
) -> Result<(), AppError> {
    let id = grant.id;
    let judged = in_tx(svc, async |tx: &mut PgConnection| {
        let Some(budget) = grant.scan_budget_bytes else {
            return Ok(None);
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
        Ok(Some((verdict, detail, warned)))
    })
    .await?;
    let Some((verdict, detail, warned)) = judged else {
        return Ok(());
    };
    if warned {
        report.warned.push(id);
    }

    if verdict.exhausted {
        if revoke_for(svc, id, workgroup, BUDGET_EXHAUSTED, detail, now).await? {
            report.exhausted.push(id);
        }
        return Ok(());
    }
    if let Some(lower) = verdict.new_cutoff {
        svc.cloud.set_workgroup_cutoff(workgroup, lower).await?;
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
