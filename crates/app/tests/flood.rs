//! No grant holder can stall the worker: one grant's workgroup holds 20,000 failed queries of
//! 256 KB of SQL each (free to run from the CLI, as fast as one likes), and while the query
//! monitor works through them, another grant's revoke still denies its sessions within 2 s,
//! and the process's memory stays bounded. With a flood limit, the flooding grant is revoked.
//! The worker and the monitor run as the binary runs them: each on a task of its own.
//! Its own test binary: the memory it measures is this process's.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lakegate_app::monitor::{NEW_PER_LOOK, QUERY_FLOOD};
use lakegate_app::requests::{self, SubmitInput, Submitted};
use lakegate_app::{MonitorSettings, Services, Settings};
use lakegate_domain::{Principal, RequestId, RequestStatus};
use lakegate_store::{requests as store_requests, usage};
use lakegate_testkit::{FakeCloud, FixedClock};
use sqlx::PgPool;
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

const FLOOD: usize = 20_000;
const SQL_BYTES: usize = 256 * 1024;

const POLICY: &str = r#"
[defaults]
approver_groups = ["data-owners"]

[[rule]]
name = "sales"
match = ["sales.*"]
auto_approve = { requester_groups = ["analysts"], max_duration = "2h" }
"#;

fn alice() -> Principal {
    Principal::new("alice", "alice@example.com", None, ["analysts".into()]).unwrap()
}

fn services(pool: &PgPool, cloud: &Arc<FakeCloud>, flood_per_minute: u32) -> Services {
    let clock = Arc::new(FixedClock::at(datetime!(2026-05-01 09:00 UTC)));
    let monitor = MonitorSettings {
        interval: time::Duration::seconds(1),
        flood_per_minute,
        ..MonitorSettings::default()
    };
    Services::new(
        pool.clone(),
        cloud.clone(),
        clock,
        Settings::for_tests()
            .with_policy_toml(POLICY)
            .with_results("s3://results/lakegate/")
            .with_monitor(monitor),
    )
}

async fn grant(svc: &Services) -> RequestId {
    let (id, outcome) = requests::submit(
        svc,
        &alice(),
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
    id
}

/// The worker and the monitor on tasks of their own, as the binary runs them.
fn start(svc: &Services) -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(lakegate_app::worker::run(
        svc.clone(),
        "flood-test".into(),
        shutdown.clone(),
    ));
    tokio::spawn(lakegate_app::monitor::run(svc.clone(), shutdown.clone()));
    shutdown
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

async fn status(pool: &PgPool, id: RequestId) -> RequestStatus {
    let mut conn = pool.acquire().await.unwrap();
    store_requests::find(&mut conn, id)
        .await
        .unwrap()
        .unwrap()
        .status
}

/// This process's resident memory, in bytes (Linux).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_flood_of_queries_neither_delays_another_revoke_nor_grows_memory(pool: PgPool) {
    let cloud = Arc::new(FakeCloud::with_sample_catalog());
    let svc = services(&pool, &cloud, 0);
    let flooder = grant(&svc).await;
    let victim = grant(&svc).await;
    let shutdown = start(&svc);
    for id in [flooder, victim] {
        wait_for("active", Duration::from_secs(10), async || {
            status(&pool, id).await == RequestStatus::Active
        })
        .await;
    }
    let before = resident_bytes();
    cloud.flood(
        &format!("lakegate-{flooder}"),
        FLOOD,
        SQL_BYTES,
        time::OffsetDateTime::now_utc(),
    );

    // The monitor is busy with the flood: it has taken some in, far from all.
    wait_for("the monitor at work", Duration::from_secs(30), async || {
        let mut conn = pool.acquire().await.unwrap();
        !usage::known(&mut conn, flooder).await.unwrap().is_empty()
    })
    .await;

    let calls_before = cloud.state().calls.len();
    requests::revoke(&svc, &alice(), victim, Some("done early"))
        .await
        .unwrap();
    let denied = wait_for(
        "the victim's sessions denied",
        Duration::from_secs(2),
        async || {
            cloud.state().calls[calls_before..]
                .iter()
                .any(|c| c == "deny_all_sessions")
        },
    )
    .await;
    println!("revoke to sessions denied, while the monitor works a flood: {denied:?}");

    // The monitor goes on through the flood, a bounded number a look: a second look.
    let mut peak = resident_bytes();
    wait_for("the flood taken in", Duration::from_secs(120), async || {
        peak = peak.max(resident_bytes());
        let mut conn = pool.acquire().await.unwrap();
        usage::known(&mut conn, flooder).await.unwrap().len() > NEW_PER_LOOK
    })
    .await;
    shutdown.cancel();
    let grown = peak.saturating_sub(before);
    println!("resident memory grew by {} MB at most", grown / 1_000_000);
    // All of it at once would be 20,000 × 256 KB = 5 GB.
    assert!(grown < 300_000_000, "memory grew by {grown} bytes");
    // Only the first 16 KB of each query's SQL is kept.
    let (longest,): (i32,) =
        sqlx::query_as("select max(length(sql_text)) from athena_query where request_id = $1")
            .bind(flooder.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(longest <= 16 * 1024, "{longest}");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_query_flood_revokes_the_grant(pool: PgPool) {
    let cloud = Arc::new(FakeCloud::with_sample_catalog());
    let svc = services(&pool, &cloud, 600);
    let flooder = grant(&svc).await;
    let shutdown = start(&svc);
    wait_for("active", Duration::from_secs(10), async || {
        status(&pool, flooder).await == RequestStatus::Active
    })
    .await;
    cloud.flood(
        &format!("lakegate-{flooder}"),
        FLOOD,
        SQL_BYTES,
        time::OffsetDateTime::now_utc(),
    );
    wait_for("revoked for a flood", Duration::from_secs(60), async || {
        status(&pool, flooder).await == RequestStatus::Revoked
    })
    .await;
    shutdown.cancel();
    let mut conn = pool.acquire().await.unwrap();
    let request = store_requests::find(&mut conn, flooder)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.end_reason.as_deref(), Some(QUERY_FLOOD));
    // Taken in a look at a time: the limit was passed long before the whole flood was read.
    let seen = usage::known(&mut conn, flooder).await.unwrap().len();
    assert!(seen < FLOOD, "{seen}");
}
