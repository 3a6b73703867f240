//! The whole binary over real TCP: PostgreSQL, moto (through AWS_ENDPOINT_URL, as
//! `scripts/test` sets it) and the AWS CLI as an independent client of the credentials URL.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use lakegate_server::cli::{Cli, Command as Sub};
use lakegate_server::config::ServeConfig;
use reqwest::StatusCode;
use scraper::{Html, Selector};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::aws_support::{leftovers, seed_catalog};

const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/lakegate-boundary";

fn require_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test"))
}

/// The URL of the database `#[sqlx::test]` made for this test.
fn database_url(pool: &PgPool) -> String {
    let base = require_env("DATABASE_URL");
    let db = pool.connect_options().get_database().unwrap().to_owned();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{db}")
}

struct Server {
    base: String,
    token: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(db_url: &str, listener: Option<TcpListener>) -> Self {
        lakegate_server::telemetry::init_for_test();
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listener.local_addr().unwrap();
        let cli = Cli::try_parse_from([
            "lakegate",
            "serve",
            "--database-url",
            db_url,
            "--listen",
            &addr.to_string(),
            "--dev-login",
            "--min-duration",
            "1m",
            "--results-location",
            "s3://lakegate-athena-results/lakegate/",
            "--permissions-boundary-arn",
            BOUNDARY,
            // The tests share one moto: a sweep would take other tests' grants for orphans.
            "--sweep-interval",
            "off",
        ])
        .unwrap();
        let Sub::Serve(args) = cli.command else {
            unreachable!()
        };
        let config = ServeConfig::try_from(&*args).unwrap();
        let token = CancellationToken::new();
        let handle = tokio::spawn(lakegate_server::run::serve(config, listener, token.clone()));
        let base = format!("http://{addr}");
        // Ready when /healthz answers.
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await
                && r.status() == StatusCode::OK
            {
                return Self {
                    base,
                    token,
                    handle,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("lakegate did not become healthy at {base}");
    }

    async fn stop(self) {
        self.token.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// A person with a browser-like HTTP client (cookies, no redirects followed).
struct Person {
    http: reqwest::Client,
    base: String,
}

fn csrf(html: &str) -> String {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(r#"input[name="csrf_token"]"#).unwrap();
    doc.select(&sel)
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned()
}

fn text_of(html: &str, selector: &str) -> String {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(selector).unwrap();
    doc.select(&sel)
        .next()
        .unwrap_or_else(|| panic!("no {selector} in {html}"))
        .text()
        .collect::<String>()
        .trim()
        .to_owned()
}

impl Person {
    async fn sign_in(server: &Server, email: &str, groups: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let p = Self {
            http,
            base: server.base.clone(),
        };
        let res = p
            .form(
                "/auth/dev",
                "/auth/dev",
                &[("email", email), ("groups", groups)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        p
    }

    async fn page(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn form(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = csrf(&self.page(page).await);
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.http
            .post(format!("{}{action}", self.base))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    async fn request(&self, table: &str, duration: &str) -> String {
        let res = self
            .form(
                "/requests/new",
                "/requests",
                &[
                    ("resources", table),
                    ("duration", duration),
                    ("reason", "end-to-end test of lakegate"),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "{}",
            res.text().await.unwrap()
        );
        let loc = res.headers()["location"].to_str().unwrap().to_owned();
        loc.trim_start_matches("/requests/").to_owned()
    }

    async fn status(&self, id: &str) -> String {
        text_of(&self.page(&format!("/requests/{id}")).await, "#status")
    }

    async fn wait_for(&self, id: &str, wanted: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let s = self.status(id).await;
            if s == wanted {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "request {id} is {s}, not {wanted}, after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Gets a token from the one-time credentials page: (url, token).
    async fn credentials(&self, id: &str) -> (String, String) {
        let res = self
            .form(
                &format!("/requests/{id}"),
                &format!("/requests/{id}/credentials"),
                &[],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.unwrap();
        (
            text_of(&html, "#credentials-url"),
            text_of(&html, "#credentials-token"),
        )
    }
}

/// Runs the AWS CLI with nothing but the given environment for credentials, off the async
/// runtime (the server under test runs on it and must answer the CLI).
async fn aws_cli(env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || aws_cli_blocking(&env, &args))
        .await
        .unwrap()
}

fn aws_cli_blocking(env: &[(String, String)], args: &[String]) -> std::process::Output {
    let endpoint = require_env("AWS_ENDPOINT_URL");
    let mut cmd = Command::new("aws");
    cmd.args([
        "--endpoint-url",
        &endpoint,
        "--region",
        "us-east-1",
        "--output",
        "json",
    ]);
    cmd.args(args);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| {
        panic!("could not run the AWS CLI (`aws`; scripts/test puts it on PATH): {e}")
    })
}

fn caller_arn(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "aws failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    v["Arn"].as_str().unwrap().to_owned()
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn request_approve_and_the_aws_cli_gets_the_ephemeral_role(pool: PgPool) {
    let db = seed_catalog("e2e").await;
    let server = Server::start(&database_url(&pool), None).await;
    let alice = Person::sign_in(&server, "alice@example.com", "analysts").await;
    let bob = Person::sign_in(&server, "bob@example.com", "data-owners").await;

    // Self-approval is refused.
    let own = bob.request(&format!("{db}.orders"), "30m").await;
    let res = bob
        .form(
            &format!("/requests/{own}"),
            &format!("/requests/{own}/approve"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(bob.status(&own).await, "pending");

    let id = alice
        .request(&format!("{db}.orders: order_id"), "30m")
        .await;
    let res = bob
        .form(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/approve"),
            &[("comment", "ok")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    alice.wait_for(&id, "active", Duration::from_secs(30)).await;

    let (url, token) = alice.credentials(&id).await;
    let expected = format!(
        "arn:aws:sts::123456789012:assumed-role/lakegate-{id}/alice@example.com-{}",
        &id[..8]
    );

    // 1. The container credentials provider (what every SDK reads).
    let out = aws_cli(
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.clone()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.clone()),
        ],
        &["sts", "get-caller-identity"],
    )
    .await;
    assert_eq!(caller_arn(&out), expected);

    // 2. A token file only its owner reads (what the credentials page has people write).
    let dir = std::env::temp_dir().join(format!("lakegate-e2e-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, &token).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = aws_cli(
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.clone()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ],
        &["sts", "get-caller-identity"],
    )
    .await;
    assert_eq!(caller_arn(&out), expected);

    // 3. A credential_process profile through `lakegate credentials`, the binary itself.
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile lakegate]\nregion = us-east-1\ncredential_process = {} credentials --url {url} --token-file {}\n",
            env!("CARGO_BIN_EXE_lakegate"),
            token_file.display()
        ),
    )
    .unwrap();
    let profile = [("AWS_CONFIG_FILE", config.display().to_string())];
    let whoami = ["--profile", "lakegate", "sts", "get-caller-identity"];
    let out = aws_cli(&profile, &whoami).await;
    assert_eq!(caller_arn(&out), expected);
    // A token file others can read is refused, and says how to fix it.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = aws_cli(&profile, &whoami).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A new token: the old one stops, and the role denies every session issued before it.
    let (_, new_token) = alice.credentials(&id).await;
    let out = aws_cli(&profile, &whoami).await;
    assert!(!out.status.success(), "the old token no longer works");
    let iam = aws_sdk_iam::Client::new(&aws_support::conf_at(None).await);
    let superseded = iam
        .get_role_policy()
        .role_name(format!("lakegate-{id}"))
        .policy_name("lakegate-superseded-sessions")
        .send()
        .await
        .expect("the role denies the sessions of the old token");
    let doc: serde_json::Value = serde_json::from_str(&lakegate_testkit::percent_decode(
        superseded.policy_document(),
    ))
    .unwrap();
    let statement = &doc["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    assert!(
        statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string(),
        "{doc}"
    );
    std::fs::write(&token_file, &new_token).unwrap();
    let out = aws_cli(&profile, &whoami).await;
    assert_eq!(caller_arn(&out), expected, "the new token works");
    let token = new_token;
    std::fs::remove_dir_all(&dir).unwrap();

    // A result Athena wrote for the grant, under its own prefix.
    let s3 = aws_support::results_s3(&aws_support::conf_at(None).await);
    // The bucket may exist already (moto is shared by the tests): either way it is there.
    let _ = s3
        .create_bucket()
        .bucket(aws_support::RESULTS_BUCKET)
        .send()
        .await;
    s3.put_object()
        .bucket(aws_support::RESULTS_BUCKET)
        .key(format!("lakegate/{id}/query-1.csv"))
        .body(b"order_id\n1\n".to_vec().into())
        .send()
        .await
        .unwrap();
    // The role, the workgroup, DESCRIBE on `default` and on the database, SELECT on the table,
    // the result.
    assert_eq!(
        leftovers(&id).await.len(),
        2 + 3 + 1,
        "role, workgroup, grants and results exist while active"
    );

    // Revoke: the URL refuses at once; role, workgroup, grants and results go.
    let res = alice
        .form(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let refused = reqwest::Client::new()
        .get(&url)
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let out = aws_cli(
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.clone()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.clone()),
        ],
        &["sts", "get-caller-identity"],
    )
    .await;
    assert!(
        !out.status.success(),
        "the CLI gets no credentials after revoke"
    );
    alice
        .wait_for(&id, "revoked", Duration::from_secs(30))
        .await;
    assert_eq!(leftovers(&id).await, Vec::<String>::new());
    server.stop().await;
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_one_minute_grant_is_reaped_right_after_expiry(pool: PgPool) {
    let db = seed_catalog("e2e").await;
    let server = Server::start(&database_url(&pool), None).await;
    let alice = Person::sign_in(&server, "alice@example.com", "analysts").await;
    let bob = Person::sign_in(&server, "bob@example.com", "data-owners").await;
    let id = alice.request(&format!("{db}.orders"), "1m").await;
    bob.form(
        &format!("/requests/{id}"),
        &format!("/requests/{id}/approve"),
        &[],
    )
    .await;
    alice.wait_for(&id, "active", Duration::from_secs(30)).await;
    let (url, token) = alice.credentials(&id).await;
    let ok = reqwest::Client::new()
        .get(&url)
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // The worker sleeps until the expiry itself, not a fixed tick: expired within seconds.
    alice
        .wait_for(&id, "expired", Duration::from_secs(60 + 15))
        .await;
    assert_eq!(leftovers(&id).await, Vec::<String>::new());
    let refused = reqwest::Client::new()
        .get(&url)
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_grant_that_expires_while_the_server_is_down_is_reaped_after_restart(pool: PgPool) {
    let db = seed_catalog("e2e").await;
    let url = database_url(&pool);
    let server = Server::start(&url, None).await;
    let alice = Person::sign_in(&server, "alice@example.com", "analysts").await;
    let bob = Person::sign_in(&server, "bob@example.com", "data-owners").await;
    let id = alice.request(&format!("{db}.orders"), "1m").await;
    bob.form(
        &format!("/requests/{id}"),
        &format!("/requests/{id}/approve"),
        &[],
    )
    .await;
    alice.wait_for(&id, "active", Duration::from_secs(30)).await;
    server.stop().await;

    let expires_at: time::OffsetDateTime =
        sqlx::query_scalar("select expires_at from access_request where request_id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let wait = expires_at - time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    let status: String =
        sqlx::query_scalar("select status from access_request where request_id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "active", "nothing ran while the server was down");
    assert_eq!(
        leftovers(&id).await.len(),
        2 + 3,
        "role, workgroup and grants are still there"
    );

    let server = Server::start(&url, None).await;
    let alice = Person::sign_in(&server, "alice@example.com", "analysts").await;
    alice
        .wait_for(&id, "expired", Duration::from_secs(15))
        .await;
    assert_eq!(leftovers(&id).await, Vec::<String>::new());
    server.stop().await;
}

#[test]
fn dev_sign_in_on_a_public_address_is_refused_at_start() {
    let cli = Cli::try_parse_from([
        "lakegate",
        "serve",
        "--database-url",
        "postgres://x/y",
        "--listen",
        "0.0.0.0:8080",
        "--dev-login",
        "--results-location",
        "s3://b/p/",
        "--permissions-boundary-arn",
        BOUNDARY,
    ])
    .unwrap();
    let Sub::Serve(args) = cli.command else {
        unreachable!()
    };
    let err = ServeConfig::try_from(&*args).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}
