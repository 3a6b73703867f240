//! The seams lakegate's logic is tested through: the cloud it provisions in, and the clock.

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::lake_formation::LfGrant;
use crate::naming::CloudIdentity;
use crate::usage::QueryState;

/// A column as the Glue catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub comment: Option<String>,
}

/// A table as the Glue catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub database: String,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub partition_keys: Vec<ColumnInfo>,
}

impl TableInfo {
    /// Every column name, partition keys included (they can be selected like columns).
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .chain(&self.partition_keys)
            .map(|c| c.name.as_str())
    }
}

/// What the catalog says about a requested table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableLookup {
    Found(TableInfo),
    NoSuchDatabase,
    NoSuchTable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    pub path: String,
    pub trust_policy: String,
    pub permissions_boundary_arn: String,
    pub max_session_seconds: i32,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkgroupSpec {
    pub name: String,
    pub output_location: String,
    pub bytes_scanned_cutoff: i64,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub role_arn: String,
    pub session_name: String,
    pub duration_seconds: i32,
    pub session_policy: String,
    pub source_identity: String,
    pub tags: Vec<(String, String)>,
}

/// Temporary credentials of one STS session. `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: OffsetDateTime,
}

impl fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &"[redacted]")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// How a cloud call failed, classified for what the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// Throttling, concurrent modification, a timeout, a 5xx: try again later.
    #[error("temporarily unavailable: {0}")]
    Transient(String),
    /// The broker is not allowed to do this (yet: IAM changes propagate slowly).
    #[error("access denied: {0}")]
    Denied(String),
    /// The thing asked about does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// AWS refused the request as invalid; retrying the same call will not help.
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("{0}")]
    Other(String),
}

impl CloudError {
    /// Whether the same call may succeed later. Denials count: right after CreateRole, IAM and
    /// Lake Formation may not see the role yet (docs/aws.md §4).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Denied(_) | Self::Other(_))
    }
}

/// One Athena query, as `BatchGetQueryExecution` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryExecution {
    pub id: String,
    pub sql: String,
    /// The database unqualified names resolve against, if the query named one.
    pub database: Option<String>,
    pub state: QueryState,
    pub state_change_reason: Option<String>,
    pub bytes_scanned: i64,
    pub engine_ms: i64,
    pub submitted_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
}

/// One page of a finished query's results: the column names, and rows of values (`None` is
/// SQL `NULL`), without the header row Athena puts first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultPage {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<String>,
}

/// A statement the query console runs in a grant's workgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryRun<'a> {
    pub workgroup: &'a str,
    pub sql: &'a str,
    /// The database unqualified names resolve against.
    pub database: Option<&'a str>,
    /// Athena's idempotency token (32 to 128 characters): the same token starts the same
    /// query once. `None` lets the SDK make one up.
    pub client_token: Option<&'a str>,
}

