//! The composition root: [`build`] turns a validated configuration into a ready [`App`] —
//! database connected and migrated, identity provider discovered, AWS adapter, worker, router
//! and metrics wired — and [`App::run`] serves it until shutdown, then drains in order. The
//! binary's `serve` and every whole-process test start lakegate only through these two, so a
//! part the binary forgets to wire is a part every test misses too.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use lakegate_app::Services;
use lakegate_aws::AwsCloudAccess;
use lakegate_domain::ports::SystemClock;
use lakegate_store::MIGRATOR;
use lakegate_web::oidc::Oidc;
use lakegate_web::slack::Slack;
use lakegate_web::{AppState, PgSessionStore, SignIn};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ServeConfig, SignInConfig, redact_url};
use crate::metrics::Metrics;

pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .context("could not connect to PostgreSQL (DATABASE_URL)")
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("database migration failed")?;
    Ok(())
}

/// Tries `attempt` until it succeeds or `wait` has passed since the first try, with a pause
/// that doubles from 250 ms to 4 s; each failure is logged, the last one returned.
async fn retry_for<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    wait: Duration,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Result<T, E> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(250);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let now = tokio::time::Instant::now();
                if now + pause > deadline {
                    return Err(e);
                }
                tracing::warn!(error = %e, retry_in = ?pause, "{what} failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
        }
    }
}

/// The SDK configuration lakegate's AWS calls use (docs/aws.md §20): bounded calls, and the
/// SDK's adaptive retries, which retry throttling and transient errors with backoff and, once a
/// service throttles, slow the calls to that service alone (each service's client has its own
/// rate limiter): IAM throttling the writes of a teardown burst never delays STS sessions for
/// the credentials URL, nor Athena.
pub async fn aws_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    // Bounded calls: a hung AWS call must end well within what SDKs wait for the credentials
    // URL; a worker's lease is renewed while its step runs.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::adaptive());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The AWS adapter, with the configured endpoint.
async fn cloud(config: &ServeConfig) -> anyhow::Result<AwsCloudAccess> {
    let aws = aws_config(config.aws_endpoint_url.as_deref()).await;
    AwsCloudAccess::from_conf(&aws, config.broker_principal_arn.clone())
        .await
        .context("could not reach AWS STS to find out who lakegate runs as")
}

/// The Slack client, when Slack is configured.
fn slack(config: &ServeConfig) -> anyhow::Result<Option<Arc<Slack>>> {
    config
        .notify
        .slack
        .as_ref()
        .map(|s| {
            Slack::new(
                &s.api_url,
                s.bot_token.expose_secret().to_owned(),
                s.signing_secret.expose_secret().to_owned(),
            )
            .map(Arc::new)
            .context("could not set up the Slack client")
        })
        .transpose()
}

/// The verbs' services over `pool` and the real AWS adapter, sending notifications through
/// webhooks and `slack`.
async fn services(
    config: &ServeConfig,
    pool: PgPool,
    slack: Option<Arc<Slack>>,
) -> anyhow::Result<Services> {
    let sender = crate::notify::HttpSender::new(
        config.http.public_url.clone(),
        config.notify.webhook_secret.clone(),
        slack,
    )
    .context("could not set up the notification client")?;
    Ok(Services::new(
        pool,
        Arc::new(cloud(config).await?),
        Arc::new(SystemClock),
        config.settings.clone(),
    )
    .with_sender(Arc::new(sender)))
}

/// What `lakegate sweep` works with: the database (migrated) and AWS, no HTTP, no worker.
pub async fn services_for_command(config: &ServeConfig) -> anyhow::Result<Services> {
    let pool = connect(config.database_url.expose_secret(), 2).await?;
    migrate(&pool).await?;
    services(config, pool, slack(config)?).await
}

/// A name for this replica's worker, seen in leases.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "lakegate".into());
    format!("{host}-{}", std::process::id())
}

