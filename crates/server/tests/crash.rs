//! Crash safety against moto: a worker that dies right after any provisioning or teardown step
//! took effect in AWS (before it could record that) leaves work that the next worker completes
//! or cleans up, with nothing left behind. The "crash" is a wrapper around the real AWS adapter
//! that never returns from the chosen call, and a worker pass that is abandoned mid-flight.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use lakegate_app::requests::{self, SubmitInput};
use lakegate_app::worker::work_once;
use lakegate_app::{Services, Settings};
use lakegate_aws::AwsCloudAccess;
use lakegate_domain::lake_formation::LfGrant;
use lakegate_domain::naming::CloudIdentity;
use lakegate_domain::ports::{
    CloudAccess, CloudError, GrantAthena, QueryExecution, RoleSpec, SessionCredentials,
    SessionSpec, TableInfo, TableLookup, WorkgroupSpec,
};
use lakegate_domain::{EndState, Principal, RequestId, RequestStatus};
use lakegate_store::requests::Decision;
use lakegate_testkit::FixedClock;
use lakegate_testkit::aws_proxy::{AwsProxy, Fault};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

use crate::aws_support::{leftovers, seed_catalog};

/// Delegates to the real adapter, but hangs forever right after `op` succeeds (once).
struct DiesAfter {
    inner: Arc<AwsCloudAccess>,
    op: &'static str,
    died: AtomicBool,
}

impl DiesAfter {
    async fn after<T>(
        &self,
        op: &'static str,
        result: Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        if op == self.op && result.is_ok() && !self.died.swap(true, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        result
    }
}

#[async_trait]
impl CloudAccess for DiesAfter {
    fn identity(&self) -> &CloudIdentity {
        self.inner.identity()
    }
    async fn describe_table(&self, d: &str, t: &str) -> Result<TableLookup, CloudError> {
        self.inner.describe_table(d, t).await
    }
    async fn list_tables(
        &self,
        d: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TableInfo>, bool), CloudError> {
        self.inner.list_tables(d, limit).await
    }
    async fn create_role(&self, s: &RoleSpec) -> Result<(), CloudError> {
        let r = self.inner.create_role(s).await;
        self.after("create_role", r).await
    }
    async fn put_role_policy(&self, r: &str, n: &str, d: &str) -> Result<(), CloudError> {
        let res = self.inner.put_role_policy(r, n, d).await;
        self.after("put_role_policy", res).await
    }
    async fn create_workgroup(&self, s: &WorkgroupSpec) -> Result<(), CloudError> {
        let r = self.inner.create_workgroup(s).await;
        self.after("create_workgroup", r).await
    }
    async fn grant_lake_formation(&self, g: &[LfGrant]) -> Result<(), CloudError> {
        let r = self.inner.grant_lake_formation(g).await;
        self.after("grant_lake_formation", r).await
    }
    async fn assume_role(&self, s: &SessionSpec) -> Result<SessionCredentials, CloudError> {
        let r = self.inner.assume_role(s).await;
        self.after("assume_role", r).await
    }
    async fn deny_sessions_issued_before(
        &self,
        r: &str,
        cutoff: time::OffsetDateTime,
    ) -> Result<(), CloudError> {
        let res = self.inner.deny_sessions_issued_before(r, cutoff).await;
        self.after("deny_sessions_issued_before", res).await
    }

