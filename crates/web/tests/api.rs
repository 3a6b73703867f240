//! The JSON API with personal tokens, as a script would drive it: ask for access, approve as
//! another person, get credentials the credentials URL honours, revoke; lists by filter; and
//! every kind of bad input answered with `{"code","message"}`, never a 5xx, nothing changed.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::*;

/// A person signed in on the pages, who made a token with `scopes` there.
async fn token_of(app: &TestApp, email: &str, groups: &str, scopes: &[&str]) -> String {
    let b = Browser::new(app);
    b.sign_in(email, groups).await;
    let mut fields = vec![("name", "script")];
    fields.extend(scopes.iter().map(|s| ("scopes", *s)));
    let made = b
        .submit("/settings/tokens", "/settings/tokens", &fields)
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    made.text_of("#api-token")
}

/// One API call with `token`: `body` as JSON when given (`Err(raw)` sends raw text as JSON).
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Result<Value, &str>>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        None => Body::empty(),
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(match b {
                Ok(v) => v.to_string(),
                Err(raw) => raw.to_owned(),
            })
        }
    };
    let res = Browser::new(app).send(req.body(body).unwrap()).await;
    let json = if res.body.is_empty() {
        Value::Null
    } else {
        res.json()
    };
    (res.status, json)
}

fn orders_request() -> Value {
    json!({
        "resources": [
            { "database": "sales", "table": "orders" },
            { "database": "sales", "table": "customers", "columns": ["customer_id", "email"] }
        ],
        "duration": "1h",
        "reason": "reconcile the April revenue report"
    })
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn request_approve_credentials_and_revoke_through_the_api(pool: PgPool) {
    let app = app(pool).await;
    let alice = token_of(
        &app,
        "alice@example.com",
        "analysts",
        &["requests:read", "requests:write", "credentials"],
    )
    .await;
    let bob = token_of(
        &app,
        "bob@example.com",
        "data-owners",
        &["requests:read", "approvals:write"],
    )
    .await;

    let (status, made) = call(
        &app,
        "POST",
        "/api/v1/requests",
        &alice,
        Some(Ok(orders_request())),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["status"], "pending");
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(
        made["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/requests/{id}"))
    );

    // The trail says it came through her token, by name.
    let via: Option<String> = sqlx::query_scalar(
        "select detail->>'via_token' from audit_event where action = 'request.submitted'",
    )
    .fetch_one(&app.services.db)
    .await
    .unwrap();
    assert_eq!(via.as_deref(), Some("script"));

    // Alice sees it as hers; Bob has it to approve; Alice cannot approve it (no scope, and her own).
    let (_, mine) = call(&app, "GET", "/api/v1/requests", &alice, None).await;
    assert_eq!(mine["requests"][0]["id"], id.as_str());
    let (_, queue) = call(
        &app,
        "GET",
        "/api/v1/requests?filter=to_approve",
        &bob,
        None,
    )
    .await;
    assert_eq!(queue["requests"][0]["id"], id.as_str(), "{queue}");
    assert_eq!(
        queue["requests"][0]["resources"][1]["columns"],
        json!(["customer_id", "email"])
    );
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        &alice,
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("InsufficientScope"))
    );

    // Bob approves with a comment; the worker sets it up.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        &bob,
        Some(Ok(json!({ "comment": "ok for April" }))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    app.run_worker().await;
    let (_, shown) = call(&app, "GET", &format!("/api/v1/requests/{id}"), &alice, None).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["decisions"][0]["by"], "bob@example.com");
    assert_eq!(shown["decisions"][0]["comment"], "ok for April");
    let (_, trail) = call(
        &app,
        "GET",
        &format!("/api/v1/audit?request={id}&action=request.approved"),
        &token_of(&app, "dora@example.com", "security", &["audit:read"]).await,
        None,
    )
    .await;
    assert_eq!(
        trail["events"][0]["detail"]["via_token"], "script",
        "{trail}"
    );
    let (_, live) = call(&app, "GET", "/api/v1/requests?filter=live", &bob, None).await;
    assert_eq!(live["requests"][0]["id"], id.as_str());

    // Credentials: the URL and token the credentials URL honours.
    let (status, issued) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/credentials"),
        &alice,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let url = issued["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/credentials/{id}")), "{url}");
    let path = &url[url.find("/credentials/").unwrap()..];
    let fetch = |token: String| {
        Request::get(path)
            .header(header::AUTHORIZATION, token)
            .body(Body::empty())
            .unwrap()
    };
    let nobody = Browser::new(&app);
    let creds = nobody
        .send(fetch(issued["token"].as_str().unwrap().to_owned()))
        .await;
    assert_eq!(creds.status, StatusCode::OK, "{}", creds.body);
    assert!(creds.json()["AccessKeyId"].is_string());

    // Revoked through the API: the credentials URL refuses at once.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/revoke"),
        &alice,
        Some(Ok(json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoking");
    let refused = nobody
        .send(fetch(issued["token"].as_str().unwrap().to_owned()))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Cancel, on a request still pending.
    let (_, second) = call(
        &app,
        "POST",
        "/api/v1/requests",
        &alice,
        Some(Ok(orders_request())),
    )
    .await;
    let second = second["id"].as_str().unwrap();
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{second}/cancel"),
        &alice,
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn bad_input_is_a_4xx_that_says_what_is_wrong_and_changes_nothing(pool: PgPool) {
    let app = app(pool).await;
    let alice = token_of(
        &app,
        "alice@example.com",
        "analysts",
        &["requests:read", "requests:write"],
    )
    .await;
    let cases: Vec<(Result<Value, &str>, &str)> = vec![
        (Err("{not json"), "JSON"),
        (
            Ok(json!({ "resources": [], "duration": "1h", "reason": "a good reason here" })),
            "at least one table",
        ),
        (
            Ok(json!({ "duration": "1h", "reason": "a good reason here" })),
            "missing field `resources`",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "sales", "table": "orders" }], "duration": "1h",
                       "reason": "a good reason here", "approve_myself": true }),
            ),
            "unknown field `approve_myself`",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "sales", "table": "orders" }], "duration": 60,
                       "reason": "a good reason here" }),
            ),
            "invalid type",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "sales", "table": "orders\nhr.employees" }],
                       "duration": "1h", "reason": "a good reason here" }),
            ),
            "resources[0]: `orders\nhr.employees` is not a valid table name",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "sales", "table": "orders", "columns": [] }],
                       "duration": "1h", "reason": "a good reason here" }),
            ),
            "resources[0]: `columns` is empty",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "sales", "table": "orders" },
                                     { "database": "SALES", "table": "orders" }],
                       "duration": "1h", "reason": "a good reason here" }),
            ),
            "resources[1]: sales.orders is listed twice",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "finance", "table": "ledger" }],
                       "duration": "1h", "reason": "a good reason here" }),
            ),
            "not found or not requestable",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "sales", "table": "orders" }],
                       "duration": "9h", "reason": "a good reason here" }),
            ),
            "between 15m and 8h",
        ),
        (
            Ok(
                json!({ "resources": [{ "database": "sales", "table": "orders" }],
                       "duration": "1h", "reason": "short" }),
            ),
            "at least 10 characters",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) =
            call(&app, "POST", "/api/v1/requests", &alice, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body:?}: {answer}"
        );
        assert_eq!(answer["code"], "InvalidInput", "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(expected),
            "{body:?}: {answer}"
        );
    }
    // Not JSON at all.
    let res = Browser::new(&app)
        .send(
            Request::post("/api/v1/requests")
                .header(header::AUTHORIZATION, format!("Bearer {alice}"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("sales.orders"))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    // Over the size limit: said, as JSON.
    let huge = format!(r#"{{"sql": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, body) = call(&app, "POST", "/api/v1/requests", &alice, Some(Err(&huge))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "TooLarge");
    let (status, body) = call(
        &app,
        "GET",
        "/api/v1/requests?filter=everything",
        &alice,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("expected one of `mine`, `to_approve`, `live`")
    );
    let (status, body) = call(&app, "GET", "/api/v1/requests?colour=red", &alice, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{}/cancel", uuid::Uuid::new_v4()),
        &alice,
        Some(Ok(json!({ "comment": 5 }))),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let count: i64 = sqlx::query_scalar("select count(*) from access_request")
        .fetch_one(&app.services.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was stored");

    // Somebody's own request is never theirs to approve, whatever their groups and scopes.
    let owner = token_of(
        &app,
        "olga@example.com",
        "data-owners",
        &["requests:write", "approvals:write"],
    )
    .await;
    let (_, made) = call(
        &app,
        "POST",
        "/api/v1/requests",
        &owner,
        Some(Ok(orders_request())),
    )
    .await;
    let id = made["id"].as_str().unwrap();
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "Forbidden");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn console_queries_and_extensions_through_the_api(pool: PgPool) {
    let app = app(pool).await;
    let alice = token_of(
        &app,
        "alice@example.com",
        "analysts",
        &["requests:read", "requests:write", "console"],
    )
    .await;
    let bob = token_of(
        &app,
        "bob@example.com",
        "data-owners",
        &["requests:read", "approvals:write"],
    )
    .await;
    let (_, made) = call(
        &app,
        "POST",
        "/api/v1/requests",
        &alice,
        Some(Ok(orders_request())),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    // A `null` body is no body, as the OpenAPI document says.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        &bob,
        Some(Err("null")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.run_worker().await;

    // A statement outside the grant comes back with the guard's reason, and nothing runs.
    let queries = format!("/api/v1/requests/{id}/queries");
    let (status, refused) = call(
        &app,
        "POST",
        &queries,
        &alice,
        Some(Ok(
            json!({ "sql": "SELECT salary FROM hr.employees LIMIT 5" }),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "QueryRefused");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("hr.employees"),
        "{refused}"
    );
    assert!(app.cloud.state().console_runs.is_empty());

    // A statement inside it runs as the grant, and its rows are read page by page.
    app.cloud.queue_results(
        &["customer_id", "email"],
        &[&[Some("7"), Some("ann@example.com")], &[Some("8"), None]],
    );
    let body = json!({
        "sql": "SELECT customer_id, email FROM customers LIMIT 2",
        "database": "sales",
        "client_token": "report-run-0001-of-april",
    });
    let mut bad_token = body.clone();
    bad_token["client_token"] = json!("run-1");
    let (status, answer) = call(&app, "POST", &queries, &alice, Some(Ok(bad_token))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("client_token"));
    let (status, started) = call(&app, "POST", &queries, &alice, Some(Ok(body.clone()))).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let query = started["id"].as_str().unwrap().to_owned();
    let (_, again) = call(&app, "POST", &queries, &alice, Some(Ok(body))).await;
    assert_eq!(
        again["id"],
        query.as_str(),
        "the same client token starts no second query"
    );
    assert_eq!(app.cloud.state().console_runs.len(), 1);
    let (status, shown) = call(&app, "GET", started["url"].as_str().unwrap(), &alice, None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["state"], "SUCCEEDED");
    assert_eq!(
        shown["sql"],
        "SELECT customer_id, email FROM customers LIMIT 2"
    );
    assert_eq!(shown["columns"], json!(["customer_id", "email"]));
    assert_eq!(
        shown["rows"],
        json!([["7", "ann@example.com"], ["8", null]])
    );
    assert_eq!(shown["next_cursor"], Value::Null);
    // Bob approves the grant but is not its holder: the console is not his.
    let bob_console = token_of(&app, "bob@example.com", "data-owners", &["console"]).await;
    let (status, _) = call(
        &app,
        "GET",
        started["url"].as_str().unwrap(),
        &bob_console,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // More time: pending for the approvers, approved by Bob through the API.
    let (status, asked) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/extensions"),
        &alice,
        Some(Ok(
            json!({ "extra": "30m", "reason": "the report needs a rerun" }),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    assert_eq!(asked["status"], "pending");
    let (_, shown) = call(&app, "GET", &format!("/api/v1/requests/{id}"), &bob, None).await;
    let before = shown["expires_at"].as_str().unwrap().to_owned();
    let extension = shown["extensions"][0]["id"].as_i64().unwrap();
    assert_eq!(shown["extensions"][0]["status"], "pending");
    let (status, decided) = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/extensions/{extension}/approve"),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "approved");
    let (_, shown) = call(&app, "GET", &format!("/api/v1/requests/{id}"), &bob, None).await;
    assert_ne!(shown["expires_at"].as_str().unwrap(), before);
    assert_eq!(shown["extensions"][0]["status"], "approved");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn admins_read_the_audit_trail_through_the_api(pool: PgPool) {
    let app = app(pool).await;
    let alice = token_of(
        &app,
        "alice@example.com",
        "analysts",
        &["requests:write", "audit:read"],
    )
    .await;
    let (_, made) = call(
        &app,
        "POST",
        "/api/v1/requests",
        &alice,
        Some(Ok(orders_request())),
    )
    .await;
    let id = made["id"].as_str().unwrap();
    let dora = token_of(&app, "dora@example.com", "security", &["audit:read"]).await;

    let (status, page) = call(
        &app,
        "GET",
        "/api/v1/audit?action=request.submitted",
        &dora,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["request_id"], id);
    assert_eq!(events[0]["actor"]["email"], "alice@example.com");
    assert_eq!(events[0]["detail"]["resources"][0], "sales.orders");
    assert_eq!(events[0]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(page["older"], Value::Null);
    let (_, everything) = call(&app, "GET", "/api/v1/audit", &dora, None).await;
    assert!(
        everything["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "api_token.created"),
        "{everything}"
    );

    // Not an admin, whatever the token's scopes; an admin's token without the scope; a bad filter.
    let (status, body) = call(&app, "GET", "/api/v1/audit", &alice, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("Forbidden"))
    );
    let dora_reads = token_of(&app, "dora@example.com", "security", &["requests:read"]).await;
    let (status, body) = call(&app, "GET", "/api/v1/audit", &dora_reads, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("InsufficientScope"))
    );
    let (status, body) = call(&app, "GET", "/api/v1/audit?action=nope", &dora, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`nope` is not an audit event")
    );
}

/// Every API route × every role, with a token carrying every scope: what the token's owner may
/// do through the API is what the pages let them do (anonymous: no token at all).
/// Every API route: (method, path with `{id}`, the request it needs, the status expected
/// for each role of `ROLES`, in order).
#[rustfmt::skip]
const MATRIX: &[(&str, &str, Needs, [u16; 6])] = &[
    //                                                                   anon requester another other-db approver admin
        ("GET", "/api/v1/me", Needs::Nothing,                                 [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/v1/requests?filter=to_approve", Needs::Nothing,         [401, 200, 200, 200, 200, 200]),
        ("POST", "/api/v1/requests", Needs::Nothing,                          [401, 201, 201, 201, 201, 201]),
        ("GET", "/api/v1/requests/{id}", Needs::Pending,                      [401, 200, 403, 403, 200, 200]),
        ("POST", "/api/v1/requests/{id}/approve", Needs::Pending,             [401, 403, 403, 403, 200, 403]),
        ("POST", "/api/v1/requests/{id}/deny", Needs::Pending,                [401, 403, 403, 403, 200, 403]),
        ("POST", "/api/v1/requests/{id}/cancel", Needs::Pending,              [401, 200, 403, 403, 403, 403]),
        ("POST", "/api/v1/requests/{id}/revoke", Needs::Active,               [401, 200, 403, 403, 200, 200]),
        ("POST", "/api/v1/requests/{id}/credentials", Needs::Active,          [401, 200, 403, 403, 403, 403]),
        ("POST", "/api/v1/requests/{id}/extensions", Needs::Active,           [401, 201, 403, 403, 403, 403]),
        ("POST", "/api/v1/requests/{id}/extensions/{ext}/approve", Needs::Extension, [401, 403, 403, 403, 200, 403]),
        ("POST", "/api/v1/requests/{id}/extensions/{ext}/deny", Needs::Extension,    [401, 403, 403, 403, 200, 403]),
        ("POST", "/api/v1/requests/{id}/queries", Needs::Active,              [401, 201, 403, 403, 403, 403]),
        ("GET", "/api/v1/requests/{id}/queries/{q}", Needs::ConsoleQuery,     [401, 200, 403, 403, 403, 403]),
        ("GET", "/api/v1/audit", Needs::Nothing,                              [401, 403, 403, 403, 403, 200]),
    ];

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn api_authorization_matrix(pool: PgPool) {
    let app = app(pool).await;
    let all = [
        "requests:read",
        "requests:write",
        "approvals:write",
        "credentials",
        "console",
        "audit:read",
    ];
    let mut tokens = Vec::new();
    for (_, who) in ROLES {
        tokens.push(match who {
            None => None,
            Some((email, groups)) => Some(token_of(&app, email, groups, &all).await),
        });
    }
    let mut wrong = Vec::new();
    for (method, template, needs, expected) in MATRIX {
        for (((role, _), token), want) in ROLES.iter().zip(&tokens).zip(expected) {
            let id = app.request_in(*needs).await;
            let mut path = match id {
                Some(id) => template.replace("{id}", &id.to_string()),
                None => (*template).to_owned(),
            };
            if let Some(id) = id
                && path.contains("{ext}")
            {
                path = path.replace("{ext}", &app.pending_extension(id).await.to_string());
            }
            path = path.replace("{q}", &app.last_console_query());
            let body = if *method == "GET" {
                None
            } else if path == "/api/v1/requests" {
                Some(Ok(orders_request()))
            } else if path.ends_with("/extensions") {
                Some(Ok(
                    json!({ "extra": "1h", "reason": "authorization matrix" }),
                ))
            } else if path.ends_with("/queries") {
                Some(Ok(json!({ "sql": "SELECT 1" })))
            } else {
                None
            };
            let status = match token {
                Some(t) => call(&app, method, &path, t, body).await.0,
                None => {
                    let res = Browser::new(&app)
                        .send(
                            Request::builder()
                                .method(*method)
                                .uri(&path)
                                .body(Body::empty())
                                .unwrap(),
                        )
                        .await;
                    res.status
                }
            };
            if status.as_u16() != *want {
                wrong.push(format!(
                    "{method} {template} as {role}: {} (expected {want})",
                    status.as_u16()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "API authorization matrix mismatches:\n{}",
        wrong.join("\n")
    );
}

/// The OpenAPI document is served to anyone, is OpenAPI 3.1, and lists exactly the routes of
/// the authorization matrix, each with the scope it needs and its error answers.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_openapi_document_describes_every_route(pool: PgPool) {
    let app = app(pool).await;
    let res = Browser::new(&app).get("/api/v1/openapi.json").await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.push(format!("{} {path}", method.to_uppercase()));
            let scopes = &op["security"][0]["token"];
            assert!(scopes.is_array(), "{method} {path} names no token scope");
            for code in ["401", "403", "422", "500"] {
                assert!(
                    op["responses"][code]["content"]["application/json"].is_object(),
                    "{method} {path} documents no {code}"
                );
            }
        }
    }
    let mut routed: Vec<String> = MATRIX
        .iter()
        .map(|(method, template, _, _)| {
            let path = template.split('?').next().unwrap();
            let path = path
                .replace("{ext}", "{extension}")
                .replace("{q}", "{query}");
            format!("{method} {path}")
        })
        .collect();
    documented.sort();
    routed.sort();
    routed.dedup();
    assert_eq!(documented, routed);
    // The schemas the bodies refer to are all there.
    let text = doc.to_string();
    for name in [
        "ApiError",
        "SubmitBody",
        "RequestDetail",
        "QueryView",
        "AuditPage",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{name} missing"
        );
    }
    assert!(
        !text.contains("\"$ref\":\"#/components/schemas/Value\""),
        "{text}"
    );
}