/// lakegate, built and bound, not yet serving.
pub struct App {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: Router,
    metrics_router: Router,
    services: Services,
    sessions: PgSessionStore,
    metrics: Metrics,
    shutdown_timeout: Duration,
    sweep_interval: Option<Duration>,
    public_url: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("listener", &self.listener.local_addr().ok())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Connects, migrates, discovers, wires. `listener` is bound by the caller (port 0 in tests;
/// the configured address in the binary), so the address is known before anything is served.
pub async fn build(config: ServeConfig, listener: TcpListener) -> anyhow::Result<App> {
    let metrics = Metrics::install();
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("LAKEGATE_METRICS_LISTEN: could not listen on {addr}"))?,
        ),
        None => None,
    };

    let db_url = config.database_url.expose_secret().to_owned();
    let pool = retry_for(config.startup_wait, "connecting to PostgreSQL", || {
        connect(&db_url, config.db_max_connections)
    })
    .await
    .with_context(|| {
        format!(
            "PostgreSQL at {} did not answer within LAKEGATE_STARTUP_WAIT ({:?})",
            redact_url(&db_url),
            config.startup_wait
        )
    })?;
    migrate(&pool).await?;

    let sign_in = match &config.sign_in {
        SignInConfig::Oidc(oidc) => {
            let discovered = retry_for(
                config.startup_wait,
                "discovering the OpenID Connect provider",
                || Oidc::discover(oidc),
            )
            .await
            .with_context(|| {
                format!(
                    "LAKEGATE_OIDC_ISSUER: the identity provider at {} could not be discovered within \
                     LAKEGATE_STARTUP_WAIT ({:?})",
                    oidc.issuer, config.startup_wait
                )
            })?;
            tracing::info!(issuer = %oidc.issuer, "OpenID Connect provider discovered");
            SignIn::Oidc(Arc::new(discovered))
        }
        SignInConfig::Development => {
            tracing::warn!(
                "development sign-in is ON: anyone who reaches this machine's loopback can sign in as anyone"
            );
            SignIn::Development
        }
    };

    let slack = slack(&config)?;
    let services = services(&config, pool.clone(), slack.clone()).await?;

    let sessions = lakegate_web::session_store(pool);
    let web = config.web_config(sign_in, slack);
    let public_url = web.public_url.clone();
    let state = AppState::new(services.clone(), web);
    let metrics_router = metrics.router(services.clone());
    let mut router = lakegate_web::router(state, sessions.clone());
    if metrics_listener.is_none() {
        router = router.merge(metrics_router.clone());
    }
    Ok(App {
        listener,
        metrics_listener,
        router,
        metrics_router,
        services,
        sessions,
        metrics,
        shutdown_timeout: config.shutdown_timeout,
        sweep_interval: config.sweep_interval,
        public_url,
    })
}

impl App {
    /// The address the main listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address `/metrics` is served on, when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The verbs' services, for tests that look behind the HTTP interface.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` is cancelled (or the server fails), then stops accepting, lets
    /// in-flight requests, the worker's current pass and the monitor's look finish, and returns within the
    /// shutdown timeout.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        tracker.spawn(lakegate_app::worker::run(
            self.services.clone(),
            worker_name(),
            shutdown.clone(),
        ));
        // Apart from the worker: a long look at queries never holds up a revoke or an expiry.
        tracker.spawn(lakegate_app::monitor::run(
            self.services.clone(),
            shutdown.clone(),
        ));
        // The active grants in memory, for the credentials URL.
        tracker.spawn(lakegate_app::live::run(
            self.services.clone(),
            shutdown.clone(),
        ));
        // Notifications from the outbox to webhooks and Slack.
        tracker.spawn(lakegate_app::notify::run(
            self.services.clone(),
            shutdown.clone(),
        ));
        // Approver groups brought up to date with the policy, and undecided requests lapsed.
        tracker.spawn(lakegate_app::upkeep::run_upkeep(
            self.services.clone(),
            std::time::Duration::from_secs(15),
            shutdown.clone(),
        ));
        tracker.spawn(lakegate_web::run_session_sweeper(
            self.sessions.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(self.metrics.run_upkeep(shutdown.clone()));
        if let Some(every) = self.sweep_interval {
            tracker.spawn(lakegate_app::sweep::run(
                self.services.clone(),
                every,
                shutdown.clone(),
            ));
        }

        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, public_url = %self.public_url, "lakegate listening");
        let main = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
        let mut main = tokio::spawn(main);
        let metrics_server = self.metrics_listener.map(|listener| {
            if let Ok(a) = listener.local_addr() {
                tracing::info!(addr = %a, "metrics listening");
            }
            tokio::spawn(
                axum::serve(listener, self.metrics_router)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .into_future(),
            )
        });

        let early = tokio::select! {
            () = shutdown.cancelled() => None,
            ended = &mut main => Some(ended),
        };
        // Whatever ended the server, stop the background tasks too, and wait for everything,
        // bounded.
        shutdown.cancel();
        tracker.close();
        let drain = async {
            let served = match early {
                Some(ended) => ended,
                None => main.await,
            };
            if let Some(m) = metrics_server {
                let _ = m.await;
            }
            tracker.wait().await;
            served
        };
        let result = match tokio::time::timeout(self.shutdown_timeout, drain).await {
            Ok(Ok(served)) => served.context("HTTP server failed"),
            Ok(Err(join)) => Err(anyhow::anyhow!("HTTP server task failed: {join}")),
            Err(_) => {
                tracing::warn!(
                    timeout = ?self.shutdown_timeout,
                    "in-flight work did not finish within LAKEGATE_SHUTDOWN_TIMEOUT; exiting anyway"
                );
                Ok(())
            }
        };
        self.services.db.close().await;
        tracing::info!("lakegate stopped");
        result
    }
}

/// Builds and serves until `shutdown` is cancelled: what `lakegate serve` does.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    build(config, listener).await?.run(shutdown).await
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
    token.cancel();
}
