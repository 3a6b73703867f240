//! Access requests: insert, read, and guarded state transitions. Every transition is an
//! `update … where status = <expected>`; `Ok(false)` means the request was not in that state
//! (someone else got there first) and nothing was written.

use lakegate_domain::lake_formation::LfGrant;
use lakegate_domain::request::{Requester, Review};
use lakegate_domain::{AccessRequest, EndState, RequestId, RequestStatus, ResourceSpec};
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::audit::Actor;
use crate::error::StoreError;

pub struct NewRequest<'a> {
    pub id: RequestId,
    pub requester: &'a Requester,
    pub requester_groups: &'a [String],
    pub resources: &'a [ResourceSpec],
    /// Aligned with `resources`: each table's columns in the catalog.
    pub catalog_columns: &'a [Vec<String>],
    /// Whose members may decide it, from the policy: what the approvers' queues select on.
    pub approver_groups: &'a [String],
    pub break_glass: bool,
    /// An AI agent asked on the requester's behalf, with this personal token (by name).
    pub agent: Option<&'a str>,
    pub duration: Duration,
    pub reason: &'a str,
    pub at: OffsetDateTime,
}

/// What lakegate will create in AWS for an approved request, recorded before any of it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPlan {
    pub role_name: String,
    pub role_arn: String,
    pub workgroup: String,
    pub results_uri: String,
    pub lf_grants: Vec<LfGrant>,
    pub first_step: &'static str,
    /// From the policy's rules for this request.
    pub scan_cutoff_bytes: i64,
    pub scan_budget_bytes: Option<i64>,
}

pub use lakegate_domain::request::{Decision, DecisionRecord};

/// What the credentials URL needs to decide, in one indexed read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsView {
    pub status: RequestStatus,
    pub expires_at: Option<OffsetDateTime>,
    pub token_hash: Option<Vec<u8>>,
    pub token_issued_at: Option<OffsetDateTime>,
    pub role_arn: Option<String>,
    pub requester: Requester,
}

const REQUEST_COLUMNS: &str =
    "request_id, requester_subject, requester_email, requester_name, reason,
    duration_seconds, status, end_state, end_reason, created_at, decided_at, activated_at,
    expires_at, ended_at, last_error, credentials_token_hash is not null as has_token,
    requester_groups, break_glass, auto_approved, reviewed_at, reviewed_by_email, review_comment,
    scan_cutoff_bytes, scan_budget_bytes, extended_seconds, approver_groups, agent_token_name";

