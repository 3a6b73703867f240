//! The notification outbox (docs/decisions/0022-notifications-through-an-outbox.md): a
//! notification is enqueued in the transaction of the audit event that causes it; the worker
//! fans it out into one delivery per target and delivers those with retries. Claims use
//! `for update skip locked` under a short lease, so one replica delivers each delivery at a time,
//! and a request's deliveries to one target go out in order.

use lakegate_domain::RequestId;
use serde_json::Value;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::StoreError;

/// Enqueues a notification of `event`, caused by audit event `audit_event`.
pub async fn enqueue(
    conn: &mut PgConnection,
    audit_event: i64,
    event: &str,
    request: Option<RequestId>,
    at: OffsetDateTime,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "insert into notification (audit_event_id, event, request_id, created_at)
         values ($1, $2, $3, $4) returning notification_id",
    )
    .bind(audit_event)
    .bind(event)
    .bind(request.map(|r| r.0))
    .bind(at)
    .fetch_one(conn)
    .await?)
}

/// A notification not yet fanned out to its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrouted {
    pub id: i64,
    pub event: String,
    pub request: Option<RequestId>,
}

/// Locks up to `limit` notifications not yet fanned out, oldest first, skipping those another
/// replica is fanning out. Call in a transaction that then calls [`route`] for each.
pub async fn lock_unrouted(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Unrouted>, StoreError> {
    let rows: Vec<(i64, String, Option<Uuid>)> = sqlx::query_as(
        "select notification_id, event, request_id from notification
         where not fanned_out order by notification_id limit $1
         for update skip locked",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, event, request)| Unrouted {
            id,
            event,
            request: request.map(RequestId),
        })
        .collect())
}

/// Records the targets notification `id` goes to (none: it is told to no one but the log).
pub async fn route(
    conn: &mut PgConnection,
    id: i64,
    targets: &[String],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into notification_delivery (notification_id, target, next_attempt_at)
         select $1, t, $3 from unnest($2::text[]) t
         on conflict do nothing",
    )
    .bind(id)
    .bind(targets)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("update notification set fanned_out = true where notification_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A delivery claimed for sending, with what its message is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub notification: i64,
    pub target: String,
    pub event: String,
    pub request: Option<RequestId>,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
    pub occurred_at: OffsetDateTime,
    pub actor_email: Option<String>,
    pub detail: Value,
    /// The receipt of the first delivered notification of the same request to the same target
    /// (the Slack message that asked for a decision).
    pub thread: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    notification_id: i64,
    target: String,
    event: String,
    request_id: Option<Uuid>,
    attempts: i32,
    created_at: OffsetDateTime,
    occurred_at: OffsetDateTime,
    actor_email: Option<String>,
    detail: Value,
    thread: Option<String>,
}

/// Claims up to `limit` deliveries due at `now` for `lease`, counting the attempt: the
/// earliest undelivered one of each request and target only, so a request's notifications
/// reach a target in the order they happened. Oldest first.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let rows: Vec<ClaimedRow> = sqlx::query_as(
        "with due as (
             select d.notification_id, d.target from notification_delivery d
             join notification n using (notification_id)
             where d.delivered_at is null and d.given_up_at is null and d.next_attempt_at <= $1
               and not exists (
                   select 1 from notification_delivery e
                   join notification m using (notification_id)
                   where e.target = d.target and m.request_id = n.request_id
                     and e.notification_id < d.notification_id
                     and e.delivered_at is null and e.given_up_at is null)
             order by d.notification_id
             limit $3
             for update of d skip locked
         ), claimed as (
             update notification_delivery d
             set attempts = d.attempts + 1, next_attempt_at = $1 + $2
             from due
             where d.notification_id = due.notification_id and d.target = due.target
             returning d.notification_id, d.target, d.attempts
         )
         select c.notification_id, c.target, n.event, n.request_id, c.attempts, n.created_at,
                a.occurred_at, a.actor_email, a.detail,
                (select t.receipt from notification_delivery t
                 join notification tn using (notification_id)
                 where t.target = c.target and tn.request_id = n.request_id
                   and t.receipt is not null
                 order by t.notification_id limit 1) as thread
         from claimed c
         join notification n using (notification_id)
         join audit_event a on a.event_id = n.audit_event_id
         order by c.notification_id",
    )
    .bind(now)
    .bind(lease)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            notification: r.notification_id,
            target: r.target,
            event: r.event,
            request: r.request_id.map(RequestId),
            attempts: r.attempts,
            created_at: r.created_at,
            occurred_at: r.occurred_at,
            actor_email: r.actor_email,
            detail: r.detail,
            thread: r.thread,
        })
        .collect())
}

