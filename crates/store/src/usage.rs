//! The queries of each grant's workgroup, as the monitor saw them: one row per query, updated
//! as it progresses, so a restart or a second look never counts a query twice.

use std::collections::HashMap;

use lakegate_domain::RequestId;
use lakegate_domain::ports::QueryExecution;
use lakegate_domain::usage::{QueryFlag, QueryState};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::error::StoreError;

/// What one look at a query changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time seen.
    New,
    /// Seen before; its state, bytes or times moved.
    Updated,
    /// Nothing new.
    Unchanged,
}

/// A stored query, for the request page and the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQuery {
    pub execution: QueryExecution,
    pub flags: Vec<QueryFlag>,
    pub billed_bytes: i64,
    pub cost_micros: i64,
    /// Started in lakegate's query console (otherwise through the credentials URL).
    pub from_console: bool,
}

/// What is kept of a query's SQL: its first bytes (the caller cuts it), and the length and
/// SHA-256 (hex) of the whole text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptSql<'a> {
    pub text: &'a str,
    pub bytes: i64,
    pub sha256: &'a str,
}

/// Records a query seen for the first time, with its SQL as kept; a query already stored is
/// updated as [`update`] does. `billed_bytes` and `cost_micros` are worked out by the caller
/// (the domain's billing rule).
pub async fn insert(
    conn: &mut PgConnection,
    request: RequestId,
    q: &QueryExecution,
    sql: KeptSql<'_>,
    billed_bytes: i64,
    cost_micros: i64,
    at: OffsetDateTime,
) -> Result<Seen, StoreError> {
    let row: Option<(bool,)> = sqlx::query_as(
        "insert into athena_query
             (request_id, query_id, sql_text, sql_bytes, sql_sha256, database_name, state,
              state_change_reason, bytes_scanned, billed_bytes, cost_micros, engine_ms,
              submitted_at, completed_at, first_seen_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
         on conflict (request_id, query_id) do update set
             state = excluded.state, state_change_reason = excluded.state_change_reason,
             bytes_scanned = excluded.bytes_scanned, billed_bytes = excluded.billed_bytes,
             cost_micros = excluded.cost_micros, engine_ms = excluded.engine_ms,
             completed_at = excluded.completed_at, updated_at = excluded.updated_at
         where (athena_query.state, athena_query.state_change_reason, athena_query.bytes_scanned,
                athena_query.engine_ms, athena_query.completed_at)
               is distinct from
               (excluded.state, excluded.state_change_reason, excluded.bytes_scanned,
                excluded.engine_ms, excluded.completed_at)
         returning (xmax = 0)",
    )
    .bind(request.0)
    .bind(&q.id)
    .bind(sql.text)
    .bind(i32::try_from(sql.bytes).unwrap_or(i32::MAX))
    .bind(sql.sha256)
    .bind(&q.database)
    .bind(q.state.as_str())
    .bind(&q.state_change_reason)
    .bind(q.bytes_scanned)
    .bind(billed_bytes)
    .bind(cost_micros)
    .bind(q.engine_ms)
    .bind(q.submitted_at)
    .bind(q.completed_at)
    .bind(at)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((true,)) => Seen::New,
        Some((false,)) => Seen::Updated,
        None => Seen::Unchanged,
    })
}

/// Records how a query already stored moved on (its SQL is not sent again).
pub async fn update(
    conn: &mut PgConnection,
    request: RequestId,
    q: &QueryExecution,
    billed_bytes: i64,
    cost_micros: i64,
    at: OffsetDateTime,
) -> Result<Seen, StoreError> {
    let done = sqlx::query(
        "update athena_query set
             state = $3, state_change_reason = $4, bytes_scanned = $5, billed_bytes = $6,
             cost_micros = $7, engine_ms = $8, completed_at = $9, updated_at = $10,
             submitted_at = coalesce(submitted_at, $11)
         where request_id = $1 and query_id = $2
           and (state, state_change_reason, bytes_scanned, engine_ms, completed_at)
               is distinct from ($3, $4, $5, $8, $9)",
    )
    .bind(request.0)
    .bind(&q.id)
    .bind(q.state.as_str())
    .bind(&q.state_change_reason)
    .bind(q.bytes_scanned)
    .bind(billed_bytes)
    .bind(cost_micros)
    .bind(q.engine_ms)
    .bind(q.completed_at)
    .bind(at)
    .bind(q.submitted_at)
    .execute(conn)
    .await?;
    Ok(if done.rows_affected() > 0 {
        Seen::Updated
    } else {
        Seen::Unchanged
    })
}

/// Every query stored for a grant, by id, with its state and flags: what the monitor need
/// not ask Athena about again (the final ones) and what it must (the others). No SQL.
pub async fn known(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<HashMap<String, (QueryState, Vec<QueryFlag>)>, StoreError> {
    let rows: Vec<(String, String, serde_json::Value)> =
        sqlx::query_as("select query_id, state, flags from athena_query where request_id = $1")
            .bind(request.0)
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(id, state, flags)| {
            let state = QueryState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("query {id} has state {state}")))?;
            let flags = serde_json::from_value(flags)
                .map_err(|e| StoreError::Corrupt(format!("flags of query {id}: {e}")))?;
            Ok((id, (state, flags)))
        })
        .collect()
}