#[derive(sqlx::FromRow)]
struct RequestRow {
    request_id: Uuid,
    requester_subject: String,
    requester_email: String,
    requester_name: Option<String>,
    reason: String,
    duration_seconds: i32,
    status: String,
    end_state: Option<String>,
    end_reason: Option<String>,
    created_at: OffsetDateTime,
    decided_at: Option<OffsetDateTime>,
    activated_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    ended_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    has_token: bool,
    requester_groups: Vec<String>,
    break_glass: bool,
    auto_approved: bool,
    reviewed_at: Option<OffsetDateTime>,
    reviewed_by_email: Option<String>,
    review_comment: Option<String>,
    scan_cutoff_bytes: Option<i64>,
    scan_budget_bytes: Option<i64>,
    extended_seconds: i32,
    approver_groups: Vec<String>,
    agent_token_name: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ResourceRow {
    request_id: Uuid,
    database_name: String,
    table_name: String,
    columns: Option<Vec<String>>,
    catalog_columns: Option<Vec<String>>,
}

pub(crate) fn parse_status(s: &str) -> Result<RequestStatus, StoreError> {
    RequestStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown status {s}")))
}

pub(crate) fn parse_end_state(s: Option<&str>) -> Result<Option<EndState>, StoreError> {
    s.map(|s| {
        EndState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown end state {s}")))
    })
    .transpose()
}

impl RequestRow {
    fn into_domain(
        self,
        resources: Vec<ResourceSpec>,
        catalog_columns: Vec<Vec<String>>,
    ) -> Result<AccessRequest, StoreError> {
        let review = match (self.reviewed_at, self.reviewed_by_email) {
            (Some(at), Some(by_email)) => Some(Review {
                by_email,
                comment: self.review_comment,
                at,
            }),
            _ => None,
        };
        Ok(AccessRequest {
            id: RequestId(self.request_id),
            requester: Requester {
                subject: self.requester_subject,
                email: self.requester_email,
                name: self.requester_name,
            },
            resources,
            duration: Duration::seconds(i64::from(self.duration_seconds)),
            reason: self.reason,
            status: parse_status(&self.status)?,
            end_state: parse_end_state(self.end_state.as_deref())?,
            end_reason: self.end_reason,
            created_at: self.created_at,
            decided_at: self.decided_at,
            activated_at: self.activated_at,
            expires_at: self.expires_at,
            ended_at: self.ended_at,
            last_error: self.last_error,
            has_credentials_token: self.has_token,
            requester_groups: self.requester_groups,
            catalog_columns,
            break_glass: self.break_glass,
            review,
            auto_approved: self.auto_approved,
            scan_cutoff_bytes: self.scan_cutoff_bytes,
            scan_budget_bytes: self.scan_budget_bytes,
            extended: Duration::seconds(i64::from(self.extended_seconds)),
            approver_groups: self.approver_groups,
            agent: self.agent_token_name,
        })
    }
}

pub async fn insert(conn: &mut PgConnection, r: NewRequest<'_>) -> Result<(), StoreError> {
    let seconds = i32::try_from(r.duration.whole_seconds())
        .map_err(|_| StoreError::Corrupt("duration out of range".into()))?;
    sqlx::query(
        "insert into access_request
            (request_id, requester_subject, requester_email, requester_name, reason, duration_seconds,
             status, created_at, requester_groups, break_glass, approver_groups, agent_token_name)
         values ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11)",
    )
    .bind(r.id.0)
    .bind(&r.requester.subject)
    .bind(&r.requester.email)
    .bind(&r.requester.name)
    .bind(r.reason)
    .bind(seconds)
    .bind(r.at)
    .bind(r.requester_groups)
    .bind(r.break_glass)
    .bind(r.approver_groups)
    .bind(r.agent)
    .execute(&mut *conn)
    .await?;
    for (position, res) in r.resources.iter().enumerate() {
        let position = i16::try_from(position)
            .map_err(|_| StoreError::Corrupt("too many resources".into()))?;
        sqlx::query(
            "insert into request_resource
                 (request_id, position, database_name, table_name, columns, catalog_columns)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.id.0)
        .bind(position)
        .bind(&res.database)
        .bind(&res.table)
        .bind(&res.columns)
        .bind(r.catalog_columns.get(usize::from(position.unsigned_abs())))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn resources_for(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<ResourceRow>, StoreError> {
    Ok(sqlx::query_as::<_, ResourceRow>(
        "select request_id, database_name, table_name, columns, catalog_columns from request_resource
         where request_id = any($1) order by request_id, position",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

async fn hydrate(
    conn: &mut PgConnection,
    rows: Vec<RequestRow>,
) -> Result<Vec<AccessRequest>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.request_id).collect();
    let mut resources = resources_for(conn, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let (mine, catalog): (Vec<ResourceSpec>, Vec<Vec<String>>) = resources
                .extract_if(.., |r| r.request_id == row.request_id)
                .map(|r| {
                    (
                        ResourceSpec {
                            database: r.database_name,
                            table: r.table_name,
                            columns: r.columns,
                        },
                        r.catalog_columns.unwrap_or_default(),
                    )
                })
                .unzip();
            row.into_domain(mine, catalog)
        })
        .collect()
}

pub async fn find(
    conn: &mut PgConnection,
    id: RequestId,
) -> Result<Option<AccessRequest>, StoreError> {
    find_with(conn, id, "").await
}

/// Reads a request and locks its row until the transaction ends: deciders of the same request
/// queue behind each other, so two approvals that together fill the policy both see the other.
pub async fn find_for_update(
    conn: &mut PgConnection,
    id: RequestId,
) -> Result<Option<AccessRequest>, StoreError> {
    find_with(conn, id, "for update").await
}

async fn find_with(
    conn: &mut PgConnection,
    id: RequestId,
    locking: &str,
) -> Result<Option<AccessRequest>, StoreError> {
    let row = sqlx::query_as::<_, RequestRow>(&format!(
        "select {REQUEST_COLUMNS} from access_request where request_id = $1 {locking}"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(hydrate(conn, vec![row]).await?.pop()),
    }
}

pub async fn get(conn: &mut PgConnection, id: RequestId) -> Result<AccessRequest, StoreError> {
    find(conn, id).await?.ok_or(StoreError::NotFound)
}

/// A person's own requests, newest first.
pub async fn list_by_requester(
    conn: &mut PgConnection,
    subject: &str,
    limit: i64,
) -> Result<Vec<AccessRequest>, StoreError> {
    let rows = sqlx::query_as::<_, RequestRow>(&format!(
        "select {REQUEST_COLUMNS} from access_request where requester_subject = $1
         order by created_at desc, request_id limit $2"
    ))
    .bind(subject)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    hydrate(conn, rows).await
}

/// Requests in any of these states, oldest first (a queue reads top-down).
pub async fn list_by_status(
    conn: &mut PgConnection,
    statuses: &[RequestStatus],
    limit: i64,
) -> Result<Vec<AccessRequest>, StoreError> {
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let rows = sqlx::query_as::<_, RequestRow>(&format!(
        "select {REQUEST_COLUMNS} from access_request where status = any($1)
         order by created_at, request_id limit $2"
    ))
    .bind(&names)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    hydrate(conn, rows).await
}

/// Requests in any of these states that members of `groups` may decide, but not those of
/// `requester` (nobody decides their own), oldest first: an approver's queue, selected in SQL
/// so that requests nobody in `groups` can decide never crowd it out.
pub async fn list_for_approver(
    conn: &mut PgConnection,
    statuses: &[RequestStatus],
    groups: &[String],
    requester: &str,
    limit: i64,
) -> Result<Vec<AccessRequest>, StoreError> {
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let rows = sqlx::query_as::<_, RequestRow>(&format!(
        "select {REQUEST_COLUMNS} from access_request
         where status = any($1) and approver_groups && $2 and requester_subject <> $3
         order by created_at, request_id limit $4"
    ))
    .bind(&names)
    .bind(groups)
    .bind(requester)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    hydrate(conn, rows).await
}

/// How many pending requests `requester` has, counted under a lock on that person that lasts
/// until the transaction ends: two submissions at once cannot both pass a cap.
pub async fn count_pending_locked(
    conn: &mut PgConnection,
    requester: &str,
) -> Result<i64, StoreError> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('lakegate.pending:' || $1, 0))")
        .bind(requester)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar(
        "select count(*) from access_request where requester_subject = $1 and status = 'pending'",
    )
    .bind(requester)
    .fetch_one(conn)
    .await?)
}

/// Requests whose approver groups still matter (undecided, live, or a break-glass grant not yet
/// reviewed), `limit` at a time after `after` in id order, for bringing their approver groups up to date with
/// the policy in force.
pub async fn list_open_after(
    conn: &mut PgConnection,
    after: Option<RequestId>,
    limit: i64,
) -> Result<Vec<AccessRequest>, StoreError> {
    let rows = sqlx::query_as::<_, RequestRow>(&format!(
        "select {REQUEST_COLUMNS} from access_request
         where (status in ('pending', 'approved', 'active', 'revoking')
                or (break_glass and reviewed_at is null))
           and request_id > $1
         order by request_id limit $2"
    ))
    .bind(after.map_or(Uuid::nil(), |a| a.0))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    hydrate(conn, rows).await
}

pub async fn set_approver_groups(
    conn: &mut PgConnection,
    id: RequestId,
    groups: &[String],
) -> Result<(), StoreError> {
    sqlx::query("update access_request set approver_groups = $2 where request_id = $1")
        .bind(id.0)
        .bind(groups)
        .execute(conn)
        .await?;
    Ok(())
}

/// pending → lapsed, for every request submitted before `submitted_before`, `limit` at a time;
/// returns the ids. Rows another transaction holds are left for the next pass.
pub async fn lapse_pending(
    conn: &mut PgConnection,
    submitted_before: OffsetDateTime,
    at: OffsetDateTime,
    limit: i64,
) -> Result<Vec<RequestId>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "update access_request set status = 'lapsed', ended_at = $2
         where request_id in (
             select request_id from access_request
             where status = 'pending' and created_at <= $1
             order by created_at limit $3 for update skip locked)
         returning request_id",
    )
    .bind(submitted_before)
    .bind(at)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(RequestId).collect())
}

