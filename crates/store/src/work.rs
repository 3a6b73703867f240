//! Background work on requests: provisioning `approved` ones, expiring `active` ones and tearing
//! down `revoking` ones. Work is claimed under a lease with `for update skip locked`, so several
//! replicas never work on the same request at once, and a replica that dies mid-way only
//! delays the work until its lease runs out.

use lakegate_domain::lake_formation::LfGrant;
use lakegate_domain::request::Requester;
use lakegate_domain::{EndState, RequestId, RequestStatus, ResourceSpec};
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::StoreError;
use crate::requests::{parse_end_state, parse_status};

/// A claimed request with everything a worker needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub id: RequestId,
    pub status: RequestStatus,
    pub step: Option<String>,
    pub end_state: Option<EndState>,
    pub requester: Requester,
    pub resources: Vec<ResourceSpec>,
    pub duration: Duration,
    pub role_name: String,
    pub role_arn: String,
    pub workgroup: String,
    pub results_uri: String,
    pub lf_grants: Vec<LfGrant>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoke_started_at: Option<OffsetDateTime>,
    /// When the teardown denied the role's sessions (its first step), once it has.
    pub sessions_denied_at: Option<OffsetDateTime>,
    pub attempts: i32,
    /// The grant's per-query cutoff, fixed at approval (`None` for grants approved before the
    /// policy set one: the configured default applies).
    pub scan_cutoff_bytes: Option<i64>,
}

/// The two kinds of work, each claimed by a loop of its own so that neither waits for the
/// other's batch to finish (ADR 0021).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Grants whose sessions are still to be denied: active past their expiry, or revoking at
    /// the deny step.
    Deny,
    /// Everything else: provisioning, and the teardown after the deny.
    Rest,
}

/// The rows of `r` whose sessions are due to be denied now ($1) and that no live lease holds.
macro_rules! deny_due {
    ($r:literal) => {
        concat!(
            "(",
            $r,
            ".lease_until is null or ",
            $r,
            ".lease_until <= $1)
             and ((",
            $r,
            ".status = 'active' and ",
            $r,
            ".expires_at <= $1)
                  or (",
            $r,
            ".status = 'revoking' and coalesce(",
            $r,
            ".step, 'deny_sessions') = 'deny_sessions'
                      and (",
            $r,
            ".next_attempt_at is null or ",
            $r,
            ".next_attempt_at <= $1)))"
        )
    };
}

const CLAIM_DENY: &str = concat!(
    "with due as (
         select request_id from access_request a where ",
    deny_due!("a"),
    "
         order by coalesce(next_attempt_at, expires_at, updated_at)
         limit $4
         for update skip locked
     )
     update access_request r set lease_owner = $2, lease_until = $1 + $3
     from due where r.request_id = due.request_id
     returning r.request_id, r.status"
);

const CLAIM_REST: &str = concat!(
    "with due as (
         select request_id from access_request a
         where (a.lease_until is null or a.lease_until <= $1)
           and (a.status = 'approved'
                or (a.status = 'revoking' and coalesce(a.step, 'deny_sessions') <> 'deny_sessions'))
           and (a.next_attempt_at is null or a.next_attempt_at <= $1)
           -- Sessions first: no slower work is started while any grant's deny waits to be
           -- claimed (a deny already in hand holds nothing up).
           and not exists (select 1 from access_request d where ",
    deny_due!("d"),
    ")
         order by coalesce(next_attempt_at, updated_at)
         limit $4
         for update skip locked
     )
     update access_request r set lease_owner = $2, lease_until = $1 + $3
     from due where r.request_id = due.request_id
     returning r.request_id, r.status"
);

/// Claims up to `limit` requests of `lane` that need work now, skipping rows that another
/// worker holds or has scheduled for later. The rest lane claims nothing while any grant's
/// sessions are due to be denied and unclaimed: under a burst of expiries, every grant's
/// sessions are denied before any slower work starts.
pub async fn claim_due(
    conn: &mut PgConnection,
    lane: Lane,
    now: OffsetDateTime,
    owner: &str,
    lease: Duration,
    limit: i64,
) -> Result<Vec<(RequestId, RequestStatus)>, StoreError> {
    let sql = match lane {
        Lane::Deny => CLAIM_DENY,
        Lane::Rest => CLAIM_REST,
    };
    let rows: Vec<(Uuid, String)> = sqlx::query_as(sql)
        .bind(now)
        .bind(owner)
        .bind(lease)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|(id, status)| Ok((RequestId(id), parse_status(&status)?)))
        .collect()
}

/// When work of `lane` is next due, if any: the earliest expiry of an active grant, or the
/// earliest time a retry (or an abandoned lease) comes due.
pub async fn next_due_at(
    conn: &mut PgConnection,
    lane: Lane,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let sql = match lane {
        Lane::Deny => {
            "select min(due) from (
                 select greatest(expires_at, coalesce(lease_until, expires_at)) as due
                   from access_request where status = 'active'
                 union all
                 select greatest(coalesce(next_attempt_at, $1), coalesce(lease_until, $1))
                   from access_request
                  where status = 'revoking' and coalesce(step, 'deny_sessions') = 'deny_sessions'
             ) d"
        }
        Lane::Rest => {
            "select min(greatest(coalesce(next_attempt_at, $1), coalesce(lease_until, $1)))
               from access_request
              where status = 'approved'
                 or (status = 'revoking' and coalesce(step, 'deny_sessions') <> 'deny_sessions')"
        }
    };
    Ok(sqlx::query_scalar(sql).bind(now).fetch_one(conn).await?)
}

/// Loads a request for a worker. `None` if it does not exist or holds no grant plan.
pub async fn load(conn: &mut PgConnection, id: RequestId) -> Result<Option<WorkItem>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        status: String,
        step: Option<String>,
        end_state: Option<String>,
        requester_subject: String,
        requester_email: String,
        requester_name: Option<String>,
        duration_seconds: i32,
        role_name: Option<String>,
        role_arn: Option<String>,
        workgroup: Option<String>,
        results_uri: Option<String>,
        lf_grants: Option<serde_json::Value>,
        expires_at: Option<OffsetDateTime>,
        revoke_started_at: Option<OffsetDateTime>,
        sessions_denied_at: Option<OffsetDateTime>,
        attempts: i32,
        scan_cutoff_bytes: Option<i64>,
    }
    let Some(r) = sqlx::query_as::<_, Row>(
        "select status, step, end_state, requester_subject, requester_email, requester_name,
                duration_seconds, role_name, role_arn, workgroup, results_uri, lf_grants, expires_at,
                revoke_started_at, sessions_denied_at, attempts, scan_cutoff_bytes
         from access_request where request_id = $1",
    )
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let (Some(role_name), Some(role_arn), Some(workgroup), Some(results_uri), Some(grants)) = (
        r.role_name,
        r.role_arn,
        r.workgroup,
        r.results_uri,
        r.lf_grants,
    ) else {
        return Ok(None);
    };
    let lf_grants: Vec<LfGrant> = serde_json::from_value(grants)
        .map_err(|e| StoreError::Corrupt(format!("stored grants of {id}: {e}")))?;
    let resources: Vec<(String, String, Option<Vec<String>>)> = sqlx::query_as(
        "select database_name, table_name, columns from request_resource
         where request_id = $1 order by position",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(WorkItem {
        id,
        status: parse_status(&r.status)?,
        step: r.step,
        end_state: parse_end_state(r.end_state.as_deref())?,
        requester: Requester {
            subject: r.requester_subject,
            email: r.requester_email,
            name: r.requester_name,
        },
        resources: resources
            .into_iter()
            .map(|(database, table, columns)| ResourceSpec {
                database,
                table,
                columns,
            })
            .collect(),
        duration: Duration::seconds(i64::from(r.duration_seconds)),
        role_name,
        role_arn,
        workgroup,
        results_uri,
        lf_grants,
        expires_at: r.expires_at,
        revoke_started_at: r.revoke_started_at,
        sessions_denied_at: r.sessions_denied_at,
        attempts: r.attempts,
        scan_cutoff_bytes: r.scan_cutoff_bytes,
    }))
}

