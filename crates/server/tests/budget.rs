//! The scan budget end to end against moto, through the test proxy (moto reports 0 bytes
//! scanned and lacks BatchGetQueryExecution and UpdateWorkGroup): queries with injected scan
//! sizes push a grant to the warning, then below its cutoff, then past its budget.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/proxied.rs"]
mod proxied_support;

use lakegate_app::monitor::{BUDGET_EXHAUSTED, monitor_once};
use lakegate_app::worker::work_once;
use lakegate_domain::RequestStatus;
use lakegate_domain::audit::AuditAction;
use sqlx::PgPool;

use crate::aws_support::leftovers;
use crate::proxied_support::{Proxied, active_grant, proxied};

const MB: i64 = 1_000_000;

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_grant_is_warned_limited_and_revoked_as_its_budget_runs_out(pool: PgPool) {
    let Proxied { proxy, svc, db, .. } = proxied(
        &pool,
        "budget",
        "query_scan_cutoff = \"50MB\"\nscan_budget = \"100MB\"\n\
         auto_approve = { requester_groups = [\"analysts\"], max_duration = \"2h\" }",
    )
    .await;
    let resources = format!("{db}.orders");
    let id = active_grant(&svc, &resources, "metered reconciliation").await;
    let workgroup = format!("lakegate-{id}");

    // Queries in the grant's workgroup, each scanning what the test says.
    // (Started straight in moto, as a person's CLI would; the proxy reports their scan sizes.)
    let athena = aws_sdk_athena::Client::new(
        &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    );
    let run = |bytes: i64| {
        let athena = athena.clone();
        let workgroup = workgroup.clone();
        let resources = resources.clone();
        let proxy = &proxy;
        async move {
            let q = athena
                .start_query_execution()
                .query_string(format!("SELECT order_id FROM {resources}"))
                .work_group(&workgroup)
                .send()
                .await
                .unwrap();
            proxy.set_scanned(q.query_execution_id().unwrap(), bytes);
        }
    };
    let audit = |action: AuditAction| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            lakegate_store::audit::count_for_request(&mut conn, id, action)
                .await
                .unwrap()
        }
    };

    run(45 * MB).await;
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r.new_queries, 1);
    assert!(r.warned.is_empty() && r.cutoff_lowered.is_empty());
    assert_eq!(proxy.workgroup(&workgroup), None, "the cutoff is untouched");

    // 82 MB of 100: the warning, and the cutoff lowered to the 18 MB left.
    run(37 * MB).await;
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r.warned, [id]);
    assert_eq!(r.cutoff_lowered, [(id, 18 * MB)]);
    assert_eq!(
        proxy.workgroup(&workgroup).unwrap().bytes_scanned_cutoff,
        Some(18 * MB)
    );
    assert_eq!(audit(AuditAction::BudgetWarning).await, 1);

    // 94 MB: less than Athena's 10 MB minimum is left. Revoked, with the reason.
    run(12 * MB).await;
    let r = monitor_once(&svc).await.unwrap();
    assert_eq!(r.exhausted, [id]);
    let mut conn = pool.acquire().await.unwrap();
    let grant = lakegate_store::requests::get(&mut conn, id).await.unwrap();
    assert_eq!(grant.status, RequestStatus::Revoking);
    assert_eq!(grant.end_reason.as_deref(), Some(BUDGET_EXHAUSTED));

    work_once(&svc, "w").await.unwrap();
    let grant = lakegate_store::requests::get(&mut conn, id).await.unwrap();
    assert_eq!(grant.status, RequestStatus::Revoked);
    assert_eq!(leftovers(&id.to_string()).await, Vec::<String>::new());
    // Found with BatchGetQueryExecution, through the proxy: moto alone cannot answer it.
    assert!(proxy.calls("BatchGetQueryExecution") >= 3);
}