/// Active grants that end after `now` and by `by` and have not been told about this expiry
/// yet, `limit` at a time: marked as told, returned with their expiry. An extension moves the
/// expiry, so the grant is told again about the new one.
pub async fn mark_expiry_notices(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    by: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(RequestId, OffsetDateTime)>, StoreError> {
    let rows: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(
        "update access_request set expiry_notice_for = expires_at
         where request_id in (
             select request_id from access_request
             where status = 'active' and expires_at > $1 and expires_at <= $2
               and expiry_notice_for is distinct from expires_at
             order by expires_at limit $3 for update skip locked)
         returning request_id, expires_at",
    )
    .bind(now)
    .bind(by)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, at)| (RequestId(id), at))
        .collect())
}

/// pending → approved, recording what will be created in AWS (write-ahead for provisioning).
/// `auto`: by the policy's auto-approval, without anyone.
pub async fn approve(
    conn: &mut PgConnection,
    id: RequestId,
    at: OffsetDateTime,
    plan: &GrantPlan,
    auto: bool,
) -> Result<bool, StoreError> {
    let grants = serde_json::to_value(&plan.lf_grants)
        .map_err(|e| StoreError::Corrupt(format!("grant plan: {e}")))?;
    let done = sqlx::query(
        "update access_request set status = 'approved', decided_at = $2, role_name = $3, role_arn = $4,
             workgroup = $5, results_uri = $6, lf_grants = $7, step = $8, attempts = 0,
             next_attempt_at = null, lease_owner = null, lease_until = null, scan_cutoff_bytes = $9,
             scan_budget_bytes = $10, auto_approved = $11
         where request_id = $1 and status = 'pending'",
    )
    .bind(id.0)
    .bind(at)
    .bind(&plan.role_name)
    .bind(&plan.role_arn)
    .bind(&plan.workgroup)
    .bind(&plan.results_uri)
    .bind(grants)
    .bind(plan.first_step)
    .bind(plan.scan_cutoff_bytes)
    .bind(plan.scan_budget_bytes)
    .bind(auto)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// pending → denied.
pub async fn deny(
    conn: &mut PgConnection,
    id: RequestId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set status = 'denied', decided_at = $2, ended_at = $2
         where request_id = $1 and status = 'pending'",
    )
    .bind(id.0)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// pending → cancelled.
pub async fn cancel(
    conn: &mut PgConnection,
    id: RequestId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set status = 'cancelled', ended_at = $2
         where request_id = $1 and status = 'pending'",
    )
    .bind(id.0)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What one decision says, about the request or (with `extension`) about one of its extensions.
pub struct NewDecision<'a> {
    pub request: RequestId,
    pub extension: Option<i64>,
    pub actor: &'a Actor,
    pub groups: &'a [String],
    pub decision: Decision,
    pub comment: Option<&'a str>,
    pub at: OffsetDateTime,
}

