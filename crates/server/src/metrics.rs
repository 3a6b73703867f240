//! Prometheus metrics: the exporter behind the `metrics` facade (installed once per process),
//! the `/metrics` route, and the request gauge read from the database at each scrape. The
//! names live in `lakegate_app::metrics`.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lakegate_app::Services;
use lakegate_app::metrics as names;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Seconds, for request latencies.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Seconds, for the worker's work: provisioning and the reaper's lag.
const WORK_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The process's metrics: a handle on the one installed recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the Prometheus recorder the first time; later calls (several servers in one test
    /// process) share it.
    pub fn install() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            // Fails only for an empty list of buckets, which these are not.
            let builder = with_buckets().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "histogram buckets not set");
                PrometheusBuilder::new()
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            handle
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// `GET /metrics`.
    pub fn router(&self, services: Services) -> Router {
        Router::new()
            .route("/metrics", get(render))
            .with_state((self.clone(), services))
    }

    /// Keeps the histograms' memory bounded (the exporter needs this when it runs no listener of
    /// its own).
    pub async fn run_upkeep(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => self.handle.run_upkeep(),
            }
        }
    }
}

fn with_buckets() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::HTTP_DURATION.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(names::REAPER_LAG.into()), WORK_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(names::PROVISION_DURATION.into()),
            WORK_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::PROVISION_OVERHEAD.into()),
            LATENCY_BUCKETS,
        )
}

fn describe() {
    metrics::describe_gauge!(names::REQUESTS, "Access requests by status.");
    metrics::describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests answered, by route and status."
    );
    metrics::describe_histogram!(
        names::HTTP_DURATION,
        metrics::Unit::Seconds,
        "How long HTTP requests took, by route."
    );
    metrics::describe_counter!(
        names::CREDENTIALS_SERVED,
        "Sessions handed out by the credentials URL, from the cache or fresh from STS."
    );
    metrics::describe_counter!(
        names::AWS_CALLS,
        "Calls to AWS, by service, operation and outcome."
    );
    metrics::describe_histogram!(
        names::REAPER_LAG,
        metrics::Unit::Seconds,
        "From a grant's expiry to its sessions denied (step=deny_sessions) and to its teardown done (step=done)."
    );
    metrics::describe_histogram!(
        names::PROVISION_DURATION,
        metrics::Unit::Seconds,
        "How long provisioning a grant took in the worker."
    );
    metrics::describe_histogram!(
        names::PROVISION_OVERHEAD,
        metrics::Unit::Seconds,
        "Of a provisioning pass over every step, the time not spent waiting for AWS."
    );
    metrics::describe_counter!(
        names::STEP_FAILURES,
        "Provisioning and teardown steps that failed (and are retried), by step."
    );
}

async fn render(State((metrics, services)): State<(Metrics, Services)>) -> Response {
    match lakegate_app::health::request_counts(&services).await {
        Ok(counts) => {
            for (status, n) in counts {
                #[allow(
                    clippy::cast_precision_loss,
                    reason = "request counts stay far below 2^52"
                )]
                metrics::gauge!(names::REQUESTS, "status" => status.as_str()).set(n as f64);
            }
        }
        // The rest is still worth scraping; the gauge keeps its last values.
        Err(e) => tracing::warn!(error = %e, "could not count requests for /metrics"),
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.handle.render(),
    )
        .into_response()
}
