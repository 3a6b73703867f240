//! OpenID Connect sign-in against the real npm `oidc-provider` on loopback (started by
//! `scripts/test`, which sets LAKEGATE_TEST_OIDC_ISSUER). lakegate's router runs in-process;
//! the person's browser is played by an HTTP client that logs in at the provider's own pages.
//! The provider's `tamper-*` accounts answer with ID tokens that have exactly one defect.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lakegate_app::{Services, Settings};
use lakegate_domain::audit::AuditAction;
use lakegate_testkit::{FakeCloud, FixedClock};
use lakegate_web::oidc::{Oidc, OidcConfig};
use lakegate_web::{AppState, SignIn, WebConfig};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

const APP: &str = "http://127.0.0.1:8080";

fn issuer() -> String {
    std::env::var("LAKEGATE_TEST_OIDC_ISSUER")
        .expect("LAKEGATE_TEST_OIDC_ISSUER is not set: run the tests with scripts/test, which starts the provider")
}

async fn app(pool: PgPool) -> Router {
    app_with(pool, true, Duration::minutes(15)).await
}

async fn app_requiring_verified_email(pool: PgPool, require_verified_email: bool) -> Router {
    app_with(pool, require_verified_email, Duration::minutes(15)).await
}

async fn app_with(pool: PgPool, require_verified_email: bool, groups_refresh: Duration) -> Router {
    let clock = Arc::new(FixedClock::at(OffsetDateTime::now_utc()));
    let settings = Settings::for_tests().with_results("s3://results/lakegate/");
    let services = Services::new(
        pool.clone(),
        Arc::new(FakeCloud::with_sample_catalog()),
        clock,
        settings,
    );
    let oidc = Oidc::discover(&OidcConfig {
        issuer: issuer(),
        client_id: "lakegate".into(),
        client_secret: "lakegate-secret".into(),
        groups_claim: "groups".into(),
        extra_scopes: vec!["groups".into()],
        redirect_url: format!("{APP}/auth/callback"),
        require_verified_email,
    })
    .await
    .unwrap();
    let config = WebConfig {
        public_url: APP.into(),
        sign_in: SignIn::Oidc(Arc::new(oidc)),
        secure_cookies: false,
        session_idle: Duration::hours(1),
        session_max: Duration::hours(12),
        groups_refresh,
        slack: None,
    };
    let sessions = lakegate_web::session_store(pool);
    lakegate_web::router(AppState::new(services, config), sessions)
}