pub async fn mark_delivered(
    conn: &mut PgConnection,
    notification: i64,
    target: &str,
    receipt: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "update notification_delivery
         set delivered_at = $3, receipt = $4, last_error = null
         where notification_id = $1 and target = $2",
    )
    .bind(notification)
    .bind(target)
    .bind(now)
    .bind(receipt)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed attempt: tried again at `retry_at`, or given up (`None`).
pub async fn mark_failed(
    conn: &mut PgConnection,
    notification: i64,
    target: &str,
    error: &str,
    retry_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "update notification_delivery
         set last_error = $3,
             next_attempt_at = coalesce($4, next_attempt_at),
             given_up_at = case when $4::timestamptz is null then $5 end
         where notification_id = $1 and target = $2",
    )
    .bind(notification)
    .bind(target)
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// When a delivery is next due, if any is waiting.
pub async fn next_due(conn: &mut PgConnection) -> Result<Option<OffsetDateTime>, StoreError> {
    Ok(sqlx::query_scalar(
        "select min(next_attempt_at) from notification_delivery
         where delivered_at is null and given_up_at is null",
    )
    .fetch_one(conn)
    .await?)
}

/// Whether a notification waits to be fanned out.
pub async fn any_unrouted(conn: &mut PgConnection) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from notification where not fanned_out)")
            .fetch_one(conn)
            .await?,
    )
}

/// Removes notifications whose every delivery ended (delivered or given up) before `before`.
pub async fn prune(conn: &mut PgConnection, before: OffsetDateTime) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "delete from notification n
         where n.fanned_out and n.created_at < $1
           and not exists (
               select 1 from notification_delivery d
               where d.notification_id = n.notification_id
                 and (coalesce(d.delivered_at, d.given_up_at) is null
                      or coalesce(d.delivered_at, d.given_up_at) >= $1))",
    )
    .bind(before)
    .execute(conn)
    .await?
    .rows_affected())
}

/// The state of one delivery, as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub notification_id: i64,
    pub event: String,
    pub request_id: Option<Uuid>,
    pub target: String,
    pub created_at: OffsetDateTime,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub given_up_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// Counts of deliveries by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Not delivered yet, still being tried.
    pub pending: i64,
    /// Given up.
    pub failed: i64,
    pub delivered: i64,
    /// Notifications not yet fanned out to their targets.
    pub unrouted: i64,
}

pub async fn counts(conn: &mut PgConnection) -> Result<Counts, StoreError> {
    let (pending, failed, delivered): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where delivered_at is null and given_up_at is null),
                count(*) filter (where given_up_at is not null),
                count(*) filter (where delivered_at is not null)
         from notification_delivery",
    )
    .fetch_one(&mut *conn)
    .await?;
    let unrouted: i64 =
        sqlx::query_scalar("select count(*) from notification where not fanned_out")
            .fetch_one(conn)
            .await?;
    Ok(Counts {
        pending,
        failed,
        delivered,
        unrouted,
    })
}

/// Deliveries not delivered (pending first, then given up), newest first, then the latest
/// delivered ones: at most `limit` in all.
pub async fn recent(conn: &mut PgConnection, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as(
        "select d.notification_id, n.event, n.request_id, d.target, n.created_at, d.attempts,
                d.next_attempt_at, d.delivered_at, d.given_up_at, d.last_error
         from notification_delivery d join notification n using (notification_id)
         order by case when d.delivered_at is null and d.given_up_at is null then 0
                       when d.given_up_at is not null then 1 else 2 end,
                  d.notification_id desc
         limit $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Every notification of `request`, oldest first: `(event, target)` of each delivery, and
/// `None` as target for one not fanned out yet.
pub async fn of_request(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<Vec<(String, Option<String>, bool)>, StoreError> {
    Ok(sqlx::query_as(
        "select n.event, d.target, d.delivered_at is not null
         from notification n left join notification_delivery d using (notification_id)
         where n.request_id = $1 order by n.notification_id, d.target",
    )
    .bind(request.0)
    .fetch_all(conn)
    .await?)
}

/// The `LISTEN` channel a committed notification is announced on.
pub const CHANNEL: &str = "lakegate_outbox";

/// A connection listening on [`CHANNEL`].
pub async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
