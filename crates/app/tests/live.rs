//! The live-grants view across replicas: two replicas on one database, one answering the
//! credentials URL from memory; a revoke, a new token or an extension made on the other takes
//! effect on it as soon as PostgreSQL announces the change, and a view that cannot listen is
//! not trusted (fetches read the database). Real PostgreSQL, FakeCloud, real time.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::Arc;
use std::time::Duration;

use lakegate_app::credentials::{self, issue_token};
use lakegate_app::requests::{self, SubmitInput};
use lakegate_app::worker::work_once;
use lakegate_app::{AppError, Services, Settings};
use lakegate_domain::{Principal, RequestId};
use lakegate_store::requests::Decision;
use lakegate_testkit::{FakeCloud, FixedClock};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

fn person(sub: &str, groups: &[&str]) -> Principal {
    Principal::new(
        sub,
        format!("{sub}@example.com"),
        None,
        groups.iter().map(|g| (*g).to_owned()),
    )
    .unwrap()
}

/// Two replicas: the same database, cloud and clock, each with its own memory.
fn replicas(pool: PgPool) -> (Services, Services) {
    let clock = Arc::new(FixedClock::at(time::OffsetDateTime::now_utc()));
    let cloud = Arc::new(FakeCloud::with_sample_catalog().with_clock(clock.clone()));
    let make = || {
        Services::new(
            pool.clone(),
            cloud.clone(),
            clock.clone(),
            Settings::for_tests().with_results("s3://results/lakegate/"),
        )
    };
    (make(), make())
}

async fn active_grant(svc: &Services) -> RequestId {
    let alice = person("alice", &["analysts"]);
    let (id, _) = requests::submit(
        svc,
        &alice,
        SubmitInput {
            resources: "sales.orders",
            duration: "1h",
            reason: "quarterly numbers",
            break_glass: false,
        },
    )
    .await
    .unwrap();
    requests::decide(
        svc,
        &person("dana", &["data-owners"]),
        id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    work_once(svc, "t").await.unwrap();
    id
}

/// Waits (at most 5 s) until `done` holds of the replica's answers.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_change_on_one_replica_takes_effect_on_the_other_at_once(pool: PgPool) {
    let (a, b) = replicas(pool);
    let alice = person("alice", &["analysts"]);
    let first = active_grant(&b).await;
    let token = issue_token(&b, &alice, first).await.unwrap().token;

    // Replica A listens, reads every active grant, and answers from memory.
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(lakegate_app::live::run(a.clone(), shutdown.clone()));
    eventually("the view trusted", async || a.live.is_trusted()).await;
    assert!(a.live.active(first).is_some());
    credentials::mint(&a, first, &token).await.unwrap();
    assert!(matches!(
        credentials::mint(&a, first, "lgc_wrong").await,
        Err(AppError::Unauthorized(_))
    ));

    // A grant activated on B is in A's memory without a full re-read.
    let second = active_grant(&b).await;
    eventually("the new grant in A's memory", async || {
        a.live.active(second).is_some()
    })
    .await;

    // A new token on B: A refuses the old one and takes the new one.
    let new_token = issue_token(&b, &alice, first).await.unwrap().token;
    eventually("the old token refused on A", async || {
        matches!(
            credentials::mint(&a, first, &token).await,
            Err(AppError::Unauthorized(_))
        )
    })
    .await;
    credentials::mint(&a, first, &new_token).await.unwrap();

    // Revoked on B: A stops answering at once, whatever its memory held.
    requests::revoke(&b, &alice, first, None).await.unwrap();
    eventually("the revoke effective on A", async || {
        matches!(
            credentials::mint(&a, first, &new_token).await,
            Err(AppError::NotUsable(_))
        )
    })
    .await;
    assert!(a.live.active(first).is_none());
    assert!(
        a.live.active(second).is_some(),
        "the other grant is untouched"
    );

    shutdown.cancel();
    task.await.unwrap();
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn without_its_listener_the_view_is_not_trusted(pool: PgPool) {
    let (a, b) = replicas(pool.clone());
    let alice = person("alice", &["analysts"]);
    let id = active_grant(&b).await;
    let token = issue_token(&b, &alice, id).await.unwrap().token;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(lakegate_app::live::run(a.clone(), shutdown.clone()));
    eventually("the view trusted", async || a.live.is_trusted()).await;

    // The listening connection is killed from the server side: the view is distrusted (and
    // fetches read the database) until it listens and reads everything again.
    let killed: i64 = sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(killed >= 1, "no listening connection to kill");
    // A revoke while nobody listens is not missed: the view is read in full once it is back.
    requests::revoke(&b, &alice, id, None).await.unwrap();
    eventually("the view trusted again", async || {
        a.live.is_trusted() && a.live.active(id).is_none()
    })
    .await;
    assert!(matches!(
        credentials::mint(&a, id, &token).await,
        Err(AppError::NotUsable(_))
    ));
    shutdown.cancel();
    task.await.unwrap();
}