    async fn deny_all_sessions(&self, r: &str) -> Result<bool, CloudError> {
        let res = self.inner.deny_all_sessions(r).await;
        self.after("deny_all_sessions", res).await
    }
    async fn stop_running_queries(&self, w: &str) -> Result<u32, CloudError> {
        let r = self.inner.stop_running_queries(w).await;
        self.after("stop_running_queries", r).await
    }
    async fn new_query_ids(
        &self,
        w: &str,
        known: &HashSet<String>,
    ) -> Result<Vec<String>, CloudError> {
        let r = self.inner.new_query_ids(w, known).await;
        self.after("new_query_ids", r).await
    }
    async fn describe_queries(&self, ids: &[String]) -> Result<Vec<QueryExecution>, CloudError> {
        let r = self.inner.describe_queries(ids).await;
        self.after("describe_queries", r).await
    }
    async fn set_workgroup_cutoff(&self, w: &str, bytes: i64) -> Result<(), CloudError> {
        let r = self.inner.set_workgroup_cutoff(w, bytes).await;
        self.after("set_workgroup_cutoff", r).await
    }
    async fn delete_workgroup(&self, w: &str) -> Result<(), CloudError> {
        let r = self.inner.delete_workgroup(w).await;
        self.after("delete_workgroup", r).await
    }
    async fn delete_results(&self, uri: &str) -> Result<u64, CloudError> {
        let r = self.inner.delete_results(uri).await;
        self.after("delete_results", r).await
    }
    async fn revoke_lake_formation(&self, g: &[LfGrant]) -> Result<(), CloudError> {
        let r = self.inner.revoke_lake_formation(g).await;
        self.after("revoke_lake_formation", r).await
    }
    async fn delete_role(&self, r: &str) -> Result<(), CloudError> {
        let res = self.inner.delete_role(r).await;
        self.after("delete_role", res).await
    }
    // The sweep's listings and the console's session are not steps of provisioning or teardown:
    // passed straight through.
    async fn list_lakegate_roles(&self) -> Result<Vec<String>, CloudError> {
        self.inner.list_lakegate_roles().await
    }
    async fn list_lakegate_workgroups(&self) -> Result<Vec<String>, CloudError> {
        self.inner.list_lakegate_workgroups().await
    }
    async fn lake_formation_grants_of(&self, p: &str) -> Result<Vec<LfGrant>, CloudError> {
        self.inner.lake_formation_grants_of(p).await
    }
    fn athena_as<'a>(&'a self, s: &SessionCredentials) -> Box<dyn GrantAthena + 'a> {
        self.inner.athena_as(s)
    }
}

const PROVISIONING: [&str; 5] = [
    "create_role",
    "put_role_policy",
    "create_workgroup",
    "grant_lake_formation",
    "assume_role",
];
const TEARDOWN: [&str; 6] = [
    "deny_all_sessions",
    "stop_running_queries",
    "delete_workgroup",
    "delete_results",
    "revoke_lake_formation",
    "delete_role",
];

/// The test proxy in front of moto.
async fn proxy() -> AwsProxy {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    AwsProxy::start(&moto).await.unwrap()
}

struct World {
    pool: PgPool,
    cloud: Arc<AwsCloudAccess>,
    clock: Arc<FixedClock>,
    db: String,
}

fn settings() -> Settings {
    Settings::for_tests()
}

impl World {
    async fn new(pool: PgPool) -> Self {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::with(pool, &conf, "crash").await
    }

    async fn with(pool: PgPool, conf: &aws_config::SdkConfig, catalog: &str) -> Self {
        let cloud = Arc::new(AwsCloudAccess::from_conf(conf, None).await.unwrap());
        Self {
            pool,
            cloud,
            clock: Arc::new(FixedClock::at(OffsetDateTime::now_utc())),
            db: seed_catalog(catalog).await,
        }
    }

    /// A world whose AWS calls go through the test proxy in front of moto, with the SDK's own
    /// retries off, so injected faults reach lakegate's worker.
    async fn via_proxy(pool: PgPool) -> (Self, AwsProxy) {
        let proxy = proxy().await;
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(proxy.url())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        (Self::with(pool, &conf, "faults").await, proxy)
    }

    /// A world whose AWS calls go through the test proxy, configured as `lakegate serve`
    /// configures them (`run::aws_config`): the SDK's own retries on.
    async fn as_served(pool: PgPool) -> (Self, AwsProxy) {
        let proxy = proxy().await;
        let conf = lakegate_server::run::aws_config(Some(proxy.url())).await;
        (Self::with(pool, &conf, "served").await, proxy)
    }

    /// Worker passes, each after any retry delay has passed, until the request is `want`.
    /// Returns how many passes it took.
    async fn passes_until(&self, id: RequestId, want: RequestStatus) -> u32 {
        let mut passes = 0;
        while self.status(id).await != want {
            passes += 1;
            assert!(passes <= 10, "not {want} after {passes} worker passes");
            self.clock.advance(Duration::minutes(6));
            work_once(&self.real(), "w").await.unwrap();
        }
        passes
    }

