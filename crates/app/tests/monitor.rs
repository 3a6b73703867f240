//! The query monitor against a real PostgreSQL and a FakeCloud whose queries the test scripts:
//! each query stored once and updated, no double counting across restarts, and the budget
//! rule (warning, cutoff lowered, revoked when spent).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::Arc;

use lakegate_app::monitor::{BUDGET_EXHAUSTED, MonitorReport, monitor_once};
use lakegate_app::requests::{self, SubmitInput, Submitted};
use lakegate_app::worker::work_once;
use lakegate_app::{Services, Settings};
use lakegate_domain::audit::AuditAction;
use lakegate_domain::ports::QueryExecution;
use lakegate_domain::usage::{QueryFlag, QueryState};
use lakegate_domain::{Principal, RequestId, RequestStatus};
use lakegate_store::{audit, requests as store_requests, usage};
use lakegate_testkit::{FakeCloud, FixedClock};
use sqlx::PgPool;
use time::macros::datetime;

const MB: i64 = 1_000_000;

/// sales: auto-approved for analysts, 50 MB per query, 100 MB in all; hr may be asked for
/// under [defaults].
const POLICY: &str = r#"
requestable = ["hr.*"]

[defaults]
approver_groups = ["data-owners"]

[[rule]]
name = "sales"
match = ["sales.*"]
query_scan_cutoff = "50MB"
scan_budget = "100MB"
auto_approve = { requester_groups = ["analysts"], max_duration = "2h" }
"#;

struct Harness {
    pool: PgPool,
    cloud: Arc<FakeCloud>,
    clock: Arc<FixedClock>,
}

impl Harness {
    fn new(pool: PgPool) -> Self {
        let clock = Arc::new(FixedClock::at(datetime!(2026-05-01 09:00 UTC)));
        let cloud = Arc::new(FakeCloud::with_sample_catalog().with_clock(clock.clone()));
        Self { pool, cloud, clock }
    }

    /// A fresh set of services over the same database and cloud: what a restart gives.
    fn services(&self) -> Services {
        let settings = Settings::for_tests()
            .with_policy_toml(POLICY)
            .with_results("s3://results/lakegate/");
        Services::new(
            self.pool.clone(),
            self.cloud.clone(),
            self.clock.clone(),
            settings,
        )
    }

