//! The in-process harness the HTTP tests share: lakegate's real router with the development
//! sign-in, real PostgreSQL, a FakeCloud, and a cookie-carrying client per person.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared by several test binaries, each using some; tests fail loudly on purpose"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use lakegate_app::worker::work_once;
use lakegate_app::{Services, Settings};
use lakegate_domain::RequestId;
use lakegate_testkit::{FakeCloud, FixedClock};
use lakegate_web::{AppState, SignIn, WebConfig};
use scraper::{Html, Selector};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub services: Services,
    pub cloud: Arc<FakeCloud>,
    /// lakegate's clock: it moves only when a test says so.
    pub clock: Arc<FixedClock>,
}

/// Sales (and every other table) is approved by `data-owners`; HR by `hr-owners`, who are
/// nobody special for sales.
pub const POLICY: &str = r#"
admin_group = "security"

[defaults]
approver_groups = ["data-owners"]
min_duration = "15m"
max_duration = "8h"
query_scan_cutoff = "10GB"

[[rule]]
name = "hr"
match = ["hr.*"]
approver_groups = ["hr-owners"]
sensitive_columns = ["salary", "national_id"]

[[rule]]
name = "sales"
match = ["sales.*"]
break_glass = { groups = ["oncall"], max_duration = "1h" }
"#;

/// The people in these tests browse from this machine (the development sign-in answers only
/// them).
pub const LOOPBACK_PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 50_000);

/// lakegate's router with the development sign-in, as if every request came from `peer`.
pub async fn app_with(pool: PgPool, peer: SocketAddr, session_max: Duration) -> TestApp {
    app_at(pool, peer, session_max, "http://127.0.0.1:8080").await
}

/// The same, served at `public_url`.
pub async fn app_at(
    pool: PgPool,
    peer: SocketAddr,
    session_max: Duration,
    public_url: &str,
) -> TestApp {
    let clock = Arc::new(FixedClock::at(OffsetDateTime::now_utc()));
    let cloud = Arc::new(FakeCloud::with_sample_catalog().with_clock(clock.clone()));
    // The authorization matrix makes many more pending requests than one person may have.
    let settings = Settings::for_tests()
        .with_policy_toml(POLICY)
        .with_results("s3://results/lakegate/")
        .with_requests(lakegate_app::RequestSettings {
            max_pending_per_person: 0,
            ..lakegate_app::RequestSettings::default()
        });
    let services = Services::new(pool.clone(), cloud.clone(), clock.clone(), settings);
    let config = WebConfig {
        public_url: public_url.into(),
        sign_in: SignIn::Development,
        secure_cookies: false,
        session_idle: Duration::hours(1),
        session_max,
        groups_refresh: Duration::minutes(15),
        slack: None,
    };
    let sessions = lakegate_web::session_store(pool);
    TestApp {
        router: lakegate_web::router(AppState::new(services.clone(), config), sessions)
            .layer(MockConnectInfo(peer)),
        services,
        cloud,
        clock,
    }
}

