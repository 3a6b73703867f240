//! lakegate's verbs, shared by the web handlers and the background worker: submit, approve,
//! deny, cancel, revoke, issue a credentials token, mint credentials, provision and tear down.
//! Each state change and its audit row are written in one transaction; AWS is never called
//! while a transaction is open.
#![forbid(unsafe_code)]

pub mod audit;
pub mod catalog;
pub mod console;
pub mod credentials;
mod csv;
pub mod error;
pub mod extensions;
pub mod health;
pub mod live;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod people;
pub mod requests;
pub mod sessions;
pub mod sweep;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod tokens;
pub mod upkeep;
pub mod worker;

use std::sync::Arc;

use lakegate_domain::RequestId;
use lakegate_domain::audit::AuditAction;
use lakegate_domain::policy_file::PolicyFile;
use lakegate_domain::ports::{Clock, CloudAccess};
use lakegate_domain::target::ResultsLocation;
use lakegate_store::audit::{Actor, NewAuditEvent};
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

pub use error::AppError;

/// Deployment settings the verbs need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The approval policy: the policy file, or the simple settings expressed as one.
    pub policy: PolicyFile,
    pub results: ResultsLocation,
    pub permissions_boundary_arn: String,
    pub worker: WorkerSettings,
    pub monitor: MonitorSettings,
    pub requests: RequestSettings,
    /// Where notifications go.
    pub notify: notify::NotifySettings,
}

/// Limits on undecided requests, so nobody can bury the approvers' queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSettings {
    /// Pending requests one person may have at a time; 0 for no limit.
    pub max_pending_per_person: u32,
    /// A request nobody decides within this long lapses.
    pub pending_ttl: Duration,
}

impl Default for RequestSettings {
    fn default() -> Self {
        Self {
            max_pending_per_person: 20,
            pending_ttl: Duration::days(7),
        }
    }
}

/// How the query monitor looks at grants and prices what they scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSettings {
    /// How often every active grant's queries are looked at.
    pub interval: Duration,
    /// Athena's price per TB scanned (it differs by Region).
    pub price: lakegate_domain::usage::Price,
    /// When a query is flagged as a large scan or part of a burst.
    pub flags: lakegate_domain::usage::FlagRules,
    /// More queries than this submitted within a minute revoke the grant ("query flood");
    /// 0 for no limit.
    pub flood_per_minute: u32,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            interval: Duration::seconds(30),
            price: lakegate_domain::usage::Price::default(),
            flags: lakegate_domain::usage::FlagRules::default(),
            flood_per_minute: 600,
        }
    }
}

/// How the background worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claimed request is reserved for one worker without a sign of life: the
    /// worker renews it every quarter of this while it works, so a replica that dies lets go
    /// of its work within one lease (docs/decisions/0020-short-leases-with-a-heartbeat.md).
    pub lease: Duration,
    /// Longest sleep between two looks at the database, even when nothing seems due.
    pub max_idle: Duration,
    /// First retry delay after a failed step; doubles each time.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_cap: Duration,
    /// Provisioning attempts before the request is marked failed and cleaned up.
    pub max_provision_attempts: i32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease: Duration::seconds(4),
            max_idle: Duration::seconds(30),
            retry_base: Duration::seconds(2),
            retry_cap: Duration::minutes(5),
            max_provision_attempts: 12,
        }
    }
}

/// Everything a verb needs. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub db: PgPool,
    pub cloud: Arc<dyn CloudAccess>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    /// Wakes the worker when new work appears (an approval, a revoke).
    pub wake: Arc<Notify>,
    pub sessions: credentials::SessionCache,
    /// Sends notifications from the outbox to webhooks and Slack.
    pub sender: Arc<dyn notify::Sender>,
    /// Recent listings of the Glue catalog, for the request form's picker.
    pub catalog: catalog::ListingCache,
    /// The active grants, in memory, for the credentials URL (kept fresh by [`live::run`]).
    pub live: live::LiveGrants,
}

impl Services {
    pub fn new(
        db: PgPool,
        cloud: Arc<dyn CloudAccess>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            db,
            cloud,
            clock,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
            sessions: credentials::SessionCache::default(),
            sender: Arc::new(notify::NoSender),
            catalog: catalog::ListingCache::default(),
            live: live::LiveGrants::default(),
        }
    }

    /// This replica changed grant `id` (revoked, a new token, a new expiry): its cached
    /// sessions and its live view are dropped, so the next fetch reads what is true now.
    pub fn forget_grant(&self, id: RequestId) {
        self.sessions.forget(id);
        self.live.forget(id);
    }

    /// Replaces the sender of notifications (the default sends nothing: with no targets
    /// configured, there is nothing to send).
    pub fn with_sender(mut self, sender: Arc<dyn notify::Sender>) -> Self {
        self.sender = sender;
        self
    }
}

/// Runs `work` in one transaction: committed when it succeeds, rolled back at once when it
/// fails. A transaction that is only dropped rolls back when its connection is next used, and
/// keeps its row locks until then: the worker's `skip locked` claims would pass the request by.
pub(crate) async fn in_tx<T>(
    svc: &Services,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let mut tx = svc.db.begin().await?;
    match work(&mut tx).await {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rolling back failed; the connection is dropped");
            }
            Err(e)
        }
    }
}

/// Appends an audit event in the caller's transaction, next to the change it records, and
/// the notification it causes, if any (so neither is ever committed without the other).
/// `actor: None` is lakegate itself (the worker, the credentials URL).
pub(crate) async fn record(
    conn: &mut PgConnection,
    at: OffsetDateTime,
    request: Option<RequestId>,
    actor: Option<&Actor>,
    action: AuditAction,
    detail: serde_json::Value,
) -> Result<(), AppError> {
    let event = lakegate_store::audit::append(
        &mut *conn,
        NewAuditEvent {
            at,
            request,
            actor,
            action,
            detail: detail.clone(),
        },
    )
    .await?;
    notify::enqueue(conn, event, action, &detail, request, at).await
}