/// Everything lakegate does in AWS. Every method is idempotent: "already done" is success, so
/// any step can be run again after a crash (docs/aws.md §13).
#[async_trait]
pub trait CloudAccess: Send + Sync + 'static {
    /// The account, region and broker principal this client works as.
    fn identity(&self) -> &CloudIdentity;

    /// The table as the Glue catalog describes it.
    async fn describe_table(&self, database: &str, table: &str) -> Result<TableLookup, CloudError>;

    /// The tables of one Glue database, or of every database when `database` is `None`, with
    /// their columns; at most `limit` of them (in the catalog's order), and whether more exist.
    async fn list_tables(
        &self,
        database: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TableInfo>, bool), CloudError>;

    /// Creates the role, or confirms that the role of that name is lakegate's (tagged with the
    /// same request).
    async fn create_role(&self, spec: &RoleSpec) -> Result<(), CloudError>;

    /// Writes (or overwrites) an inline policy of the role.
    async fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        document: &str,
    ) -> Result<(), CloudError>;

    /// Creates the workgroup, or confirms it exists.
    async fn create_workgroup(&self, spec: &WorkgroupSpec) -> Result<(), CloudError>;

    /// Grants every entry; re-granting is harmless.
    async fn grant_lake_formation(&self, grants: &[LfGrant]) -> Result<(), CloudError>;

    /// One STS session of the role.
    async fn assume_role(&self, spec: &SessionSpec) -> Result<SessionCredentials, CloudError>;

    /// Writes the policy that denies every session of the role. `Ok(false)` when the role no
    /// longer exists.
    async fn deny_all_sessions(&self, role: &str) -> Result<bool, CloudError>;

    /// Writes the policy that denies the role's sessions issued before `cutoff` (a new
    /// credentials token supersedes the sessions handed out under the old one).
    async fn deny_sessions_issued_before(
        &self,
        role: &str,
        cutoff: OffsetDateTime,
    ) -> Result<(), CloudError>;

    /// Stops every queued or running query of the workgroup; returns how many were stopped.
    async fn stop_running_queries(&self, workgroup: &str) -> Result<u32, CloudError>;

    /// The ids of the workgroup's queries that are not in `known`, newest first: what the
    /// query monitor has not seen yet. Athena lists newest first, so the listing may stop at
    /// the first known id. A missing workgroup has none.
    async fn new_query_ids(
        &self,
        workgroup: &str,
        known: &HashSet<String>,
    ) -> Result<Vec<String>, CloudError>;

    /// These queries with their details, as the query monitor records them. Ids Athena could
    /// not describe this time are left out.
    async fn describe_queries(&self, ids: &[String]) -> Result<Vec<QueryExecution>, CloudError>;

    /// Sets the workgroup's per-query bytes-scanned cutoff (the budget lowers it as it runs
    /// out). At least Athena's 10 MB minimum.
    async fn set_workgroup_cutoff(&self, workgroup: &str, bytes: i64) -> Result<(), CloudError>;

    /// Deletes the workgroup with its history; a missing workgroup is success.
    async fn delete_workgroup(&self, workgroup: &str) -> Result<(), CloudError>;

    /// Deletes every object under a grant's results prefix (`s3://bucket/prefix/<id>/`), so
    /// query results do not outlive the grant; returns how many. Nothing there, or no bucket,
    /// is success.
    async fn delete_results(&self, results_uri: &str) -> Result<u64, CloudError>;

    /// Revokes exactly these entries; an entry already gone is success.
    async fn revoke_lake_formation(&self, grants: &[LfGrant]) -> Result<(), CloudError>;

    /// Deletes the role's inline policies, then the role; a missing role is success.
    async fn delete_role(&self, role: &str) -> Result<(), CloudError>;

    // The orphan sweep: what exists under lakegate's names, whoever created it.

    /// Names of every IAM role under lakegate's path (`/lakegate/`).
    async fn list_lakegate_roles(&self) -> Result<Vec<String>, CloudError>;

    /// Names of every Athena workgroup whose name starts with `lakegate-`.
    async fn list_lakegate_workgroups(&self) -> Result<Vec<String>, CloudError>;

    /// The Lake Formation permissions `principal_arn` holds, in the form
    /// `revoke_lake_formation` takes (entries of kinds lakegate never grants are left out).
    async fn lake_formation_grants_of(
        &self,
        principal_arn: &str,
    ) -> Result<Vec<LfGrant>, CloudError>;

    /// Athena as the grant's own session, for the query console: the only way anything runs
    /// a person's statement. The broker's own credentials cannot start a query at all (no
    /// method above does), so no code path can run one as the broker.
    fn athena_as<'a>(&'a self, session: &SessionCredentials) -> Box<dyn GrantAthena + 'a>;
}

/// Athena as one grant's role session. Lake Formation judges every call by the grant's role,
/// and AWS's own records (CloudTrail, the workgroup's history) name the person's session.
#[async_trait]
pub trait GrantAthena: Send + Sync {
    /// Starts the statement in the workgroup; returns the query execution id.
    async fn start_query(&self, run: &QueryRun<'_>) -> Result<String, CloudError>;

    /// One query as it is now. `NotFound` when Athena does not know the id.
    async fn query_execution(&self, id: &str) -> Result<QueryExecution, CloudError>;

    /// One page of a finished query's results: the first when `from` is `None`, otherwise the
    /// page a previous answer's `next` names. At most `max_rows` rows (Athena: 1000).
    async fn query_results(
        &self,
        id: &str,
        from: Option<&str>,
        max_rows: i32,
    ) -> Result<ResultPage, CloudError>;

    /// Stops the query; a query already finished is left as it is.
    async fn stop_query(&self, id: &str) -> Result<(), CloudError>;
}

/// The time, behind a trait so tests can move it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
