//! Launchers for the loopback peers the whole-process tests talk to: the test OpenID Connect
//! provider (`tests/oidc/provider.mjs`, the npm `oidc-provider`; `scripts/test` installs its
//! node modules). Each peer is a child process on a free port of 127.0.0.1, stopped when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (free when asked; another process could take it after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn provider_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc/provider.mjs")
}

/// The test OpenID Connect provider: client `lakegate` / `lakegate-secret`, accounts `alice`
/// (analysts), `bob` (data-owners) and the others `tests/oidc/README.md` lists. Its signing key
/// is generated at each start, so [`OidcProvider::restart`] rotates the keys.
pub struct OidcProvider {
    child: Option<Child>,
    port: u16,
    app_url: String,
    pub issuer: String,
}

impl OidcProvider {
    /// Starts a provider whose client redirects to `{app_url}/auth/callback`.
    pub async fn start(app_url: &str) -> Self {
        let port = free_port();
        let mut p = Self {
            child: None,
            port,
            app_url: app_url.trim_end_matches('/').to_owned(),
            issuer: format!("http://127.0.0.1:{port}"),
        };
        p.spawn().await;
        p
    }

    async fn spawn(&mut self) {
        let script = provider_script();
        assert!(script.exists(), "{} is missing", script.display());
        let child = Command::new("node")
            .arg(&script)
            .env("PORT", self.port.to_string())
            .env("APP_URL", &self.app_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start node {}: {e}", script.display()));
        self.child = Some(child);
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(&discovery).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the OpenID Connect provider did not answer at {discovery} within 30 s \
             (are tests/oidc/node_modules installed? scripts/test does it)"
        );
    }

    /// Stops the provider and starts it again on the same port: same issuer, new signing key,
    /// no sessions.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

/// A moto server of the test's own (`moto_server` from `PATH`; `scripts/test` puts the venv's
/// first), for a test that must see every resource in the emulator as its own.
pub struct Moto {
    _child: Child,
    pub url: String,
}

impl Moto {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start moto_server (is the venv's bin on PATH? scripts/test does it): {e}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{url}/moto-api/")).send().await
                && r.status().is_success()
            {
                return Self { _child: child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not answer at {url} within 30 s");
    }
}
