//! The client's side of the JSON API: where lakegate is, the personal token, calls, and what a
//! failure means as an exit code.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::credentials_process::{config_dir, read_secret_file};

/// Why a client command did not do what was asked; each kind has its exit code (README,
/// "The command line client").
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// lakegate was not reached, answered 5xx or something unexpected, or a local file failed.
    #[error("{0}")]
    Broken(String),
    /// The command line itself is wrong beyond what the parser checks (exit 2, like clap's).
    #[error("{0}")]
    Usage(String),
    /// No token, or lakegate refused it (401).
    #[error("{0}")]
    NoToken(String),
    /// lakegate refused what was asked (403, 404, 409, 413, 422): `code` says why.
    #[error("{message} ({code})")]
    Refused { code: String, message: String },
    /// The request ended without becoming active, or the query failed.
    #[error("{0}")]
    Ended(String),
    /// `--wait` gave up.
    #[error("{0}")]
    TimedOut(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Broken(_) => 1,
            Self::Usage(_) => 2,
            Self::NoToken(_) => 3,
            Self::Refused { .. } => 4,
            Self::Ended(_) => 5,
            Self::TimedOut(_) => 6,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Broken(format!("{e:#}"))
    }
}

/// Where `lakegate login` keeps the server's URL.
fn saved_server_file() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("url"))
}

/// Where `lakegate login` keeps the personal token.
pub fn token_file() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("token"))
}

/// lakegate's base URL: `--server` / `LAKEGATE_URL`, else the one `lakegate login` saved.
pub fn server_url(given: Option<&str>) -> Result<String, Failure> {
    let raw = match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.to_owned(),
        None => {
            let path = saved_server_file()?;
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_owned())
                .map_err(|_| {
                    Failure::Usage(
                        "where is lakegate? Set LAKEGATE_URL (or --server), or run `lakegate login`"
                            .to_owned(),
                    )
                })?
        }
    };
    let url = reqwest::Url::parse(&raw)
        .map_err(|e| Failure::Usage(format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::Usage(format!("`{raw}` is not an http(s) URL")));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Saves where lakegate is, for the next commands.
pub fn save_server_url(url: &str) -> anyhow::Result<()> {
    crate::credentials_process::write_secret_file(&saved_server_file()?, url)
}

/// The personal token: `LAKEGATE_TOKEN`, else the file `lakegate login` wrote (mode 0600).
fn personal_token() -> Result<String, Failure> {
    if let Some(t) = std::env::var("LAKEGATE_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
    {
        return Ok(t);
    }
    let path = token_file()?;
    read_secret_file(
        &path,
        "run `lakegate login`, or set LAKEGATE_TOKEN to a personal token",
    )
    .map_err(|e| Failure::NoToken(format!("{e:#}")))
}

/// A lakegate server and the token to call it with.
pub struct Api {
    pub base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(server: Option<&str>) -> Result<Self, Failure> {
        let base = server_url(server)?;
        let token = personal_token()?;
        Self::with_token(base, token)
    }

    pub fn with_token(base: String, token: String) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("lakegate-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Broken(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self { base, token, http })
    }

    /// Calls `method path` with `body` as JSON: the answer's JSON, or the failure it means.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| {
            Failure::Broken(format!(
                "lakegate did not answer at {}: {}",
                self.base,
                root_cause(&e)
            ))
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return json.ok_or_else(|| {
                Failure::Broken(format!(
                    "{url} did not answer JSON: is {} lakegate?",
                    self.base
                ))
            });
        }
        let field = |k: &str| {
            json.as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let code = field("code").unwrap_or_else(|| status.as_u16().to_string());
        let message = field("message")
            .unwrap_or_else(|| format!("{url} answered {status}: is {} lakegate?", self.base));
        Err(match status {
            StatusCode::UNAUTHORIZED => {
                Failure::NoToken(format!("{message}: run `lakegate login` with a new token"))
            }
            s if s.is_client_error() => Failure::Refused { code, message },
            _ => Failure::Broken(format!("{message} ({code})")),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<(T, Value), Failure> {
        let v = self.call(Method::GET, path, None).await?;
        Ok((decode(&v)?, v))
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(T, Value), Failure> {
        let v = self.call(Method::POST, path, Some(body)).await?;
        Ok((decode(&v)?, v))
    }
}

fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, Failure> {
    serde_json::from_value(v.clone()).map_err(|e| {
        Failure::Broken(format!(
            "lakegate answered something this client does not understand ({e}): is it the same version?"
        ))
    })
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