pub async fn app(pool: PgPool) -> TestApp {
    app_with(pool, LOOPBACK_PEER.into(), Duration::hours(12)).await
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Response {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap()
    }

    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    #[track_caller]
    pub fn text_of(&self, selector: &str) -> String {
        let sel = Selector::parse(selector).unwrap();
        let html = self.html();
        let el = html
            .select(&sel)
            .next()
            .unwrap_or_else(|| panic!("no {selector} in:\n{}", self.body));
        el.text().collect::<String>().trim().to_owned()
    }

    pub fn has(&self, selector: &str) -> bool {
        self.html()
            .select(&Selector::parse(selector).unwrap())
            .next()
            .is_some()
    }

    pub fn csrf(&self) -> String {
        let sel = Selector::parse(r#"input[name="csrf_token"]"#).unwrap();
        let html = self.html();
        html.select(&sel)
            .next()
            .and_then(|e| e.value().attr("value"))
            .unwrap_or_else(|| panic!("no csrf_token in:\n{}", self.body))
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One person's browser: a cookie jar over the router.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: Mutex<HashMap<String, String>>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: Mutex::new(HashMap::new()),
        }
    }

    pub async fn send(&self, mut req: Request<Body>) -> Response {
        let cookie = {
            let jar = self.cookies.lock().unwrap();
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !cookie.is_empty() {
            req.headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        let res = self.app.router.clone().oneshot(req).await.unwrap();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies
                .lock()
                .unwrap()
                .insert(k.to_owned(), v.to_owned());
        }
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Posts a form with the CSRF token from the page at `page`.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.get(page).await.csrf();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub async fn sign_in(&self, email: &str, groups: &str) {
        let res = self
            .submit(
                "/auth/dev",
                "/auth/dev",
                &[("email", email), ("groups", groups), ("next", "/")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    }

    pub async fn request_access(&self, resources: &str, duration: &str) -> Response {
        self.submit(
            "/requests/new",
            "/requests",
            &[
                ("resources", resources),
                ("duration", duration),
                ("reason", "reconcile the April revenue report"),
            ],
        )
        .await
    }

    pub async fn new_request(&self) -> RequestId {
        let res = self
            .request_access("sales.orders\nsales.customers: customer_id, email", "1h")
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        res.location()
            .trim_start_matches("/requests/")
            .parse()
            .unwrap()
    }

    pub async fn status_of(&self, id: RequestId) -> String {
        let page = self.get(&format!("/requests/{id}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.text_of("#status")
    }
}

impl TestApp {
    pub async fn run_worker(&self) {
        work_once(&self.services, "test").await.unwrap();
    }

    pub async fn request_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from access_request")
            .fetch_one(&self.services.db)
            .await
            .unwrap()
    }
}

/// Who is asking, in the order of the matrix's columns.
pub const ROLES: [(&str, Option<(&str, &str)>); 6] = [
    ("anonymous", None),
    ("requester", Some(("alice@example.com", "analysts"))),
    ("another requester", Some(("carol@example.com", "analysts"))),
    (
        "approver of another database",
        Some(("harriet@example.com", "hr-owners")),
    ),
    ("approver", Some(("bob@example.com", "data-owners"))),
    ("admin", Some(("dora@example.com", "security"))),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Needs {
    Nothing,
    Pending,
    Active,
    /// Active through break-glass, not reviewed yet.
    BreakGlass,
    /// Active, with an extension waiting for approval.
    Extension,
    /// Active, with a query run in the console (`{q}` in the path).
    ConsoleQuery,
}

impl TestApp {
    /// A request of alice's in the given state.
    pub async fn request_in(&self, needs: Needs) -> Option<RequestId> {
        if needs == Needs::Nothing {
            return None;
        }
        let alice = lakegate_domain::Principal::new(
            "alice@example.com",
            "alice@example.com",
            None,
            ["analysts".to_owned(), "oncall".to_owned()],
        )
        .unwrap();
        let bob = lakegate_domain::Principal::new(
            "bob@example.com",
            "bob@example.com",
            None,
            ["data-owners".to_owned()],
        )
        .unwrap();
        let (id, _) = lakegate_app::requests::submit(
            &self.services,
            &alice,
            lakegate_app::requests::SubmitInput {
                resources: "sales.orders",
                duration: "1h",
                reason: "authorization matrix",
                break_glass: needs == Needs::BreakGlass,
            },
        )
        .await
        .unwrap();
        if needs == Needs::BreakGlass {
            self.run_worker().await;
        }
        if matches!(
            needs,
            Needs::Active | Needs::Extension | Needs::ConsoleQuery
        ) {
            lakegate_app::requests::decide(
                &self.services,
                &bob,
                id,
                lakegate_store::requests::Decision::Approve,
                None,
            )
            .await
            .unwrap();
            self.run_worker().await;
        }
        if needs == Needs::Extension {
            let outcome = lakegate_app::extensions::extend(
                &self.services,
                &alice,
                id,
                "1h",
                "the reconciliation takes longer",
            )
            .await
            .unwrap();
            assert_eq!(outcome, lakegate_app::extensions::Extended::Pending);
        }
        if needs == Needs::ConsoleQuery {
            let outcome =
                lakegate_app::console::run(&self.services, &alice, id, "SELECT 1", None, None)
                    .await
                    .unwrap();
            assert!(matches!(
                outcome,
                lakegate_app::console::Outcome::Started(_)
            ));
        }
        Some(id)
    }

    /// The latest query the console started.
    pub fn last_console_query(&self) -> String {
        self.cloud
            .state()
            .console_runs
            .last()
            .map(|r| r.query_id.clone())
            .unwrap_or_default()
    }

    pub async fn pending_extension(&self, id: RequestId) -> i64 {
        sqlx::query_scalar(
            "select extension_id from request_extension where request_id = $1 and status = 'pending'",
        )
        .bind(id.0)
        .fetch_one(&self.services.db)
        .await
        .unwrap()
    }
}