/// A browser: one cookie for lakegate (the router), a cookie store for the provider.
struct Browser {
    router: Router,
    lakegate_cookie: Option<String>,
    idp: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(router: Router) -> Self {
        Self {
            router,
            lakegate_cookie: None,
            idp: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// Posts a lakegate form with the CSRF token of the page at `page`.
    async fn lakegate_form(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let html = self.lakegate(page).await.body;
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse(r#"input[name="csrf_token"]"#).unwrap();
        let token = doc
            .select(&sel)
            .next()
            .and_then(|e| e.value().attr("value"))
            .unwrap_or_else(|| panic!("no csrf_token in {page}:\n{html}"))
            .to_owned();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.send(
            Request::post(action).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    async fn lakegate(&mut self, path_and_query: &str) -> Answer {
        self.send(Request::get(path_and_query), Body::empty()).await
    }

    async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Answer {
        let mut req = req;
        if let Some(c) = &self.lakegate_cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        if let Some(set) = res.headers().get(header::SET_COOKIE) {
            self.lakegate_cookie =
                Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Follows one redirect at the provider; returns the absolute next URL.
    async fn idp_hop(&self, res: reqwest::Response) -> reqwest::Url {
        assert!(
            res.status().is_redirection(),
            "expected a redirect, got {}",
            res.status()
        );
        let location = res.headers()[header::LOCATION].to_str().unwrap();
        res.url().join(location).unwrap()
    }

    /// Starts sign-in at lakegate and logs in at the provider as `login`; returns the callback
    /// URL the provider sends the browser to (not yet followed).
    async fn sign_in_at_provider(&mut self, login: &str) -> reqwest::Url {
        let start = self.lakegate("/auth/login?next=/requests/new").await;
        assert_eq!(start.status, StatusCode::SEE_OTHER);
        let authorize = start.location.unwrap();
        assert!(authorize.starts_with(&issuer()), "{authorize}");
        for p in [
            "code_challenge_method=S256",
            "state=",
            "nonce=",
            "scope=openid",
        ] {
            assert!(authorize.contains(p), "{p} missing from {authorize}");
        }
        let url = self
            .idp_hop(self.idp.get(&authorize).send().await.unwrap())
            .await;
        let form = [("prompt", "login"), ("login", login), ("password", "x")];
        let url = self
            .idp_hop(self.idp.post(url).form(&form).send().await.unwrap())
            .await;
        let url = self.idp_hop(self.idp.get(url).send().await.unwrap()).await;
        let url = self
            .idp_hop(
                self.idp
                    .post(url)
                    .form(&[("prompt", "consent")])
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
        let callback = self.idp_hop(self.idp.get(url).send().await.unwrap()).await;
        assert!(
            callback
                .as_str()
                .starts_with(&format!("{APP}/auth/callback?")),
            "{callback}"
        );
        callback
    }

    async fn callback(&mut self, url: &reqwest::Url) -> Answer {
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        self.lakegate(&path).await
    }

    async fn is_signed_in(&mut self) -> bool {
        self.lakegate("/").await.status == StatusCode::OK
    }
}

fn with_param(url: &reqwest::Url, key: &str, value: &str) -> reqwest::Url {
    let mut u = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_full_sign_in_through_the_provider(pool: PgPool) {
    let mut b = Browser::new(app(pool.clone()).await);
    let callback = b.sign_in_at_provider("alice").await;
    assert!(
        callback.as_str().contains("iss="),
        "RFC 9207 issuer parameter"
    );
    let before = b.lakegate_cookie.clone();
    let res = b.callback(&callback).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(
        res.location.as_deref(),
        Some("/requests/new"),
        "back where sign-in started"
    );
    assert_ne!(b.lakegate_cookie, before, "a new session id at sign-in");
    let home = b.lakegate("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Signed in as alice@example.com."));
    assert!(
        home.body.contains("Alice Analyst") && home.body.contains("analysts"),
        "name and groups from the ID token"
    );
    let events: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where action = $1 and actor_subject = 'alice' and detail->>'method' = 'oidc'",
    )
    .bind(AuditAction::SignedIn.as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(events, 1);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn approver_groups_come_from_the_provider(pool: PgPool) {
    let mut b = Browser::new(app(pool).await);
    let callback = b.sign_in_at_provider("bob").await;
    assert_eq!(b.callback(&callback).await.status, StatusCode::SEE_OTHER);
    let home = b.lakegate("/").await;
    assert!(
        home.body.contains("Waiting for your approval"),
        "bob is in data-owners"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_tampered_state_is_refused(pool: PgPool) {
    let mut b = Browser::new(app(pool).await);
    let callback = b.sign_in_at_provider("alice").await;
    let res = b.callback(&with_param(&callback, "state", "forged")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body
            .contains("does not belong to the sign-in this browser started"),
        "{}",
        res.body
    );
    assert!(!b.is_signed_in().await);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_replayed_code_is_refused(pool: PgPool) {
    let mut b = Browser::new(app(pool).await);
    let callback = b.sign_in_at_provider("alice").await;
    assert_eq!(b.callback(&callback).await.status, StatusCode::SEE_OTHER);
    // The same answer again, in the same browser: the pending sign-in is gone.
    let res = b.callback(&callback).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body.contains("not valid any more"), "{}", res.body);

    // In another browser that has started a sign-in of its own: the provider refuses the
    // used code (and the PKCE verifier does not match either).
    let mut other = Browser::new(b.router.clone());
    let start = other.lakegate("/auth/login").await;
    let authorize = reqwest::Url::parse(&start.location.unwrap()).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = other
        .callback(&with_param(&callback, "state", &state))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body.contains("did not accept the sign-in"),
        "{}",
        res.body
    );
    assert!(!other.is_signed_in().await);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn defective_id_tokens_are_refused(pool: PgPool) {
    let router = app(pool).await;
    // (login at the provider, what the refusal must mention)
    let cases = [
        ("tamper-nonce", "nonce"),
        ("tamper-aud", "audience"),
        ("tamper-exp", "expired"),
        ("tamper-iss", "issuer"),
        ("tamper-sig", "signature"),
    ];
    for (login, expected) in cases {
        let mut b = Browser::new(router.clone());
        let callback = b.sign_in_at_provider(login).await;
        let res = b.callback(&callback).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{login}: {}", res.body);
        let body = res.body.to_lowercase();
        assert!(body.contains("sign-in failed"), "{login}: {}", res.body);
        assert!(
            body.contains(expected),
            "{login}: expected `{expected}` in {}",
            res.body
        );
        assert!(!b.is_signed_in().await, "{login} signed in");
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_refusal_at_the_provider_is_explained(pool: PgPool) {
    let mut b = Browser::new(app(pool).await);
    let start = b.lakegate("/auth/login").await;
    let authorize = reqwest::Url::parse(&start.location.unwrap()).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = b
        .lakegate(&format!(
            "/auth/callback?error=access_denied&error_description=End-User+aborted+interaction&state={state}"
        ))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body
            .contains("access_denied: End-User aborted interaction"),
        "{}",
        res.body
    );
    assert!(!b.is_signed_in().await);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_callback_from_another_issuer_is_refused(pool: PgPool) {
    let mut b = Browser::new(app(pool).await);
    let callback = b.sign_in_at_provider("alice").await;
    let res = b
        .callback(&with_param(&callback, "iss", "https://evil.example"))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body
            .contains("not from the configured identity provider"),
        "{}",
        res.body
    );
    assert!(!b.is_signed_in().await);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn unverified_email_addresses_are_refused(pool: PgPool) {
    let router = app(pool.clone()).await;
    // `email_verified: false`: always refused. No claim at all: refused as configured (here,
    // the default: required).
    for login in ["unverified", "unclaimed"] {
        let mut b = Browser::new(router.clone());
        let callback = b.sign_in_at_provider(login).await;
        let res = b.callback(&callback).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{login}: {}", res.body);
        assert!(res.body.contains("verified"), "{login}: {}", res.body);
        assert!(!b.is_signed_in().await, "{login} signed in");
    }
    // Configured to accept a missing claim: `unclaimed` signs in, `unverified` still does not.
    let lenient = app_requiring_verified_email(pool, false).await;
    let mut b = Browser::new(lenient.clone());
    let callback = b.sign_in_at_provider("unclaimed").await;
    assert_eq!(b.callback(&callback).await.status, StatusCode::SEE_OTHER);
    assert!(b.is_signed_in().await);
    let mut b = Browser::new(lenient);
    let callback = b.sign_in_at_provider("unverified").await;
    assert_eq!(b.callback(&callback).await.status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_development_sign_in_does_not_exist_beside_the_provider(pool: PgPool) {
    let mut b = Browser::new(app(pool).await);
    assert_eq!(b.lakegate("/auth/dev").await.status, StatusCode::NOT_FOUND);
    let login = b.lakegate("/auth/login").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert!(login.location.unwrap().starts_with(&issuer()));
}

/// Sets `login`'s groups at the test provider (its test-only hook), as an administrator of the
/// organisation would.
async fn set_groups_at_provider(login: &str, groups: &[&str]) {
    let res = reqwest::Client::new()
        .post(format!("{}/__test/groups/{login}", issuer()))
        .json(&groups)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_group_removed_at_the_provider_stops_counting(pool: PgPool) {
    // Groups re-read at least every second, and always before a decision.
    let router = app_with(pool, true, Duration::seconds(1)).await;
    // An approver of this test's own (the provider is shared with other tests).
    let owner = format!("owner-{}", uuid::Uuid::new_v4().simple());
    set_groups_at_provider(&owner, &["data-owners"]).await;

    let mut alice = Browser::new(router.clone());
    let callback = alice.sign_in_at_provider("alice").await;
    assert_eq!(
        alice.callback(&callback).await.status,
        StatusCode::SEE_OTHER
    );
    let res = alice
        .lakegate_form(
            "/requests/new",
            "/requests",
            &[
                ("resources", "sales.orders"),
                ("duration", "1h"),
                ("reason", "reconcile the April revenue report"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page = res.location.unwrap();

    let mut approver = Browser::new(router.clone());
    let callback = approver.sign_in_at_provider(&owner).await;
    assert_eq!(
        approver.callback(&callback).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(
        approver
            .lakegate("/")
            .await
            .body
            .contains("Waiting for your approval"),
        "a data owner sees the queue"
    );

    // The organisation removes the approver from the group. The next decision re-reads the
    // groups first: refused, and nothing is decided. (The form's token comes from the
    // dashboard: the request page itself may already have re-read the groups and refuse.)
    set_groups_at_provider(&owner, &[]).await;
    let res = approver
        .lakegate_form("/", &format!("{page}/approve"), &[])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert!(
        alice.lakegate(&page).await.body.contains("pending"),
        "the request is still pending"
    );

    // Pages re-read within the refresh interval too.
    set_groups_at_provider(&owner, &["data-owners"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert!(
        approver
            .lakegate("/")
            .await
            .body
            .contains("Waiting for your approval")
    );
    set_groups_at_provider(&owner, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let home = approver.lakegate("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        !home.body.contains("Waiting for your approval"),
        "the queue is gone once the groups were re-read"
    );
}

/// A personal API token acts only on groups the provider confirms, as a session does: the
/// owner's groups are re-read (with the tokens of their latest sign-in) before a decision, a
/// group removed at the provider stops counting for the token too, and a token whose owner the
/// provider has not confirmed since is refused until they sign in again.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn api_tokens_act_only_on_groups_the_provider_confirms(pool: PgPool) {
    let router = app_with(pool.clone(), true, Duration::minutes(15)).await;
    let owner = format!("owner-{}", uuid::Uuid::new_v4().simple());
    set_groups_at_provider(&owner, &["data-owners"]).await;

    let mut alice = Browser::new(router.clone());
    let callback = alice.sign_in_at_provider("alice").await;
    alice.callback(&callback).await;
    let res = alice
        .lakegate_form(
            "/requests/new",
            "/requests",
            &[
                ("resources", "sales.orders"),
                ("duration", "1h"),
                ("reason", "reconcile the April revenue report"),
            ],
        )
        .await;
    let page = res.location.unwrap();
    let id = page.rsplit('/').next().unwrap().to_owned();

    let mut approver = Browser::new(router.clone());
    let callback = approver.sign_in_at_provider(&owner).await;
    approver.callback(&callback).await;
    let made = approver
        .lakegate_form(
            "/settings/tokens",
            "/settings/tokens",
            &[("name", "approvals"), ("scopes", "approvals:write")],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let doc = scraper::Html::parse_document(&made.body);
    let token = doc
        .select(&scraper::Selector::parse("#api-token").unwrap())
        .next()
        .unwrap()
        .text()
        .collect::<String>()
        .trim()
        .to_owned();
    let approve = |router: Router, token: String, id: String| async move {
        let res = router
            .oneshot(
                Request::post(format!("/api/v1/requests/{id}/approve"))
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    };

    // Removed from the group at the provider: the token's decision re-reads the groups first.
    set_groups_at_provider(&owner, &[]).await;
    let (status, body) = approve(router.clone(), token.clone(), id.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(alice.lakegate(&page).await.body.contains("pending"));

    // Back in the group: it approves.
    set_groups_at_provider(&owner, &["data-owners"]).await;
    let (status, body) = approve(router.clone(), token.clone(), id.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("approved"), "{body}");

    // Nothing confirmed from the provider (as for a token made before its owner's latest
    // sign-in was kept): refused, saying what to do.
    sqlx::query("delete from provider_tokens")
        .execute(&pool)
        .await
        .unwrap();
    let (status, body) = approve(router.clone(), token.clone(), id.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("sign in to lakegate again"), "{body}");
}
