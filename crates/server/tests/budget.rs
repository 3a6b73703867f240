//! The scan budget end to end against moto, through the test proxy (moto reports 0 bytes
//! scanned and lacks BatchGetQueryExecution and UpdateWorkGroup): queries with injected scan
//! sizes push a grant to the warning, then below its cutoff, then past its budget.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;

use std::sync::Arc;

use lakegate_app::monitor::{BUDGET_EXHAUSTED, monitor_once};
use lakegate_app::requests::{self, SubmitInput, Submitted};
use lakegate_app::worker::work_once;
use lakegate_app::{MonitorSettings, Services, Settings, WorkerSettings};
use lakegate_aws::AwsCloudAccess;
use lakegate_domain::audit::AuditAction;
use lakegate_domain::policy_file::PolicyFile;
use lakegate_domain::{Principal, RequestStatus, ResultsLocation};
use lakegate_testkit::FixedClock;
use lakegate_testkit::aws_proxy::AwsProxy;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::aws_support::{leftovers, seed_catalog};

const MB: i64 = 1_000_000;

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_grant_is_warned_limited_and_revoked_as_its_budget_runs_out(pool: PgPool) {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let cloud = Arc::new(AwsCloudAccess::from_conf(&conf, None).await.unwrap());
    let db = seed_catalog("budget").await;
    let policy = format!(
        r#"
[defaults]
approver_groups = ["data-owners"]

[[rule]]
name = "metered"
match = ["{db}.*"]
query_scan_cutoff = "50MB"
scan_budget = "100MB"
auto_approve = {{ requester_groups = ["analysts"], max_duration = "2h" }}
"#
    );
    let settings = Settings {
        policy: PolicyFile::parse(&policy, "policy.toml").unwrap(),
        results: ResultsLocation::parse("s3://lakegate-athena-results/lakegate/").unwrap(),
        permissions_boundary_arn: "arn:aws:iam::123456789012:policy/lakegate-boundary".into(),
        worker: WorkerSettings::default(),
        monitor: MonitorSettings::default(),
    };
    let svc = Services::new(
        pool.clone(),
        cloud,
        Arc::new(FixedClock::at(OffsetDateTime::now_utc())),
        settings,
    );

    let alice = Principal::new("alice", "alice@example.com", None, ["analysts".into()]).unwrap();
    let resources = format!("{db}.orders");
    let (id, outcome) = requests::submit(
        &svc,
        &alice,
        SubmitInput {
            resources: &resources,
            duration: "1h",
            reason: "metered reconciliation",
            break_glass: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome, Submitted::AutoApproved);
    assert_eq!(work_once(&svc, "w").await.unwrap().activated, [id]);
    let workgroup = format!("lakegate-{id}");

    // Queries in the grant's workgroup, each scanning what the test says.
    let athena = aws_sdk_athena::Client::new(&conf);
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
