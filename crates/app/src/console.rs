//! The guarded query console: the requester of an active grant writes SQL in the browser, the
//! guard (`lakegate_domain::sql_guard`) reads it before anything runs, and what it accepts runs
//! in the grant's workgroup **as the grant's own role session**, never with the broker's
//! credentials. Lake Formation therefore judges every statement exactly as it judges the
//! person's own CLI; the guard only refuses early, with a reason, what would fail or should not
//! run (writes, other tables, a missing `LIMIT` the policy asks for).
//!
//! Statements started here are recorded at once (the monitor then follows them like any other
//! query of the workgroup, for cost, budget and flags); refusals are audited too, since reaching
//! outside a grant is what a security team wants to know about.

use std::collections::BTreeSet;

use lakegate_domain::audit::AuditAction;
use lakegate_domain::naming::GrantResources;
use lakegate_domain::ports::{
    CloudError, QueryExecution, QueryRun, ResultPage, SessionCredentials,
};
use lakegate_domain::sql_guard::{GuardContext, check};
use lakegate_domain::usage::{Micros, QueryFlag, QueryState, billed_bytes, estimate_cost};
use lakegate_domain::{AccessRequest, Principal, RequestId, RequestStatus};
use lakegate_store::requests::{self, CredentialsView};
use lakegate_store::usage::{self, StoredQuery};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::Duration;

use crate::credentials::{Holder, grant_session};
use crate::csv::csv_record;
use crate::requests::{actor, evaluate};
use crate::{AppError, Services, in_tx, record};

/// Rows shown on a query's page; the CSV download has them all.
pub const PAGE_ROWS: usize = 500;
/// Rows per `GetQueryResults` call (Athena's maximum).
const FETCH_ROWS: i32 = 1000;
/// How long a submission waits for its statement to finish before showing the page: quick
/// statements show their rows at once, longer ones a page that refreshes itself.
const WAIT_FOR_FINISH: std::time::Duration = std::time::Duration::from_secs(3);
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// SQL kept in an audit event; the whole text is in the query record.
const AUDIT_SQL_CHARS: usize = 2_000;
/// The grant's queries listed on the console.
const RECENT_QUERIES: i64 = 20;

/// What the console page needs.
#[derive(Debug, Clone)]
pub struct Console {
    pub request: AccessRequest,
    /// The grant's databases, as the grant spells them, sorted.
    pub databases: Vec<String>,
    /// The rule that asks for a `LIMIT` on every statement, if one does.
    pub require_limit: Option<String>,
    /// The grant's latest queries, newest first.
    pub recent: Vec<StoredQuery>,
    /// The query whose SQL and database the form starts from ("edit and run again").
    pub from: Option<StoredQuery>,
}

/// What stopping a query did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Athena was asked to stop it.
    Stopped,
    /// It had finished already, in this state; nothing was done.
    AlreadyFinished(QueryState),
}

/// What became of a submitted statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It runs in the grant's workgroup under this query execution id.
    Started(String),
    /// It did not run; the message says why, for the person who wrote it.
    Refused(String),
}

/// A query of the grant as it is now, for its page.
#[derive(Debug, Clone)]
pub struct QueryPage {
    pub request: AccessRequest,
    pub execution: QueryExecution,
    pub from_console: bool,
    pub flags: Vec<QueryFlag>,
    pub billed_bytes: i64,
    pub cost: Micros,
    /// The first [`PAGE_ROWS`] rows once it has succeeded.
    pub results: Option<ResultPage>,
    /// More rows exist than the page shows.
    pub more_rows: bool,
}

