//! Operating lakegate, through the composition root the binary uses (`run::build`): readiness
//! that follows the database, and metrics on a listener of their own.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::time::Duration;

use clap::Parser;
use lakegate_server::cli::{Cli, Command};
use lakegate_server::config::ServeConfig;
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn database_url(pool: &PgPool) -> (String, String) {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set (scripts/test)");
    let db = pool.connect_options().get_database().unwrap().to_owned();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    (format!("{prefix}/{db}"), db)
}

/// `lakegate serve` with development sign-in on a port of its own, `extra` added.
async fn start(
    db_url: &str,
    extra: &[&str],
) -> (String, Option<std::net::SocketAddr>, CancellationToken) {
    lakegate_server::telemetry::init_for_test();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut argv = vec![
        "lakegate",
        "serve",
        "--database-url",
        db_url,
        "--listen",
        &addr,
        "--dev-login",
        "--results-location",
        "s3://lakegate-athena-results/lakegate/",
        "--permissions-boundary-arn",
        "arn:aws:iam::123456789012:policy/lakegate-boundary",
        // The tests share one moto: a sweep would take other tests' grants for orphans.
        "--sweep-interval",
        "off",
    ];
    argv.extend_from_slice(extra);
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let config = ServeConfig::try_from(&*args).unwrap();
    let app = lakegate_server::run::build(config, listener).await.unwrap();
    let metrics = app.metrics_addr();
    let token = CancellationToken::new();
    tokio::spawn(app.run(token.clone()));
    (format!("http://{addr}"), metrics, token)
}

/// Polls `url` until it answers `wanted` (at most 20 s); returns the body.
async fn until(url: &str, wanted: StatusCode) -> String {
    let http = reqwest::Client::new();
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(url).send().await {
            let status = r.status();
            last = r.text().await.unwrap_or_default();
            if status == wanted {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{url} did not answer {wanted} within 20 s; last answer: {last}");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn readiness_follows_the_database(pool: PgPool) {
    let (url, db) = database_url(&pool);
    let (base, _, token) = start(&url, &[]).await;
    let ready = until(&format!("{base}/readyz"), StatusCode::OK).await;
    assert!(ready.contains("\"ready\":true"), "{ready}");

    // The database goes away for lakegate: no new connections, the open ones ended.
    let admin_url = std::env::var("DATABASE_URL").unwrap();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!(
        r#"alter database "{db}" with allow_connections false"#
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&db)
        .execute(&mut admin)
        .await
        .unwrap();
    let not_ready = until(&format!("{base}/readyz"), StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(not_ready.contains("database"), "{not_ready}");
    // The process itself is fine: no restart wanted.
    until(&format!("{base}/healthz"), StatusCode::OK).await;

    // It comes back.
    sqlx::query(&format!(
        r#"alter database "{db}" with allow_connections true"#
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    until(&format!("{base}/readyz"), StatusCode::OK).await;
    token.cancel();
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn metrics_can_have_a_listener_of_their_own(pool: PgPool) {
    let (url, _) = database_url(&pool);
    let (base, metrics, token) = start(&url, &["--metrics-listen", "127.0.0.1:0"]).await;
    let metrics = metrics.expect("a metrics listener");
    until(&format!("{base}/healthz"), StatusCode::OK).await;
    let page = until(&format!("http://{metrics}/metrics"), StatusCode::OK).await;
    assert!(
        page.contains("lakegate_requests{status=\"pending\"} 0"),
        "{page}"
    );
    assert!(page.contains("lakegate_http_requests_total"), "{page}");
    // Not on the main listener, then.
    let main = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND);
    token.cancel();
}
