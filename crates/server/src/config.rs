//! Raw arguments → a validated, typed configuration. Nothing below this crate reads the
//! environment. Secrets are redacted in `Debug`.

use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use lakegate_app::{MonitorSettings, RequestSettings, Settings, WorkerSettings};
use lakegate_domain::duration::{format_duration, parse_duration};
use lakegate_domain::policy::{MIN_SCAN_CUTOFF_BYTES, Policy};
use lakegate_domain::policy_file::{PolicyFile, format_bytes};
use lakegate_domain::target::ResultsLocation;
use lakegate_domain::usage::{BurstRule, FlagRules, Micros, Price};
use lakegate_web::oidc::OidcConfig;
use lakegate_web::{SignIn, WebConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::cli::{LogFormat, ServeArgs};

mod notify;
pub use notify::{NotifyConfig, SLACK_API_URL, SlackConfig};

/// Every setting `lakegate serve` needs, validated.
#[derive(Clone)]
pub struct ServeConfig {
    pub database_url: SecretString,
    pub db_max_connections: u32,
    pub listen: SocketAddr,
    pub http: HttpConfig,
    pub sign_in: SignInConfig,
    pub settings: Settings,
    pub broker_principal_arn: Option<String>,
    /// The notification senders' secrets (their targets are in `settings.notify`).
    pub notify: NotifyConfig,
    pub log_format: LogFormat,
    /// `/metrics` on a listener of its own instead of the main one.
    pub metrics_listen: Option<SocketAddr>,
    /// How long start-up retries the database and the identity provider.
    pub startup_wait: std::time::Duration,
    /// How long shutdown waits for in-flight work.
    pub shutdown_timeout: std::time::Duration,
    /// Every AWS service at this endpoint (an emulator), instead of the SDK's default.
    pub aws_endpoint_url: Option<String>,
    /// How often the orphan sweep runs; `None`: never on its own.
    pub sweep_interval: Option<std::time::Duration>,
}

/// Settings of the HTTP layer that are known before start-up.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub public_url: String,
    pub secure_cookies: bool,
    pub session_idle: time::Duration,
    pub session_max: time::Duration,
    pub groups_refresh: time::Duration,
}

/// How people will sign in, before the identity provider is discovered.
#[derive(Debug, Clone)]
pub enum SignInConfig {
    Oidc(OidcConfig),
    Development,
}

impl ServeConfig {
    /// The web layer's settings, once sign-in is ready.
    pub fn web_config(
        &self,
        sign_in: SignIn,
        slack: Option<std::sync::Arc<lakegate_web::slack::Slack>>,
    ) -> WebConfig {
        WebConfig {
            public_url: self.http.public_url.clone(),
            sign_in,
            secure_cookies: self.http.secure_cookies,
            session_idle: self.http.session_idle,
            session_max: self.http.session_max,
            groups_refresh: self.http.groups_refresh,
            slack,
        }
    }

