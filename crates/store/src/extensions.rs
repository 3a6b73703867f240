//! Extensions: the requester of a live grant asks for more time; the policy decides as it does
//! for requests. At most one extension of a grant is pending at a time (a partial unique index).

use lakegate_domain::RequestId;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::StoreError;

pub use lakegate_domain::extension::ExtensionStatus;

fn parse_status(s: &str) -> Result<ExtensionStatus, StoreError> {
    ExtensionStatus::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown extension status {s}")))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub id: i64,
    pub request: RequestId,
    pub extra: Duration,
    pub reason: String,
    pub status: ExtensionStatus,
    pub auto_approved: bool,
    pub requested_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    extension_id: i64,
    request_id: Uuid,
    extra_seconds: i32,
    reason: String,
    status: String,
    auto_approved: bool,
    requested_at: OffsetDateTime,
    decided_at: Option<OffsetDateTime>,
}

impl Row {
    fn into_domain(self) -> Result<Extension, StoreError> {
        Ok(Extension {
            id: self.extension_id,
            request: RequestId(self.request_id),
            extra: Duration::seconds(i64::from(self.extra_seconds)),
            reason: self.reason,
            status: parse_status(&self.status)?,
            auto_approved: self.auto_approved,
            requested_at: self.requested_at,
            decided_at: self.decided_at,
        })
    }
}

const COLUMNS: &str = "extension_id, request_id, extra_seconds, reason, status, auto_approved, requested_at, decided_at";

/// Records a pending extension. `Ok(None)`: another one is already pending.
pub async fn insert(
    conn: &mut PgConnection,
    request: RequestId,
    extra: Duration,
    reason: &str,
    at: OffsetDateTime,
) -> Result<Option<i64>, StoreError> {
    let seconds = i32::try_from(extra.whole_seconds())
        .map_err(|_| StoreError::Corrupt("extension out of range".into()))?;
    Ok(sqlx::query_scalar(
        "insert into request_extension (request_id, extra_seconds, reason, requested_at)
         values ($1, $2, $3, $4)
         on conflict (request_id) where status = 'pending' do nothing
         returning extension_id",
    )
    .bind(request.0)
    .bind(seconds)
    .bind(reason)
    .bind(at)
    .fetch_optional(conn)
    .await?)
}

/// Every extension of a grant, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<Vec<Extension>, StoreError> {
    let rows = sqlx::query_as::<_, Row>(&format!(
        "select {COLUMNS} from request_extension where request_id = $1 order by extension_id"
    ))
    .bind(request.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Row::into_domain).collect()
}

/// Pending extensions of live grants that members of `groups` may decide, except those of
/// `requester`'s own grants, oldest first (an approver's queue).
pub async fn list_pending_for_approver(
    conn: &mut PgConnection,
    groups: &[String],
    requester: &str,
    limit: i64,
) -> Result<Vec<Extension>, StoreError> {
    let rows = sqlx::query_as::<_, Row>(&format!(
        "select {COLUMNS} from request_extension e
         where status = 'pending'
           and exists (select 1 from access_request a where a.request_id = e.request_id
                       and a.status = 'active' and a.approver_groups && $1
                       and a.requester_subject <> $2)
         order by extension_id limit $3"
    ))
    .bind(groups)
    .bind(requester)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Row::into_domain).collect()
}

/// pending → lapsed for every extension whose grant is no longer active (it ended, or is
/// ending, before anyone decided); returns `(request, extension)` pairs.
pub async fn lapse_orphaned(
    conn: &mut PgConnection,
    at: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(RequestId, i64)>, StoreError> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "update request_extension set status = 'lapsed', decided_at = $1
         where extension_id in (
             select e.extension_id from request_extension e
             join access_request a on a.request_id = e.request_id
             where e.status = 'pending' and a.status <> 'active'
             order by e.extension_id limit $2 for update of e skip locked)
         returning request_id, extension_id",
    )
    .bind(at)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(r, e)| (RequestId(r), e)).collect())
}

/// Approves pending extension `extension` of `request` by `extra` and moves the grant's
/// expiry. Returns the new expiry, or `None` when the extension is no longer pending or the
/// grant no longer active, or already past its expiry at `at` (an extension never revives a
/// grant the reaper is due to end); in the latter case the caller rolls back. Call inside a
/// transaction.
pub async fn approve(
    conn: &mut PgConnection,
    request: RequestId,
    extension: i64,
    extra: Duration,
    auto: bool,
    at: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let done = sqlx::query(
        "update request_extension set status = 'approved', decided_at = $2, auto_approved = $3
         where extension_id = $1 and status = 'pending'",
    )
    .bind(extension)
    .bind(at)
    .bind(auto)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    let seconds = i32::try_from(extra.whole_seconds())
        .map_err(|_| StoreError::Corrupt("extension out of range".into()))?;
    Ok(sqlx::query_scalar(
        "update access_request
         set expires_at = expires_at + make_interval(secs => $2),
             extended_seconds = extended_seconds + $2
         where request_id = $1 and status = 'active' and expires_at > $3
         returning expires_at",
    )
    .bind(request.0)
    .bind(seconds)
    .bind(at)
    .fetch_optional(conn)
    .await?)
}

/// Denies a pending extension. `false`: it was no longer pending.
pub async fn deny(
    conn: &mut PgConnection,
    extension: i64,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update request_extension set status = 'denied', decided_at = $2
         where extension_id = $1 and status = 'pending'",
    )
    .bind(extension)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
