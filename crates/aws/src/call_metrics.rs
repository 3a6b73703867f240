//! Counts every AWS call by service, operation and outcome (`lakegate_aws_calls_total`): one
//! SDK interceptor on every client, so no call can be forgotten.

use aws_sdk_sts::config::ConfigBag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The metric's name (the same as `lakegate_app::metrics::AWS_CALLS`, which this crate cannot
/// name: it does not depend on the app).
pub(crate) const AWS_CALLS: &str = "lakegate_aws_calls_total";

#[derive(Debug, Clone, Copy)]
pub(crate) struct CallMetrics;

impl Intercept for CallMetrics {
    fn name(&self) -> &'static str {
        "lakegate-call-metrics"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("unknown", "unknown"), |m| (m.service(), m.name()));
        metrics::counter!(
            AWS_CALLS,
            "service" => service.to_ascii_lowercase(),
            "operation" => operation.to_owned(),
            "outcome" => outcome(context),
        )
        .increment(1);
        Ok(())
    }
}

/// `ok`, `client_error` (4xx: denied, not found, throttled…), `server_error` (5xx), or
/// `unreachable` (no answer at all: connect failure, timeout).
fn outcome(context: &FinalizerInterceptorContextRef<'_>) -> &'static str {
    match context.response().map(|r| r.status().as_u16()) {
        Some(200..=399) => "ok",
        Some(400..=499) => "client_error",
        Some(_) => "server_error",
        None => "unreachable",
    }
}
