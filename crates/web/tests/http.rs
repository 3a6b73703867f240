//! The HTTP layer end to end in-process: the real router, real PostgreSQL (sessions included),
//! a FakeCloud, and a cookie-carrying client per person.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod support;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lakegate_domain::RequestId;
use scraper::Selector;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

use crate::support::*;

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn healthz_answers_and_pages_carry_security_headers(pool: PgPool) {
    let app = app(pool).await;
    let res = Browser::new(&app).get("/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "ok\n");
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "x-request-id",
    ] {
        assert!(res.headers.contains_key(h), "missing {h}");
    }
    // `no-referrer` would make browsers send `Origin: null` on our own forms, which the CSRF
    // Origin check refuses.
    assert_eq!(res.headers["referrer-policy"], "same-origin");
    let css = Browser::new(&app).get("/static/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    let missing = Browser::new(&app).get("/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.text_of("h1"), "Not found");

    // Nothing is cached but the static assets: pages show grants, tokens and credentials.
    assert_eq!(css.headers[header::CACHE_CONTROL], "public, max-age=300");
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    let id = alice.new_request().await;
    for page in [
        "/".to_owned(),
        format!("/requests/{id}"),
        "/requests/new".to_owned(),
    ] {
        let res = alice.get(&page).await;
        assert_eq!(res.headers[header::CACHE_CONTROL], "no-store", "{page}");
    }
    // Served over plain http (here, loopback): no HSTS.
    assert!(!res.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn an_https_public_url_turns_on_hsts(pool: PgPool) {
    let app = app_at(
        pool,
        LOOPBACK_PEER.into(),
        Duration::hours(12),
        "https://lakegate.example.com",
    )
    .await;
    let res = Browser::new(&app).get("/healthz").await;
    assert_eq!(
        res.headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn anonymous_people_are_sent_to_sign_in_and_back(pool: PgPool) {
    let app = app(pool).await;
    let b = Browser::new(&app);
    let res = b.get("/requests/new").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/auth/login?next=/requests/new");
    let res = b.get(res.location()).await;
    assert_eq!(res.location(), "/auth/dev?next=/requests/new");
    let form = b.get(res.location()).await;
    let next = form.html();
    let next = next
        .select(&Selector::parse(r#"input[name="next"]"#).unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    assert_eq!(next, "/requests/new");
    // Actions are refused, not performed, without a session.
    let res = b.post("/requests", &[("resources", "sales.orders")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(app.request_count().await, 0);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn dev_sign_in_requires_the_csrf_token(pool: PgPool) {
    let app = app(pool).await;
    let b = Browser::new(&app);
    b.get("/auth/dev").await;
    let res = b.post("/auth/dev", &[("email", "alice@example.com")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.text_of("#error-message").contains("no security token"));
    let res = b
        .post(
            "/auth/dev",
            &[("email", "alice@example.com"), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        b.get("/").await.status,
        StatusCode::SEE_OTHER,
        "still signed out"
    );

    let res = b
        .submit("/auth/dev", "/auth/dev", &[("email", "not an email")])
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text_of("#form-error")
            .contains("is not an email address")
    );

    b.sign_in("alice@example.com", "analysts").await;
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.text_of(".flash"), "Signed in as alice@example.com.");

    // The session id (the cookie's value) is stored only as a hash.
    let cookie = b.cookies.lock().unwrap()["lakegate_session"].clone();
    let raw_id = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&cookie)
            .unwrap()
    };
    let keys: Vec<Vec<u8>> = sqlx::query_scalar("select id_hash from web_session")
        .fetch_all(&b.app.services.db)
        .await
        .unwrap();
    let expected: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&raw_id).into()
    };
    assert!(
        keys.contains(&expected.to_vec()),
        "the session is stored under the id's hash"
    );
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from web_session where position($1::bytea in id_hash) > 0 or data::text like '%' || $2 || '%'",
    )
    .bind(&raw_id)
    .bind(&cookie)
    .fetch_one(&b.app.services.db)
    .await
    .unwrap();
    assert_eq!(stored, 0, "the id itself is nowhere in the table");
    assert!(home.body.contains("alice@example.com"));
    assert!(
        !home.has("#pending-requests"),
        "analysts see no approval queue"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn dev_sign_in_answers_only_direct_requests_from_this_machine(pool: PgPool) {
    // From another machine: refused, even with a valid form.
    let remote = app_with(
        pool.clone(),
        ([10, 0, 0, 7], 40_000).into(),
        Duration::hours(12),
    )
    .await;
    let b = Browser::new(&remote);
    let form = b.get("/auth/dev").await;
    assert_eq!(form.status, StatusCode::FORBIDDEN, "{}", form.body);
    assert!(
        form.body.contains("directly from this machine"),
        "{}",
        form.body
    );

    // From loopback, but through a proxy: refused, whichever proxy header says so.
    let app = app(pool).await;
    let b = Browser::new(&app);
    let token = b.get("/auth/dev").await.csrf();
    for header in [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-real-ip",
    ] {
        let body = serde_urlencoded::to_string([
            ("csrf_token", token.as_str()),
            ("email", "mallory@example.com"),
            ("groups", "data-owners"),
        ])
        .unwrap();
        let res = b
            .send(
                Request::post("/auth/dev")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header, "203.0.113.9")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{header}: {}", res.body);
    }
    assert_eq!(
        b.get("/requests/new").await.status,
        StatusCode::SEE_OTHER,
        "nobody signed in"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn sessions_end_at_their_maximum_age_whatever_the_activity(pool: PgPool) {
    // A maximum of 2 s: the session is used within it, then not after it.
    let app = app_with(pool, LOOPBACK_PEER.into(), Duration::seconds(2)).await;
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    assert_eq!(alice.get("/requests/new").await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let after = alice.get("/requests/new").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.body);
    assert!(
        after.location().starts_with("/auth/login"),
        "{}",
        after.location()
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn sign_in_rotates_the_session_id_and_the_csrf_token(pool: PgPool) {
    let app = app(pool).await;
    let b = Browser::new(&app);
    let before_token = b.get("/auth/dev").await.csrf();
    let before_cookie = b.cookies.lock().unwrap().get("lakegate_session").cloned();
    b.sign_in("alice@example.com", "analysts").await;
    let after_cookie = b.cookies.lock().unwrap().get("lakegate_session").cloned();
    assert!(before_cookie.is_some());
    assert_ne!(before_cookie, after_cookie, "a new session id at sign-in");
    let after_token = b.get("/requests/new").await.csrf();
    assert_ne!(before_token, after_token, "a new CSRF token at sign-in");
    // The old token is worthless now.
    let res = b
        .post(
            "/requests",
            &[
                ("csrf_token", before_token.as_str()),
                ("resources", "sales.orders"),
                ("duration", "1h"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn request_approve_credentials_and_revoke_over_http(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    let bob = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    bob.sign_in("bob@example.com", "data-owners").await;

    let id = alice.new_request().await;
    let page = alice.get(&format!("/requests/{id}")).await;
    assert_eq!(page.text_of("#status"), "pending");
    assert!(
        page.has("#cancel") && !page.has("#approve"),
        "requester may cancel, not approve"
    );
    // Why: rule sales (inheriting the defaults) wants one approval from data-owners.
    let why = page.text_of("#approvals-needed");
    assert!(
        why.contains("1 approval from data-owners") && why.contains("Still needed"),
        "{why}"
    );
    assert!(
        page.text_of("#approvals-missing")
            .contains("1 more approval from data-owners (rule sales)")
    );
    // The queue shows what is asked, why, and what is missing, and decides in place.
    let queue = bob.get("/").await;
    let row = queue.text_of(&format!("#queued-{id}"));
    for shown in [
        "sales.orders: all columns",
        "sales.customers: customer_id, email",
        "reconcile",
        "1 more approval from data-owners (rule sales)",
    ] {
        assert!(row.contains(shown), "{shown} not in the queue: {row}");
    }
    assert!(queue.has(&format!(
        r#"#queued-{id} form[action="/requests/{id}/approve"] button"#
    )));
    let res = bob
        .submit(
            "/",
            &format!("/requests/{id}/approve"),
            &[("comment", "ok")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(alice.status_of(id).await, "approved");
    let approved = alice.get(&format!("/requests/{id}")).await;
    assert!(
        approved.body.contains(r#"http-equiv="refresh""#),
        "the page follows progress"
    );
    let why = approved.text_of("#approvals-needed");
    assert!(
        why.contains("bob@example.com") && !why.contains("Still needed"),
        "{why}"
    );
    assert!(!approved.has("#approvals-missing"));
    app.run_worker().await;
    assert_eq!(alice.status_of(id).await, "active");

    // The monitor's record shows on the page: summary, chart, and each query.
    app.cloud.set_queries(
        &format!("lakegate-{id}"),
        vec![lakegate_domain::ports::QueryExecution {
            id: "q-1".into(),
            sql: "SELECT order_id FROM sales.orders".into(),
            database: Some("sales".into()),
            state: lakegate_domain::usage::QueryState::Succeeded,
            state_change_reason: None,
            bytes_scanned: 12_345_678,
            engine_ms: 900,
            submitted_at: None,
            completed_at: None,
        }],
    );
    lakegate_app::monitor::monitor_once(&app.services)
        .await
        .unwrap();
    let page = alice.get(&format!("/requests/{id}")).await;
    assert_eq!(
        page.text_of("#usage-summary"),
        "1 query · 12.3 MB scanned · about $0.000065"
    );
    assert!(page.has("#usage-chart"));
    let queries = page.text_of("#queries");
    assert!(
        queries.contains("SELECT order_id FROM sales.orders") && queries.contains("12.3 MB"),
        "{queries}"
    );
    // sales.orders is partitioned by dt, and the query has no condition on it.
    assert!(
        queries.contains("reads sales.orders without a condition on its partition key dt"),
        "{queries}"
    );

    // Only the requester may get credentials.
    let res = bob
        .submit(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/credentials"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let creds = alice
        .submit(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/credentials"),
            &[],
        )
        .await;
    assert_eq!(creds.status, StatusCode::OK, "{}", creds.body);
    assert_eq!(creds.headers[header::CACHE_CONTROL], "no-store");
    let url = creds.text_of("#credentials-url");
    let token = creds.text_of("#credentials-token");
    assert_eq!(url, format!("http://127.0.0.1:8080/credentials/{id}"));
    // The token goes into a file only its owner reads; no snippet that runs a program carries it.
    assert!(creds.text_of("#snippet-token-file").contains(&format!(
        "printf '%s' '{token}' > ~/.config/lakegate/{id}.token"
    )));
    let env = creds.text_of("#snippet-env");
    assert!(env.contains(&format!(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=\"$HOME/.config/lakegate/{id}.token\""
    )));
    let profile = creds.text_of("#snippet-profile");
    // `lakegate credentials --url` reads ~/.config/lakegate/<id>.token unless told otherwise.
    assert!(
        profile.ends_with(&format!(
            "credential_process = lakegate credentials --url {url}"
        )),
        "{profile}"
    );
    // Copy buttons come from a script of lakegate's own (the page's CSP allows no other).
    assert!(
        creds
            .body
            .contains(r#"<script src="/static/copy.js" defer></script>"#)
    );
    for id in [
        "credentials-url",
        "credentials-token",
        "snippet-token-file",
        "snippet-profile",
        "snippet-env",
    ] {
        assert!(
            creds
                .html()
                .select(&scraper::Selector::parse(&format!("#{id}[data-copy]")).unwrap())
                .next()
                .is_some(),
            "#{id} has no copy button"
        );
    }
    let script = Browser::new(&app).get("/static/copy.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(!env.contains(&token) && !profile.contains(&token));

    let anon = Browser::new(&app);
    let fetch = |auth: Option<String>, query: &'static str| {
        let mut req = Request::get(format!("/credentials/{id}{query}"));
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        req.body(Body::empty()).unwrap()
    };
    let c = anon.send(fetch(Some(token.clone()), "")).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let json = c.json();
    assert!(json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(json["Token"].is_string() && json["SecretAccessKey"].is_string());
    assert!(json["Expiration"].as_str().unwrap().ends_with('Z'));
    let p = anon
        .send(fetch(Some(format!("Bearer {token}")), "?format=process"))
        .await
        .json();
    assert_eq!(p["Version"], 1);
    assert_eq!(p["SessionToken"], json["Token"], "same cached session");
    assert!(!c.body.contains(&token));

    // Early revoke by the requester: the URL stops at once, then everything is removed.
    let res = alice
        .submit(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/revoke"),
            &[("comment", "done")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let refused = anon.send(fetch(Some(token.clone()), "")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["code"], "GrantNotActive");
    app.run_worker().await;
    assert_eq!(alice.status_of(id).await, "revoked");
    let name = format!("lakegate-{id}");
    assert_eq!(app.cloud.leftovers(&name, &name), Vec::<String>::new());
    let timeline = alice
        .get(&format!("/requests/{id}"))
        .await
        .text_of("#timeline");
    for expected in [
        "requested access",
        "approved the request",
        "access became active",
        "minted temporary credentials",
        "access ended",
    ] {
        assert!(
            timeline.contains(expected),
            "{expected} missing from {timeline}"
        );
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_request_page_shows_its_queries_and_timeline_a_page_at_a_time(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    let bob = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    bob.sign_in("bob@example.com", "data-owners").await;
    let id = alice.new_request().await;
    let res = bob
        .submit(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/approve"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    app.run_worker().await;
    // 120 queries, each flagged (sales.orders is partitioned by dt and none of them says
    // which): more queries and more timeline events than one page shows.
    let start = OffsetDateTime::now_utc() - Duration::minutes(30);
    let queries = (0..120)
        .map(|i| lakegate_domain::ports::QueryExecution {
            id: format!("q-{i:03}"),
            sql: format!("SELECT order_id FROM sales.orders -- query {i:03}"),
            database: Some("sales".into()),
            state: lakegate_domain::usage::QueryState::Succeeded,
            state_change_reason: None,
            bytes_scanned: 1_000_000,
            engine_ms: 10,
            submitted_at: Some(start + Duration::seconds(i)),
            completed_at: Some(start + Duration::seconds(i)),
        })
        .collect();
    app.cloud.set_queries(&format!("lakegate-{id}"), queries);
    lakegate_app::monitor::monitor_once(&app.services)
        .await
        .unwrap();

    let page = alice.get(&format!("/requests/{id}")).await;
    assert!(
        page.text_of("#usage-summary").starts_with("120 queries"),
        "the summary counts them all: {}",
        page.text_of("#usage-summary")
    );
    let rows = page
        .html()
        .select(&Selector::parse("#queries tbody tr").unwrap())
        .count();
    assert_eq!(rows, 50);
    let listed = page.text_of("#queries");
    assert!(
        listed.contains("query 119")
            && listed.contains("query 070")
            && !listed.contains("query 069"),
        "newest first: {listed}"
    );
    assert!(
        page.text_of("#queries-pager").contains("1–50 of 120"),
        "{}",
        page.text_of("#queries-pager")
    );
    let older = format!(
        r#"#queries-pager a[rel="next"][href="/requests/{id}?queries=2&events=1#queries"]"#
    );
    assert!(page.has(&older), "{}", page.body);
    assert!(!page.has("#queries-pager a[rel=prev]"));

    let last = alice.get(&format!("/requests/{id}?queries=3")).await;
    assert_eq!(
        last.html()
            .select(&Selector::parse("#queries tbody tr").unwrap())
            .count(),
        20
    );
    assert!(last.text_of("#queries").contains("query 000"));
    assert!(last.text_of("#queries-pager").contains("101–120 of 120"));
    // Past the end shows the last page; nonsense shows the first.
    let past = alice.get(&format!("/requests/{id}?queries=999999")).await;
    assert!(past.text_of("#queries-pager").contains("101–120 of 120"));
    let nonsense = alice
        .get(&format!("/requests/{id}?queries=-1&events=x"))
        .await;
    assert_eq!(nonsense.status, StatusCode::OK);
    assert!(nonsense.text_of("#queries-pager").contains("1–50 of 120"));

    // The timeline, oldest first, 100 events a page.
    assert_eq!(
        page.html()
            .select(&Selector::parse("#timeline li").unwrap())
            .count(),
        100
    );
    assert!(page.text_of("#timeline").contains("requested access"));
    let pager = page.text_of("#timeline-pager");
    assert!(pager.starts_with("events 1–100 of "), "{pager}");
    let later = alice.get(&format!("/requests/{id}?events=2")).await;
    assert!(!later.text_of("#timeline").contains("requested access"));
    assert!(later.has("#timeline-pager a[rel=prev]"));
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn approver_cannot_approve_own_request(pool: PgPool) {
    let app = app(pool).await;
    let bob = Browser::new(&app);
    bob.sign_in("bob@example.com", "data-owners").await;
    let id = bob.new_request().await;
    let page = bob.get(&format!("/requests/{id}")).await;
    assert!(
        !page.has("#approve"),
        "no approve button on one's own request"
    );
    let res = bob
        .submit(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/approve"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.text_of("#error-message"),
        "you cannot approve or deny your own request"
    );
    assert_eq!(bob.status_of(id).await, "pending");
    assert!(
        !bob.get("/").await.body.contains("Review"),
        "own requests are not in the queue"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn bad_input_gets_a_clear_message_and_changes_nothing(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    let cases = [
        ("sales.orders", "1h", "short", "at least 10 characters"),
        (
            "sales.nope",
            "1h",
            "a good enough reason",
            "`sales.nope` is not found or not requestable",
        ),
        (
            "nope.orders",
            "1h",
            "a good enough reason",
            "`nope.orders` is not found or not requestable",
        ),
        (
            "sales.customers: ssn",
            "1h",
            "a good enough reason",
            "has no column `ssn`",
        ),
        (
            "sales orders",
            "1h",
            "a good enough reason",
            "expected `database.table`",
        ),
        (
            "sales.orders",
            "10 years",
            "a good enough reason",
            "is not a duration",
        ),
        (
            "sales.orders",
            "9h",
            "a good enough reason",
            "between 15m and 8h",
        ),
    ];
    for (resources, duration, reason, expected) in cases {
        let res = alice
            .submit(
                "/requests/new",
                "/requests",
                &[
                    ("resources", resources),
                    ("duration", duration),
                    ("reason", reason),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{resources}");
        assert!(
            res.text_of("#form-error").contains(expected),
            "{resources}: {}",
            res.text_of("#form-error")
        );
        // What was typed is kept.
        assert_eq!(res.text_of("#resources"), resources);
    }
    let many: String = (0..21).map(|i| format!("sales.t{i}\n")).collect();
    let res = alice.request_access(&many, "1h").await;
    assert!(res.text_of("#form-error").contains("at most 20 tables"));
    assert_eq!(app.request_count().await, 0);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn state_changes_without_a_valid_token_or_from_another_site_are_refused(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    let bob = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    bob.sign_in("bob@example.com", "data-owners").await;
    let id = alice.new_request().await;

    let res = bob
        .post(&format!("/requests/{id}/approve"), &[("comment", "x")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Alice's token is not Bob's.
    let alices = alice.get(&format!("/requests/{id}")).await.csrf();
    let res = bob
        .post(
            &format!("/requests/{id}/approve"),
            &[("csrf_token", &alices)],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let token = bob.get(&format!("/requests/{id}")).await.csrf();
    let cross_site = Request::post(format!("/requests/{id}/approve"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(format!("csrf_token={token}")))
        .unwrap();
    let res = bob.send(cross_site).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.text_of("#error-message"),
        "this form was sent from another site"
    );
    assert_eq!(alice.status_of(id).await, "pending");

    // Acting in the wrong state is a conflict that says why.
    let res = alice
        .submit(
            &format!("/requests/{id}"),
            &format!("/requests/{id}/cancel"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let res = bob
        .post(
            &format!("/requests/{id}/approve"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(
        res.text_of("#error-message"),
        "cannot approve a request that is cancelled"
    );

    // Oversized bodies are refused before anything reads them.
    let big = "x".repeat(200 * 1024);
    let res = alice
        .post(
            "/requests",
            &[("csrf_token", alices.as_str()), ("resources", big.as_str())],
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.request_count().await, 1);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn strangers_cannot_see_or_touch_a_request(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    let carol = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    carol.sign_in("carol@example.com", "analysts").await;
    let id = alice.new_request().await;
    assert_eq!(
        carol.get(&format!("/requests/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    let token = carol.get("/").await.csrf();
    for action in ["approve", "deny", "cancel", "revoke", "credentials"] {
        let res = carol
            .post(
                &format!("/requests/{id}/{action}"),
                &[("csrf_token", &token)],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(
        carol.get("/requests/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        carol
            .get(&format!("/requests/{}", RequestId::new_random()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(alice.status_of(id).await, "pending");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn credentials_url_answers_json_errors(pool: PgPool) {
    let app = app(pool).await;
    let b = Browser::new(&app);
    let get = |path: String, auth: Option<&str>| {
        let mut r = Request::get(path);
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        r.body(Body::empty()).unwrap()
    };
    let res = b
        .send(get(
            format!("/credentials/{}", RequestId::new_random()),
            Some("lgt_x"),
        ))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.json()["code"], "NotFound");
    assert_eq!(
        b.send(get("/credentials/nope".into(), Some("x")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    let id = alice.new_request().await;
    let res = b.send(get(format!("/credentials/{id}"), None)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.json()["code"], "InvalidToken");
    assert!(res.json()["message"].as_str().unwrap().contains("missing"));
    let res = b
        .send(get(format!("/credentials/{id}?format=xml"), Some("x")))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .contains("unknown format")
    );
}

/// A request in flight on a session when it is signed out saves the session it loaded before
/// the sign-out. That save must not bring the session back.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_request_in_flight_cannot_undo_a_sign_out(pool: PgPool) {
    use tower_sessions::SessionStore as _;
    use tower_sessions::session::{Id, Record};

    let store = lakegate_web::session_store(pool);
    let mut record = Record {
        id: Id::default(),
        data: HashMap::from([("user".to_owned(), serde_json::json!({"email": "a@b.c"}))]),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    };
    store.create(&mut record).await.unwrap();
    // The in-flight request has loaded the session...
    let loaded = store.load(&record.id).await.unwrap().unwrap();
    // ...the person signs out...
    store.delete(&record.id).await.unwrap();
    // ...and the in-flight request finishes, saving what it loaded.
    store.save(&loaded).await.unwrap();
    assert!(
        store.load(&record.id).await.unwrap().is_none(),
        "signed out stays signed out"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn sign_out_ends_the_session(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    let res = alice.submit("/", "/auth/logout", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(alice.get("/").await.status, StatusCode::SEE_OTHER);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn authorization_matrix(pool: PgPool) {
    let app = app(pool).await;
    // (method, path with {id}, the request it needs, expected status per role in ROLES order)
    #[rustfmt::skip]
    let matrix: &[(&str, &str, Needs, [u16; 6])] = &[
        //                                                          anon requester another other-db approver admin
        ("GET", "/healthz", Needs::Nothing,                         [200, 200, 200, 200, 200, 200]),
        ("GET", "/", Needs::Nothing,                                [303, 200, 200, 200, 200, 200]),
        ("GET", "/requests/new", Needs::Nothing,                    [303, 200, 200, 200, 200, 200]),
        ("POST", "/requests", Needs::Nothing,                       [303, 303, 303, 303, 303, 303]),
        ("GET", "/requests/{id}", Needs::Pending,                   [303, 200, 403, 403, 200, 200]),
        ("POST", "/requests/{id}/approve", Needs::Pending,          [303, 403, 403, 403, 303, 403]),
        ("POST", "/requests/{id}/deny", Needs::Pending,             [303, 403, 403, 403, 303, 403]),
        ("POST", "/requests/{id}/cancel", Needs::Pending,           [303, 303, 403, 403, 403, 403]),
        ("GET", "/requests/{id}", Needs::Active,                    [303, 200, 403, 403, 200, 200]),
        ("POST", "/requests/{id}/revoke", Needs::Active,            [303, 303, 403, 403, 303, 303]),
        ("POST", "/requests/{id}/credentials", Needs::Active,       [303, 200, 403, 403, 403, 403]),
        ("GET", "/credentials/{id}", Needs::Active,                 [403, 403, 403, 403, 403, 403]),
        ("POST", "/requests/{id}/extend", Needs::Active,            [303, 303, 403, 403, 403, 403]),
        ("POST", "/requests/{id}/extensions/{ext}/approve", Needs::Extension, [303, 403, 403, 403, 303, 403]),
        ("POST", "/requests/{id}/extensions/{ext}/deny", Needs::Extension,    [303, 403, 403, 403, 303, 403]),
        ("POST", "/requests/{id}/review", Needs::BreakGlass,        [303, 403, 403, 403, 303, 403]),
        ("GET", "/requests/{id}/query", Needs::Pending,             [303, 403, 403, 403, 403, 403]),
        ("GET", "/requests/{id}/query", Needs::Active,              [303, 200, 403, 403, 403, 403]),
        ("POST", "/requests/{id}/query", Needs::Active,             [303, 200, 403, 403, 403, 403]),
        ("GET", "/requests/{id}/query/{q}", Needs::ConsoleQuery,    [303, 200, 403, 403, 403, 403]),
        ("GET", "/requests/{id}/query/{q}/results.csv", Needs::ConsoleQuery, [303, 200, 403, 403, 403, 403]),
        ("POST", "/requests/{id}/query/{q}/stop", Needs::ConsoleQuery, [303, 303, 403, 403, 403, 403]),
        ("GET", "/audit", Needs::Nothing,                           [303, 403, 403, 403, 403, 200]),
        ("GET", "/audit/export?format=csv", Needs::Nothing,         [303, 403, 403, 403, 403, 200]),
        ("GET", "/requests/new/tables?q=sales", Needs::Nothing,     [303, 200, 200, 200, 200, 200]),
        ("GET", "/requests/new/preview?resources=sales.orders", Needs::Nothing, [303, 200, 200, 200, 200, 200]),
        ("GET", "/audit/notifications", Needs::Nothing,             [303, 403, 403, 403, 403, 200]),
        ("POST", "/auth/logout", Needs::Nothing,                    [403, 303, 303, 303, 303, 303]),
    ];
    let mut wrong = Vec::new();
    for (method, template, needs, expected) in matrix {
        for ((role, who), want) in ROLES.iter().zip(expected) {
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
            let b = Browser::new(&app);
            if let Some((email, groups)) = who {
                b.sign_in(email, groups).await;
            }
            let res = if *method == "GET" {
                b.get(&path).await
            } else {
                // A valid CSRF token where the person has a session (the dashboard's).
                let token = if who.is_some() {
                    b.get("/").await.csrf()
                } else {
                    String::new()
                };
                let fields: Vec<(&str, &str)> = if path == "/requests" {
                    vec![
                        ("csrf_token", &token),
                        ("resources", "sales.orders"),
                        ("duration", "1h"),
                        ("reason", "authorization matrix"),
                    ]
                } else if path.ends_with("/query") {
                    vec![("csrf_token", &token), ("sql", "SELECT 1")]
                } else if path.ends_with("/extend") {
                    vec![
                        ("csrf_token", &token),
                        ("duration", "1h"),
                        ("reason", "authorization matrix"),
                    ]
                } else {
                    vec![("csrf_token", &token)]
                };
                b.post(&path, &fields).await
            };
            if res.status.as_u16() != *want {
                wrong.push(format!(
                    "{method} {template} as {role}: {} (expected {want})",
                    res.status.as_u16()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "authorization matrix mismatches:\n{}",
        wrong.join("\n")
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn admins_read_filter_and_export_the_audit_trail(pool: PgPool) {
    let app = app(pool.clone()).await;
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    let id = alice.new_request().await;
    let other = alice.new_request().await;
    let dora = Browser::new(&app);
    dora.sign_in("dora@example.com", "security").await;

    let home = dora.get("/").await;
    assert!(
        home.has(r#"nav a[href="/audit"]"#),
        "admins get the Audit link"
    );
    assert!(!alice.get("/").await.has(r#"nav a[href="/audit"]"#));

    let page = dora.get("/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows = page.text_of("#audit-events");
    assert!(
        rows.contains("request.submitted") && rows.contains("user.signed_in"),
        "{rows}"
    );

    let filtered = dora.get(&format!("/audit?request={id}")).await;
    let table = filtered.text_of("#audit-events");
    assert!(
        table.contains(&id.to_string()) && !table.contains(&other.to_string()),
        "{table}"
    );
    let by_actor = dora
        .get("/audit?actor=DORA&action=user.signed_in")
        .await
        .text_of("#audit-events");
    assert!(
        by_actor.contains("dora@example.com") && !by_actor.contains("alice@example.com"),
        "{by_actor}"
    );

    let bad = dora.get("/audit?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text_of("#error-message")
            .contains("is not a date like 2026-11-01")
    );

    let csv = dora
        .get(&format!("/audit/export?format=csv&request={id}"))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "event_id,occurred_at,request_id,actor_subject,actor_email,action,detail,hash"
    );
    assert_eq!(lines.len(), 2, "one event for that request: {}", csv.body);
    let jsonl = dora.get("/audit/export").await;
    assert_eq!(jsonl.headers[header::CONTENT_TYPE], "application/x-ndjson");
    let first: serde_json::Value =
        serde_json::from_str(jsonl.body.lines().next().unwrap()).unwrap();
    assert_eq!(first["action"], "user.signed_in", "oldest first");
    assert!(!jsonl.headers.contains_key("x-lakegate-export-truncated"));

    // Past its row cap the export says so, in a header and in the file's name.
    sqlx::query(
        "insert into audit_event (occurred_at, action, detail)
         select now(), 'user.signed_in', '{}' from generate_series(1, $1)",
    )
    .bind(lakegate_app::audit::EXPORT_LIMIT)
    .execute(&pool)
    .await
    .unwrap();
    let capped = dora.get("/audit/export").await;
    assert_eq!(capped.status, StatusCode::OK);
    assert!(
        capped.headers["x-lakegate-export-truncated"]
            .to_str()
            .unwrap()
            .contains("only the latest 100000 events"),
        "{:?}",
        capped.headers
    );
    assert!(
        capped.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("lakegate-audit-latest.jsonl")
    );
    assert_eq!(capped.body.lines().count(), 100_000);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_query_console_runs_refuses_and_downloads_over_http(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    let bob = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    bob.sign_in("bob@example.com", "data-owners").await;
    let id = alice.new_request().await;
    bob.submit(
        &format!("/requests/{id}"),
        &format!("/requests/{id}/approve"),
        &[],
    )
    .await;
    app.run_worker().await;

    // The request page leads the requester, and only the requester, to the console.
    let page = alice.get(&format!("/requests/{id}")).await;
    assert!(page.has("#open-console"));
    assert!(
        !bob.get(&format!("/requests/{id}"))
            .await
            .has("#open-console")
    );

    let console = format!("/requests/{id}/query");
    let form = alice.get(&console).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.has("#query-form textarea[name=sql]"));
    assert!(form.has(r#"#query-form select[name=database] option[value="sales"]"#));
    let covers = form.text_of("#console-tables");
    assert!(
        covers.contains("sales.customers") && covers.contains("customer_id, email"),
        "{covers}"
    );

    // Refused: 422, the form as it was, and the reason.
    let res = alice
        .submit(
            &console,
            &console,
            &[("sql", "DELETE FROM sales.orders"), ("database", "")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert!(
        res.text_of("#query-error")
            .contains("are not allowed: the console only reads"),
        "{}",
        res.text_of("#query-error")
    );
    assert_eq!(res.text_of("#sql"), "DELETE FROM sales.orders");
    let res = alice
        .submit(
            &console,
            &console,
            &[
                ("sql", "SELECT country FROM customers"),
                ("database", "sales"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        res.text_of("#query-error"),
        "column `country` of sales.customers is not part of this grant"
    );
    // Text Athena reads otherwise than the parser would (a `--` comment ends at a lone
    // carriage return) is refused, not run.
    let res = alice
        .submit(
            &console,
            &console,
            &[
                ("sql", "SELECT customer_id --\r, country\nFROM customers"),
                ("database", "sales"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text_of("#query-error")
            .contains("a carriage return inside a `--` comment"),
        "{}",
        res.text_of("#query-error")
    );
    assert!(app.cloud.state().console_runs.is_empty());

    // Accepted: it runs, and the answer is its page: state, cost, rows, the CSV link.
    app.cloud.queue_results(
        &["customer_id", "email"],
        &[&[Some("7"), Some("ann@example.com")], &[Some("8"), None]],
    );
    let form = alice.get(&console).await;
    let run_token = form
        .html()
        .select(&Selector::parse("input[name=run_token]").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(ToOwned::to_owned))
        .unwrap();
    let fields = [
        ("csrf_token", form.csrf()),
        (
            "sql",
            "SELECT customer_id, email -- both\nFROM customers LIMIT 2".to_owned(),
        ),
        ("database", "sales".to_owned()),
        ("run_token", run_token),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = alice.post(&console, &fields).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.text_of("#query-state"), "SUCCEEDED");
    let q = app.last_console_query();
    // Sent again (a reload of this answer): the same query, not a second run.
    let again = alice.post(&console, &fields).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.headers.get(header::CONTENT_LOCATION),
        res.headers.get(header::CONTENT_LOCATION)
    );
    assert_eq!(app.cloud.state().console_runs.len(), 1);
    // What ran is the guard's rendering, and the page says so.
    assert_eq!(
        app.cloud.state().console_runs[0].sql,
        "SELECT customer_id, email FROM customers LIMIT 2"
    );
    assert_eq!(
        res.text_of("#query-sql"),
        "SELECT customer_id, email FROM customers LIMIT 2"
    );
    assert!(res.has("#query-sql-sent"));
    assert_eq!(
        res.headers.get(header::CONTENT_LOCATION).unwrap(),
        &format!("/requests/{id}/query/{q}")
    );
    assert_eq!(res.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(
        res.text_of("#query-cost"),
        "$0.00005 (billed as 10 MB: rounded up per MB, at least 10 MB a query)"
    );
    assert_eq!(res.text_of("#query-row-count"), "2 rows.");
    assert!(res.has(&format!(
        r#"a#query-csv[href="/requests/{id}/query/{q}/results.csv"]"#
    )));
    let cells: Vec<String> = res
        .html()
        .select(&Selector::parse("#query-results tbody td").unwrap())
        .map(|td| td.text().collect())
        .collect();
    assert_eq!(cells, ["7", "ann@example.com", "8", "NULL"]);
    assert!(!res.body.contains(r#"http-equiv="refresh""#));

    let csv = alice
        .get(&format!("/requests/{id}/query/{q}/results.csv"))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        csv.headers
            .get(header::CONTENT_DISPOSITION)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(csv.body, "customer_id,email\r\n7,ann@example.com\r\n8,\r\n");

    // A query still running refreshes itself, shows progress, and can be stopped.
    app.cloud
        .set_query_state(&q, lakegate_domain::usage::QueryState::Running, 42_000_000);
    let running = alice.get(&format!("/requests/{id}/query/{q}")).await;
    assert_eq!(running.text_of("#query-state"), "RUNNING");
    assert!(running.has("#query-progress"));
    assert!(running.body.contains(r#"http-equiv="refresh""#));
    assert_eq!(running.text_of("#query-bytes"), "42 MB");
    let stopped = alice
        .submit(
            &format!("/requests/{id}/query/{q}"),
            &format!("/requests/{id}/query/{q}/stop"),
            &[],
        )
        .await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER);
    let after = alice.get(stopped.location()).await;
    assert_eq!(after.text_of("#query-state"), "CANCELLED");
    let not_yet = alice
        .get(&format!("/requests/{id}/query/{q}/results.csv"))
        .await;
    assert_eq!(not_yet.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The console lists it, and "edit" brings its SQL back.
    let listed = alice.get(&console).await;
    assert!(
        listed
            .text_of("#recent-queries")
            .contains("SELECT customer_id, email")
    );
    let edit = alice.get(&format!("{console}?from={q}")).await;
    assert_eq!(
        edit.text_of("#sql"),
        "SELECT customer_id, email FROM customers LIMIT 2"
    );

    // The request's usage shows it as the console's; only the requester gets its link.
    let request_page = alice.get(&format!("/requests/{id}")).await;
    assert!(request_page.text_of("#queries").contains("(query console)"));
    let link = format!(r#"#queries a[href="/requests/{id}/query/{q}"]"#);
    assert!(request_page.has(&link));
    assert!(!bob.get(&format!("/requests/{id}")).await.has(&link));

    // A refusal keeps the database as chosen, "none" included.
    let res = alice
        .submit(
            &console,
            &console,
            &[("sql", "DROP TABLE x"), ("database", "")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!res.has("#database option[selected]"), "none stays chosen");
    // A fresh form proposes the grant's only database.
    assert!(
        alice
            .get(&console)
            .await
            .has(r#"#database option[value="sales"][selected]"#)
    );

    // Ids that cannot be Athena's are not found.
    let odd = alice.get(&format!("/requests/{id}/query/..%2F..")).await;
    assert_eq!(odd.status, StatusCode::NOT_FOUND);
}
