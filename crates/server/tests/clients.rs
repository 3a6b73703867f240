//! Independent clients against the real binary: schemathesis (PyPI) reads the OpenAPI
//! document lakegate serves and throws generated requests at every operation.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;

use std::time::Duration;

use lakegate_testkit::peers::free_port;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::aws_support::seed_catalog;
use crate::binary::{Browser, Lakegate, base_env, database_url, text_of};

const ALL_SCOPES: [&str; 6] = [
    "requests:read",
    "requests:write",
    "approvals:write",
    "credentials",
    "console",
    "audit:read",
];

/// `lakegate serve` with the development sign-in and a policy over the seeded database `db`:
/// data-owners approve, security are admins.
async fn start(pool: &PgPool, db: &str, name: &str) -> Lakegate {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("lakegate-{name}-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "admin_group = \"security\"\nrequestable = [\"{db}.*\"]\n\n\
             [defaults]\napprover_groups = [\"data-owners\"]\n"
        ),
    )
    .unwrap();
    let mut env = base_env(&database_url(pool), port);
    env.extend(
        [
            ("LAKEGATE_DEV_LOGIN", "true"),
            ("LAKEGATE_MIN_DURATION", "1m"),
            ("LAKEGATE_POLICY", policy.to_str().unwrap()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    Lakegate::start(&env).await
}

/// Signs `email` in on the development form and makes a personal token with `scopes` on the
/// settings page, as a person would.
async fn token_for(base: &str, email: &str, groups: &str, scopes: &[&str]) -> String {
    let b = Browser::new(base);
    let res = b
        .submit(
            "/auth/dev",
            "/auth/dev",
            &[("email", email), ("groups", groups), ("next", "/")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let mut fields = vec![("name", "tests")];
    fields.extend(scopes.iter().map(|s| ("scopes", *s)));
    let made = b
        .submit("/settings/tokens", "/settings/tokens", &fields)
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    text_of(&made.body, "#api-token")
}

async fn api(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{base}{path}");
    let mut req = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// schemathesis, from the OpenAPI document alone, finds no 5xx and no answer that breaks the
/// document (status codes, content types, bodies) on any operation, positive or negative input.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document(pool: PgPool) {
    let db = seed_catalog("schemathesis").await;
    let server = start(&pool, &db, "schemathesis").await;
    let base = &server.base;
    let alice = token_for(base, "alice@example.com", "analysts", &ALL_SCOPES).await;
    let bob = token_for(base, "bob@example.com", "data-owners,security", &ALL_SCOPES).await;
    // Something to list and show: a pending request of Alice's for Bob to decide.
    let (status, made) = api(
        base,
        &alice,
        "POST",
        "/api/v1/requests",
        Some(json!({
            "resources": [{ "database": db, "table": "orders", "columns": ["order_id"] }],
            "duration": "1h",
            "reason": "schemathesis",
        })),
    )
    .await;
    assert_eq!(status, 201, "{made}");

    let report = std::env::temp_dir().join(format!("lakegate-schemathesis-{}", std::process::id()));
    let run = tokio::process::Command::new("schemathesis")
        .args([
            "run",
            &format!("{base}/api/v1/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {bob}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--seed",
            "20261203",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--report-dir",
            report.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("schemathesis ended within 10 minutes")
        .expect("schemathesis runs (from .venv, as scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\nlakegate's output:\n{}",
        server.output()
    );
    // It did test every operation, and resolved every part of the document.
    assert!(text.contains("Tested: 15"), "{text}");
    assert!(!text.contains("unresolvable reference"), "{text}");
    assert!(
        !server.output().contains("\"level\":\"ERROR\""),
        "{}",
        server.output()
    );
}
