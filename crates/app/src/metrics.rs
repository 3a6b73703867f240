//! The names of the metrics lakegate records (through the `metrics` facade; the binary installs
//! the Prometheus exporter). One place, so the docs, the exporter's buckets and the tests agree.

/// Requests per status (gauge, read from the database when scraped).
pub const REQUESTS: &str = "lakegate_requests";
/// HTTP requests answered, by matched route and status code.
pub const HTTP_REQUESTS: &str = "lakegate_http_requests_total";
/// How long HTTP requests took, by matched route (histogram, seconds).
pub const HTTP_DURATION: &str = "lakegate_http_request_duration_seconds";
/// Sessions handed out by the credentials URL, `source` = `cache` or `sts`.
pub const CREDENTIALS_SERVED: &str = "lakegate_credentials_served_total";
/// Calls to AWS, by service, operation and outcome.
pub const AWS_CALLS: &str = "lakegate_aws_calls_total";
/// From a grant's expiry to its sessions denied (`step` = `deny_sessions`) and to its
/// teardown done (`step` = `done`) (histogram, seconds).
pub const REAPER_LAG: &str = "lakegate_reaper_lag_seconds";
/// How long provisioning a grant took in the worker (histogram, seconds).
pub const PROVISION_DURATION: &str = "lakegate_provision_duration_seconds";
/// Of a provisioning pass over every step, the time not spent waiting for AWS calls: reading
/// and writing the database, the audit record, scheduling (histogram, seconds).
pub const PROVISION_OVERHEAD: &str = "lakegate_provision_overhead_seconds";
/// Notification deliveries, by `outcome`: `delivered`, `retrying`, `given_up`.
pub const NOTIFICATIONS: &str = "lakegate_notifications_total";
/// Provisioning and teardown steps that failed (and will be retried), by step.
pub const STEP_FAILURES: &str = "lakegate_worker_step_failures_total";
