//! The real `lakegate` binary as a child process, started the way the README says (`lakegate
//! serve` with `LAKEGATE_*` variables), its output captured; and a browser-like HTTP client
//! that follows a sign-in through the test OpenID Connect provider. Included with `#[path]`.
#![allow(
    dead_code,
    reason = "helpers shared by several test binaries; each uses some"
)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The URL of the database `#[sqlx::test]` made for this test.
pub fn database_url(pool: &sqlx::PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set (scripts/test)");
    let db = pool.connect_options().get_database().unwrap().to_owned();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{db}")
}

/// A running `lakegate serve`.
pub struct Lakegate {
    child: Child,
    pub base: String,
    output: Arc<Mutex<String>>,
}

/// The settings every test's lakegate needs; `extra` adds to or overrides them.
pub fn base_env(db_url: &str, port: u16) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", db_url.to_owned()),
        ("LAKEGATE_LISTEN", format!("127.0.0.1:{port}")),
        ("LAKEGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        (
            "LAKEGATE_RESULTS_LOCATION",
            "s3://lakegate-athena-results/lakegate/".to_owned(),
        ),
        (
            "LAKEGATE_PERMISSIONS_BOUNDARY_ARN",
            "arn:aws:iam::123456789012:policy/lakegate-boundary".to_owned(),
        ),
        ("LAKEGATE_LOG_FORMAT", "json".to_owned()),
        // The tests share one moto, each with a database of its own: a sweep would take the
        // other tests' live grants for orphans (one installation per account, docs/deploy.md).
        ("LAKEGATE_SWEEP_INTERVAL", "off".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `lakegate` with `env` and nothing else of lakegate's from the test's own environment (the
/// AWS_* variables `scripts/test` sets are kept: they point at moto).
pub fn command(env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakegate"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LAKEGATE_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `lakegate <args>` to its end: exit status and everything it printed.
pub async fn run_to_end(
    env: &[(String, String)],
    args: &[&str],
) -> (std::process::ExitStatus, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), command(env, args).output())
        .await
        .expect("lakegate ended within 60 s")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

impl Lakegate {
    /// Starts `lakegate serve` and waits until `/readyz` answers 200.
    pub async fn start(env: &[(String, String)]) -> Self {
        let port = env
            .iter()
            .find(|(k, _)| k == "LAKEGATE_LISTEN")
            .and_then(|(_, v)| v.rsplit(':').next())
            .unwrap()
            .to_owned();
        let mut child = command(env, &["serve"]).spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&output);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut out = sink.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let base = format!("http://127.0.0.1:{port}");
        let mut me = Self {
            child,
            base,
            output,
        };
        me.wait_ready().await;
        me
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(Some(exit)) = self.child.try_wait() {
                // Let the output readers catch up with what it printed before it ended.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "lakegate exited ({exit}) before it was ready at {}; its output:\n{}",
                    self.base,
                    self.output()
                );
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "lakegate did not become ready at {}; its output:\n{}",
            self.base,
            self.output()
        );
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Sends SIGKILL and waits for the process to be gone: a crash, nothing drained.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `within`).
    pub async fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "lakegate did not exit within {within:?}:\n{}",
                    self.output()
                )
            })
            .unwrap()
    }
}

/// A person's browser: one cookie jar for lakegate and the provider, no redirects followed.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    async fn page(res: reqwest::Response) -> Page {
        let status = res.status();
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| res.url().join(l.to_str().unwrap()).unwrap().to_string());
        Page {
            status,
            location,
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path_or_url: &str) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        Self::page(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn post(&self, path_or_url: &str, form: &[(&str, &str)]) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        Self::page(self.http.post(url).form(form).send().await.unwrap()).await
    }

    /// A person signed in on lakegate's development form (the server runs with
    /// `LAKEGATE_DEV_LOGIN`), with `groups` comma-separated.
    pub async fn signed_in_dev(base: &str, email: &str, groups: &str) -> Self {
        let b = Self::new(base);
        let res = b
            .submit(
                "/auth/dev",
                "/auth/dev",
                &[("email", email), ("groups", groups), ("next", "/")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        b
    }

    /// A person signed in on the development form, and an API token of theirs named `name`
    /// with `scopes`, made on the settings page.
    pub async fn with_api_token(
        base: &str,
        email: &str,
        groups: &str,
        name: &str,
        scopes: &[&str],
    ) -> (String, Self) {
        let b = Self::signed_in_dev(base, email, groups).await;
        let mut fields = vec![("name", name)];
        fields.extend(scopes.iter().map(|s| ("scopes", *s)));
        let made = b
            .submit("/settings/tokens", "/settings/tokens", &fields)
            .await;
        assert_eq!(made.status, StatusCode::OK, "{}", made.body);
        (text_of(&made.body, "#api-token"), b)
    }

    /// Posts a form of lakegate's with the CSRF token of the page at `page`.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = csrf(&self.get(page).await.body);
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// Polls the request page at `path` until its `#status` is `wanted` (at most 20 s); returns
    /// the last status seen.
    pub async fn wait_for_status(&self, path: &str, wanted: &str) -> String {
        let mut status = String::new();
        for _ in 0..100 {
            status = text_of(&self.get(path).await.body, "#status");
            if status == wanted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        status
    }

    /// Signs in through lakegate's `/auth/login` and the provider's login and consent forms as
    /// `login`; returns lakegate's answer to the callback.
    pub async fn sign_in_with_provider(&self, issuer: &str, login: &str) -> Page {
        let start = self.get("/auth/login?next=/requests/new").await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let authorize = start.location.unwrap();
        assert!(authorize.starts_with(issuer), "{authorize}");
        let hop = |p: Page| {
            assert!(
                p.status.is_redirection(),
                "expected a redirect, got {}: {}",
                p.status,
                p.body
            );
            p.location.unwrap()
        };
        let url = hop(self.get(&authorize).await);
        let url = hop(self
            .post(
                &url,
                &[("prompt", "login"), ("login", login), ("password", "x")],
            )
            .await);
        let url = hop(self.get(&url).await);
        let url = hop(self.post(&url, &[("prompt", "consent")]).await);
        let callback = hop(self.get(&url).await);
        assert!(
            callback.starts_with(&format!("{}/auth/callback?", self.base)),
            "{callback}"
        );
        self.get(&callback).await
    }
}

pub fn csrf(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(r#"input[name="csrf_token"]"#).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_else(|| panic!("no csrf_token in:\n{html}"))
        .to_owned()
}

pub fn text_of(html: &str, selector: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_owned())
        .unwrap_or_else(|| panic!("no {selector} in:\n{html}"))
}