/// Each person decides a request (and each extension) once: a second decision is refused by the
/// database (`StoreError::Conflict`-free: the caller checks first, under the request's lock).
pub async fn record_decision(
    conn: &mut PgConnection,
    d: NewDecision<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into request_decision
             (request_id, extension_id, decision, actor_subject, actor_email, actor_groups, comment, decided_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(d.request.0)
    .bind(d.extension)
    .bind(d.decision.as_str())
    .bind(&d.actor.subject)
    .bind(&d.actor.email)
    .bind(d.groups)
    .bind(d.comment)
    .bind(d.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Decisions on the request itself (`extension` `None`) or on one of its extensions, oldest first.
pub async fn list_decisions(
    conn: &mut PgConnection,
    id: RequestId,
    extension: Option<i64>,
) -> Result<Vec<DecisionRecord>, StoreError> {
    let rows: Vec<DecisionRow> = sqlx::query_as(
        "select request_id, decision, actor_subject, actor_email, actor_groups, comment, decided_at
             from request_decision
             where request_id = $1 and extension_id is not distinct from $2 order by decision_id",
    )
    .bind(id.0)
    .bind(extension)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(|r| r.into_record()).collect()
}

/// The decisions on each of `ids` (not on their extensions), in one query: for queues.
pub async fn list_decisions_of(
    conn: &mut PgConnection,
    ids: &[RequestId],
) -> Result<std::collections::HashMap<RequestId, Vec<DecisionRecord>>, StoreError> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let rows: Vec<DecisionRow> = sqlx::query_as(
        "select request_id, decision, actor_subject, actor_email, actor_groups, comment, decided_at
             from request_decision
             where request_id = any($1) and extension_id is null order by decision_id",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut by_request: std::collections::HashMap<RequestId, Vec<DecisionRecord>> =
        std::collections::HashMap::new();
    for row in rows {
        let id = RequestId(row.request_id);
        by_request.entry(id).or_default().push(row.into_record()?);
    }
    Ok(by_request)
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    request_id: Uuid,
    decision: String,
    actor_subject: String,
    actor_email: String,
    actor_groups: Vec<String>,
    comment: Option<String>,
    decided_at: OffsetDateTime,
}

impl DecisionRow {
    fn into_record(self) -> Result<DecisionRecord, StoreError> {
        Ok(DecisionRecord {
            actor: Actor::person(self.actor_subject, self.actor_email),
            groups: self.actor_groups,
            decision: match self.decision.as_str() {
                "approve" => Decision::Approve,
                "deny" => Decision::Deny,
                other => return Err(StoreError::Corrupt(format!("unknown decision {other}"))),
            },
            comment: self.comment,
            at: self.decided_at,
        })
    }
}

/// Marks a break-glass grant as reviewed. `false`: it is not break-glass, or was reviewed.
pub async fn review(
    conn: &mut PgConnection,
    id: RequestId,
    by: &Actor,
    comment: Option<&str>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set reviewed_at = $2, reviewed_by_subject = $3, reviewed_by_email = $4,
             review_comment = $5
         where request_id = $1 and break_glass and reviewed_at is null",
    )
    .bind(id.0)
    .bind(at)
    .bind(&by.subject)
    .bind(&by.email)
    .bind(comment)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Break-glass grants nobody has reviewed yet, oldest first.
pub async fn list_needing_review(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<AccessRequest>, StoreError> {
    let rows = sqlx::query_as::<_, RequestRow>(&format!(
        "select {REQUEST_COLUMNS} from access_request where break_glass and reviewed_at is null
         order by created_at, request_id limit $1"
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    hydrate(conn, rows).await
}

/// approved → active; the grant's clock starts now.
pub async fn activate(
    conn: &mut PgConnection,
    id: RequestId,
    at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set status = 'active', activated_at = $2, expires_at = $3, step = null,
             attempts = 0, next_attempt_at = null, last_error = null, lease_owner = null, lease_until = null
         where request_id = $1 and status = 'approved'",
    )
    .bind(id.0)
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// approved | active → revoking. From this moment the credentials URL refuses (the token hash
/// stays, so its holder is told the grant ended rather than that the token is wrong). A lease held by
/// a provisioning worker is kept: that worker notices at its next step and lets go, so teardown
/// never races an in-flight create.
pub async fn begin_revoke(
    conn: &mut PgConnection,
    id: RequestId,
    from: RequestStatus,
    end: EndState,
    reason: &str,
    first_step: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set status = 'revoking', end_state = $3, end_reason = $4, step = $5,
             revoke_started_at = $6, attempts = 0, next_attempt_at = null
         where request_id = $1 and status = $2",
    )
    .bind(id.0)
    .bind(from.as_str())
    .bind(end.as_str())
    .bind(reason)
    .bind(first_step)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// active → revoking (expired), only if the grant's time is up at `at`: checked under the
/// row's lock, so an extension approved after the worker claimed the grant keeps it alive.
/// `false` when the grant is no longer active or no longer due.
pub async fn begin_expiry(
    conn: &mut PgConnection,
    id: RequestId,
    reason: &str,
    first_step: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set status = 'revoking', end_state = 'expired', end_reason = $2,
             step = $3, revoke_started_at = $4, attempts = 0, next_attempt_at = null
         where request_id = $1 and status = 'active' and expires_at <= $4",
    )
    .bind(id.0)
    .bind(reason)
    .bind(first_step)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// revoking → its end state; nothing of the grant is left in AWS.
pub async fn finish(
    conn: &mut PgConnection,
    id: RequestId,
    at: OffsetDateTime,
) -> Result<Option<EndState>, StoreError> {
    let end: Option<String> = sqlx::query_scalar(
        "update access_request set status = end_state, ended_at = $2, step = null, next_attempt_at = null,
             last_error = null, lease_owner = null, lease_until = null
         where request_id = $1 and status = 'revoking'
         returning end_state",
    )
    .bind(id.0)
    .bind(at)
    .fetch_optional(conn)
    .await?;
    parse_end_state(end.as_deref())
}

/// Replaces the credentials token of an active grant (the previous one stops working).
pub async fn set_credentials_token(
    conn: &mut PgConnection,
    id: RequestId,
    token_hash: &[u8],
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set credentials_token_hash = $2, credentials_token_issued_at = $3
         where request_id = $1 and status = 'active'",
    )
    .bind(id.0)
    .bind(token_hash)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    request_id: Uuid,
    status: String,
    expires_at: Option<OffsetDateTime>,
    credentials_token_hash: Option<Vec<u8>>,
    credentials_token_issued_at: Option<OffsetDateTime>,
    role_arn: Option<String>,
    requester_subject: String,
    requester_email: String,
    requester_name: Option<String>,
}

const CREDENTIALS_COLUMNS: &str = "request_id, status, expires_at, credentials_token_hash,
    credentials_token_issued_at, role_arn, requester_subject, requester_email, requester_name";

impl CredentialsRow {
    fn into_view(self) -> Result<(RequestId, CredentialsView), StoreError> {
        Ok((
            RequestId(self.request_id),
            CredentialsView {
                status: parse_status(&self.status)?,
                expires_at: self.expires_at,
                token_hash: self.credentials_token_hash,
                token_issued_at: self.credentials_token_issued_at,
                role_arn: self.role_arn,
                requester: Requester {
                    subject: self.requester_subject,
                    email: self.requester_email,
                    name: self.requester_name,
                },
            },
        ))
    }
}

pub async fn credentials_view(
    conn: &mut PgConnection,
    id: RequestId,
) -> Result<Option<CredentialsView>, StoreError> {
    let row = sqlx::query_as::<_, CredentialsRow>(&format!(
        "select {CREDENTIALS_COLUMNS} from access_request where request_id = $1"
    ))
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.into_view().map(|(_, v)| v)).transpose()
}

/// What the credentials URL needs of every active grant (the live-grants view's full read).
pub async fn active_credentials_views(
    conn: &mut PgConnection,
) -> Result<Vec<(RequestId, CredentialsView)>, StoreError> {
    let rows = sqlx::query_as::<_, CredentialsRow>(&format!(
        "select {CREDENTIALS_COLUMNS} from access_request where status = 'active'"
    ))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(CredentialsRow::into_view).collect()
}

/// The `LISTEN` channel on which a committed change to what the credentials URL relies on is
/// announced, with the request id as payload (migration 20261204000002).
pub const GRANTS_CHANNEL: &str = "lakegate_grants";

/// A connection listening on [`GRANTS_CHANNEL`].
pub async fn listen_grants(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(GRANTS_CHANNEL).await?;
    Ok(listener)
}

/// How many requests are in each status (statuses with none are left out).
pub async fn count_by_status(
    conn: &mut PgConnection,
) -> Result<Vec<(RequestStatus, i64)>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from access_request group by status")
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(s, n)| Ok((parse_status(&s)?, n)))
        .collect()
}

/// Ids of the requests that may have resources in AWS: approved (being provisioned), active, or
/// revoking (being torn down). Requests in any other state have none, or no more.
pub async fn ids_with_resources(conn: &mut PgConnection) -> Result<Vec<RequestId>, StoreError> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select request_id from access_request where status in ('approved', 'active', 'revoking')",
    )
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(RequestId).collect())
}