    fn services(&self, cloud: Arc<dyn CloudAccess>) -> Services {
        Services::new(self.pool.clone(), cloud, self.clock.clone(), settings())
    }

    fn real(&self) -> Services {
        self.services(self.cloud.clone())
    }

    fn dying(&self, op: &'static str) -> Services {
        self.services(Arc::new(DiesAfter {
            inner: self.cloud.clone(),
            op,
            died: AtomicBool::new(false),
        }))
    }

    async fn approved_request(&self) -> RequestId {
        let svc = self.real();
        let alice = Principal::new("alice", "alice@example.com", None, []).unwrap();
        let bob =
            Principal::new("bob", "bob@example.com", None, ["data-owners".to_owned()]).unwrap();
        let resources = format!("{}.orders", self.db);
        let (id, _) = requests::submit(
            &svc,
            &alice,
            SubmitInput {
                resources: &resources,
                duration: "1h",
                reason: "crash safety test",
                break_glass: false,
            },
        )
        .await
        .unwrap();
        requests::decide(&svc, &bob, id, Decision::Approve, None)
            .await
            .unwrap();
        id
    }

    /// A worker pass that dies inside the chosen call: abandoned, its lease still held.
    async fn crash_during(&self, op: &'static str) {
        let svc = self.dying(op);
        let pass = tokio::time::timeout(StdDuration::from_secs(5), work_once(&svc, "doomed")).await;
        assert!(pass.is_err(), "the worker was expected to die in {op}");
    }

    /// Time passes beyond the dead worker's lease; another replica takes over.
    async fn recover(&self) -> lakegate_app::worker::WorkReport {
        self.clock.advance(Duration::minutes(6));
        work_once(&self.real(), "survivor").await.unwrap()
    }

