//! The real `lakegate` binary, started as the README says, against real peers: PostgreSQL, moto
//! (AWS_ENDPOINT_URL, as `scripts/test` sets it) and the npm `oidc-provider`. Sign-in through
//! the provider, key rotation without a restart, start-up refusals, metrics, secrets kept out
//! of the logs, and a graceful shutdown that finishes the request in flight.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;

use std::time::Duration;

use lakegate_testkit::peers::{OidcProvider, free_port};
use reqwest::StatusCode;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::aws_support::seed_catalog;
use crate::binary::{Browser, Lakegate, base_env, database_url, run_to_end, text_of};

const CLIENT_SECRET: &str = "lakegate-secret";

/// Environment variables for one `lakegate` process.
type Env = Vec<(String, String)>;

/// lakegate's settings for sign-in through `provider`.
fn oidc_env(provider: &OidcProvider) -> Vec<(String, String)> {
    [
        ("LAKEGATE_OIDC_ISSUER", provider.issuer.clone()),
        ("LAKEGATE_OIDC_CLIENT_ID", "lakegate".to_owned()),
        ("LAKEGATE_OIDC_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("LAKEGATE_OIDC_SCOPES", "groups".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

/// A metric's value in a Prometheus text page: the sample whose name and labels start with
/// `series` (e.g. `lakegate_requests{status="active"}`).
fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn signs_in_through_the_identity_provider_and_requests_access(pool: PgPool) {
    let db = seed_catalog("binsignin").await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(&base).await;
    // A policy with break-glass for analysts, so the flow notifies the webhook; the webhook's
    // secret is in its path, as with Slack's.
    let dir = std::env::temp_dir().join(format!("lakegate-binary-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[defaults]\napprover_groups = [\"data-owners\"]\n\n[[rule]]\nname = \"test\"\n\
             match = [\"{db}.*\"]\nbreak_glass = {{ groups = [\"analysts\"], max_duration = \"1h\" }}\n"
        ),
    )
    .unwrap();
    let webhook_secret = "T0000/B0000/w3bh00k-s3cr3t";
    let (hook_port, hook_bodies) = failing_webhook().await;
    let webhook = format!("http://127.0.0.1:{hook_port}/hooks/{webhook_secret}");
    let env = with(
        [base_env(&database_url(&pool), port), oidc_env(&provider)].concat(),
        &[
            ("LAKEGATE_POLICY", policy.to_str().unwrap()),
            ("LAKEGATE_NOTIFY_WEBHOOK_URL", &webhook),
        ],
    );
    let server = Lakegate::start(&env).await;

    // Ready, and says how people sign in.
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready = ready.text().await.unwrap();
    assert!(ready.contains(&provider.issuer), "{ready}");

    // Alice signs in at the provider and lands on the page she asked for.
    let alice = Browser::new(&base);
    let back = alice.sign_in_with_provider(&provider.issuer, "alice").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(
        back.location.as_deref(),
        Some(format!("{base}/requests/new").as_str())
    );
    let home = alice.get("/").await;
    assert!(home.body.contains("Alice Analyst"), "{}", home.body);

    // A personal API token, made on the settings page, acts as her on the JSON API.
    let made = alice
        .submit(
            "/settings/tokens",
            "/settings/tokens",
            &[("name", "laptop"), ("scopes", "requests:read")],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let api_token = text_of(&made.body, "#api-token");
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "alice@example.com", "{me}");
    assert_eq!(me["token"]["scopes"], serde_json::json!(["requests:read"]));

    // She asks for access, breaking the glass: active at once, approvers notified.
    let res = alice
        .submit(
            "/requests/new",
            "/requests",
            &[
                ("resources", &format!("{db}.orders")),
                ("duration", "1h"),
                // Text that tries to mention a whole channel and forge a second line.
                (
                    "reason",
                    "incident 42: orders are missing @channel <!here>\nlevel=INFO msg=forged",
                ),
                ("break_glass", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page_url = res.location.unwrap();
    let id = page_url.rsplit('/').next().unwrap().to_owned();
    let status = alice.wait_for_status(&page_url, "active").await;
    assert_eq!(status, "active", "{}", server.output());

    // Credentials twice: minted by STS, then from the cache.
    let creds = alice
        .submit(&page_url, &format!("/requests/{id}/credentials"), &[])
        .await;
    assert_eq!(creds.status, StatusCode::OK, "{}", creds.body);
    let url = text_of(&creds.body, "#credentials-url");
    let token = text_of(&creds.body, "#credentials-token");
    for _ in 0..2 {
        let r = reqwest::Client::new()
            .get(&url)
            .header("Authorization", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // The metrics moved with what happened.
    let page = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&page, r#"lakegate_requests{status="active"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        metric(&page, r#"lakegate_credentials_served_total{source="sts"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        metric(
            &page,
            r#"lakegate_credentials_served_total{source="cache"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert!(
        metric(
            &page,
            r#"lakegate_http_requests_total{route="/auth/callback",status="303"}"#
        ) == Some(1.0),
        "{page}"
    );
    assert!(
        metric(
            &page,
            r#"lakegate_aws_calls_total{service="iam",operation="CreateRole",outcome="ok"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{page}"
    );
    assert!(
        metric(&page, "lakegate_provision_duration_seconds_count").is_some_and(|n| n >= 1.0),
        "{page}"
    );

    // Nothing secret in anything lakegate printed: not the credentials token, not the client
    // secret, not the webhook's secret (its delivery failed, and the failure was logged).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !server
        .output()
        .contains("notification not delivered; trying again")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What reached the webhook (and the log) quotes the reason: no mention, no markup, no
    // second line.
    let bodies = hook_bodies.lock().unwrap().clone();
    let text = bodies
        .iter()
        .find_map(|b| b["text"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no notification reached the webhook: {bodies:?}"));
    assert!(text.starts_with("BREAK-GLASS: "), "{text}");
    assert!(
        text.contains("@\u{200B}channel &lt;!here&gt;\\nlevel=INFO msg=forged"),
        "{text:?}"
    );
    assert!(
        !text.contains('\n') && !text.contains("<!here>"),
        "{text:?}"
    );
    let logs = server.output();
    assert!(
        !logs.lines().any(|l| l.starts_with("level=INFO msg=forged")),
        "a forged log line:\n{logs}"
    );
    for secret in [
        token.as_str(),
        api_token.as_str(),
        CLIENT_SECRET,
        webhook_secret,
        "w3bh00k",
    ] {
        assert!(!logs.contains(secret), "`{secret}` is in the logs:\n{logs}");
    }
    // JSON lines, and a request's lines carry its request id.
    let callback_line = logs
        .lines()
        .find(|l| l.contains("/auth/callback"))
        .unwrap_or_else(|| panic!("no line for the callback:\n{logs}"));
    let json: serde_json::Value = serde_json::from_str(callback_line).unwrap();
    assert!(
        callback_line.contains("request_id") && json.is_object(),
        "{callback_line}"
    );
}

/// A webhook receiver that records every body it is sent and answers 500 to all of them, so
/// lakegate's delivery fails (and says so in its log). Returns its port and the bodies.
async fn failing_webhook() -> (
    u16,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use axum::extract::State;
    use axum::http::StatusCode as Status;
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route(
            "/{*path}",
            axum::routing::post(
                async |State(seen): State<
                    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
                >,
                       axum::Json(body): axum::Json<serde_json::Value>| {
                    seen.lock().unwrap().push(body);
                    Status::INTERNAL_SERVER_ERROR
                },
            ),
        )
        .with_state(std::sync::Arc::clone(&bodies));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, bodies)
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_providers_keys_rotate_without_a_restart(pool: PgPool) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut provider = OidcProvider::start(&base).await;
    let env = [base_env(&database_url(&pool), port), oidc_env(&provider)].concat();
    let server = Lakegate::start(&env).await;

    let alice = Browser::new(&base);
    let back = alice.sign_in_with_provider(&provider.issuer, "alice").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);

    // The provider comes back with a new signing key (a new `kid`).
    provider.restart().await;
    let bob = Browser::new(&base);
    let back = bob.sign_in_with_provider(&provider.issuer, "bob").await;
    assert_eq!(
        back.status,
        StatusCode::SEE_OTHER,
        "signed with the new key: {}\n{}",
        back.body,
        server.output()
    );
    assert!(bob.get("/").await.body.contains("Bob Owner"));
    assert!(
        server.output().contains("signing keys were fetched again"),
        "{}",
        server.output()
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn bad_settings_stop_start_up_with_the_setting_named(pool: PgPool) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(&base).await;
    let good = [base_env(&database_url(&pool), port), oidc_env(&provider)].concat();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let foreign = provider.issuer.replace("127.0.0.1", "localhost");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let cases: Vec<(Env, Vec<&str>)> = vec![
        // Nobody answers at the issuer.
        (
            with(
                good.clone(),
                &[
                    ("LAKEGATE_OIDC_ISSUER", &closed),
                    ("LAKEGATE_STARTUP_WAIT", "1s"),
                ],
            ),
            vec!["LAKEGATE_OIDC_ISSUER", &closed],
        ),
        // The provider answers, but names another issuer than the one configured.
        (
            with(
                good.clone(),
                &[
                    ("LAKEGATE_OIDC_ISSUER", &foreign),
                    ("LAKEGATE_STARTUP_WAIT", "1s"),
                ],
            ),
            vec!["LAKEGATE_OIDC_ISSUER", "issuer"],
        ),
        (
            good.iter()
                .filter(|(k, _)| k != "LAKEGATE_OIDC_CLIENT_SECRET")
                .cloned()
                .collect(),
            vec!["LAKEGATE_OIDC_CLIENT_SECRET"],
        ),
        (
            with(good.clone(), &[("LAKEGATE_METRICS_LISTEN", &taken)]),
            vec!["LAKEGATE_METRICS_LISTEN"],
        ),
        (
            with(good.clone(), &[("LAKEGATE_SESSION_IDLE", "a while")]),
            vec!["LAKEGATE_SESSION_IDLE"],
        ),
        (
            with(good.clone(), &[("LAKEGATE_SHUTDOWN_TIMEOUT", "-3s")]),
            vec!["LAKEGATE_SHUTDOWN_TIMEOUT"],
        ),
        (
            with(good.clone(), &[("LAKEGATE_DEV_LOGIN", "true")]),
            vec!["LAKEGATE_DEV_LOGIN", "LAKEGATE_OIDC_ISSUER"],
        ),
        (
            with(
                base_env(&database_url(&pool), port),
                &[
                    ("LAKEGATE_DEV_LOGIN", "true"),
                    ("LAKEGATE_PUBLIC_URL", "https://lakegate.example.com"),
                ],
            ),
            vec!["LAKEGATE_PUBLIC_URL", "loopback"],
        ),
    ];
    for (env, says) in cases {
        let (status, output) = run_to_end(&env, &["serve"]).await;
        assert!(!status.success(), "started with {env:?}:\n{output}");
        for s in says {
            assert!(output.contains(s), "`{s}` not in:\n{output}");
        }
        assert!(!output.contains(CLIENT_SECRET), "{output}");
    }
    // `check-config` refuses the same, without connecting anywhere.
    let (status, output) = run_to_end(
        &with(good.clone(), &[("LAKEGATE_DEV_LOGIN", "true")]),
        &["check-config"],
    )
    .await;
    assert!(
        !status.success() && output.contains("must never sit beside the real one"),
        "{output}"
    );
    let (status, output) = run_to_end(&good, &["check-config"]).await;
    assert!(status.success(), "{output}");
    assert!(!output.contains(CLIENT_SECRET), "{output}");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn shutdown_finishes_the_request_in_flight(pool: PgPool) {
    let port = free_port();
    let env = with(
        base_env(&database_url(&pool), port),
        &[
            ("LAKEGATE_DEV_LOGIN", "true"),
            ("LAKEGATE_SHUTDOWN_TIMEOUT", "20s"),
        ],
    );
    let mut server = Lakegate::start(&env).await;

    // A form post whose body has not fully arrived: the handler is waiting for it.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let body = "email=alice%40example.com&groups=analysts";
    conn.write_all(
        format!(
            "POST /auth/dev HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            &body[..10]
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // New connections are no longer accepted...
    let refused = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "still accepting after SIGTERM");
    // ...but the request in flight is answered once its body arrives (403: it carries no CSRF
    // token, which is the handler's own answer).
    conn.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let status = server.wait(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}\n{}", server.output());
    assert!(
        server.output().contains("lakegate stopped"),
        "{}",
        server.output()
    );
}
