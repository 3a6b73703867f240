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

/// Fetches the credentials URL with `token`: the status.
async fn fetch(url: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(url)
        .header("authorization", token)
        .send()
        .await
        .unwrap()
        .status()
}

/// Polls until the credentials URL answers `wanted` (at most 5 s): how long it took.
async fn until_answers(url: &str, token: &str, wanted: StatusCode) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let got = fetch(url, token).await;
        if got == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {got}, not {wanted}, after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_new_token_or_a_revoke_on_one_replica_holds_on_the_other_at_once(pool: PgPool) {
    let db = seed_catalog("live").await;
    let db_url = database_url(&pool);
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let mut env = base_env(&db_url, port);
        env.push(("LAKEGATE_DEV_LOGIN".to_owned(), "true".to_owned()));
        replicas.push(Lakegate::start(&env).await);
    }
    let (a, b) = (&replicas[0].base, &replicas[1].base);
    let alice = Browser::signed_in_dev(a, "alice@example.com", "analysts").await;
    let bob = Browser::signed_in_dev(a, "bob@example.com", "data-owners").await;
    let res = alice
        .submit(
            "/requests/new",
            "/requests",
            &[
                ("resources", &format!("{db}.orders")),
                ("duration", "1h"),
                ("reason", "two replicas, one grant"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let path = res.location.unwrap();
    let id = path.rsplit('/').next().unwrap().to_owned();
    bob.submit(&path, &format!("{path}/approve"), &[]).await;
    assert_eq!(alice.wait_for_status(&path, "active").await, "active");

    // A token made on A works on B (B's memory learns the grant and its token).
    let token = |page: &str| crate::binary::text_of(page, "#credentials-token");
    let first = token(
        &alice
            .submit(&path, &format!("{path}/credentials"), &[])
            .await
            .body,
    );
    let on_b = format!("{b}/credentials/{id}");
    until_answers(&on_b, &first, StatusCode::OK).await;

    // A new token on A: B refuses the old one and takes the new one.
    let second = token(
        &alice
            .submit(&path, &format!("{path}/credentials"), &[])
            .await
            .body,
    );
    let took = until_answers(&on_b, &first, StatusCode::FORBIDDEN).await;
    eprintln!("the old token was refused on the other replica {took:?} after the new one");
    assert_eq!(fetch(&on_b, &second).await, StatusCode::OK);

    // Revoked on A: B stops answering.
    let res = alice.submit(&path, &format!("{path}/revoke"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let took = until_answers(&on_b, &second, StatusCode::FORBIDDEN).await;
    eprintln!("the revoke held on the other replica {took:?} after it was made");
    let body: serde_json::Value = reqwest::Client::new()
        .get(&on_b)
        .header("authorization", &second)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["code"], "GrantNotActive", "{body}");
    assert!(
        replicas[1]
            .output()
            .contains("credentials are answered from memory"),
        "{}",
        replicas[1].output()
    );
}
