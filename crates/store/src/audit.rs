//! The append-only audit trail. Rows are only ever inserted (a trigger refuses the rest).

use lakegate_domain::RequestId;
use lakegate_domain::audit::AuditAction;
use serde_json::Value;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;

pub use lakegate_domain::audit::{Actor, AuditFilter};

#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub at: OffsetDateTime,
    pub request: Option<RequestId>,
    pub actor: Option<&'a Actor>,
    pub action: AuditAction,
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub at: OffsetDateTime,
    pub request: Option<RequestId>,
    pub actor: Option<Actor>,
    pub action: AuditAction,
    pub detail: Value,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    event_id: i64,
    occurred_at: OffsetDateTime,
    request_id: Option<Uuid>,
    actor_subject: Option<String>,
    actor_email: Option<String>,
    action: String,
    detail: Value,
}

/// An event with its chain hash, as exports carry it.
#[derive(sqlx::FromRow)]
struct HashedRow {
    #[sqlx(flatten)]
    event: AuditRow,
    hash: Vec<u8>,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.event_id,
            at: r.occurred_at,
            request: r.request_id.map(RequestId),
            actor: match (r.actor_subject, r.actor_email) {
                (Some(subject), Some(email)) => Some(Actor {
                    subject,
                    email,
                    via_token: r
                        .detail
                        .get("via_token")
                        .and_then(Value::as_str)
                        .map(ToOwned::to_owned),
                    via: r
                        .detail
                        .get("via")
                        .and_then(Value::as_str)
                        .map(ToOwned::to_owned),
                }),
                _ => None,
            },
            action: AuditAction::parse(&r.action)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown audit action {}", r.action)))?,
            detail: r.detail,
        })
    }
}

pub async fn append(conn: &mut PgConnection, e: NewAuditEvent<'_>) -> Result<i64, StoreError> {
    // Through a personal API token, or from another application: said in the detail, which
    // the chain hash covers.
    let mut detail = e.detail;
    let marks = [
        ("via_token", e.actor.and_then(|a| a.via_token.as_deref())),
        ("via", e.actor.and_then(|a| a.via.as_deref())),
    ];
    for (key, value) in marks {
        let Some(value) = value else { continue };
        match &mut detail {
            Value::Object(map) => {
                map.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            Value::Null => detail = serde_json::json!({ key: value }),
            other => {
                detail = serde_json::json!({ "value": other.take(), key: value });
            }
        }
    }
    let id: i64 = sqlx::query_scalar(
        "insert into audit_event (occurred_at, request_id, actor_subject, actor_email, action, detail)
         values ($1, $2, $3, $4, $5, $6)
         returning event_id",
    )
    .bind(e.at)
    .bind(e.request.map(|r| r.0))
    .bind(e.actor.map(|a| a.subject.as_str()))
    .bind(e.actor.map(|a| a.email.as_str()))
    .bind(e.action.as_str())
    .bind(&detail)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// One request's events, oldest first.
pub async fn list_for_request(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<Vec<AuditEvent>, StoreError> {
    sqlx::query_as::<_, AuditRow>(
        "select event_id, occurred_at, request_id, actor_subject, actor_email, action, detail
         from audit_event where request_id = $1 order by event_id",
    )
    .bind(request.0)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(AuditEvent::try_from)
    .collect()
}

/// One page of a request's events, oldest first: `limit` of them after skipping `offset`.
pub async fn page_for_request(
    conn: &mut PgConnection,
    request: RequestId,
    offset: i64,
    limit: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    sqlx::query_as::<_, AuditRow>(
        "select event_id, occurred_at, request_id, actor_subject, actor_email, action, detail
         from audit_event where request_id = $1 order by event_id limit $2 offset $3",
    )
    .bind(request.0)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(AuditEvent::try_from)
    .collect()
}

/// The detail of a request's latest event of `action`, if it has one.
pub async fn latest_detail(
    conn: &mut PgConnection,
    request: RequestId,
    action: AuditAction,
) -> Result<Option<serde_json::Value>, StoreError> {
    Ok(sqlx::query_scalar(
        "select detail from audit_event where request_id = $1 and action = $2
         order by event_id desc limit 1",
    )
    .bind(request.0)
    .bind(action.as_str())
    .fetch_optional(conn)
    .await?)
}

/// How many events a request has in all.
pub async fn total_for_request(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("select count(*) from audit_event where request_id = $1")
            .bind(request.0)
            .fetch_one(conn)
            .await?,
    )
}

/// How many events a request has, by action (used by tests and health checks).
pub async fn count_for_request(
    conn: &mut PgConnection,
    request: RequestId,
    action: AuditAction,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar(
            "select count(*) from audit_event where request_id = $1 and action = $2",
        )
        .bind(request.0)
        .bind(action.as_str())
        .fetch_one(conn)
        .await?,
    )
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows checked.
    pub events: i64,
    /// Hash of the last row (anchor it elsewhere to detect truncation of the tail).
    pub head: Option<Vec<u8>>,
    /// The first row that does not fit the chain, and why.
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub event_id: i64,
    pub reason: &'static str,
}

/// Recomputes every row's hash from its fields and the row before it, in order.
pub async fn verify_chain(conn: &mut PgConnection) -> Result<ChainReport, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        event_id: i64,
        hash: Vec<u8>,
        prev_ok: bool,
        hash_ok: bool,
    }
    let rows = sqlx::query_as::<_, Row>(
        "select event_id, hash,
                prev_hash = coalesce(lag(hash) over (order by event_id),
                                     '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) as prev_ok,
                hash = audit_event_digest(prev_hash, e) as hash_ok
         from audit_event e
         order by event_id",
    )
    .fetch_all(conn)
    .await?;
    let first_broken = rows.iter().find_map(|r| {
        if !r.hash_ok {
            Some(BrokenLink {
                event_id: r.event_id,
                reason: "its contents do not match its hash (changed after it was written)",
            })
        } else if !r.prev_ok {
            Some(BrokenLink {
                event_id: r.event_id,
                reason: "it does not follow the row before it (a row was removed or inserted before it)",
            })
        } else {
            None
        }
    });
    Ok(ChainReport {
        events: i64::try_from(rows.len()).unwrap_or(i64::MAX),
        head: rows.last().map(|r| r.hash.clone()),
        first_broken,
    })
}