/// Each stored query's submission time (queries without one are left out) and flags: what
/// the burst rule needs of every query of a grant, without their SQL.
pub async fn submissions(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<Vec<(String, OffsetDateTime, Vec<QueryFlag>)>, StoreError> {
    let rows: Vec<(String, OffsetDateTime, serde_json::Value)> = sqlx::query_as(
        "select query_id, submitted_at, flags from athena_query
         where request_id = $1 and submitted_at is not null order by submitted_at, query_id",
    )
    .bind(request.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, at, flags)| {
            let flags = serde_json::from_value(flags)
                .map_err(|e| StoreError::Corrupt(format!("flags of query {id}: {e}")))?;
            Ok((id, at, flags))
        })
        .collect()
}

/// How many of a grant's queries were submitted in the `window` up to its latest one.
pub async fn submitted_in_last(
    conn: &mut PgConnection,
    request: RequestId,
    window: time::Duration,
) -> Result<i64, StoreError> {
    let (count,): (i64,) = sqlx::query_as(
        "select count(*) from athena_query
         where request_id = $1 and submitted_at > (
             select max(submitted_at) from athena_query where request_id = $1) - $2",
    )
    .bind(request.0)
    .bind(window)
    .fetch_one(conn)
    .await?;
    Ok(count)
}

/// Takes the monitor's hold on a grant for the rest of `tx`, if no other replica holds it:
/// a transaction-level advisory lock, so it ends with the transaction or the connection (a
/// replica that dies lets go at once).
pub async fn try_hold_for_monitor(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<bool, StoreError> {
    let (held,): (bool,) = sqlx::query_as(
        "select pg_try_advisory_xact_lock(hashtext('lakegate.monitor'), hashtext($1::text))",
    )
    .bind(request.0)
    .fetch_one(conn)
    .await?;
    Ok(held)
}

/// A grant's totals: (queries, bytes scanned, cost in micro-dollars).
pub async fn totals(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<(i64, i64, i64), StoreError> {
    Ok(sqlx::query_as(
        "select count(*), coalesce(sum(bytes_scanned), 0)::bigint, coalesce(sum(cost_micros), 0)::bigint
         from athena_query where request_id = $1",
    )
    .bind(request.0)
    .fetch_one(conn)
    .await?)
}

/// A grant's queries, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<Vec<StoredQuery>, StoreError> {
    select(conn, request, None, None).await
}

/// A grant's latest `limit` queries, newest first.
pub async fn recent(
    conn: &mut PgConnection,
    request: RequestId,
    limit: i64,
) -> Result<Vec<StoredQuery>, StoreError> {
    select(conn, request, None, Some((limit, 0))).await
}

/// One page of a grant's queries, newest first: `limit` of them after skipping `offset`.
pub async fn page(
    conn: &mut PgConnection,
    request: RequestId,
    offset: i64,
    limit: i64,
) -> Result<Vec<StoredQuery>, StoreError> {
    select(conn, request, None, Some((limit, offset))).await
}

/// What a grant's totals and its usage chart need of one query: never its SQL, so reading
/// every query of a grant stays small however many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPoint {
    pub state: QueryState,
    pub bytes_scanned: i64,
    pub flags: Vec<QueryFlag>,
    /// When it finished, or else when it was submitted.
    pub at: Option<OffsetDateTime>,
}

/// Every query of a grant as a [`QueryPoint`], in the order they happened.
pub async fn points(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<Vec<QueryPoint>, StoreError> {
    let rows: Vec<(
        String,
        String,
        i64,
        serde_json::Value,
        Option<OffsetDateTime>,
    )> = sqlx::query_as(
        "select query_id, state, bytes_scanned, flags, coalesce(completed_at, submitted_at) as at
             from athena_query where request_id = $1
             order by coalesce(completed_at, submitted_at) asc nulls last, first_seen_at, query_id",
    )
    .bind(request.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, state, bytes_scanned, flags, at)| {
            Ok(QueryPoint {
                state: QueryState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown query state {state}")))?,
                bytes_scanned,
                flags: serde_json::from_value(flags)
                    .map_err(|e| StoreError::Corrupt(format!("flags of query {id}: {e}")))?,
                at,
            })
        })
        .collect()
}

/// One query of a grant; `None` when the grant has no query of that id.
pub async fn find(
    conn: &mut PgConnection,
    request: RequestId,
    query_id: &str,
) -> Result<Option<StoredQuery>, StoreError> {
    Ok(select(conn, request, Some(query_id), None).await?.pop())
}