/// The grant, checked for `who`: the requester, while the grant is active.
async fn load(
    svc: &Services,
    who: &Principal,
    id: RequestId,
) -> Result<(AccessRequest, CredentialsView), AppError> {
    let mut conn = svc.db.acquire().await?;
    let request = requests::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let evaluation = evaluate(&svc.settings.policy, &request);
    let access = lakegate_domain::access::RequestAccess {
        policy: &svc.settings.policy,
        request: &request,
        evaluation: &evaluation,
        approvals: &[],
    };
    access.check_view(who)?;
    access.check_query(who)?;
    if request.status != RequestStatus::Active || !request.is_usable_at(svc.clock.now()) {
        return Err(AppError::NotUsable(format!(
            "the query console is open while access is active; this request is {}",
            request.status
        )));
    }
    let view = requests::credentials_view(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((request, view))
}

fn databases(request: &AccessRequest) -> Vec<String> {
    let set: BTreeSet<&str> = request
        .resources
        .iter()
        .map(|r| r.database.as_str())
        .collect();
    set.into_iter().map(ToOwned::to_owned).collect()
}

fn workgroup(svc: &Services, id: RequestId) -> String {
    GrantResources::derive(id, svc.cloud.identity(), &svc.settings.results).workgroup
}

/// AWS's answers to calls made with the grant's session, in the console's terms. A denial (the
/// grant revoked a moment ago) or a session AWS no longer accepts means the grant is not usable
/// now, not that lakegate failed; the cached session is dropped so the next try mints afresh.
fn session_error(svc: &Services, id: RequestId, e: CloudError) -> AppError {
    match e {
        CloudError::Denied(m) => {
            svc.forget_grant(id);
            AppError::NotUsable(format!("AWS refused the grant's session: {m}"))
        }
        CloudError::Rejected(m)
            if m.contains("ExpiredToken") || m.contains("UnrecognizedClient") =>
        {
            svc.forget_grant(id);
            AppError::Unavailable(format!(
                "the grant's session was not accepted; try again: {m}"
            ))
        }
        CloudError::NotFound(_) => AppError::NotFound,
        other => other.into(),
    }
}

/// Athena's refusal of a statement it cannot run (bad syntax it found, an unknown function):
/// the person's to read. Other refusals are not about the statement.
fn statement_rejected(e: &CloudError) -> Option<&str> {
    match e {
        CloudError::Rejected(m) if m.contains("InvalidRequestException") => Some(m),
        _ => None,
    }
}

/// Whether a client's own idempotency token has the form the console takes: 16 to 128
/// letters, digits, `-` or `_` (a UUID will do).
pub fn plausible_client_token(token: &str) -> bool {
    (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Athena's idempotency token for one submission of the console form: the same form sent twice
/// (a reload) starts one query. Derived from the grant and the form's random token, so it
/// cannot name another grant's query.
fn client_token(id: RequestId, run_token: Option<&str>) -> Option<String> {
    let token = run_token?.trim();
    plausible_client_token(token).then(|| {
        let digest = Sha256::digest(format!("lakegate-console:{id}:{token}").as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    })
}

fn clip(sql: &str) -> String {
    match sql.char_indices().nth(AUDIT_SQL_CHARS) {
        Some((at, _)) => format!("{}…", &sql[..at]),
        None => sql.to_owned(),
    }
}

/// The console of an active grant; with `from`, the form starts from that query of the grant.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn open(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    from: Option<&str>,
) -> Result<Console, AppError> {
    let (request, _) = load(svc, who, id).await?;
    let require_limit = evaluate(&svc.settings.policy, &request).require_limit;
    let mut conn = svc.db.acquire().await?;
    let recent = usage::recent(&mut conn, id, RECENT_QUERIES).await?;
    let from = match from {
        Some(q) => usage::find(&mut conn, id, q).await?,
        None => None,
    };
    Ok(Console {
        databases: databases(&request),
        request,
        require_limit,
        recent,
        from,
    })
}

/// Checks `sql` and, when the guard accepts it, starts it in the grant's workgroup as the
/// grant's own session. `database` (blank for none) must be one of the grant's. `run_token`
/// (the form's random token, if any) makes a form sent twice start one query.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn run(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    sql: &str,
    database: Option<&str>,
    run_token: Option<&str>,
) -> Result<Outcome, AppError> {
    let (request, view) = load(svc, who, id).await?;
    let granted = databases(&request);
    let database = match database.map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match granted.iter().find(|g| g.eq_ignore_ascii_case(d)) {
            Some(g) => Some(g.as_str()),
            None => {
                let reason = format!(
                    "database `{d}` is not part of this grant: choose one of {}",
                    granted.join(", ")
                );
                refused(svc, who, id, sql, Some(d), &reason).await?;
                return Ok(Outcome::Refused(reason));
            }
        },
    };
    let require_limit = evaluate(&svc.settings.policy, &request)
        .require_limit
        .is_some();
    // What runs is the guard's rendering of what it checked, never the text as typed.
    let sent = match guard(&request, sql, database, require_limit).await {
        Ok(sent) => sent,
        Err(reason) => {
            refused(svc, who, id, sql, database, &reason).await?;
            return Ok(Outcome::Refused(reason));
        }
    };
    let typed = sql;
    let sql = sent.as_str();

    let session = grant_session(svc, id, &view, Holder::Console).await?;
    let workgroup = workgroup(svc, id);
    let client_token = client_token(id, run_token);
    let run = QueryRun {
        workgroup: &workgroup,
        sql,
        database,
        client_token: client_token.as_deref(),
    };
    let query_id = match svc.cloud.athena_as(&session).start_query(&run).await {
        Ok(query_id) => query_id,
        Err(e) => {
            if let Some(m) = statement_rejected(&e) {
                let reason = format!("Athena did not accept the statement: {m}");
                refused(svc, who, id, sql, database, &reason).await?;
                return Ok(Outcome::Refused(reason));
            }
            return Err(session_error(svc, id, e));
        }
    };
    let now = svc.clock.now();
    let started = QueryExecution {
        id: query_id.clone(),
        sql: sql.to_owned(),
        database: database.map(ToOwned::to_owned),
        state: QueryState::Queued,
        state_change_reason: None,
        bytes_scanned: 0,
        engine_ms: 0,
        submitted_at: Some(now),
        completed_at: None,
    };
    let recorded = in_tx(svc, async |tx: &mut PgConnection| {
        // A form sent twice gets the same query back from Athena: recorded and audited once.
        if usage::record_console_start(&mut *tx, id, &started, now).await? {
            record(
                &mut *tx,
                now,
                Some(id),
                Some(&actor(who)),
                AuditAction::QueryStarted,
                json!({
                    "query_id": query_id,
                    "database": database,
                    "sql": clip(sql),
                    "typed_sql": (typed != sql).then(|| clip(typed)),
                    "access_key_id": session.access_key_id,
                }),
            )
            .await?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = recorded {
        // The statement runs; the monitor will record it, but the audit event is missing.
        tracing::error!(%query_id, error = %e, "a console query started but could not be recorded");
        return Err(e);
    }
    tracing::info!(%query_id, "console query started");
    Ok(Outcome::Started(query_id))
}

/// The guard's verdict, worked out off the async threads (parsing is CPU-bound and runs on a
/// thread of its own with a large stack): the statement to send Athena, or why not.
async fn guard(
    request: &AccessRequest,
    sql: &str,
    database: Option<&str>,
    require_limit: bool,
) -> Result<String, String> {
    let grant = request.resources.clone();
    let catalog = request.catalog_columns.clone();
    let sql = sql.to_owned();
    let database = database.map(ToOwned::to_owned);
    tokio::task::spawn_blocking(move || {
        let context = GuardContext {
            grant: &grant,
            catalog: &catalog,
            default_database: database.as_deref(),
            require_limit,
        };
        check(&sql, &context)
            .map(|checked| checked.sql)
            .map_err(|r| r.to_string())
    })
    .await
    .unwrap_or_else(|_| Err(lakegate_domain::sql_guard::Refusal::Internal.to_string()))
}

async fn refused(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    sql: &str,
    database: Option<&str>,
    reason: &str,
) -> Result<(), AppError> {
    let detail = json!({ "database": database, "sql": clip(sql), "reason": reason });
    audit(svc, who, id, AuditAction::QueryRefused, detail).await
}

/// Records one thing `who` did in the console, on its own.
async fn audit(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    action: AuditAction,
    detail: serde_json::Value,
) -> Result<(), AppError> {
    let now = svc.clock.now();
    in_tx(svc, async |tx: &mut PgConnection| {
        record(&mut *tx, now, Some(id), Some(&actor(who)), action, detail).await
    })
    .await
}

/// One query as Athena reports it now, asked with the grant's session.
async fn describe(
    svc: &Services,
    id: RequestId,
    session: &SessionCredentials,
    query_id: &str,
) -> Result<QueryExecution, AppError> {
    svc.cloud
        .athena_as(session)
        .query_execution(query_id)
        .await
        .map_err(|e| session_error(svc, id, e))
}

/// One page of a query's results, read with the grant's session.
async fn results_page(
    svc: &Services,
    id: RequestId,
    session: &SessionCredentials,
    query_id: &str,
    from: Option<&str>,
) -> Result<ResultPage, AppError> {
    svc.cloud
        .athena_as(session)
        .query_results(query_id, from, FETCH_ROWS)
        .await
        .map_err(|e| session_error(svc, id, e))
}

/// The grant's session and what the store knows of one of its queries.
async fn stored_query(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    query_id: &str,
) -> Result<(AccessRequest, SessionCredentials, StoredQuery), AppError> {
    let (request, view) = load(svc, who, id).await?;
    let stored = {
        let mut conn = svc.db.acquire().await?;
        usage::find(&mut conn, id, query_id)
            .await?
            .ok_or(AppError::NotFound)?
    };
    let session = grant_session(svc, id, &view, Holder::Console).await?;
    Ok((request, session, stored))
}

/// A query of the grant as Athena reports it now, with its first rows once it has succeeded.
/// With `wait`, a query still going is given a few seconds to finish first.
#[tracing::instrument(skip_all, fields(request_id = %id, query_id = %query_id))]
pub async fn show(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    query_id: &str,
    wait: bool,
) -> Result<QueryPage, AppError> {
    let (request, session, stored) = stored_query(svc, who, id, query_id).await?;
    let mut execution = describe(svc, id, &session, query_id).await?;
    if wait {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_FINISH;
        while !execution.state.is_final() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL_EVERY).await;
            execution = describe(svc, id, &session, query_id).await?;
        }
    }
    let (results, more_rows) = if execution.state == QueryState::Succeeded {
        let mut page = ResultPage::default();
        let mut from: Option<String> = None;
        // Athena pages hold up to 1000 rows; the page shows the first PAGE_ROWS.
        loop {
            let next = results_page(svc, id, &session, query_id, from.as_deref()).await?;
            if page.columns.is_empty() {
                page.columns = next.columns;
            }
            page.rows.extend(next.rows);
            from = next.next;
            if from.is_none() || page.rows.len() > PAGE_ROWS {
                break;
            }
        }
        let more = from.is_some() || page.rows.len() > PAGE_ROWS;
        page.rows.truncate(PAGE_ROWS);
        page.next = None;
        (Some(page), more)
    } else {
        (None, false)
    };
    Ok(query_page(
        svc, request, execution, stored, results, more_rows,
    ))
}

/// The page of a query: what Athena reports, what it costs, what the monitor recorded.
fn query_page(
    svc: &Services,
    request: AccessRequest,
    execution: QueryExecution,
    stored: StoredQuery,
    results: Option<ResultPage>,
    more_rows: bool,
) -> QueryPage {
    let price = svc.settings.monitor.price;
    QueryPage {
        billed_bytes: billed_bytes(execution.state, execution.bytes_scanned),
        cost: estimate_cost(execution.state, execution.bytes_scanned, price),
        request,
        execution,
        from_console: stored.from_console,
        flags: stored.flags,
        results,
        more_rows,
    }
}

/// A query of the grant as Athena reports it now, without its rows.
#[tracing::instrument(skip_all, fields(request_id = %id, query_id = %query_id))]
pub async fn status(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    query_id: &str,
) -> Result<QueryPage, AppError> {
    let (request, session, stored) = stored_query(svc, who, id, query_id).await?;
    let execution = describe(svc, id, &session, query_id).await?;
    Ok(query_page(svc, request, execution, stored, None, false))
}

/// A query of the grant as Athena reports it now and, once it has succeeded, one page of its
/// rows as Athena pages them (up to 1,000), from `cursor` (the `next` of the page before;
/// `None` for the first), read with the grant's session. Athena is asked about the query once.
#[tracing::instrument(skip_all, fields(request_id = %id, query_id = %query_id))]
pub async fn status_with_rows(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    query_id: &str,
    cursor: Option<&str>,
) -> Result<QueryPage, AppError> {
    let (request, session, stored) = stored_query(svc, who, id, query_id).await?;
    let execution = describe(svc, id, &session, query_id).await?;
    let results = if execution.state == QueryState::Succeeded {
        Some(results_page(svc, id, &session, query_id, cursor).await?)
    } else {
        None
    };
    let more_rows = results.as_ref().is_some_and(|p| p.next.is_some());
    Ok(query_page(
        svc, request, execution, stored, results, more_rows,
    ))
}

/// Stops a query of the grant that is still going.
#[tracing::instrument(skip_all, fields(request_id = %id, query_id = %query_id))]
pub async fn stop(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    query_id: &str,
) -> Result<Stopped, AppError> {
    let (_, session, _) = stored_query(svc, who, id, query_id).await?;
    let execution = describe(svc, id, &session, query_id).await?;
    if execution.state.is_final() {
        return Ok(Stopped::AlreadyFinished(execution.state));
    }
    svc.cloud
        .athena_as(&session)
        .stop_query(query_id)
        .await
        .map_err(|e| session_error(svc, id, e))?;
    let detail = json!({ "query_id": query_id, "state": execution.state.as_str() });
    audit(svc, who, id, AuditAction::QueryStopped, detail).await?;
    Ok(Stopped::Stopped)
}

/// Every row of a succeeded query as CSV, a page of Athena's results at a time. Each page is
/// read with the grant's current session, after checking the grant is still active: a long
/// download outlives a cached session, and stops when the grant ends.
pub struct CsvResults {
    svc: Services,
    id: RequestId,
    query_id: String,
    /// Where the next page starts; `None` before the first.
    next: Option<String>,
    started: bool,
    done: bool,
}

impl std::fmt::Debug for CsvResults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvResults")
            .field("query_id", &self.query_id)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CsvResults {
    /// The next piece of the file (the header with the first rows, then more rows); `None`
    /// once every row has been given.
    pub async fn next_chunk(&mut self) -> Result<Option<String>, AppError> {
        if self.done {
            return Ok(None);
        }
        let view = {
            let mut conn = self.svc.db.acquire().await?;
            requests::credentials_view(&mut conn, self.id)
                .await?
                .ok_or(AppError::NotFound)?
        };
        let session = grant_session(&self.svc, self.id, &view, Holder::Console).await?;
        let page = results_page(
            &self.svc,
            self.id,
            &session,
            &self.query_id,
            self.next.as_deref(),
        )
        .await?;
        let mut out = String::new();
        if !self.started {
            out.push_str(&csv_record(page.columns.iter().map(|c| Some(c.as_str()))));
            self.started = true;
        }
        for row in &page.rows {
            out.push_str(&csv_record(row.iter().map(Option::as_deref)));
        }
        self.next = page.next;
        self.done = self.next.is_none();
        Ok(Some(out))
    }
}

/// The results of a succeeded query of the grant, to download as CSV.
#[tracing::instrument(skip_all, fields(request_id = %id, query_id = %query_id))]
pub async fn csv(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    query_id: &str,
) -> Result<CsvResults, AppError> {
    let (_, session, _) = stored_query(svc, who, id, query_id).await?;
    let execution = describe(svc, id, &session, query_id).await?;
    if execution.state != QueryState::Succeeded {
        return Err(AppError::Invalid(lakegate_domain::ValidationError::new(
            format!(
                "the query is {}: results can be downloaded once it has succeeded",
                execution.state.as_str().to_lowercase()
            ),
        )));
    }
    Ok(CsvResults {
        svc: svc.clone(),
        id,
        query_id: query_id.to_owned(),
        next: None,
        started: false,
        done: false,
    })
}

/// How long a query has run (or ran), for its page.
pub fn elapsed(execution: &QueryExecution, now: time::OffsetDateTime) -> Option<Duration> {
    let start = execution.submitted_at?;
    Some(execution.completed_at.unwrap_or(now) - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_bound_to_the_grant_and_need_a_plausible_form_token() {
        let a = RequestId(uuid::Uuid::from_u128(1));
        let b = RequestId(uuid::Uuid::from_u128(2));
        let form = "0123456789abcdef0123456789abcdef";
        let ta = client_token(a, Some(form)).unwrap();
        assert_eq!(ta.len(), 64, "within Athena's 32 to 128 characters");
        assert_eq!(client_token(a, Some(form)), Some(ta.clone()), "stable");
        assert_ne!(
            client_token(b, Some(form)),
            Some(ta),
            "another grant, another token"
        );
        assert_eq!(client_token(a, None), None);
        assert_eq!(client_token(a, Some("short")), None);
        assert_eq!(client_token(a, Some(&"x".repeat(129))), None);
        assert_eq!(client_token(a, Some("0123456789abcdef<script>")), None);
    }

    #[test]
    fn athena_errors_are_sorted_for_the_person() {
        let rejected = CloudError::Rejected(
            "athena:StartQueryExecution: InvalidRequestException: line 1:8: mismatched input"
                .into(),
        );
        assert!(statement_rejected(&rejected).is_some());
        let disabled =
            CloudError::Rejected("athena:StartQueryExecution: ExpiredTokenException".into());
        assert!(statement_rejected(&disabled).is_none());
        assert!(statement_rejected(&CloudError::Denied("AccessDenied".into())).is_none());
    }

    #[test]
    fn audit_sql_is_clipped_on_a_character_boundary() {
        let short = "select 1";
        assert_eq!(clip(short), short);
        let long = "é".repeat(AUDIT_SQL_CHARS + 5);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), AUDIT_SQL_CHARS + 1);
        assert!(clipped.ends_with('…'));
    }
}
