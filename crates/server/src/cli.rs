//! Command line: the server's commands (`lakegate serve`, `migrate`, `check-config`, `audit
//! verify|export`, `sweep`, `health`), and the client's, which talk to a lakegate over its JSON
//! API with a personal token (`login`, `request`, `status`, `approve`, `deny`, `cancel`,
//! `revoke`, `credentials`, `env`, `query`). Every option can also be set through the
//! environment variable named in `--help`.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lakegate",
    version,
    about = "Just-in-time access to Athena data governed by Lake Formation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply database migrations, then serve HTTP and run the background worker.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Validate the configuration and print it (secrets redacted), without connecting anywhere.
    CheckConfig(Box<ServeArgs>),
    /// Check or export the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Remove what exists in AWS under lakegate's names (roles under /lakegate/, lakegate-
    /// workgroups, their Lake Formation permissions) that no live request backs; each removal is
    /// audited. Takes the same settings as `serve`.
    Sweep(SweepArgs),
    /// Ask the lakegate listening on LAKEGATE_LISTEN whether it is alive (`/healthz`); exit 0 if
    /// it is. For container health checks: the runtime image has no curl.
    Health(HealthArgs),
    /// The client's commands, which talk to a lakegate server with a personal token.
    #[command(flatten)]
    Client(ClientCommand),
}

/// The command line as a client of a lakegate server, over its JSON API.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Print a grant's temporary AWS credentials as `credential_process` JSON, for a profile in
    /// ~/.aws/config: `credential_process = lakegate credentials <request id>` (or `--url
    /// <credentials URL>`). The grant's token is read from a file only you can read (mode
    /// 0600), never from the command line; `lakegate env <id>` writes it there.
    Credentials(CredentialsArgs),
    /// Store a personal API token for the commands below: make one at <server>/settings/tokens,
    /// then paste it here. Saved in ~/.config/lakegate/token (mode 0600).
    Login(LoginArgs),
    /// Ask for access: `lakegate request sales.orders:order_id,amount --for 1h --reason "…"`.
    Request(RequestArgs),
    /// Your requests and what waits for your approval, or one request in full.
    Status(StatusArgs),
    /// Approve a request (or, with --extension, one of its extensions).
    Approve(DecideArgs),
    /// Deny a request (or, with --extension, one of its extensions).
    Deny(DecideArgs),
    /// Withdraw a pending request of yours.
    Cancel(IdArgs),
    /// End a grant now: its sessions stop at once, then everything made for it is removed.
    Revoke(RevokeArgs),
    /// Issue a credentials token for your active grant and print the two `AWS_CONTAINER_*`
    /// exports every AWS SDK and the AWS CLI read: `eval "$(lakegate env <id>)"`. Also saves the
    /// token for `lakegate credentials <id>`. Ends the sessions of the grant's previous token.
    Env(IdArgs),
    /// Run one SELECT through the guarded console, as the grant, and print its rows.
    Query(QueryArgs),
}

