//! Crashes of the real binary: a replica killed with SIGKILL in the middle of a provisioning
//! or a teardown step (an AWS call held in flight by the test proxy) hands its work to the
//! next replica within one lease, and the grant ends up active (or removed), with nothing left
//! behind in AWS.
//!
//! And the chaos suite: people ask, approve, fetch credentials and revoke through the API of
//! two replicas while replicas are killed at random points (`LAKEGATE_CHAOS_TRIALS` kills,
//! 100 with `scripts/test --long`), while AWS is unreachable for a minute, and while
//! PostgreSQL crashes and restarts. After recovery: no grant's credentials were handed out
//! past its end + 5 s, nothing of an ended grant is left in AWS, every request has each of its
//! audit events exactly once, and the audit trail verifies.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;
#[path = "support/chaos.rs"]
mod harness;
#[path = "support/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use lakegate_testkit::aws_proxy::{AwsProxy, Fault};
use lakegate_testkit::peers::free_port;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::aws_support::{leftovers, seed_catalog};
use crate::binary::{Browser, Lakegate, base_env, database_url};
use crate::harness::{
    Cluster, Dice, KILLING, Traffic, check_invariants, deny_lags, restart_postgres,
    restartable_database,
};
use crate::measure::setting;

async fn replica(db_url: &str, aws: &str) -> Lakegate {
    let port = free_port();
    let mut env = base_env(db_url, port);
    env.extend(
        [
            ("LAKEGATE_DEV_LOGIN", "true"),
            ("LAKEGATE_MIN_DURATION", "1m"),
            ("AWS_ENDPOINT_URL", aws),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    Lakegate::start(&env).await
}

async fn status_of(pool: &PgPool, id: &str) -> String {
    sqlx::query_scalar("select status from access_request where request_id = $1::uuid")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits (at most `within`) until the request is `wanted`; how long it took.
async fn wait_for(
    pool: &PgPool,
    id: &str,
    wanted: &str,
    within: Duration,
    survivor: &Lakegate,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = status_of(pool, id).await;
        if status == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still {status} after {within:?}, not {wanted}; the surviving replica's log:\n{}",
            survivor.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the proxy has seen a call of `operation`: the step is in flight.
async fn in_flight(proxy: &AwsProxy, operation: &str) {
    for _ in 0..300 {
        if proxy.calls(operation) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {operation} call reached the proxy");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_replica_killed_mid_step_hands_its_work_over_within_a_lease(pool: PgPool) {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let db = seed_catalog("chaos").await;
    let db_url = database_url(&pool);

    // Provisioning: the first CreateWorkGroup is held, and the replica making it is killed.
    proxy.fail("CreateWorkGroup", 1, Fault::Delay(Duration::from_secs(120)));
    let mut first = replica(&db_url, proxy.url()).await;
    let alice = Browser::signed_in_dev(&first.base, "alice@example.com", "analysts").await;
    let bob = Browser::signed_in_dev(&first.base, "bob@example.com", "data-owners").await;
    let res = alice
        .submit(
            "/requests/new",
            "/requests",
            &[
                ("resources", &format!("{db}.orders")),
                ("duration", "1h"),
                ("reason", "a replica dies while setting this up"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page = res.location.unwrap();
    let id = page.rsplit('/').next().unwrap().to_owned();
    let path = format!("/requests/{id}");
    let res = bob.submit(&path, &format!("{path}/approve"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    in_flight(&proxy, "CreateWorkGroup").await;
    first.kill().await;
    assert_eq!(status_of(&pool, &id).await, "approved");

    // Another replica takes the work over once the dead one's lease has run out (seconds, not
    // the minutes a lease without a heartbeat would need).
    let mut second = replica(&db_url, proxy.url()).await;
    let took = wait_for(&pool, &id, "active", Duration::from_secs(30), &second).await;
    eprintln!("provisioning resumed and finished {took:?} after the second replica started");

    // Teardown: the revoke's DeleteRole is held, and the replica making it is killed.
    proxy.fail("DeleteRole", 1, Fault::Delay(Duration::from_secs(120)));
    let alice = Browser::signed_in_dev(&second.base, "alice@example.com", "analysts").await;
    let res = alice.submit(&path, &format!("{path}/revoke"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    in_flight(&proxy, "DeleteRole").await;
    second.kill().await;
    assert_eq!(status_of(&pool, &id).await, "revoking");
    let third = replica(&db_url, proxy.url()).await;
    let took = wait_for(&pool, &id, "revoked", Duration::from_secs(30), &third).await;
    eprintln!("the teardown resumed and finished {took:?} after the third replica started");
    assert!(
        leftovers(&id).await.is_empty(),
        "the role, the workgroup or a grant of {id} is left"
    );
}

// ---------------------------------------------------------------------------------------------
// The chaos suite (its harness: tests/support/chaos.rs).
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn replicas_killed_at_random_points_leave_nothing_usable_or_behind(pool: PgPool) {
    let trials = setting("LAKEGATE_CHAOS_TRIALS", 6);
    let mut dice = Dice::seeded();
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    // Every AWS call takes a while: a kill lands in the middle of one more often.
    proxy.set_latency(Duration::from_millis(40));
    let table = seed_catalog("chaos").await;
    let db_url = database_url(&pool);
    let mut cluster = Cluster::start(&db_url, proxy.url(), 2).await;
    let traffic = Traffic::start(&cluster, &pool, &table, &mut dice).await;

    let started = Instant::now();
    let mut trial = 0;
    while trial < trials || started.elapsed() < KILLING {
        trial += 1;
        tokio::time::sleep(dice.between(Duration::from_secs(1), Duration::from_secs(5))).await;
        let victim = usize::try_from(dice.below(2)).unwrap();
        let busy: i64 =
            sqlx::query_scalar("select count(*) from access_request where lease_owner is not null")
                .fetch_one(&pool)
                .await
                .unwrap();
        eprintln!("trial {trial}: SIGKILL to replica {victim} ({busy} requests leased)");
        cluster.kill(victim).await;
        tokio::time::sleep(dice.between(Duration::ZERO, Duration::from_secs(2))).await;
        cluster.restart(victim).await;
    }
    let (rounds, seen) = traffic
        .finish(&pool, &cluster, Duration::from_secs(120))
        .await;
    let (p50, max, n) = deny_lags(&pool).await;
    eprintln!(
        "{trial} kills, {rounds} grants; {n} expired: expiry → sessions denied p50 {p50:.2} s, \
         max {max:.2} s"
    );
    check_invariants(&pool, &cluster, &seen).await;
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn aws_unreachable_for_a_minute_delays_work_but_loses_none(pool: PgPool) {
    let outage = Duration::from_secs(setting("LAKEGATE_CHAOS_OUTAGE_SECONDS", 60));
    let mut dice = Dice::seeded();
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let table = seed_catalog("outage").await;
    let db_url = database_url(&pool);
    let cluster = Cluster::start(&db_url, proxy.url(), 2).await;
    let traffic = Traffic::start(&cluster, &pool, &table, &mut dice).await;

    tokio::time::sleep(Duration::from_secs(8)).await;
    eprintln!("AWS unreachable for {outage:?}");
    proxy.set_unreachable(true);
    tokio::time::sleep(outage).await;
    proxy.set_unreachable(false);
    let cut = proxy.cut_calls();
    eprintln!("AWS reachable again; {cut} calls were cut meanwhile");
    assert!(cut > 0, "no AWS call was made during the outage");
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The worker's retries back off to about a minute after a minute of failures.
    let (rounds, seen) = traffic
        .finish(&pool, &cluster, Duration::from_secs(180))
        .await;
    eprintln!("{rounds} grants through a {outage:?} AWS outage");
    check_invariants(&pool, &cluster, &seen).await;
}

// Not `#[sqlx::test]`: its database lives on the PostgreSQL this test crashes.
#[tokio::test]
async fn postgres_crashing_mid_flight_loses_nothing() {
    let (dir, db_url) = restartable_database().await;
    let mut dice = Dice::seeded();
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    proxy.set_latency(Duration::from_millis(40));
    let table = seed_catalog("pgcrash").await;
    let cluster = Cluster::start(&db_url, proxy.url(), 2).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&db_url)
        .await
        .unwrap();
    let traffic = Traffic::start(&cluster, &pool, &table, &mut dice).await;

    for crash in 1..=2 {
        tokio::time::sleep(dice.between(Duration::from_secs(4), Duration::from_secs(10))).await;
        let took = restart_postgres(&dir).await;
        eprintln!("PostgreSQL crashed and restarted ({crash}/2) in {took:?}");
        // Both replicas ready again, on their own.
        let http = reqwest::Client::new();
        for i in 0..2 {
            let started = Instant::now();
            loop {
                let ready = http
                    .get(format!("{}/readyz", cluster.base(i)))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK);
                if ready {
                    eprintln!(
                        "replica {i} ready {:?} after the restart",
                        started.elapsed()
                    );
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "replica {i} not ready 30 s after PostgreSQL restarted:\n{}",
                    cluster.output()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rounds, seen) = traffic
        .finish(&pool, &cluster, Duration::from_secs(120))
        .await;
    eprintln!("{rounds} grants through two PostgreSQL crashes");
    check_invariants(&pool, &cluster, &seen).await;
}