/// The grant's queries (or the one named), oldest first; with `newest` = `(limit, offset)`,
/// newest first, `limit` of them after skipping `offset`.
async fn select(
    conn: &mut PgConnection,
    request: RequestId,
    query_id: Option<&str>,
    newest: Option<(i64, i64)>,
) -> Result<Vec<StoredQuery>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        query_id: String,
        sql_text: String,
        database_name: Option<String>,
        state: String,
        state_change_reason: Option<String>,
        bytes_scanned: i64,
        billed_bytes: i64,
        cost_micros: i64,
        engine_ms: i64,
        submitted_at: Option<OffsetDateTime>,
        completed_at: Option<OffsetDateTime>,
        flags: serde_json::Value,
        from_console: bool,
    }
    let rows = sqlx::query_as::<_, Row>(
        "select query_id, sql_text, database_name, state, state_change_reason, bytes_scanned,
                billed_bytes, cost_micros, engine_ms, submitted_at, completed_at, flags, from_console
         from athena_query where request_id = $1 and ($2::text is null or query_id = $2)
         order by
             case when $3::bigint is null then submitted_at end asc nulls last,
             case when $3::bigint is null then first_seen_at end asc,
             case when $3::bigint is not null then submitted_at end desc nulls last,
             case when $3::bigint is not null then first_seen_at end desc,
             query_id
         limit $3 offset $4",
    )
    .bind(request.0)
    .bind(query_id)
    .bind(newest.map(|(limit, _)| limit))
    .bind(newest.map_or(0, |(_, offset)| offset))
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let flags = serde_json::from_value(r.flags)
                .map_err(|e| StoreError::Corrupt(format!("flags of query {}: {e}", r.query_id)))?;
            Ok(StoredQuery {
                flags,
                execution: QueryExecution {
                    state: QueryState::parse(&r.state).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown query state {}", r.state))
                    })?,
                    id: r.query_id,
                    sql: r.sql_text,
                    database: r.database_name,
                    state_change_reason: r.state_change_reason,
                    bytes_scanned: r.bytes_scanned,
                    engine_ms: r.engine_ms,
                    submitted_at: r.submitted_at,
                    completed_at: r.completed_at,
                },
                billed_bytes: r.billed_bytes,
                cost_micros: r.cost_micros,
                from_console: r.from_console,
            })
        })
        .collect()
}

/// Records a query the console has just started, before the monitor first sees it: so it is
/// counted from the start, and known as the console's. The monitor updates it from then on.
/// `false` when the console had recorded it already (a form sent twice starts one query).
pub async fn record_console_start(
    conn: &mut PgConnection,
    request: RequestId,
    q: &QueryExecution,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let (new,): (bool,) = sqlx::query_as(
        "insert into athena_query
             (request_id, query_id, sql_text, database_name, state, state_change_reason, bytes_scanned,
              billed_bytes, cost_micros, engine_ms, submitted_at, completed_at, first_seen_at, updated_at,
              from_console)
         values ($1, $2, $3, $4, $5, null, 0, 0, 0, 0, $6, null, $7, $7, true)
         on conflict (request_id, query_id) do update set from_console = true
         returning (xmax = 0) or not (select from_console from athena_query
                                      where request_id = $1 and query_id = $2)",
    )
    .bind(request.0)
    .bind(&q.id)
    .bind(&q.sql)
    .bind(&q.database)
    .bind(q.state.as_str())
    .bind(q.submitted_at)
    .bind(at)
    .fetch_one(conn)
    .await?;
    Ok(new)
}

/// Replaces a query's flags.
pub async fn set_flags(
    conn: &mut PgConnection,
    request: RequestId,
    query_id: &str,
    flags: &[QueryFlag],
) -> Result<(), StoreError> {
    let flags = serde_json::to_value(flags)
        .map_err(|e| StoreError::Corrupt(format!("flags of query {query_id}: {e}")))?;
    sqlx::query("update athena_query set flags = $3 where request_id = $1 and query_id = $2")
        .bind(request.0)
        .bind(query_id)
        .bind(flags)
        .execute(conn)
        .await?;
    Ok(())
}

/// What the budget rule has done to a grant so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetState {
    pub warned_at: Option<OffsetDateTime>,
    /// The workgroup's cutoff once the budget lowered it.
    pub workgroup_cutoff_bytes: Option<i64>,
}

pub async fn budget_state(
    conn: &mut PgConnection,
    request: RequestId,
) -> Result<BudgetState, StoreError> {
    let (warned_at, workgroup_cutoff_bytes): (Option<OffsetDateTime>, Option<i64>) =
        sqlx::query_as(
            "select budget_warned_at, workgroup_cutoff_bytes from access_request where request_id = $1",
        )
        .bind(request.0)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(BudgetState {
        warned_at,
        workgroup_cutoff_bytes,
    })
}

/// Records the 80 % warning. `false`: it was given already.
pub async fn mark_budget_warned(
    conn: &mut PgConnection,
    request: RequestId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "update access_request set budget_warned_at = $2
         where request_id = $1 and budget_warned_at is null",
    )
    .bind(request.0)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the cutoff the workgroup now has.
pub async fn set_workgroup_cutoff(
    conn: &mut PgConnection,
    request: RequestId,
    bytes: i64,
) -> Result<(), StoreError> {
    sqlx::query("update access_request set workgroup_cutoff_bytes = $2 where request_id = $1")
        .bind(request.0)
        .bind(bytes)
        .execute(conn)
        .await?;
    Ok(())
}