    async fn active_grant(&self, svc: &Services) -> (RequestId, String) {
        let alice =
            Principal::new("alice", "alice@example.com", None, ["analysts".into()]).unwrap();
        let (id, outcome) = requests::submit(
            svc,
            &alice,
            SubmitInput {
                resources: "sales.orders",
                duration: "1h",
                reason: "reconcile the April revenue report",
                break_glass: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(outcome, Submitted::AutoApproved);
        assert_eq!(work_once(svc, "t").await.unwrap().activated, [id]);
        (id, format!("lakegate-{id}"))
    }

    async fn totals(&self, id: RequestId) -> (i64, i64, i64) {
        let mut conn = self.pool.acquire().await.unwrap();
        usage::totals(&mut conn, id).await.unwrap()
    }

    async fn audit_count(&self, id: RequestId, action: AuditAction) -> i64 {
        let mut conn = self.pool.acquire().await.unwrap();
        audit::count_for_request(&mut conn, id, action)
            .await
            .unwrap()
    }
}

fn query(id: &str, state: QueryState, bytes: i64) -> QueryExecution {
    QueryExecution {
        id: id.into(),
        sql: format!("SELECT * FROM sales.orders -- {id}"),
        database: Some("sales".into()),
        state,
        state_change_reason: None,
        bytes_scanned: bytes,
        engine_ms: 10,
        submitted_at: Some(datetime!(2026-05-01 09:01 UTC)),
        completed_at: state.is_final().then_some(datetime!(2026-05-01 09:02 UTC)),
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn each_query_is_stored_once_and_updated(pool: PgPool) {
    let h = Harness::new(pool);
    let svc = h.services();
    let (id, wg) = h.active_grant(&svc).await;

    h.cloud
        .set_queries(&wg, vec![query("q1", QueryState::Running, 5 * MB)]);
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!((r.new_queries, r.updated_queries), (1, 0));
    // Nothing moved: nothing written.
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r, MonitorReport::default());

    h.cloud.set_queries(
        &wg,
        vec![
            query("q1", QueryState::Succeeded, 30 * MB),
            query("q2", QueryState::Queued, 0),
        ],
    );
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!((r.new_queries, r.updated_queries), (1, 1));
    // 30 MB at $5 per TB: 150 micro-dollars; the queued query costs nothing yet.
    assert_eq!(h.totals(id).await, (2, 30 * MB, 150));

    // A restart looks again and counts nothing twice.
    let r = monitor_once(&h.services()).await.unwrap();
    assert_eq!(r, MonitorReport::default());
    assert_eq!(h.totals(id).await, (2, 30 * MB, 150));

    let mut conn = h.pool.acquire().await.unwrap();
    let stored = usage::list(&mut conn, id).await.unwrap();
    assert_eq!(stored.len(), 2);
    let q1 = stored.iter().find(|q| q.execution.id == "q1").unwrap();
    assert_eq!(q1.execution.state, QueryState::Succeeded);
    assert_eq!(q1.billed_bytes, 30 * MB);
    assert_eq!(q1.execution.sql, "SELECT * FROM sales.orders -- q1");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_budget_warns_lowers_the_cutoff_and_then_revokes(pool: PgPool) {
    let h = Harness::new(pool);
    let svc = h.services();
    let (id, wg) = h.active_grant(&svc).await;
    let cutoff = |h: &Harness| h.cloud.state().workgroups[&wg].bytes_scanned_cutoff;
    assert_eq!(cutoff(&h), 50 * MB);

    // 45 % spent: nothing to do.
    let mut queries = vec![query("q1", QueryState::Succeeded, 45 * MB)];
    h.cloud.set_queries(&wg, queries.clone());
    let r = monitor_once(&svc).await.unwrap();
    assert!(r.warned.is_empty() && r.cutoff_lowered.is_empty() && r.exhausted.is_empty());

    // 82 %: the warning, once; 18 MB left, below the 50 MB cutoff: lowered to 18 MB.
    queries.push(query("q2", QueryState::Succeeded, 37 * MB));
    h.cloud.set_queries(&wg, queries.clone());
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r.warned, [id]);
    assert_eq!(r.cutoff_lowered, [(id, 18 * MB)]);
    assert_eq!(cutoff(&h), 18 * MB);
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r, MonitorReport::default(), "no second warning, no change");
    assert_eq!(h.audit_count(id, AuditAction::BudgetWarning).await, 1);
    assert_eq!(h.audit_count(id, AuditAction::BudgetCutoffLowered).await, 1);

    // 94 % with a query still running: less than Athena's 10 MB minimum is left, so the
    // running query is stopped and the grant revoked.
    queries.push(query("q3", QueryState::Running, 12 * MB));
    h.cloud.set_queries(&wg, queries);
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r.exhausted, [id]);
    let states: Vec<QueryState> = h.cloud.state().queries[&wg]
        .iter()
        .map(|q| q.state)
        .collect();
    assert_eq!(
        states,
        [
            QueryState::Succeeded,
            QueryState::Succeeded,
            QueryState::Cancelled
        ]
    );
    let mut conn = h.pool.acquire().await.unwrap();
    let r = store_requests::get(&mut conn, id).await.unwrap();
    assert_eq!(r.status, RequestStatus::Revoking);
    assert_eq!(r.end_reason.as_deref(), Some(BUDGET_EXHAUSTED));

    // The worker tears it down like any revoke.
    work_once(&svc, "t").await.unwrap();
    let r = store_requests::get(&mut conn, id).await.unwrap();
    assert_eq!(r.status, RequestStatus::Revoked);
    assert!(h.cloud.leftovers(&format!("lakegate-{id}"), &wg).is_empty());
    // The end of the grant records what it used.
    let events = audit::list_for_request(&mut conn, id).await.unwrap();
    let ended = events
        .iter()
        .find(|e| e.action == AuditAction::GrantEnded)
        .unwrap();
    assert_eq!(ended.detail["usage"]["queries"], 3);
    assert_eq!(ended.detail["usage"]["bytes_scanned"], 94 * MB);
    assert_eq!(ended.detail["usage"]["cancelled"], 1);
    // 45 + 37 + 12 MB, each billed as scanned (whole MB, over 10 MB), at $5 per TB.
    assert_eq!(ended.detail["usage"]["cost_micros"], 470);
    // An ended grant is no longer watched.
    assert_eq!(monitor_once(&svc).await.unwrap(), MonitorReport::default());
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn grants_without_a_budget_are_recorded_but_never_limited(pool: PgPool) {
    let h = Harness::new(pool);
    let svc = h.services();
    // hr falls under [defaults]: no budget; approved by a data owner.
    let alice = Principal::new("alice", "alice@example.com", None, []).unwrap();
    let bob = Principal::new("bob", "bob@example.com", None, ["data-owners".into()]).unwrap();
    let (id, _) = requests::submit(
        &svc,
        &alice,
        SubmitInput {
            resources: "hr.employees: name",
            duration: "1h",
            reason: "headcount report for the board",
            break_glass: false,
        },
    )
    .await
    .unwrap();
    requests::decide(
        &svc,
        &bob,
        id,
        lakegate_store::requests::Decision::Approve,
        None,
    )
    .await
    .unwrap();
    work_once(&svc, "t").await.unwrap();
    let wg = format!("lakegate-{id}");
    h.cloud.set_queries(
        &wg,
        vec![query("big", QueryState::Succeeded, 5_000_000 * MB)],
    );
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r.new_queries, 1);
    assert!(r.warned.is_empty() && r.exhausted.is_empty());
    assert_eq!(h.totals(id).await.1, 5_000_000 * MB);
    let mut conn = h.pool.acquire().await.unwrap();
    assert_eq!(
        store_requests::get(&mut conn, id).await.unwrap().status,
        RequestStatus::Active
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn finished_queries_are_flagged_once_and_the_flags_are_audited(pool: PgPool) {
    let h = Harness::new(pool);
    let svc = h.services();
    let (id, wg) = h.active_grant(&svc).await;
    let with = |mut q: QueryExecution, sql: &str, reason: Option<&str>| {
        q.sql = sql.into();
        q.state_change_reason = reason.map(Into::into);
        q
    };
    // sales.orders is partitioned by dt (the sample catalog).
    let unfiltered = with(
        query("q1", QueryState::Succeeded, 20 * MB),
        "SELECT * FROM orders",
        None,
    );
    let cut_off = with(
        query("q2", QueryState::Cancelled, 50 * MB),
        "SELECT order_id FROM sales.orders WHERE dt = '2026-04-01'",
        Some("Query cancelled! : Bytes scanned limit was exceeded"),
    );
    let running = with(
        query("q3", QueryState::Running, MB),
        "SELECT order_id FROM sales.orders",
        None,
    );
    h.cloud
        .set_queries(&wg, vec![unfiltered, cut_off, running.clone()]);
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r.flagged, 2, "a running query is judged when it finishes");
    let flags = |id: RequestId| {
        let pool = h.pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            usage::list(&mut conn, id)
                .await
                .unwrap()
                .into_iter()
                .map(|q| {
                    (
                        q.execution.id,
                        q.flags.iter().map(QueryFlag::as_str).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        flags(id).await,
        [
            ("q1".to_owned(), vec!["unfiltered_partition_scan"]),
            ("q2".to_owned(), vec!["cancelled_by_cutoff"]),
            ("q3".to_owned(), vec![]),
        ]
    );
    assert_eq!(h.audit_count(id, AuditAction::QueryFlagged).await, 2);

    // Looking again changes nothing; q3 finishing without a filter on dt is flagged then.
    assert_eq!(monitor_once(&svc).await.unwrap().flagged, 0);
    let mut queries = h.cloud.state().queries[&wg].clone();
    queries[2].state = QueryState::Succeeded;
    h.cloud.set_queries(&wg, queries);
    assert_eq!(monitor_once(&svc).await.unwrap().flagged, 1);
    assert_eq!(flags(id).await[2].1, ["unfiltered_partition_scan"]);
    assert_eq!(h.audit_count(id, AuditAction::QueryFlagged).await, 3);
}
