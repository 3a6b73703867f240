//! The guarded query console against a real PostgreSQL and a FakeCloud: what it runs, as
//! whom, what it refuses and why, who may use it, and how its queries join the grant's usage.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::Arc;

use lakegate_app::console::{self, Outcome, Stopped};
use lakegate_app::monitor::monitor_once;
use lakegate_app::requests::{self, SubmitInput, Submitted};
use lakegate_app::worker::work_once;
use lakegate_app::{AppError, Services, Settings};
use lakegate_domain::audit::AuditAction;
use lakegate_domain::ports::CloudError;
use lakegate_domain::usage::QueryState;
use lakegate_domain::{Principal, RequestId, RequestStatus};
use lakegate_store::{audit, usage};
use lakegate_testkit::{FakeCloud, FixedClock};
use sqlx::PgPool;
use time::macros::datetime;

/// Analysts get sales and hr tables at once; hr statements need a LIMIT.
const POLICY: &str = r#"
[defaults]
approver_groups = ["data-owners"]

[[rule]]
name = "sales"
match = ["sales.*"]
auto_approve = { requester_groups = ["analysts"], max_duration = "2h" }

[[rule]]
name = "hr"
match = ["hr.*"]
require_limit = true
auto_approve = { requester_groups = ["analysts"], max_duration = "2h" }
"#;

struct Harness {
    svc: Services,
    cloud: Arc<FakeCloud>,
    pool: PgPool,
}

fn alice() -> Principal {
    Principal::new("alice", "alice@example.com", None, ["analysts".into()]).unwrap()
}

fn bob() -> Principal {
    Principal::new("bob", "bob@example.com", None, ["analysts".into()]).unwrap()
}

fn owner() -> Principal {
    Principal::new("olga", "olga@example.com", None, ["data-owners".into()]).unwrap()
}

impl Harness {
    fn new(pool: PgPool) -> Self {
        let clock = Arc::new(FixedClock::at(datetime!(2026-05-01 09:00 UTC)));
        let cloud = Arc::new(FakeCloud::with_sample_catalog().with_clock(clock.clone()));
        let settings = Settings::for_tests()
            .with_policy_toml(POLICY)
            .with_results("s3://results/lakegate/");
        let svc = Services::new(pool.clone(), cloud.clone(), clock, settings);
        Self { svc, cloud, pool }
    }

