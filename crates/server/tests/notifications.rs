//! Notifications, as the real binary sends them: signed webhooks through the outbox, none lost
//! while the receiver is down or lakegate restarts, each delivered once and in order; and
//! Slack both ways, against a Slack-compatible receiver of the test's own (the Web API
//! methods lakegate calls, answered as Slack documents them): a request posted with Approve /
//! Deny buttons, a click checked for Slack's signature, the requester refused, an approver's
//! click deciding, and the message updated in place without its buttons.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use lakegate_domain::signature::{slack_signature, webhook_signature};
use lakegate_testkit::peers::free_port;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::aws_support::seed_catalog;
use crate::binary::{Browser, Lakegate, base_env, database_url, text_of};

const WEBHOOK_SECRET: &str = "webhook-secret-for-the-tests-0123";
const SIGNING_SECRET: &str = "slack-signing-secret-for-the-tests";

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

/// One POST a receiver was sent.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver on `port` that records every POST and answers 204.
async fn webhook_receiver(port: u16) -> Log {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route(
            "/{*path}",
            axum::routing::post(
                async |State(log): State<Log>,
                       Path(path): Path<String>,
                       headers: HeaderMap,
                       body: Bytes| {
                    log.lock().unwrap().push(Received {
                        path,
                        headers,
                        body,
                    });
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(Arc::clone(&log));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    log
}

async fn wait_until(what: &str, server: &Lakegate, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{what} did not happen within 30 s; lakegate's log:\n{}",
        server.output()
    );
}

async fn failed_attempts(pool: &PgPool) -> (i64, Option<String>) {
    sqlx::query_as(
        "select coalesce(sum(attempts), 0)::bigint, max(last_error)
         from notification_delivery where delivered_at is null",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn webhooks_arrive_once_in_order_after_the_receiver_and_lakegate_restart(pool: PgPool) {
    let db = seed_catalog("notify").await;
    let port = free_port();
    let hook_port = free_port();
    let env = with(
        base_env(&database_url(&pool), port),
        &[
            ("LAKEGATE_DEV_LOGIN", "true"),
            (
                "LAKEGATE_WEBHOOK_URLS",
                &format!("http://127.0.0.1:{hook_port}/lakegate"),
            ),
            ("LAKEGATE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("LAKEGATE_ADMIN_GROUP", "security"),
        ],
    );
    let mut server = Lakegate::start(&env).await;
    let alice = Browser::signed_in_dev(&server.base, "alice@example.com", "analysts").await;
    let bob = Browser::signed_in_dev(&server.base, "bob@example.com", "data-owners").await;

    // Nothing listens at the webhook yet: asked, approved, active, and every delivery failing.
    let res = alice
        .submit(
            "/requests/new",
            "/requests",
            &[
                ("resources", &format!("{db}.orders")),
                ("duration", "1h"),
                ("reason", "quarterly numbers"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let path = res.location.unwrap();
    let id = path.rsplit('/').next().unwrap().to_owned();
    let res = bob.submit(&path, &format!("{path}/approve"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(alice.wait_for_status(&path, "active").await, "active");
    for _ in 0..300 {
        if failed_attempts(&pool).await.0 >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (attempts, last_error) = failed_attempts(&pool).await;
    assert!(attempts >= 2, "{attempts} attempts\n{}", server.output());
    assert!(last_error.is_some(), "no error kept for the admins");
    assert!(
        server
            .output()
            .contains("notification not delivered; trying again"),
        "{}",
        server.output()
    );
    // Admins see what waits, how often it was tried and why it failed; nobody else does.
    let dora = Browser::signed_in_dev(&server.base, "dora@example.com", "security").await;
    let page = dora.get("/audit/notifications").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_ne!(text_of(&page.body, "#count-pending"), "0", "{}", page.body);
    assert!(page.body.contains("request.submitted"), "{}", page.body);
    let doc = scraper::Html::parse_document(&page.body);
    let errors: Vec<String> = doc
        .select(&scraper::Selector::parse("#deliveries tr.pending td.error").unwrap())
        .map(|e| e.text().collect::<String>())
        .filter(|e| !e.trim().is_empty())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("Connection refused")),
        "the reason is shown: {errors:?}"
    );
    assert!(
        !page.body.contains(&format!("127.0.0.1:{hook_port}")),
        "the URL is shown:\n{}",
        page.body
    );
    assert_eq!(
        alice.get("/audit/notifications").await.status,
        StatusCode::FORBIDDEN
    );

    // lakegate stops, the receiver comes up, lakegate starts again: what was kept goes out.
    server.terminate();
    assert!(server.wait(Duration::from_secs(30)).await.success());
    let log = webhook_receiver(hook_port).await;
    let server = Lakegate::start(&env).await;
    let res = alice.submit(&path, &format!("{path}/revoke"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let events = || {
        log.lock()
            .unwrap()
            .iter()
            .map(|r| r.header("x-lakegate-event").to_owned())
            .collect::<Vec<_>>()
    };
    wait_until("grant.revoked reaching the webhook", &server, || {
        events().contains(&"grant.revoked".to_owned())
    })
    .await;
    // A moment more, for anything sent twice to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        events(),
        [
            "request.submitted",
            "request.approved",
            "grant.active",
            "grant.revoked"
        ],
        "each once, in order"
    );

    let received = log.lock().unwrap().clone();
    let mut ids = std::collections::BTreeSet::new();
    for r in &received {
        assert_eq!(r.path, "lakegate");
        assert_eq!(r.header("content-type"), "application/json");
        // The signature covers the timestamp and the exact body.
        let ts: i64 = r.header("x-lakegate-timestamp").parse().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - ts).abs() < 120, "timestamp {ts}, now {now}");
        assert_eq!(
            r.header("x-lakegate-signature"),
            webhook_signature(WEBHOOK_SECRET.as_bytes(), ts, &r.body)
        );
        let body = r.json();
        assert_eq!(body["event"], r.header("x-lakegate-event"), "{body}");
        assert_eq!(body["id"], r.header("x-lakegate-delivery"), "{body}");
        assert!(
            ids.insert(body["id"].as_str().unwrap().to_owned()),
            "{body}"
        );
        assert_eq!(body["request"]["id"], id.as_str(), "{body}");
        assert_eq!(body["request"]["requester"], "alice@example.com", "{body}");
        assert_eq!(
            body["request"]["url"],
            format!("{}/requests/{id}", server.base),
            "{body}"
        );
        assert_eq!(
            body["request"]["resources"],
            json!([{ "database": db, "table": "orders", "columns": null }]),
            "{body}"
        );
        assert!(
            body["occurred_at"].as_str().unwrap().ends_with('Z'),
            "{body}"
        );
    }
    let approved = received[1].json();
    assert_eq!(approved["actor"], "bob@example.com", "{approved}");
    assert_eq!(
        approved["text"],
        format!("alice@example.com's request for {db}.orders: approved by bob@example.com"),
        "{approved}"
    );
    assert_eq!(received[3].json()["request"]["status"], "revoked");

    // Delivered is delivered: nothing left to send, nothing failed.
    let (left, _) = failed_attempts(&pool).await;
    let undelivered: i64 =
        sqlx::query_scalar("select count(*) from notification_delivery where delivered_at is null")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((undelivered, left), (0, 0));
}

/// A Slack-compatible Web API: `chat.postMessage`, `chat.update`, `chat.postEphemeral` and
/// `users.info`, with two people whose emails Slack has verified.
async fn slack_api() -> (u16, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/{method}",
            axum::routing::post(
                async |State(log): State<Log>,
                       Path(method): Path<String>,
                       headers: HeaderMap,
                       body: Bytes| {
                    let bearer = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(Received {
                            path: method.clone(),
                            headers,
                            body: body.clone(),
                        });
                        log.len()
                    };
                    if bearer != "Bearer xoxb-test-token" {
                        return axum::Json(json!({ "ok": false, "error": "invalid_auth" }));
                    }
                    axum::Json(match method.as_str() {
                        "chat.postMessage" => {
                            let to: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            // A message to a user id goes to the bot's direct messages with them.
                            let channel = match to["channel"].as_str() {
                                Some(user) if user.starts_with('U') => format!("D{}", &user[1..]),
                                _ => "C0SALES".to_owned(),
                            };
                            json!({ "ok": true, "channel": channel, "ts": format!("1700000000.{n:06}") })
                        }
                        "users.lookupByEmail" => {
                            let form: Vec<(String, String)> =
                                serde_urlencoded::from_bytes(&body).unwrap_or_default();
                            match form.iter().find(|(k, _)| k == "email").map(|(_, v)| v.as_str()) {
                                Some("alice@example.com") => json!({ "ok": true, "user": { "id": "U0ALICE" } }),
                                Some("bob@example.com") => json!({ "ok": true, "user": { "id": "U0BOB" } }),
                                _ => json!({ "ok": false, "error": "users_not_found" }),
                            }
                        }
                        "chat.update" | "chat.postEphemeral" => json!({ "ok": true }),
                        "users.info" => {
                            let form: Vec<(String, String)> =
                                serde_urlencoded::from_bytes(&body).unwrap_or_default();
                            let user = form
                                .iter()
                                .find(|(k, _)| k == "user")
                                .map(|(_, v)| v.as_str())
                                .unwrap_or_default();
                            let email = match user {
                                "U0ALICE" => "alice@example.com",
                                "U0BOB" => "bob@example.com",
                                _ => {
                                    return axum::Json(
                                        json!({ "ok": false, "error": "user_not_found" }),
                                    );
                                }
                            };
                            json!({ "ok": true, "user": {
                                "id": user, "deleted": false, "is_bot": false,
                                "is_email_confirmed": true, "profile": { "email": email },
                            }})
                        }
                        _ => json!({ "ok": false, "error": "unknown_method" }),
                    })
                },
            ),
        )
        .with_state(Arc::clone(&log));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, log)
}

/// Slack's interaction payload for a click on button `action` of request `id` by `user`.
fn click(user: &str, action: &str, id: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": { "id": user },
        "channel": { "id": "C0SALES" },
        "container": { "type": "message", "message_ts": "1700000000.000001" },
        "actions": [{ "type": "button", "action_id": action, "value": id, "block_id": "decide" }],
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

/// Posts `body` to the interactions URL as Slack does, signed with `secret` at `ts`.
async fn send_click(base: &str, body: &str, secret: &str, ts: i64) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/integrations/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            slack_signature(secret.as_bytes(), ts, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

async fn status_of(pool: &PgPool, id: &str) -> String {
    sqlx::query_scalar("select status from access_request where request_id = $1::uuid")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn approvers_decide_in_slack_and_the_message_follows(pool: PgPool) {
    let db = seed_catalog("slack").await;
    let (slack_port, calls) = slack_api().await;
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("lakegate-slack-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[defaults]\napprover_groups = [\"data-owners\"]\n\n[[rule]]\nname = \"sales\"\n\
             match = [\"{db}.*\"]\nsensitive_columns = [\"email\"]\n\
             notify = {{ slack_channel = \"#sales-access\" }}\n"
        ),
    )
    .unwrap();
    let env = with(
        base_env(&database_url(&pool), port),
        &[
            ("LAKEGATE_DEV_LOGIN", "true"),
            ("LAKEGATE_POLICY", policy.to_str().unwrap()),
            ("LAKEGATE_SLACK_BOT_TOKEN", "xoxb-test-token"),
            ("LAKEGATE_SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("LAKEGATE_SLACK_CHANNEL", "#lakegate"),
            (
                "LAKEGATE_SLACK_API_URL",
                &format!("http://127.0.0.1:{slack_port}/api"),
            ),
        ],
    );
    let server = Lakegate::start(&env).await;
    let alice = Browser::signed_in_dev(&server.base, "alice@example.com", "analysts").await;
    // Bob has signed in once, so lakegate knows his groups.
    Browser::signed_in_dev(&server.base, "bob@example.com", "data-owners").await;

    let res = alice
        .submit(
            "/requests/new",
            "/requests",
            &[
                ("resources", &format!("{db}.orders: order_id, email")),
                ("duration", "1h"),
                ("reason", "refund <!channel> check"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let id = res.location.unwrap().rsplit('/').next().unwrap().to_owned();

    // The request reaches the rule's channel, with buttons and the sensitive column marked.
    let sent = |method: &str| {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.path == method)
            .map(Received::json)
            .collect::<Vec<_>>()
    };
    wait_until("the request reaching Slack", &server, || {
        !sent("chat.postMessage").is_empty()
    })
    .await;
    let posted = sent("chat.postMessage").remove(0);
    assert_eq!(posted["channel"], "#sales-access", "{posted}");
    let blocks = posted["blocks"].to_string();
    for wanted in [
        "\"action_id\":\"approve\"",
        "\"action_id\":\"deny\"",
        "`email` :warning: sensitive",
        "alice@example.com",
        "&lt;!channel&gt;",
    ] {
        assert!(blocks.contains(wanted), "no {wanted} in {blocks}");
    }
    assert!(!blocks.contains("<!channel>"), "{blocks}");

    // Clicks Slack did not sign, or signed long ago, are refused and change nothing.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let approve = click("U0BOB", "approve", &id);
    assert_eq!(
        send_click(&server.base, &approve, "not-the-secret", now).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send_click(&server.base, &approve, SIGNING_SECRET, now - 3600).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of(&pool, &id).await, "pending");

    // Alice cannot approve her own request from Slack either: she alone is told why.
    let own = click("U0ALICE", "approve", &id);
    assert_eq!(
        send_click(&server.base, &own, SIGNING_SECRET, now).await,
        StatusCode::OK
    );
    assert_eq!(status_of(&pool, &id).await, "pending");
    let told = sent("chat.postEphemeral");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["user"], "U0ALICE");
    assert!(
        told[0]["text"].as_str().unwrap().starts_with("Not done: "),
        "{told:?}"
    );

    // Bob's click approves it, and the grant is set up.
    assert_eq!(
        send_click(&server.base, &approve, SIGNING_SECRET, now).await,
        StatusCode::OK
    );
    assert_eq!(
        alice
            .wait_for_status(&format!("/requests/{id}"), "active")
            .await,
        "active",
        "{}",
        server.output()
    );
    let (approved_by, detail): (String, Value) = sqlx::query_as(
        "select actor_email, detail from audit_event
         where request_id = $1::uuid and action = 'request.approved'",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(approved_by, "bob@example.com");
    assert_eq!(detail["via"], "slack", "the audit says where: {detail}");

    // The original message is updated in place, without its buttons; the rest is threaded.
    wait_until("the message updated", &server, || {
        !sent("chat.update").is_empty()
    })
    .await;
    let updated = sent("chat.update").remove(0);
    assert_eq!(updated["channel"], "C0SALES", "{updated}");
    assert_eq!(updated["ts"], "1700000000.000001", "{updated}");
    let blocks = updated["blocks"].to_string();
    assert!(!blocks.contains("\"action_id\":\"approve\""), "{blocks}");
    assert!(blocks.contains("approved by bob@example.com"), "{blocks}");
    wait_until("grant.active in the thread", &server, || {
        sent("chat.postMessage")
            .iter()
            .any(|m| m["text"].as_str().is_some_and(|t| t.contains("active")))
    })
    .await;
    // Alice hears in person that her request was approved and that her access is active.
    wait_until("Alice told in person", &server, || {
        sent("chat.postMessage")
            .iter()
            .filter(|m| m["channel"] == "U0ALICE")
            .count()
            >= 2
    })
    .await;
    let (direct, in_channel): (Vec<Value>, Vec<Value>) = sent("chat.postMessage")
        .into_iter()
        .partition(|m| m["channel"] == "U0ALICE");
    assert!(
        in_channel[1..]
            .iter()
            .all(|m| m["thread_ts"] == "1700000000.000001" && m["channel"] == "C0SALES"),
        "{in_channel:?}"
    );
    let direct: Vec<&str> = direct
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default())
        .collect();
    assert!(
        direct[0].ends_with("approved by bob@example.com"),
        "{direct:?}"
    );
    assert!(direct[1].ends_with("access is active"), "{direct:?}");
}
