//! Starting and stopping: connect, migrate, wire the real AWS adapter, run the HTTP server, the
//! worker and the session sweeper under one cancellation token, and shut down in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lakegate_app::Services;
use lakegate_aws::AwsCloudAccess;
use lakegate_domain::ports::SystemClock;
use lakegate_store::MIGRATOR;
use lakegate_web::AppState;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;

/// How long in-flight work may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(15);

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

/// A name for this replica's worker, seen in leases.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "lakegate".into());
    format!("{host}-{}", std::process::id())
}

/// Serves until `shutdown` is cancelled, then drains. The listener is an input so that tests
/// (and socket activation) can bind it.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool = connect(
        config.database_url.expose_secret(),
        config.db_max_connections,
    )
    .await?;
    migrate(&pool).await?;
    let sessions = lakegate_web::session_store(pool.clone());

    // Bounded calls: a hung AWS call must end well within a worker's lease (5 min) and a
    // credentials fetch within what SDKs wait.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let cloud = AwsCloudAccess::from_conf(&aws, config.broker_principal_arn.clone())
        .await
        .context("could not reach AWS STS to find out who lakegate runs as")?;
    let mut services = Services::new(
        pool,
        Arc::new(cloud),
        Arc::new(SystemClock),
        config.settings.clone(),
    );
    if let Some(url) = &config.notify_webhook_url {
        services = services.with_notifier(Arc::new(
            crate::notify::WebhookNotifier::new(url.clone(), config.web.public_url.clone())
                .context("could not set up the notification webhook client")?,
        ));
    }

    let tracker = TaskTracker::new();
    tracker.spawn(lakegate_app::worker::run(
        services.clone(),
        worker_name(),
        shutdown.clone(),
    ));
    tracker.spawn(lakegate_web::run_session_sweeper(
        sessions.clone(),
        shutdown.clone(),
    ));

    let app = lakegate_web::router(
        AppState::new(services.clone(), config.web.clone()),
        sessions,
    );
    let addr = listener.local_addr()?;
    tracing::info!(%addr, public_url = %config.web.public_url, "lakegate listening");
    let server =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let result = server.await.context("HTTP server failed");

    // Whatever ended the server, stop the background tasks too and wait for them, bounded.
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("background tasks did not stop within {DRAIN:?}; exiting anyway");
    }
    services.db.close().await;
    tracing::info!("lakegate stopped");
    result
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
