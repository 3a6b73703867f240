//! Two `lakegate serve` processes on one database and one moto (through the test proxy, which
//! counts every AWS call): the replicas share the work, and no grant is provisioned or torn down
//! twice.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;

use std::time::Duration;

use lakegate_testkit::aws_proxy::AwsProxy;
use lakegate_testkit::peers::free_port;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::aws_support::seed_catalog;
use crate::binary::{Browser, Lakegate, base_env, database_url};

const GRANTS: usize = 50;

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn two_replicas_provision_and_tear_down_each_grant_once(pool: PgPool) {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let db = seed_catalog("replicas").await;
    let db_url = database_url(&pool);

    let mut replicas = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let mut env = base_env(&db_url, port);
        env.extend(
            [
                ("LAKEGATE_DEV_LOGIN", "true"),
                ("LAKEGATE_MIN_DURATION", "1m"),
                ("AWS_ENDPOINT_URL", proxy.url()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        replicas.push(Lakegate::start(&env).await);
    }
    let people = |email: &str, groups: &str| {
        let email = email.to_owned();
        let groups = groups.to_owned();
        let replicas = &replicas;
        async move {
            let mut browsers = Vec::new();
            for r in replicas {
                browsers.push(Browser::signed_in_dev(&r.base, &email, &groups).await);
            }
            browsers
        }
    };
    let alice = people("alice@example.com", "analysts").await;
    let bob = people("bob@example.com", "data-owners").await;

    // Alice asks on one replica, Bob approves on the other.
    let mut ids = Vec::new();
    for i in 0..GRANTS {
        let res = alice[i % 2]
            .submit(
                "/requests/new",
                "/requests",
                &[
                    ("resources", &format!("{db}.orders")),
                    ("duration", "1m"),
                    ("reason", &format!("replica test, grant {i}")),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let page = res.location.unwrap();
        let id = page.rsplit('/').next().unwrap().to_owned();
        let path = format!("/requests/{id}");
        let res = bob[(i + 1) % 2]
            .submit(&path, &format!("{path}/approve"), &[])
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        ids.push(id);
    }

    // Every grant becomes active, then expires and is torn down.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let expired: i64 =
            sqlx::query_scalar("select count(*) from access_request where status = 'expired'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if usize::try_from(expired).unwrap() == GRANTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{expired} of {GRANTS} grants expired after 240 s; replica logs:\n{}\n{}",
            replicas[0].output(),
            replicas[1].output()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Each step once per grant, whichever replica took it.
    for op in [
        "CreateRole",
        "CreateWorkGroup",
        "BatchGrantPermissions",
        "DeleteWorkGroup",
        "DeleteRole",
    ] {
        assert_eq!(
            proxy.calls(op),
            u32::try_from(GRANTS).unwrap(),
            "{op} calls through the proxy"
        );
    }
    for action in ["grant.activated", "grant.ended"] {
        let per_request: Vec<i64> = sqlx::query_scalar(
            "select count(*) from audit_event where action = $1 group by request_id",
        )
        .bind(action)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(per_request.len(), GRANTS, "{action}");
        assert!(
            per_request.iter().all(|n| *n == 1),
            "{action}: {per_request:?}"
        );
    }
    for id in &ids {
        assert!(
            crate::aws_support::leftovers(id).await.is_empty(),
            "{id} left something in AWS"
        );
    }
}