    /// "log, 2 webhooks, break-glass webhook https://hooks.example.com/***, Slack #data-access".
    fn notify_summary(&self) -> String {
        let n = &self.settings.notify;
        let mut parts = vec!["log".to_owned()];
        if !n.webhooks.is_empty() {
            parts.push(format!(
                "webhooks {}",
                n.webhooks
                    .iter()
                    .map(|u| redact_webhook(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(u) = &n.break_glass_webhook {
            parts.push(format!("break-glass webhook {}", redact_webhook(u)));
        }
        if let (true, Some(c)) = (n.slack, &n.slack_channel) {
            parts.push(format!("Slack {c}"));
        }
        format!(
            "{}; given up after {}",
            parts.join(", "),
            format_duration(n.max_age)
        )
    }

    pub fn dev_login(&self) -> bool {
        matches!(self.sign_in, SignInConfig::Development)
    }
}

/// `http://127.0.0.1…`, `http://localhost…`, `http://[::1]…`: the host exactly (not a prefix
/// of it, as in `http://127.0.0.1.evil.example`), any port and path.
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => h,
            _ => return false,
        }
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field("db_max_connections", &self.db_max_connections)
            .field("listen", &self.listen)
            .field("http", &self.http)
            .field("sign_in", &self.sign_in)
            .field("settings", &self.settings)
            .field("broker_principal_arn", &self.broker_principal_arn)
            .field("notify", &self.notify_summary())
            .field("log_format", &self.log_format)
            .field("metrics_listen", &self.metrics_listen)
            .field("startup_wait", &self.startup_wait)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("aws_endpoint_url", &self.aws_endpoint_url)
            .field("sweep_interval", &self.sweep_interval)
            .finish()
    }
}

/// `https://hooks.example.com/T0/B0/secret` → `https://hooks.example.com/***`: webhook URLs
/// often carry their secret in the path.
pub fn redact_webhook(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/***")
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    // The user name can be a secret too (an access key, a token): all of the user-info goes.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => format!("{scheme}://{rest}"),
    }
}

/// `10GB`, `500MB`, `10000000` → bytes (decimal units, as Athena counts): the same sizes the
/// policy file reads.
pub fn parse_bytes(input: &str) -> anyhow::Result<i64> {
    lakegate_domain::policy_file::parse_size(input).map_err(anyhow::Error::msg)
}

impl TryFrom<&ServeArgs> for ServeConfig {
    type Error = anyhow::Error;

    fn try_from(a: &ServeArgs) -> anyhow::Result<Self> {
        let listen: SocketAddr = a.listen.parse().with_context(|| {
            format!(
                "LAKEGATE_LISTEN `{}` is not an address like 127.0.0.1:8080",
                a.listen
            )
        })?;
        if a.dev_login && !listen.ip().is_loopback() {
            bail!(
                "LAKEGATE_DEV_LOGIN is on but LAKEGATE_LISTEN is {listen}: the development sign-in trusts whatever is typed \
                 and is only allowed on a loopback address (127.0.0.1 or ::1)"
            );
        }
        let public_url = a
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        let secure = public_url.starts_with("https://");
        if !secure && !public_url.starts_with("http://") {
            bail!(
                "LAKEGATE_PUBLIC_URL `{public_url}` must start with https:// (or http:// for local use)"
            );
        }
        let min = parse_duration(&a.min_duration).context("LAKEGATE_MIN_DURATION")?;
        let max = parse_duration(&a.max_duration).context("LAKEGATE_MAX_DURATION")?;
        let cutoff = parse_bytes(&a.query_scan_cutoff).context("LAKEGATE_QUERY_SCAN_CUTOFF")?;
        if cutoff < MIN_SCAN_CUTOFF_BYTES {
            bail!(
                "LAKEGATE_QUERY_SCAN_CUTOFF must be at least 10MB (Athena's minimum), got {}",
                a.query_scan_cutoff
            );
        }
        let simple = Policy::new(&a.approver_group, min, max, cutoff)
            .context("approval policy")?
            .with_admin_group(a.admin_group.clone());
        let policy = match &a.policy {
            None => PolicyFile::from_policy(&simple),
            Some(path) => load_policy(path, a.admin_group.as_deref())?,
        };
        let (notify_settings, notify) = notify::notify_config(a, &policy)?;
        let results =
            ResultsLocation::parse(&a.results_location).context("LAKEGATE_RESULTS_LOCATION")?;
        if !a.permissions_boundary_arn.starts_with("arn:aws")
            || !a.permissions_boundary_arn.contains(":policy/")
        {
            bail!(
                "LAKEGATE_PERMISSIONS_BOUNDARY_ARN `{}` is not a managed policy ARN (arn:aws:iam::<account>:policy/<name>)",
                a.permissions_boundary_arn
            );
        }
        let session_idle = parse_duration(&a.session_idle).context("LAKEGATE_SESSION_IDLE")?;
        let session_max = parse_duration(&a.session_max).context("LAKEGATE_SESSION_MAX")?;
        if session_max < session_idle.min(time::Duration::minutes(5)) {
            bail!("LAKEGATE_SESSION_MAX must be at least 5m");
        }
        let groups_refresh =
            parse_duration(&a.groups_refresh).context("LAKEGATE_GROUPS_REFRESH")?;
        if groups_refresh > time::Duration::hours(1) {
            bail!(
                "LAKEGATE_GROUPS_REFRESH must be at most 1h: a group removed at the identity provider must stop counting soon"
            );
        }
        let startup_wait = std_duration(&a.startup_wait, "LAKEGATE_STARTUP_WAIT")?;
        let sweep_interval = if a.sweep_interval.trim().eq_ignore_ascii_case("off") {
            None
        } else {
            let d = std_duration(&a.sweep_interval, "LAKEGATE_SWEEP_INTERVAL")?;
            if !(60..=86_400).contains(&d.as_secs()) {
                bail!("LAKEGATE_SWEEP_INTERVAL must be between 1m and 24h, or `off`");
            }
            Some(d)
        };
        let shutdown_timeout = std_duration(&a.shutdown_timeout, "LAKEGATE_SHUTDOWN_TIMEOUT")?;
        let metrics_listen = a
            .metrics_listen
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.parse::<SocketAddr>().with_context(|| {
                    format!("LAKEGATE_METRICS_LISTEN `{m}` is not an address like 127.0.0.1:9090")
                })
            })
            .transpose()?;
        if metrics_listen == Some(listen) {
            bail!(
                "LAKEGATE_METRICS_LISTEN is the same address as LAKEGATE_LISTEN: leave it unset to serve /metrics there"
            );
        }
        let aws_endpoint_url = a
            .aws_endpoint_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                if u.starts_with("https://") || u.starts_with("http://") {
                    Ok(u.trim_end_matches('/').to_owned())
                } else {
                    Err(anyhow::anyhow!(
                        "AWS_ENDPOINT_URL `{u}` must be an http:// or https:// URL"
                    ))
                }
            })
            .transpose()?;
        let monitor_interval =
            parse_duration(&a.monitor_interval).context("LAKEGATE_MONITOR_INTERVAL")?;
        if monitor_interval < time::Duration::seconds(5)
            || monitor_interval > time::Duration::minutes(10)
        {
            bail!(
                "LAKEGATE_MONITOR_INTERVAL must be between 5s and 10m: the budget is only as good as how often it is checked"
            );
        }
        let price_micros = parse_usd(&a.athena_price_per_tb).with_context(|| {
            format!(
                "LAKEGATE_ATHENA_PRICE_PER_TB `{}` is not an amount of US dollars like 5 or 6.75",
                a.athena_price_per_tb
            )
        })?;
        let flags = flag_rules(a)?;
        let sign_in = match (oidc_config(a, &public_url)?, a.dev_login) {
            (Some(oidc), false) => SignInConfig::Oidc(oidc),
            (Some(_), true) => bail!(
                "LAKEGATE_DEV_LOGIN is on and LAKEGATE_OIDC_ISSUER is set: the development sign-in trusts whatever \
                 is typed and must never sit beside the real one; turn LAKEGATE_DEV_LOGIN off"
            ),
            (None, true) if !is_loopback_http(&public_url) => bail!(
                "LAKEGATE_DEV_LOGIN is on but LAKEGATE_PUBLIC_URL is {public_url}: the development sign-in trusts \
                 whatever is typed and is only allowed with a loopback http:// public URL \
                 (http://127.0.0.1:<port>, http://localhost:<port> or http://[::1]:<port>)"
            ),
            (None, true) => SignInConfig::Development,
            (None, false) => bail!(
                "no sign-in is configured: set LAKEGATE_OIDC_ISSUER, LAKEGATE_OIDC_CLIENT_ID and \
                 LAKEGATE_OIDC_CLIENT_SECRET (or, for local development on loopback, LAKEGATE_DEV_LOGIN=true)"
            ),
        };
        Ok(Self {
            database_url: SecretString::from(a.db.database_url.clone()),
            db_max_connections: a.db.db_max_connections.max(2),
            listen,
            http: HttpConfig {
                public_url,
                secure_cookies: secure,
                session_idle,
                session_max,
                groups_refresh,
            },
            sign_in,
            settings: Settings {
                policy,
                results,
                permissions_boundary_arn: a.permissions_boundary_arn.clone(),
                worker: WorkerSettings::default(),
                monitor: MonitorSettings {
                    interval: monitor_interval,
                    price: Price {
                        micros_per_tb: price_micros,
                    },
                    flags,
                    flood_per_minute: parse_flood(&a.query_flood_per_minute)?,
                },
                requests: request_settings(a)?,
                notify: notify_settings,
            },
            broker_principal_arn: a.broker_principal_arn.clone(),
            notify,
            log_format: a.log_format,
            metrics_listen,
            startup_wait,
            shutdown_timeout,
            aws_endpoint_url,
            sweep_interval,
        })
    }
}

/// A duration setting as a `std` duration, at least a second.
fn std_duration(input: &str, variable: &str) -> anyhow::Result<std::time::Duration> {
    let d = parse_duration(input).context(variable.to_owned())?;
    std::time::Duration::try_from(d)
        .ok()
        .filter(|d| d.as_secs() >= 1)
        .ok_or_else(|| anyhow::anyhow!("{variable} must be at least 1s"))
}

/// `LAKEGATE_QUERY_FLOOD_PER_MINUTE`: a count from 1 to 100000, or `off` (0).
fn parse_flood(value: &str) -> anyhow::Result<u32> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    match value.parse::<u32>() {
        Ok(n @ 1..=100_000) => Ok(n),
        _ => bail!(
            "LAKEGATE_QUERY_FLOOD_PER_MINUTE must be a number of queries from 1 to 100000, or off; got {value:?}"
        ),
    }
}

/// `LAKEGATE_MAX_PENDING_PER_PERSON` (1–1000 or `off`) and `LAKEGATE_PENDING_TTL` (1h–90d).
fn request_settings(a: &ServeArgs) -> anyhow::Result<RequestSettings> {
    let cap = a.max_pending_per_person.trim();
    let max_pending_per_person = if cap.eq_ignore_ascii_case("off") {
        0
    } else {
        match cap.parse::<u32>() {
            Ok(n @ 1..=1000) => n,
            _ => bail!(
                "LAKEGATE_MAX_PENDING_PER_PERSON must be a number of requests from 1 to 1000, or off; got {cap:?}"
            ),
        }
    };
    let pending_ttl = parse_duration(&a.pending_ttl).context("LAKEGATE_PENDING_TTL")?;
    if pending_ttl < time::Duration::hours(1) || pending_ttl > time::Duration::days(90) {
        bail!(
            "LAKEGATE_PENDING_TTL must be between 1h and 90d; got {}",
            a.pending_ttl
        );
    }
    Ok(RequestSettings {
        max_pending_per_person,
        pending_ttl,
    })
}

/// The thresholds of the large-scan and burst flags.
fn flag_rules(a: &ServeArgs) -> anyhow::Result<FlagRules> {
    let large = a.flag_large_scan.trim();
    let large_scan_bytes = if large.eq_ignore_ascii_case("off") {
        0
    } else {
        let bytes = parse_bytes(large).with_context(|| {
            format!("LAKEGATE_FLAG_LARGE_SCAN `{large}` is not a size like 100GB (or `off`)")
        })?;
        if bytes < MIN_SCAN_CUTOFF_BYTES {
            bail!(
                "LAKEGATE_FLAG_LARGE_SCAN must be at least 10MB (Athena bills every query as at least that), or `off`"
            );
        }
        bytes
    };
    let max_queries: usize = a
        .flag_burst_queries
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "LAKEGATE_FLAG_BURST_QUERIES `{}` is not a number of queries from 1 to 10000",
                a.flag_burst_queries
            )
        })?;
    let window = parse_duration(&a.flag_burst_window).context("LAKEGATE_FLAG_BURST_WINDOW")?;
    if window < time::Duration::seconds(1) || window > time::Duration::hours(24) {
        bail!("LAKEGATE_FLAG_BURST_WINDOW must be between 1s and 24h");
    }
    Ok(FlagRules {
        large_scan_bytes,
        burst: BurstRule {
            max_queries,
            window,
        },
    })
}

/// `5`, `6.75` (US dollars) → whole micro-dollars.
fn parse_usd(input: &str) -> anyhow::Result<i64> {
    let s = input.trim().trim_start_matches('$');
    let (whole, frac) = match s.split_once('.') {
        Some((_, "")) => bail!("no digits after the point"),
        Some(parts) => parts,
        None => (s, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
    {
        bail!("not an amount");
    }
    let whole: i64 = whole.parse()?;
    let frac: i64 = format!("{frac:0<6}").parse()?;
    let micros = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| anyhow::anyhow!("too large"))?;
    if micros == 0 {
        bail!("zero");
    }
    Ok(micros)
}

/// Reads and checks the policy file. Its errors name the file, the line and the rule.
fn load_policy(
    path: &std::path::Path,
    env_admin_group: Option<&str>,
) -> anyhow::Result<PolicyFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("LAKEGATE_POLICY: cannot read {}", path.display()))?;
    let policy = PolicyFile::parse(&text, &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("LAKEGATE_POLICY: the policy file is not valid: {e}"))?;
    let env_admin_group = env_admin_group.map(str::trim).filter(|g| !g.is_empty());
    if let (Some(file), Some(env)) = (policy.admin_group(), env_admin_group)
        && file != env
    {
        bail!(
            "the admin group is set twice, to `{file}` in {} and to `{env}` in LAKEGATE_ADMIN_GROUP: set it in one place",
            path.display()
        );
    }
    Ok(policy.with_admin_group(env_admin_group.map(ToOwned::to_owned)))
}

/// The OpenID Connect settings, all or nothing.
fn oidc_config(a: &ServeArgs, public_url: &str) -> anyhow::Result<Option<OidcConfig>> {
    let Some(issuer) = a
        .oidc_issuer
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    else {
        if a.oidc_client_id.is_some() || a.oidc_client_secret.is_some() {
            bail!("LAKEGATE_OIDC_CLIENT_ID/SECRET are set but LAKEGATE_OIDC_ISSUER is not");
        }
        return Ok(None);
    };
    if !issuer.starts_with("https://") && !is_loopback_http(issuer) {
        bail!(
            "LAKEGATE_OIDC_ISSUER `{issuer}` must be an https:// URL (http:// only on loopback, for testing)"
        );
    }
    let (Some(client_id), Some(client_secret)) = (&a.oidc_client_id, &a.oidc_client_secret) else {
        bail!(
            "LAKEGATE_OIDC_ISSUER is set: LAKEGATE_OIDC_CLIENT_ID and LAKEGATE_OIDC_CLIENT_SECRET are needed too"
        );
    };
    let groups_claim = a.oidc_groups_claim.trim().to_owned();
    if groups_claim.is_empty() {
        bail!("LAKEGATE_OIDC_GROUPS_CLAIM must name a claim");
    }
    Ok(Some(OidcConfig {
        issuer: issuer.to_owned(),
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        groups_claim,
        extra_scopes: a
            .oidc_scopes
            .split([' ', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(ToOwned::to_owned)
            .collect(),
        redirect_url: format!("{public_url}/auth/callback"),
        require_verified_email: a.oidc_require_verified_email,
    }))
}

impl ServeConfig {
    /// A readable summary for `check-config` and the start-up log.
    pub fn summary(&self) -> String {
        let p = &self.settings.policy;
        let d = p.defaults();
        let rules = if p.rules().is_empty() {
            "no rules".to_owned()
        } else {
            format!(
                "{} rules ({})",
                p.rules().len(),
                p.rules()
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        format!(
            "database        {}\nlisten          {}\npublic URL      {}\nsign-in         {}\ndev sign-in     {}\n\
             policy          {}: {rules}\napprovers       {} ({} approval{} by default)\nadmin group     {}\n\
             durations       {} – {} by default\nscan cutoff     {} per query by default\nresults         {}\n\
             boundary        {}\nbroker          {}\nsessions        {} idle, {} at most, groups re-read every {}\nnotifications   {}\n\
             pending         {} per person at most, lapsing after {}\n\
             query monitor   every {}, {} per TB; flags: {}, more than {} queries in {}; {}\n\
             metrics         {}\nstart-up wait   {:?}\nshutdown        within {:?}\naws endpoint    {}\n\
             orphan sweep    {}",
            redact_url(self.database_url.expose_secret()),
            self.listen,
            self.http.public_url,
            match &self.sign_in {
                SignInConfig::Oidc(o) => format!(
                    "OpenID Connect, {} (client {}, groups from `{}`, verified email {})",
                    o.issuer,
                    o.client_id,
                    o.groups_claim,
                    if o.require_verified_email {
                        "required"
                    } else {
                        "required unless the claim is missing"
                    }
                ),
                SignInConfig::Development => "no identity provider".to_owned(),
            },
            if self.dev_login() {
                "ON (loopback only, direct requests only)"
            } else {
                "off"
            },
            p.file_name(),
            d.approver_groups.join(", "),
            d.approvals,
            if d.approvals == 1 { "" } else { "s" },
            p.admin_group().unwrap_or("(none)"),
            format_duration(d.min_duration),
            format_duration(d.max_duration),
            format_bytes(d.scan_cutoff_bytes),
            self.settings.results,
            self.settings.permissions_boundary_arn,
            self.broker_principal_arn
                .as_deref()
                .unwrap_or("(the identity lakegate runs as)"),
            format_duration(self.http.session_idle),
            format_duration(self.http.session_max),
            format_duration(self.http.groups_refresh),
            self.notify_summary(),
            match self.settings.requests.max_pending_per_person {
                0 => "no limit".to_owned(),
                n => n.to_string(),
            },
            format_duration(self.settings.requests.pending_ttl),
            format_duration(self.settings.monitor.interval),
            Micros(self.settings.monitor.price.micros_per_tb),
            match self.settings.monitor.flags.large_scan_bytes {
                b if b > 0 => format!("a scan of {} or more", format_bytes(b)),
                _ => "no large-scan flag".to_owned(),
            },
            self.settings.monitor.flags.burst.max_queries,
            format_duration(self.settings.monitor.flags.burst.window),
            match self.settings.monitor.flood_per_minute {
                0 => "no query-flood limit".to_owned(),
                n => format!("revoked past {n} queries a minute"),
            },
            self.metrics_listen.map_or_else(
                || "/metrics on the main listener".to_owned(),
                |a| format!("/metrics on {a}")
            ),
            self.startup_wait,
            self.shutdown_timeout,
            self.aws_endpoint_url
                .as_deref()
                .map_or_else(|| "(the AWS SDK's default)".to_owned(), redact_url),
            self.sweep_interval
                .map_or_else(|| "off".to_owned(), |d| format!("every {d:?}")),
        )
    }
}

/// Every LAKEGATE_* variable lakegate reads; others are reported at start-up (likely typos).
pub const KNOWN_VARIABLES: &[&str] = &[
    "LAKEGATE_DB_MAX_CONNECTIONS",
    "LAKEGATE_LISTEN",
    "LAKEGATE_PUBLIC_URL",
    "LAKEGATE_OIDC_ISSUER",
    "LAKEGATE_OIDC_CLIENT_ID",
    "LAKEGATE_OIDC_CLIENT_SECRET",
    "LAKEGATE_OIDC_GROUPS_CLAIM",
    "LAKEGATE_OIDC_SCOPES",
    "LAKEGATE_DEV_LOGIN",
    "LAKEGATE_POLICY",
    "LAKEGATE_NOTIFY_WEBHOOK_URL",
    "LAKEGATE_WEBHOOK_URLS",
    "LAKEGATE_WEBHOOK_SECRET",
    "LAKEGATE_NOTIFY_MAX_AGE",
    "LAKEGATE_SLACK_BOT_TOKEN",
    "LAKEGATE_SLACK_SIGNING_SECRET",
    "LAKEGATE_SLACK_CHANNEL",
    "LAKEGATE_SLACK_API_URL",
    "LAKEGATE_APPROVER_GROUP",
    "LAKEGATE_ADMIN_GROUP",
    "LAKEGATE_MIN_DURATION",
    "LAKEGATE_MAX_DURATION",
    "LAKEGATE_RESULTS_LOCATION",
    "LAKEGATE_PERMISSIONS_BOUNDARY_ARN",
    "LAKEGATE_QUERY_SCAN_CUTOFF",
    "LAKEGATE_BROKER_PRINCIPAL_ARN",
    "LAKEGATE_SESSION_IDLE",
    "LAKEGATE_MONITOR_INTERVAL",
    "LAKEGATE_ATHENA_PRICE_PER_TB",
    "LAKEGATE_FLAG_LARGE_SCAN",
    "LAKEGATE_FLAG_BURST_QUERIES",
    "LAKEGATE_FLAG_BURST_WINDOW",
    "LAKEGATE_QUERY_FLOOD_PER_MINUTE",
    "LAKEGATE_MAX_PENDING_PER_PERSON",
    "LAKEGATE_PENDING_TTL",
    "LAKEGATE_LOG_FORMAT",
    "LAKEGATE_OIDC_REQUIRE_VERIFIED_EMAIL",
    "LAKEGATE_SESSION_MAX",
    "LAKEGATE_METRICS_LISTEN",
    "LAKEGATE_STARTUP_WAIT",
    "LAKEGATE_SHUTDOWN_TIMEOUT",
    "LAKEGATE_SWEEP_INTERVAL",
    "LAKEGATE_GROUPS_REFRESH",
];

/// LAKEGATE_* variables in the environment that lakegate does not know.
pub fn unknown_variables() -> Vec<String> {
    std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("LAKEGATE_") && !KNOWN_VARIABLES.contains(&k.as_str()))
        // Variables of the scripts and test harness, not of the server.
        .filter(|k| {
            !k.starts_with("LAKEGATE_TEST_")
                && k != "LAKEGATE_MOTO_PORT"
                && k != "LAKEGATE_AWS_PROXY_PORT"
                && k != "LAKEGATE_PG_FORCE_PRIVATE"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// `check-config` with the required options, `extra` replacing any of them.
    fn args(extra: &[&str]) -> ServeArgs {
        let required = [
            ("--database-url", "postgres://lakegate:hunter2@db/lakegate"),
            ("--results-location", "s3://results/athena/"),
            (
                "--permissions-boundary-arn",
                "arn:aws:iam::123456789012:policy/lakegate-boundary",
            ),
            ("--oidc-issuer", "https://idp.example.com"),
            ("--oidc-client-id", "lakegate"),
            ("--oidc-client-secret", "oidc-hunter2"),
        ];
        let mut argv = vec!["lakegate", "check-config"];
        for (flag, value) in required {
            if !extra.contains(&flag) {
                argv.extend([flag, value]);
            }
        }
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::CheckConfig(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_are_sensible() {
        let c = ServeConfig::try_from(&args(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.http.public_url, "http://127.0.0.1:8080");
        assert!(!c.http.secure_cookies && !c.dev_login());
        assert_eq!(c.http.session_max, time::Duration::hours(12));
        assert_eq!(c.shutdown_timeout, std::time::Duration::from_secs(20));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.settings.policy.defaults().scan_cutoff_bytes,
            10_000_000_000
        );
        assert_eq!(
            c.settings.policy.defaults().approver_groups,
            ["data-owners"]
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!c.summary().contains("hunter2"));
        let SignInConfig::Oidc(oidc) = c.sign_in else {
            panic!("OpenID Connect is configured")
        };
        assert!(oidc.require_verified_email);
        assert_eq!(oidc.redirect_url, "http://127.0.0.1:8080/auth/callback");
        assert_eq!(oidc.groups_claim, "groups");
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let c = ServeConfig::try_from(&args(&["--public-url", "https://lakegate.example.com/"]))
            .unwrap();
        assert!(c.http.secure_cookies);
        assert_eq!(c.http.public_url, "https://lakegate.example.com");
    }

    #[test]
    fn bad_settings_are_refused_with_the_variable_named() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--dev-login", "--listen", "0.0.0.0:8080"],
                "only allowed on a loopback address",
            ),
            (&["--listen", "localhost"], "LAKEGATE_LISTEN"),
            (&["--min-duration", "soon"], "LAKEGATE_MIN_DURATION"),
            (&["--max-duration", "10m"], "shorter than the minimum"),
            (&["--query-scan-cutoff", "5MB"], "at least 10MB"),
            (&["--query-scan-cutoff", "10XB"], "is not a size"),
            (
                &["--results-location", "results/"],
                "LAKEGATE_RESULTS_LOCATION",
            ),
            (
                &["--permissions-boundary-arn", "boundary"],
                "not a managed policy ARN",
            ),
            (&["--public-url", "ftp://x"], "must start with https://"),
            (
                &["--oidc-issuer", "http://idp.example.com"],
                "must be an https:// URL",
            ),
            (&["--oidc-issuer", ""], "but LAKEGATE_OIDC_ISSUER is not"),
            (&["--oidc-groups-claim", " "], "must name a claim"),
            (
                &["--oidc-issuer", "http://127.0.0.1.evil.example"],
                "must be an https:// URL",
            ),
            (&["--session-max", "forever"], "LAKEGATE_SESSION_MAX"),
            (&["--session-max", "1m"], "at least 5m"),
            (&["--startup-wait", "0s"], "LAKEGATE_STARTUP_WAIT"),
            (&["--shutdown-timeout", "soon"], "LAKEGATE_SHUTDOWN_TIMEOUT"),
            (&["--metrics-listen", "nine"], "LAKEGATE_METRICS_LISTEN"),
            (
                &["--metrics-listen", "127.0.0.1:8080"],
                "same address as LAKEGATE_LISTEN",
            ),
            (
                &["--aws-endpoint-url", "localhost:5000"],
                "AWS_ENDPOINT_URL",
            ),
            (&["--sweep-interval", "10s"], "between 1m and 24h"),
            (&["--groups-refresh", "2h"], "at most 1h"),
            (&["--sweep-interval", "often"], "LAKEGATE_SWEEP_INTERVAL"),
        ];
        for (extra, expected) in cases {
            let err = ServeConfig::try_from(&args(extra)).unwrap_err();
            assert!(format!("{err:#}").contains(expected), "{extra:?}: {err:#}");
        }
        assert!(
            ServeConfig::try_from(&dev_args(&[
                "--listen",
                "[::1]:8080",
                "--public-url",
                "http://[::1]:8080"
            ]))
            .is_ok()
        );
    }

    /// `check-config` with development sign-in and no identity provider.
    fn dev_args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec![
            "lakegate",
            "check-config",
            "--database-url",
            "postgres://x/y",
            "--results-location",
            "s3://results/athena/",
            "--permissions-boundary-arn",
            "arn:aws:iam::1:policy/b",
            "--dev-login",
        ];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::CheckConfig(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn development_sign_in_is_refused_where_it_could_leak() {
        assert!(ServeConfig::try_from(&dev_args(&[])).unwrap().dev_login());
        assert!(
            ServeConfig::try_from(&dev_args(&["--public-url", "http://localhost:8080"]))
                .unwrap()
                .dev_login()
        );
        let cases: &[(&[&str], &str)] = &[
            (
                &[
                    "--oidc-issuer",
                    "https://idp.example.com",
                    "--oidc-client-id",
                    "l",
                    "--oidc-client-secret",
                    "s",
                ],
                "must never sit beside the real one",
            ),
            (
                &["--public-url", "https://lakegate.example.com"],
                "loopback http:// public URL",
            ),
            (
                &["--public-url", "http://lakegate.example.com"],
                "loopback http:// public URL",
            ),
            (
                &["--public-url", "http://127.0.0.1.nip.io:8080"],
                "loopback http:// public URL",
            ),
            (
                &["--listen", "0.0.0.0:8080"],
                "only allowed on a loopback address",
            ),
        ];
        for (extra, expected) in cases {
            let err = ServeConfig::try_from(&dev_args(extra)).unwrap_err();
            assert!(format!("{err:#}").contains(expected), "{extra:?}: {err:#}");
        }
    }

    #[test]
    fn loopback_urls_are_matched_by_host() {
        for yes in [
            "http://127.0.0.1",
            "http://127.0.0.1:4000/x",
            "http://localhost:1",
            "http://[::1]:8080/",
            "http://127.1.2.3:80",
        ] {
            assert!(is_loopback_http(yes), "{yes}");
        }
        for no in [
            "https://127.0.0.1",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://evil.example/127.0.0.1",
            "http://127.0.0.1@evil.example",
            "http://[::1].evil",
        ] {
            assert!(!is_loopback_http(no), "{no}");
        }
    }

    #[test]
    fn starting_without_any_sign_in_is_refused() {
        let cli = Cli::try_parse_from([
            "lakegate",
            "check-config",
            "--database-url",
            "postgres://x/y",
            "--results-location",
            "s3://results/athena/",
            "--permissions-boundary-arn",
            "arn:aws:iam::1:policy/b",
        ])
        .unwrap();
        let Command::CheckConfig(a) = cli.command else {
            unreachable!()
        };
        let err = ServeConfig::try_from(&*a).unwrap_err();
        assert!(
            err.to_string().contains("no sign-in is configured"),
            "{err}"
        );
    }

    /// A policy file in a fresh temporary directory.
    fn policy_file(text: &str) -> (std::path::PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("lakegate-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!(
            "policy-{:x}.toml",
            text.len() * 31 + text.lines().count()
        ));
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        (path, shown)
    }

    #[test]
    fn the_policy_file_is_read_and_its_mistakes_are_named() {
        let (good, _) = policy_file(include_str!("../../../policy.example.toml"));
        let c = ServeConfig::try_from(&args(&["--policy", good.to_str().unwrap()])).unwrap();
        let p = &c.settings.policy;
        assert_eq!(p.admin_group(), Some("lakegate-admins"));
        assert_eq!(
            p.rules()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["sales", "hr", "marketing"]
        );
        assert!(c.summary().contains("3 rules (sales, hr, marketing)"));

        let (bad, shown) = policy_file(
            "[defaults]\napprover_groups = [\"data-owners\"]\n\n[[rule]]\nname = \"hr\"\nmatch = [\"hr.*\"]\nmax_duration = \"10d\"\n",
        );
        let err = ServeConfig::try_from(&args(&["--policy", bad.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "LAKEGATE_POLICY: the policy file is not valid: {shown}:7: rule \"hr\": "
            )),
            "{err}"
        );

        let err =
            ServeConfig::try_from(&args(&["--policy", "/nonexistent/policy.toml"])).unwrap_err();
        assert!(
            format!("{err:#}").contains("LAKEGATE_POLICY: cannot read /nonexistent/policy.toml"),
            "{err:#}"
        );

        // The admin group in two places must agree.
        let err = ServeConfig::try_from(&args(&[
            "--policy",
            good.to_str().unwrap(),
            "--admin-group",
            "security",
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("the admin group is set twice"), "{err}");
        let (no_admin, _) = policy_file("[defaults]\napprover_groups = [\"data-owners\", \"x\"]\n");
        let c = ServeConfig::try_from(&args(&[
            "--policy",
            no_admin.to_str().unwrap(),
            "--admin-group",
            "security",
        ]))
        .unwrap();
        assert_eq!(c.settings.policy.admin_group(), Some("security"));
    }

    #[test]
    fn webhook_urls_are_checked_and_redacted() {
        let c = ServeConfig::try_from(&args(&[
            "--notify-webhook-url",
            "https://hooks.example.com/T0/B0/s3cret",
        ]))
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!c.summary().contains("s3cret"));
        assert!(
            c.summary()
                .contains("break-glass webhook https://hooks.example.com/***"),
            "{}",
            c.summary()
        );
        assert!(
            ServeConfig::try_from(&args(&["--notify-webhook-url", "hooks.example.com/x"])).is_err()
        );
        let c = ServeConfig::try_from(&args(&[
            "--webhook-urls",
            "https://a.example.com/in/s3cret, http://127.0.0.1:9/hook",
            "--webhook-secret",
            "0123456789abcdef-s3cret",
        ]))
        .unwrap();
        assert_eq!(c.settings.notify.webhooks.len(), 2);
        assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
        let err = ServeConfig::try_from(&args(&["--webhook-urls", "https://a.example.com/x"]))
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("LAKEGATE_WEBHOOK_SECRET is required"),
            "{err:#}"
        );
        let err = ServeConfig::try_from(&args(&["--slack-bot-token", "xoxb-1"]))
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("LAKEGATE_SLACK_SIGNING_SECRET, LAKEGATE_SLACK_CHANNEL"),
            "{err:#}"
        );
    }

    #[test]
    fn prices_parse_to_micro_dollars() {
        assert_eq!(parse_usd("5").unwrap(), 5_000_000);
        assert_eq!(parse_usd("6.75").unwrap(), 6_750_000);
        assert_eq!(parse_usd("$0.000001").unwrap(), 1);
        for bad in ["", "0", "five", "1.2345678", "-5", "5.", ".5x"] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
        let c = ServeConfig::try_from(&args(&["--athena-price-per-tb", "6.75"])).unwrap();
        assert_eq!(c.settings.monitor.price.micros_per_tb, 6_750_000);
        assert_eq!(c.settings.monitor.interval, time::Duration::seconds(30));
    }

    #[test]
    fn flag_thresholds_are_configurable_and_checked() {
        let c = ServeConfig::try_from(&args(&[])).unwrap();
        assert_eq!(c.settings.monitor.flags, FlagRules::default());

        let c = ServeConfig::try_from(&args(&[
            "--flag-large-scan",
            "2TB",
            "--flag-burst-queries",
            "5",
            "--flag-burst-window",
            "10m",
        ]))
        .unwrap();
        let flags = c.settings.monitor.flags;
        assert_eq!(flags.large_scan_bytes, 2_000_000_000_000);
        assert_eq!(flags.burst.max_queries, 5);
        assert_eq!(flags.burst.window, time::Duration::minutes(10));

        let off = ServeConfig::try_from(&args(&["--flag-large-scan", "off"])).unwrap();
        assert_eq!(off.settings.monitor.flags.large_scan_bytes, 0);

        for (flag, bad, says) in [
            ("--flag-large-scan", "huge", "LAKEGATE_FLAG_LARGE_SCAN"),
            ("--flag-large-scan", "1MB", "at least 10MB"),
            ("--flag-burst-queries", "0", "LAKEGATE_FLAG_BURST_QUERIES"),
            ("--flag-burst-queries", "many", "from 1 to 10000"),
            ("--flag-burst-window", "0s", "LAKEGATE_FLAG_BURST_WINDOW"),
            ("--flag-burst-window", "2d", "between 1s and 24h"),
        ] {
            let err = ServeConfig::try_from(&args(&[flag, bad])).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(says), "{flag} {bad}: {text}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("10GB").unwrap(), 10_000_000_000);
        assert_eq!(parse_bytes("500 mb").unwrap(), 500_000_000);
        assert_eq!(parse_bytes("12345").unwrap(), 12_345);
        assert!(parse_bytes("GB").is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:p@h:5432/d"),
            "postgres://***@h:5432/d"
        );
        assert_eq!(redact_url("postgres://token@h/d"), "postgres://***@h/d");
        assert_eq!(
            redact_url("postgres://u:p@ss@h/d?x=@"),
            "postgres://***@h/d?x=@"
        );
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
        assert_eq!(redact_url("no scheme"), "***");
    }
}