/// How the client commands reach lakegate, and how they answer.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// lakegate's URL, e.g. https://lakegate.example.com. Default: the one saved by `lakegate
    /// login`.
    #[arg(long = "server", env = "LAKEGATE_URL")]
    pub server: Option<String>,

    /// Print the API's JSON answer instead of text for people.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// What to read: `database.table` for every column, or `database.table:col1,col2`; several
    /// may be given.
    #[arg(required = true, value_name = "TABLE[:COLUMNS]")]
    pub resources: Vec<String>,

    /// For how long, like 30m, 1h or 2h30m.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,

    /// Why: the approvers read it, and the audit keeps it.
    #[arg(long)]
    pub reason: String,

    /// Break the glass: active at once if the policy lets you, reviewed afterwards.
    #[arg(long)]
    pub break_glass: bool,

    /// Wait until the grant is active (or the request ends), showing what it waits for.
    #[arg(long)]
    pub wait: bool,

    /// With --wait: give up after this long (like 30m); exit 6 then.
    #[arg(long, default_value = "1h", requires = "wait")]
    pub timeout: String,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// A request's id; without one, lists yours and those waiting for your approval.
    pub id: Option<String>,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DecideArgs {
    /// The request's id.
    pub id: String,

    /// A comment for the requester and the audit.
    #[arg(long)]
    pub comment: Option<String>,

    /// Decide this extension of the request instead (its id, as `status` shows it).
    #[arg(long)]
    pub extension: Option<i64>,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct IdArgs {
    /// The request's id.
    pub id: String,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// The request's id.
    pub id: String,

    /// Why, for the audit.
    #[arg(long)]
    pub comment: Option<String>,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The request's id.
    pub id: String,

    /// One statement the guard allows: a SELECT on what the grant covers.
    pub sql: String,

    /// The database unqualified table names are in.
    #[arg(long)]
    pub database: Option<String>,

    /// Print the rows as CSV (with a header row) instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CredentialsArgs {
    /// The request's id: the credentials URL is then <server>/credentials/<id>.
    #[arg(required_unless_present = "url", conflicts_with = "url")]
    pub id: Option<String>,

    /// The grant's credentials URL, as the credentials page shows it.
    #[arg(long)]
    pub url: Option<String>,

    /// lakegate's URL, when giving a request id. Default: the one saved by `lakegate login`.
    #[arg(long = "server", env = "LAKEGATE_URL")]
    pub server: Option<String>,

    /// The file holding the grant's token (mode 0600; a leading `~/` is your home directory).
    /// Default: ~/.config/lakegate/<request id>.token.
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub serve: Box<ServeArgs>,
}

#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The address lakegate listens on (an unspecified address such as 0.0.0.0 is asked on
    /// loopback).
    #[arg(long, env = "LAKEGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; exit 1 and name the first broken row if any row was changed,
    /// inserted or removed.
    Verify(DbArgs),
    /// Write every audit event, oldest first, to standard output.
    Export {
        #[command(flatten)]
        db: DbArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row (`detail` as JSON).
    Csv,
}

impl From<ExportFormat> for lakegate_app::audit::ExportFormat {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Jsonl => Self::Jsonl,
            ExportFormat::Csv => Self::Csv,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Largest number of database connections this replica opens.
    #[arg(long, env = "LAKEGATE_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Compact, human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,

    /// Address to listen on.
    #[arg(long, env = "LAKEGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// URL people and SDKs use to reach lakegate (used in credentials URLs and the Origin
    /// check). Defaults to http://<listen>.
    #[arg(long, env = "LAKEGATE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Issuer URL of the OpenID Connect provider people sign in with (https; http only on
    /// loopback). Enables sign-in through it.
    #[arg(long, env = "LAKEGATE_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// Client id lakegate is registered with at the provider.
    #[arg(long, env = "LAKEGATE_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// Client secret for the provider's token endpoint.
    #[arg(long, env = "LAKEGATE_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,

    /// ID token claim that lists the person's groups.
    #[arg(long, env = "LAKEGATE_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,

    /// Refuse sign-ins whose ID token has no `email_verified` claim (one that says `false` is
    /// always refused).
    #[arg(long, env = "LAKEGATE_OIDC_REQUIRE_VERIFIED_EMAIL", default_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub oidc_require_verified_email: bool,

    /// Scopes to ask for besides `openid email profile`, space- or comma-separated (e.g. groups).
    #[arg(long, env = "LAKEGATE_OIDC_SCOPES", default_value = "")]
    pub oidc_scopes: String,

    /// Enable the development sign-in form, which trusts whatever is typed. Refused with an
    /// identity provider, unless listening on loopback with a loopback http:// public URL; it
    /// answers only requests made directly from this machine.
    #[arg(long, env = "LAKEGATE_DEV_LOGIN", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub dev_login: bool,

    /// Approval policy file (TOML): rules per database and table for approvers, number of
    /// approvals, durations, sensitive columns, auto-approval, break-glass, scan limits. Without
    /// it, the simple settings below apply (see policy.example.toml).
    #[arg(long, env = "LAKEGATE_POLICY")]
    pub policy: Option<std::path::PathBuf>,

    /// Webhook (http or https URL) that receives break-glass notifications only, signed as
    /// every webhook is. Notifications are always written to the log as well.
    #[arg(long, env = "LAKEGATE_NOTIFY_WEBHOOK_URL", hide_env_values = true)]
    pub notify_webhook_url: Option<String>,

    /// Webhooks (comma-separated http or https URLs) that receive every notification as signed
    /// JSON (docs/notifications.md). Needs LAKEGATE_WEBHOOK_SECRET.
    #[arg(long, env = "LAKEGATE_WEBHOOK_URLS", hide_env_values = true)]
    pub webhook_urls: Option<String>,

    /// The secret every webhook body is signed with (HMAC-SHA256, `X-Lakegate-Signature`).
    #[arg(long, env = "LAKEGATE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// A notification still failing this long after it happened is given up (and stays in the
    /// audit trail and the admins' notifications page).
    #[arg(long, env = "LAKEGATE_NOTIFY_MAX_AGE", default_value = "24h")]
    pub notify_max_age: String,

    /// Slack bot token (`xoxb-…`): requests are posted with Approve / Deny buttons
    /// (docs/slack.md). Needs LAKEGATE_SLACK_SIGNING_SECRET and LAKEGATE_SLACK_CHANNEL.
    #[arg(long, env = "LAKEGATE_SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<String>,

    /// The Slack app's signing secret, with which its button clicks are checked.
    #[arg(long, env = "LAKEGATE_SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub slack_signing_secret: Option<String>,

    /// The Slack channel (name or id) requests are posted to, unless a rule names its own.
    #[arg(long, env = "LAKEGATE_SLACK_CHANNEL")]
    pub slack_channel: Option<String>,

    /// Slack's Web API base URL (a Slack-compatible server of your own, in tests).
    #[arg(long, env = "LAKEGATE_SLACK_API_URL", default_value = crate::config::SLACK_API_URL)]
    pub slack_api_url: String,

    /// Members of this group approve requests (never their own). Ignored with LAKEGATE_POLICY.
    #[arg(long, env = "LAKEGATE_APPROVER_GROUP", default_value = "data-owners")]
    pub approver_group: String,

    /// Members of this group see every request, may revoke any grant and read the audit trail.
    #[arg(long, env = "LAKEGATE_ADMIN_GROUP")]
    pub admin_group: Option<String>,

    /// Shortest duration a request may ask for (like 15m). Ignored with LAKEGATE_POLICY.
    #[arg(long, env = "LAKEGATE_MIN_DURATION", default_value = "15m")]
    pub min_duration: String,

    /// Longest duration a request may ask for (like 8h). Ignored with LAKEGATE_POLICY.
    #[arg(long, env = "LAKEGATE_MAX_DURATION", default_value = "8h")]
    pub max_duration: String,

    /// Where Athena writes query results, s3://bucket/prefix/; each grant gets its own
    /// sub-prefix and may touch only that.
    #[arg(long, env = "LAKEGATE_RESULTS_LOCATION")]
    pub results_location: String,

    /// Managed policy set as the permissions boundary of every role lakegate creates.
    #[arg(long, env = "LAKEGATE_PERMISSIONS_BOUNDARY_ARN")]
    pub permissions_boundary_arn: String,

    /// Per-query bytes-scanned cutoff of each grant's Athena workgroup (like 10GB; at least 10MB).
    /// Ignored with LAKEGATE_POLICY (its `query_scan_cutoff` applies).
    #[arg(long, env = "LAKEGATE_QUERY_SCAN_CUTOFF", default_value = "10GB")]
    pub query_scan_cutoff: String,

    /// Principal named in the trust policy of every role lakegate creates. Defaults to the
    /// identity lakegate runs as; set it when that is a role with a path.
    #[arg(long, env = "LAKEGATE_BROKER_PRINCIPAL_ARN")]
    pub broker_principal_arn: Option<String>,

    /// How often the query monitor looks at every active grant's queries (like 30s).
    #[arg(long, env = "LAKEGATE_MONITOR_INTERVAL", default_value = "30s")]
    pub monitor_interval: String,

    /// Athena's price per TB scanned, in US dollars, for cost estimates (it differs by Region).
    #[arg(long, env = "LAKEGATE_ATHENA_PRICE_PER_TB", default_value = "5")]
    pub athena_price_per_tb: String,

    /// A query that scans at least this much is flagged as a large scan (like 100GB; `off`
    /// turns the flag off).
    #[arg(long, env = "LAKEGATE_FLAG_LARGE_SCAN", default_value = "100GB")]
    pub flag_large_scan: String,

    /// More than this many queries of one grant within `LAKEGATE_FLAG_BURST_WINDOW` are flagged
    /// as a burst.
    #[arg(long, env = "LAKEGATE_FLAG_BURST_QUERIES", default_value = "30")]
    pub flag_burst_queries: String,

    /// The window of the burst flag (like 60s or 5m).
    #[arg(long, env = "LAKEGATE_FLAG_BURST_WINDOW", default_value = "60s")]
    pub flag_burst_window: String,

    /// A grant whose holder submits more than this many queries within a minute is revoked
    /// ("query flood"); `off` for no limit.
    #[arg(long, env = "LAKEGATE_QUERY_FLOOD_PER_MINUTE", default_value = "600")]
    pub query_flood_per_minute: String,

    /// Pending requests one person may have at a time; `off` for no limit.
    #[arg(long, env = "LAKEGATE_MAX_PENDING_PER_PERSON", default_value = "20")]
    pub max_pending_per_person: String,

    /// A request nobody decides within this long lapses (audited `request.lapsed`).
    #[arg(long, env = "LAKEGATE_PENDING_TTL", default_value = "7d")]
    pub pending_ttl: String,

    /// Sign people out after this long without a request.
    #[arg(long, env = "LAKEGATE_SESSION_IDLE", default_value = "8h")]
    pub session_idle: String,

    /// Sign people out this long after they signed in, however active they are.
    #[arg(long, env = "LAKEGATE_SESSION_MAX", default_value = "12h")]
    pub session_max: String,

    /// With OpenID Connect: re-read each signed-in person's groups from the provider at least
    /// this often (they are always re-read before approvals, denials, reviews, revokes, requests
    /// and the audit trail).
    #[arg(long, env = "LAKEGATE_GROUPS_REFRESH", default_value = "15m")]
    pub groups_refresh: String,

    /// Serve Prometheus metrics on this address instead of at /metrics on the main listener.
    #[arg(long, env = "LAKEGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// How often the orphan sweep looks for AWS resources under lakegate's names that no live
    /// request backs (like 10m; `off` turns it off; `lakegate sweep` runs it once).
    #[arg(long, env = "LAKEGATE_SWEEP_INTERVAL", default_value = "10m")]
    pub sweep_interval: String,

    /// How long start-up keeps trying to reach the database and the identity provider before
    /// it gives up.
    #[arg(long, env = "LAKEGATE_STARTUP_WAIT", default_value = "30s")]
    pub startup_wait: String,

    /// After SIGTERM or Ctrl-C: how long in-flight requests and the worker's current step may
    /// take before lakegate exits anyway.
    #[arg(long, env = "LAKEGATE_SHUTDOWN_TIMEOUT", default_value = "20s")]
    pub shutdown_timeout: String,

    /// AWS endpoint for every service (an emulator); the AWS SDKs read the same variable.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// Log format: json for log pipelines (the default), text for people.
    #[arg(long, env = "LAKEGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_login_reads_booleans() {
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "lakegate",
                "check-config",
                "--database-url",
                "postgres://x",
                "--results-location",
                "s3://b/p/",
                "--permissions-boundary-arn",
                "arn:aws:iam::1:policy/b",
            ];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).unwrap().command {
                Command::CheckConfig(a) => a.dev_login,
                _ => unreachable!(),
            }
        };
        assert!(!parse(&[]));
        assert!(parse(&["--dev-login"]));
        assert!(parse(&["--dev-login", "true"]));
        assert!(!parse(&["--dev-login", "false"]));
    }
}