/// Every event, oldest first, for export.
pub async fn list_all(conn: &mut PgConnection) -> Result<Vec<(AuditEvent, Vec<u8>)>, StoreError> {
    sqlx::query_as::<_, HashedRow>(
        "select event_id, occurred_at, request_id, actor_subject, actor_email, action, detail, hash
         from audit_event order by event_id",
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| Ok((AuditEvent::try_from(r.event)?, r.hash)))
    .collect()
}

/// Matching events, newest first, at most `limit`, each with its chain hash.
pub async fn search(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<(AuditEvent, Vec<u8>)>, StoreError> {
    let mut q = sqlx::QueryBuilder::new(
        "select event_id, occurred_at, request_id, actor_subject, actor_email, action, detail, hash
         from audit_event where true",
    );
    if let Some(r) = filter.request {
        q.push(" and request_id = ").push_bind(r.0);
    }
    if let Some(a) = filter.actor.as_deref().filter(|a| !a.is_empty()) {
        // A literal substring: escape LIKE's wildcards.
        let pattern = format!(
            "%{}%",
            a.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q.push(" and actor_email ilike ").push_bind(pattern);
    }
    if let Some(action) = filter.action {
        q.push(" and action = ").push_bind(action.as_str());
    }
    if let Some(from) = filter.from {
        q.push(" and occurred_at >= ").push_bind(from);
    }
    if let Some(until) = filter.until {
        q.push(" and occurred_at < ").push_bind(until);
    }
    if let Some(before) = filter.before {
        q.push(" and event_id < ").push_bind(before);
    }
    q.push(" order by event_id desc limit ").push_bind(limit);
    q.build_query_as::<HashedRow>()
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| Ok((AuditEvent::try_from(r.event)?, r.hash)))
        .collect()
}
