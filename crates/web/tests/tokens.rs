//! Personal API tokens over HTTP: created on the settings page (shown once, stored hashed),
//! used as `Authorization: Bearer` on the JSON API with their owner's identity and nothing
//! beyond their scopes, refused with a clear JSON error when missing, malformed, expired or
//! revoked.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use sqlx::PgPool;
use time::Duration;

use crate::support::*;

impl Browser<'_> {
    /// A token made on the settings page, and the page that showed it.
    async fn create_token(&self, fields: &[(&str, &str)]) -> Response {
        self.submit("/settings/tokens", "/settings/tokens", fields)
            .await
    }
}

/// `GET path` with only an `Authorization` header (no cookie): how a script calls.
async fn api_get(app: &TestApp, path: &str, authorization: Option<&str>) -> Response {
    let nobody = Browser::new(app);
    let mut req = Request::get(path);
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    nobody.send(req.body(Body::empty()).unwrap()).await
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_token_is_shown_once_acts_as_its_owner_and_stops_when_revoked(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;

    let page = alice.get("/settings/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has(r#"input[name="scopes"][value="requests:read"][checked]"#));
    assert!(!page.has(r#"input[name="scopes"][value="approvals:write"][checked]"#));

    let made = alice
        .create_token(&[
            ("name", "laptop"),
            ("scopes", "requests:read"),
            ("scopes", "console"),
            ("expires_in", "7d"),
        ])
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    assert_eq!(made.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let token = made.text_of("#api-token");
    assert!(token.starts_with("lgp_") && token.len() > 40, "{token}");
    // Listed, never shown again, stored only as a hash.
    let list = alice.get("/settings/tokens").await;
    assert!(!list.body.contains(&token));
    let row = list.text_of("#tokens");
    assert!(
        row.contains("laptop") && row.contains("requests:read, console") && row.contains("active"),
        "{row}"
    );
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from api_token where token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&token)
    .fetch_one(&app.services.db)
    .await
    .unwrap();
    assert_eq!(stored, 1);
    let plain: i64 = sqlx::query_scalar(
        "select count(*) from api_token where position(convert_to($1, 'UTF8') in token_hash) > 0",
    )
    .bind(&token)
    .fetch_one(&app.services.db)
    .await
    .unwrap();
    assert_eq!(plain, 0);

    // The API knows who it is.
    let bearer = format!("Bearer {token}");
    let me = api_get(&app, "/api/v1/me", Some(&bearer)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let me = me.json();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["groups"], serde_json::json!(["analysts"]));
    assert_eq!(me["token"]["name"], "laptop");
    assert_eq!(
        me["token"]["scopes"],
        serde_json::json!(["requests:read", "console"])
    );
    assert!(
        alice
            .get("/settings/tokens")
            .await
            .text_of("#tokens")
            .contains(" UTC")
    );

    // Its owner's request, as the page shows it; someone else's token sees nothing of it.
    let id = alice.new_request().await;
    let shown = api_get(&app, &format!("/api/v1/requests/{id}"), Some(&bearer)).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let shown = shown.json();
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["resources"][0]["table"], "orders");
    assert_eq!(
        shown["missing_approvals"][0],
        "1 more approval from data-owners (rule sales)"
    );
    let eve = Browser::new(&app);
    eve.sign_in("eve@example.com", "analysts").await;
    let eves = eve
        .create_token(&[("name", "eve"), ("scopes", "requests:read")])
        .await
        .text_of("#api-token");
    let peek = api_get(
        &app,
        &format!("/api/v1/requests/{id}"),
        Some(&format!("Bearer {eves}")),
    )
    .await;
    assert_eq!(peek.status, StatusCode::FORBIDDEN, "{}", peek.body);
    assert_eq!(peek.json()["code"], "Forbidden");
    // Eve cannot revoke Alice's token either.
    let alices_id =
        sqlx::query_scalar::<_, uuid::Uuid>("select token_id from api_token where name = 'laptop'")
            .fetch_one(&app.services.db)
            .await
            .unwrap();
    let res = eve
        .submit(
            "/settings/tokens",
            &format!("/settings/tokens/{alices_id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api_get(&app, "/api/v1/me", Some(&bearer)).await.status,
        StatusCode::OK
    );

    // Revoked by its owner: refused at once, and said so.
    let res = alice
        .submit(
            "/settings/tokens",
            &format!("/settings/tokens/{alices_id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let refused = api_get(&app, "/api/v1/me", Some(&bearer)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers.get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer"
    );
    assert_eq!(
        refused.json(),
        serde_json::json!({ "code": "Unauthorized", "message": "this API token was revoked" })
    );
    assert!(
        alice
            .get("/settings/tokens")
            .await
            .text_of("#tokens")
            .contains("revoked")
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn tokens_are_refused_clearly_and_scopes_are_kept(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;

    // What is wrong with the form is said, and what was typed is kept.
    for (fields, expected) in [
        (
            vec![("name", ""), ("scopes", "requests:read")],
            "give the token a name",
        ),
        (vec![("name", "ci")], "choose at least one scope"),
        (
            vec![("name", "ci"), ("scopes", "requests:admin")],
            "`requests:admin` is not a scope",
        ),
        (
            vec![("name", "ci"), ("scopes", "console"), ("expires_in", "2y")],
            "is not a duration",
        ),
        (
            vec![
                ("name", "ci"),
                ("scopes", "console"),
                ("expires_in", "400d"),
            ],
            "between 1h and 365d",
        ),
    ] {
        let res = alice.create_token(&fields).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let error = res.text_of("#form-error");
        assert!(error.contains(expected), "{fields:?}: {error}");
        assert!(!res.has("#api-token"));
    }
    let count: i64 = sqlx::query_scalar("select count(*) from api_token")
        .fetch_one(&app.services.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was stored");

    for (authorization, message) in [
        (None, "this needs a personal API token"),
        (Some("Basic YWxpY2U6c2VjcmV0"), "must be `Bearer lgp_…`"),
        (
            Some("Bearer lgt_a-credentials-token"),
            "must be `Bearer lgp_…`",
        ),
        (
            Some("Bearer lgp_not-a-token"),
            "this API token is not valid",
        ),
    ] {
        let res = api_get(&app, "/api/v1/me", authorization).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        let body = res.json();
        assert_eq!(body["code"], "Unauthorized");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{authorization:?}: {body}"
        );
    }

    // A token without `requests:read` may ask who it is, not read requests.
    let token = alice
        .create_token(&[("name", "console only"), ("scopes", "console")])
        .await
        .text_of("#api-token");
    let bearer = format!("Bearer {token}");
    let id = alice.new_request().await;
    let res = api_get(&app, &format!("/api/v1/requests/{id}"), Some(&bearer)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        serde_json::json!({
            "code": "InsufficientScope",
            "message": "this API token lacks the `requests:read` scope this needs"
        })
    );
    // An id that is not one, and one that does not exist: 404, never 500.
    let reader = alice
        .create_token(&[("name", "reader"), ("scopes", "requests:read")])
        .await
        .text_of("#api-token");
    let reader = format!("Bearer {reader}");
    for path in [
        "/api/v1/requests/not-an-id".to_owned(),
        format!("/api/v1/requests/{}", uuid::Uuid::new_v4()),
    ] {
        let res = api_get(&app, &path, Some(&reader)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.json()["code"], "NotFound");
    }

    // Past its expiry: refused, and said so.
    let short = alice
        .create_token(&[
            ("name", "short"),
            ("scopes", "requests:read"),
            ("expires_in", "1h"),
        ])
        .await
        .text_of("#api-token");
    let clock = app.clock.clone();
    clock.advance(Duration::hours(1) + Duration::seconds(1));
    let res = api_get(&app, "/api/v1/me", Some(&format!("Bearer {short}"))).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["message"], "this API token has expired");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_token_acts_with_the_groups_of_its_owners_latest_sign_in(pool: PgPool) {
    let app = app(pool).await;
    let bob = Browser::new(&app);
    bob.sign_in("bob@example.com", "data-owners").await;
    let token = bob
        .create_token(&[("name", "bot"), ("scopes", "requests:read")])
        .await
        .text_of("#api-token");
    let bearer = format!("Bearer {token}");
    let me = api_get(&app, "/api/v1/me", Some(&bearer)).await.json();
    assert_eq!(me["groups"], serde_json::json!(["data-owners"]));
    // Bob signs in again, no longer a data owner: his token no longer counts as one.
    let again = Browser::new(&app);
    again.sign_in("bob@example.com", "analysts").await;
    let me = api_get(&app, "/api/v1/me", Some(&bearer)).await.json();
    assert_eq!(me["groups"], serde_json::json!(["analysts"]));
}