/// Records the step about to be taken (and extends the lease), if the request is still in
/// `status` and still leased to `owner`. `Ok(false)`: it moved on (revoked meanwhile) or another
/// worker took it over; this worker must stop.
pub async fn set_step(
    conn: &mut PgConnection,
    id: RequestId,
    status: RequestStatus,
    step: &str,
    owner: &str,
    lease_until: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set step = $3, lease_until = $5
         where request_id = $1 and status = $2 and lease_owner = $4",
    )
    .bind(id.0)
    .bind(status.as_str())
    .bind(step)
    .bind(owner)
    .bind(lease_until)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The deny step is done: records when (the first time only) and the step that comes next, and
/// lets go of the lease (the rest of the teardown is claimed in the rest lane), if the request
/// is still revoking and `owner`'s.
pub async fn sessions_denied(
    conn: &mut PgConnection,
    id: RequestId,
    next_step: &str,
    owner: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request
         set step = $2, sessions_denied_at = coalesce(sessions_denied_at, $4),
             lease_owner = null, lease_until = null
         where request_id = $1 and status = 'revoking' and lease_owner = $3",
    )
    .bind(id.0)
    .bind(next_step)
    .bind(owner)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A step failed: remember why, and when to try again, and let go of the lease. Returns the
/// number of attempts so far, or `None` when the request moved on or is no longer `owner`'s.
pub async fn record_failure(
    conn: &mut PgConnection,
    id: RequestId,
    status: RequestStatus,
    owner: &str,
    error: &str,
    next_attempt_at: OffsetDateTime,
) -> Result<Option<i32>, StoreError> {
    Ok(sqlx::query_scalar(
        "update access_request set attempts = attempts + 1, last_error = $4, next_attempt_at = $5,
             lease_owner = null, lease_until = null
         where request_id = $1 and status = $2 and lease_owner = $3
         returning attempts",
    )
    .bind(id.0)
    .bind(status.as_str())
    .bind(owner)
    .bind(error)
    .bind(next_attempt_at)
    .fetch_optional(conn)
    .await?)
}

/// Extends `owner`'s leases on `ids` to `until` (those it still holds): the heartbeat of a
/// worker busy with them.
pub async fn renew(
    conn: &mut PgConnection,
    ids: &[RequestId],
    owner: &str,
    until: OffsetDateTime,
) -> Result<u64, StoreError> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    Ok(sqlx::query(
        "update access_request set lease_until = $3
         where request_id = any($1) and lease_owner = $2",
    )
    .bind(&ids)
    .bind(owner)
    .bind(until)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Lets go of `owner`'s lease so that any worker may pick the request up at once.
pub async fn release(
    conn: &mut PgConnection,
    id: RequestId,
    owner: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "update access_request set lease_owner = null, lease_until = null
         where request_id = $1 and lease_owner = $2",
    )
    .bind(id.0)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(())
}