    /// An active grant of `resources` for `who`.
    async fn grant(&self, who: &Principal, resources: &str) -> RequestId {
        let (id, outcome) = requests::submit(
            &self.svc,
            who,
            SubmitInput {
                resources,
                duration: "1h",
                reason: "reconcile the April revenue report",
                break_glass: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(outcome, Submitted::AutoApproved);
        assert_eq!(work_once(&self.svc, "t").await.unwrap().activated, [id]);
        id
    }

    async fn audit_count(&self, id: RequestId, action: AuditAction) -> i64 {
        let mut conn = self.pool.acquire().await.unwrap();
        audit::count_for_request(&mut conn, id, action)
            .await
            .unwrap()
    }

    async fn run(&self, who: &Principal, id: RequestId, sql: &str, db: Option<&str>) -> Outcome {
        console::run(&self.svc, who, id, sql, db, None)
            .await
            .unwrap()
    }
}

fn started(outcome: Outcome) -> String {
    match outcome {
        Outcome::Started(id) => id,
        Outcome::Refused(why) => panic!("refused: {why}"),
    }
}

fn refused(outcome: Outcome) -> String {
    match outcome {
        Outcome::Refused(why) => why,
        Outcome::Started(id) => panic!("started {id}"),
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn an_accepted_statement_runs_as_the_grants_own_session(pool: PgPool) {
    let h = Harness::new(pool);
    let id = h.grant(&alice(), "sales.orders").await;
    h.cloud.queue_results(
        &["order_id", "status"],
        &[
            &[Some("1"), Some("shipped")],
            &[Some("2"), None],
            &[Some("3"), Some("held, \"pending\"")],
        ],
    );

    let q = started(
        h.run(
            &alice(),
            id,
            "SELECT order_id, status FROM orders LIMIT 3",
            Some("SALES"),
        )
        .await,
    );

    // It ran in the grant's workgroup, resolved against the grant's spelling of the database,
    // with a session of the grant's role: never the broker's own credentials.
    let state = h.cloud.state();
    let run = &state.console_runs[0];
    assert_eq!(run.query_id, q);
    assert_eq!(run.workgroup, format!("lakegate-{id}"));
    assert_eq!(run.database.as_deref(), Some("sales"));
    assert_eq!(
        state
            .session_roles
            .get(&run.access_key_id)
            .map(String::as_str),
        Some(format!("lakegate-{id}").as_str()),
        "the statement must run as a session of the grant's role"
    );
    let session = state.sessions.last().unwrap();
    assert!(session.session_name.contains("alice"), "{session:?}");

    // Recorded at once, as the console's, and audited.
    let mut conn = h.pool.acquire().await.unwrap();
    let stored = usage::find(&mut conn, id, &q).await.unwrap().unwrap();
    assert!(stored.from_console);
    assert_eq!(
        stored.execution.sql,
        "SELECT order_id, status FROM orders LIMIT 3"
    );
    drop(conn);
    assert_eq!(h.audit_count(id, AuditAction::QueryStarted).await, 1);

    // Its page: state, and the rows without the header.
    let page = console::show(&h.svc, &alice(), id, &q, true).await.unwrap();
    assert_eq!(page.execution.state, QueryState::Succeeded);
    assert!(page.from_console);
    let results = page.results.unwrap();
    assert_eq!(results.columns, ["order_id", "status"]);
    assert_eq!(results.rows.len(), 3);
    assert_eq!(results.rows[1], [Some("2".to_owned()), None]);
    assert!(!page.more_rows);

    // The CSV has every row, quoted where needed, NULL as an empty field.
    let mut csv = console::csv(&h.svc, &alice(), id, &q).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = csv.next_chunk().await.unwrap() {
        text.push_str(&chunk);
    }
    assert_eq!(
        text,
        "order_id,status\r\n1,shipped\r\n2,\r\n3,\"held, \"\"pending\"\"\"\r\n"
    );

    // A second statement reuses the cached session: one mint for the console.
    started(h.run(&alice(), id, "SELECT 1", None).await);
    let state = h.cloud.state();
    assert_eq!(state.console_runs.len(), 2);
    assert_eq!(
        state.console_runs[0].access_key_id,
        state.console_runs[1].access_key_id
    );
    assert_eq!(h.audit_count(id, AuditAction::CredentialsMinted).await, 1);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn refusals_say_why_and_run_nothing(pool: PgPool) {
    let h = Harness::new(pool);
    let id = h
        .grant(&alice(), "sales.orders: order_id, amount\nhr.employees")
        .await;

    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "DROP TABLE sales.orders",
            None,
            "are not allowed: the console only reads",
        ),
        ("SELECT 1; SELECT 2", None, "only one statement at a time"),
        (
            "SELECT * FROM sales.customers",
            None,
            "sales.customers is not part of this grant",
        ),
        ("SELECT email FROM sales.orders", None, "email"),
        (
            "SELECT * FROM orders",
            Some("marketing"),
            "database `marketing` is not part of this grant: choose one of hr, sales",
        ),
        ("SELECT name FROM hr.employees", None, "LIMIT"),
    ];
    for (sql, db, says) in cases {
        let why = refused(h.run(&alice(), id, sql, *db).await);
        assert!(why.contains(says), "{sql}: {why}");
    }
    assert!(h.cloud.state().console_runs.is_empty());
    assert_eq!(
        h.audit_count(id, AuditAction::QueryRefused).await,
        i64::try_from(cases.len()).unwrap()
    );
    // With the LIMIT the hr rule asks for (of every statement of a grant it applies to), it
    // runs.
    started(
        h.run(&alice(), id, "SELECT name FROM hr.employees LIMIT 5", None)
            .await,
    );

    // Athena's own refusal is shown, not a server error.
    h.cloud.fail_next(
        "start_query",
        CloudError::Rejected("InvalidRequestException: line 1:8: mismatched input".into()),
    );
    let why = refused(
        h.run(
            &alice(),
            id,
            "SELECT order_id FROM sales.orders LIMIT 1",
            None,
        )
        .await,
    );
    assert!(
        why.starts_with("Athena did not accept the statement"),
        "{why}"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn only_the_requester_of_an_active_grant_may_use_it(pool: PgPool) {
    let h = Harness::new(pool);
    let id = h.grant(&alice(), "sales.orders").await;
    let q = started(h.run(&alice(), id, "SELECT 1", None).await);

    // Not another requester, not an approver of the grant: the session is alice's alone.
    for who in [bob(), owner()] {
        let err = console::run(&h.svc, &who, id, "SELECT 1", None, None)
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
        let err = console::show(&h.svc, &who, id, &q, false)
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
        let err = console::csv(&h.svc, &who, id, &q).await.unwrap_err();
        assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
        let err = console::stop(&h.svc, &who, id, &q).await.unwrap_err();
        assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
        let err = console::open(&h.svc, &who, id, None).await.unwrap_err();
        assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
    }

    // A query id of another grant is not this grant's.
    let other = h.grant(&bob(), "sales.orders").await;
    let theirs = started(h.run(&bob(), other, "SELECT 2", None).await);
    let err = console::show(&h.svc, &alice(), id, &theirs, false)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound), "{err:?}");

    // Once revoked, nothing more runs and results are gone.
    requests::revoke(&h.svc, &alice(), id, Some("done"))
        .await
        .unwrap();
    let err = console::run(&h.svc, &alice(), id, "SELECT 1", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotUsable(_)), "{err:?}");
    let err = console::show(&h.svc, &alice(), id, &q, false)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotUsable(_)), "{err:?}");
    assert_eq!(h.cloud.state().console_runs.len(), 2);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn console_queries_join_the_grants_usage_and_can_be_stopped(pool: PgPool) {
    let h = Harness::new(pool);
    let id = h.grant(&alice(), "sales.orders").await;
    let q = started(
        h.run(&alice(), id, "SELECT * FROM sales.orders LIMIT 10", None)
            .await,
    );

    // Still running: the page says so, has no rows, and the download waits for success.
    h.cloud.set_query_state(&q, QueryState::Running, 5_000_000);
    let page = console::show(&h.svc, &alice(), id, &q, false)
        .await
        .unwrap();
    assert_eq!(page.execution.state, QueryState::Running);
    assert_eq!(page.execution.bytes_scanned, 5_000_000);
    assert!(page.results.is_none());
    let err = console::csv(&h.svc, &alice(), id, &q).await.unwrap_err();
    assert!(err.to_string().contains("once it has succeeded"), "{err}");

    assert_eq!(
        console::stop(&h.svc, &alice(), id, &q).await.unwrap(),
        Stopped::Stopped
    );
    let page = console::show(&h.svc, &alice(), id, &q, false)
        .await
        .unwrap();
    assert_eq!(page.execution.state, QueryState::Cancelled);
    assert_eq!(h.audit_count(id, AuditAction::QueryStopped).await, 1);
    // A finished query is left as it is, and nothing is recorded.
    assert_eq!(
        console::stop(&h.svc, &alice(), id, &q).await.unwrap(),
        Stopped::AlreadyFinished(QueryState::Cancelled)
    );
    assert_eq!(h.audit_count(id, AuditAction::QueryStopped).await, 1);

    // The monitor follows it like any query of the workgroup; it stays the console's.
    h.cloud
        .set_query_state(&q, QueryState::Succeeded, 25_000_000);
    monitor_once(&h.svc).await.unwrap();
    let mut conn = h.pool.acquire().await.unwrap();
    let stored = usage::find(&mut conn, id, &q).await.unwrap().unwrap();
    assert_eq!(stored.execution.state, QueryState::Succeeded);
    assert_eq!(stored.execution.bytes_scanned, 25_000_000);
    assert_eq!(stored.billed_bytes, 25_000_000);
    assert!(stored.from_console);
    assert_eq!(usage::totals(&mut conn, id).await.unwrap().0, 1);
    drop(conn);

    let console = console::open(&h.svc, &alice(), id, Some(&q)).await.unwrap();
    assert_eq!(console.databases, ["sales"]);
    assert_eq!(console.require_limit, None);
    assert_eq!(console.recent.len(), 1);
    assert_eq!(
        console.from.unwrap().execution.sql,
        "SELECT * FROM sales.orders LIMIT 10"
    );
    let none = console::open(&h.svc, &alice(), id, Some("no-such-query"))
        .await
        .unwrap();
    assert!(none.from.is_none());
    assert_eq!(console.request.status, RequestStatus::Active);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_form_sent_twice_starts_one_query(pool: PgPool) {
    let h = Harness::new(pool);
    let id = h.grant(&alice(), "sales.orders").await;
    let token = "0123456789abcdef0123456789abcdef";
    let sql = "SELECT order_id FROM sales.orders LIMIT 5";
    let who = alice();
    let run = |sql: &'static str| console::run(&h.svc, &who, id, sql, None, Some(token));

    let first = started(run(sql).await.unwrap());
    let again = started(run(sql).await.unwrap());
    assert_eq!(first, again, "a reload returns the query already started");
    assert_eq!(h.cloud.state().console_runs.len(), 1);
    assert_eq!(h.audit_count(id, AuditAction::QueryStarted).await, 1);

    // The same token with other SQL is Athena's to refuse, and says so.
    let why = refused(run("SELECT 1").await.unwrap());
    assert!(
        why.starts_with("Athena did not accept the statement"),
        "{why}"
    );
    // Without a token every submission is its own query.
    started(h.run(&alice(), id, sql, None).await);
    started(h.run(&alice(), id, sql, None).await);
    assert_eq!(h.cloud.state().console_runs.len(), 3);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_session_aws_no_longer_accepts_is_not_a_server_error(pool: PgPool) {
    let h = Harness::new(pool);
    let id = h.grant(&alice(), "sales.orders").await;
    let q = started(h.run(&alice(), id, "SELECT 1", None).await);

    // A revoke landing between lakegate's check and Athena's: the grant is not usable now.
    h.cloud.fail_next(
        "query_execution",
        CloudError::Denied("AccessDeniedException: sessions of the role are denied".into()),
    );
    let err = console::show(&h.svc, &alice(), id, &q, false)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotUsable(_)), "{err:?}");
    // The cached session was dropped: the next look mints a new one and works.
    let minted = h.audit_count(id, AuditAction::CredentialsMinted).await;
    console::show(&h.svc, &alice(), id, &q, false)
        .await
        .unwrap();
    assert_eq!(
        h.audit_count(id, AuditAction::CredentialsMinted).await,
        minted + 1
    );
    // Refusals that are not about the statement are not blamed on it.
    h.cloud.fail_next(
        "start_query",
        CloudError::Rejected("athena:StartQueryExecution: ExpiredTokenException".into()),
    );
    let err = console::run(&h.svc, &alice(), id, "SELECT 1", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Unavailable(_)), "{err:?}");
    assert_eq!(h.audit_count(id, AuditAction::QueryRefused).await, 0);
}
