//! Crashes of the real binary: a replica killed with SIGKILL in the middle of a provisioning
//! or a teardown step (an AWS call held in flight by the test proxy) hands its work to the
//! next replica within one lease, and the grant ends up active (or removed), with nothing left
//! behind in AWS.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;

use std::time::{Duration, Instant};

use lakegate_testkit::aws_proxy::{AwsProxy, Fault};
use lakegate_testkit::peers::free_port;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::aws_support::{leftovers, seed_catalog};
use crate::binary::{Browser, Lakegate, base_env, database_url};

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