    async fn status(&self, id: RequestId) -> RequestStatus {
        let mut conn = self.pool.acquire().await.unwrap();
        lakegate_store::requests::get(&mut conn, id)
            .await
            .unwrap()
            .status
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn provisioning_interrupted_after_any_step_is_completed(pool: PgPool) {
    let w = World::new(pool).await;
    for op in PROVISIONING {
        let id = w.approved_request().await;
        w.crash_during(op).await;
        assert_eq!(w.status(id).await, RequestStatus::Approved, "{op}");
        let report = w.recover().await;
        assert_eq!(report.activated, [id], "after a crash in {op}");
        assert_eq!(w.status(id).await, RequestStatus::Active, "{op}");
        // The role, the workgroup, DESCRIBE on `default` and on the database, SELECT on the table.
        assert_eq!(
            leftovers(&id.to_string()).await.len(),
            2 + 3,
            "after a crash in {op}"
        );

        // And it tears down cleanly afterwards.
        let alice = Principal::new("alice", "alice@example.com", None, []).unwrap();
        requests::revoke(&w.real(), &alice, id, None).await.unwrap();
        work_once(&w.real(), "survivor").await.unwrap();
        assert_eq!(w.status(id).await, RequestStatus::Revoked, "{op}");
        assert_eq!(
            leftovers(&id.to_string()).await,
            Vec::<String>::new(),
            "after a crash in {op}"
        );
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn provisioning_interrupted_and_then_revoked_leaves_nothing(pool: PgPool) {
    let w = World::new(pool).await;
    let alice = Principal::new("alice", "alice@example.com", None, []).unwrap();
    for op in PROVISIONING {
        let id = w.approved_request().await;
        w.crash_during(op).await;
        // The requester gives up while provisioning is stuck.
        requests::revoke(&w.real(), &alice, id, Some("stuck"))
            .await
            .unwrap();
        let report = w.recover().await;
        assert_eq!(
            report.ended,
            [(id, EndState::Revoked)],
            "after a crash in {op}"
        );
        assert_eq!(
            leftovers(&id.to_string()).await,
            Vec::<String>::new(),
            "after a crash in {op}"
        );
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn teardown_interrupted_after_any_step_is_completed(pool: PgPool) {
    let w = World::new(pool).await;
    let alice = Principal::new("alice", "alice@example.com", None, []).unwrap();
    for op in TEARDOWN {
        let id = w.approved_request().await;
        assert_eq!(work_once(&w.real(), "w").await.unwrap().activated, [id]);
        requests::revoke(&w.real(), &alice, id, None).await.unwrap();
        w.crash_during(op).await;
        assert_eq!(w.status(id).await, RequestStatus::Revoking, "{op}");
        let report = w.recover().await;
        assert_eq!(
            report.ended,
            [(id, EndState::Revoked)],
            "after a crash in {op}"
        );
        assert_eq!(
            leftovers(&id.to_string()).await,
            Vec::<String>::new(),
            "after a crash in {op}"
        );
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn expiry_interrupted_after_any_step_is_completed(pool: PgPool) {
    let w = World::new(pool).await;
    for op in TEARDOWN {
        let id = w.approved_request().await;
        assert_eq!(work_once(&w.real(), "w").await.unwrap().activated, [id]);
        w.clock.advance(Duration::hours(1));
        w.crash_during(op).await;
        let report = w.recover().await;
        assert_eq!(
            report.ended,
            [(id, EndState::Expired)],
            "after a crash in {op}"
        );
        assert_eq!(
            leftovers(&id.to_string()).await,
            Vec::<String>::new(),
            "after a crash in {op}"
        );
    }
}

/// Faults AWS really produces, injected by the proxy: each failed step is retried on a later
/// pass and, being idempotent, completes; nothing is created twice and nothing is left.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn aws_faults_are_retried_until_provisioning_and_revoke_complete(pool: PgPool) {
    let (w, proxy) = World::via_proxy(pool).await;
    proxy.fail("CreateRole", 1, Fault::throttling("Throttling"));
    proxy.fail("BatchGrantPermissions", 1, Fault::concurrent_modification());
    // The propagation gate: STS does not let the new role be assumed yet, twice.
    proxy.fail("AssumeRole", 2, Fault::access_denied());
    let id = w.approved_request().await;
    // One pass per fault, then the pass that finishes.
    assert_eq!(w.passes_until(id, RequestStatus::Active).await, 5);
    assert_eq!(proxy.calls("CreateRole"), 2);
    assert_eq!(proxy.calls("AssumeRole"), 3);
    assert_eq!(leftovers(&id.to_string()).await.len(), 2 + 3);

    proxy.fail(
        "DeleteWorkGroup",
        1,
        Fault::throttling("TooManyRequestsException"),
    );
    // Forwarded (so really revoked), but answered as if nothing was granted.
    proxy.fail("BatchRevokePermissions", 1, Fault::no_permissions_revoked());
    let alice = Principal::new("alice", "alice@example.com", None, []).unwrap();
    requests::revoke(&w.real(), &alice, id, None).await.unwrap();
    assert_eq!(w.passes_until(id, RequestStatus::Revoked).await, 2);
    assert_eq!(leftovers(&id.to_string()).await, Vec::<String>::new());
}

/// As served, throttled calls are retried by the SDK (adaptive retries, docs/aws.md §22) and, if
/// the limiter's pauses outlast a call's time budget, by the worker: the grant is provisioned and
/// removed all the same, each resource once.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn throttled_calls_are_retried_until_the_grant_is_provisioned_and_removed(pool: PgPool) {
    let (w, proxy) = World::as_served(pool).await;
    proxy.fail("CreateRole", 2, Fault::throttling("Throttling"));
    proxy.fail(
        "CreateWorkGroup",
        1,
        Fault::throttling("TooManyRequestsException"),
    );
    let id = w.approved_request().await;
    let passes = w.passes_until(id, RequestStatus::Active).await;
    eprintln!("active after {passes} worker pass(es)");
    assert!(
        proxy.calls("CreateRole") >= 3,
        "the throttled calls were retried"
    );
    assert!(proxy.calls("CreateWorkGroup") >= 2);

    proxy.fail("DeleteRole", 2, Fault::throttling("Throttling"));
    let alice = Principal::new("alice", "alice@example.com", None, []).unwrap();
    requests::revoke(&w.real(), &alice, id, None).await.unwrap();
    w.passes_until(id, RequestStatus::Revoked).await;
    assert_eq!(leftovers(&id.to_string()).await, Vec::<String>::new());
}
