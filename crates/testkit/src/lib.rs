//! Test helpers shared by lakegate's crates (dev-dependency only): a settable clock and
//! `FakeCloud`, an in-memory stand-in for AWS that records every call and can be told to fail.
//! Fakes serve unit tests of the app layer; the AWS adapter itself is tested against moto, with
//! [`aws_proxy::AwsProxy`] in front where moto falls short.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    reason = "test-only crate: a poisoned lock means a test has already panicked"
)]

pub mod aws_proxy;
pub mod peers;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lakegate_domain::lake_formation::LfGrant;
use lakegate_domain::naming::CloudIdentity;
use lakegate_domain::ports::{
    Clock, CloudAccess, CloudError, ColumnInfo, GrantAthena, QueryExecution, QueryRun, ResultPage,
    RoleSpec, SessionCredentials, SessionSpec, TableInfo, TableLookup, WorkgroupSpec,
};
use lakegate_domain::usage::QueryState;
use time::{Duration, OffsetDateTime};

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(t: OffsetDateTime) -> Self {
        Self(Mutex::new(t))
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += by;
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.0.lock().unwrap() = to;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// The state FakeCloud holds, open for assertions.
#[derive(Debug, Default, Clone)]
pub struct FakeState {
    pub roles: BTreeMap<String, RoleSpec>,
    /// role → policy name → document
    pub role_policies: BTreeMap<String, BTreeMap<String, String>>,
    pub workgroups: BTreeMap<String, WorkgroupSpec>,
    pub grants: Vec<LfGrant>,
    pub sessions: Vec<SessionSpec>,
    /// workgroup → ids of running queries
    pub running_queries: BTreeMap<String, BTreeSet<String>>,
    /// workgroup → queries with their details, as a test scripted them
    pub queries: BTreeMap<String, Vec<QueryExecution>>,
    /// Every call, by name, in order.
    pub calls: Vec<String>,
    /// Object keys (`s3://bucket/key`) of query results, as a test scripted them.
    pub result_objects: BTreeSet<String>,
    /// Access key id → the role of every session `assume_role` handed out.
    pub session_roles: BTreeMap<String, String>,
    /// Every statement the console started, in order.
    pub console_runs: Vec<ConsoleRun>,
    /// Results waiting for the next statement started (first in, first out, as moto does).
    pub canned_results: Vec<ResultPage>,
    /// Query id → its results.
    pub results: BTreeMap<String, ResultPage>,
    /// Client request token → the query it started, with its SQL (Athena's idempotency).
    pub client_tokens: BTreeMap<String, (String, String)>,
    /// workgroup → a flood of failed queries, made up when asked for (see [`FakeCloud::flood`]).
    pub floods: BTreeMap<String, Flood>,
}

/// `count` failed queries of `sql_bytes` of SQL each, all submitted at `at`: their details are
/// made up when described, so a flood of any size costs no memory until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flood {
    pub count: usize,
    pub sql_bytes: usize,
    pub at: OffsetDateTime,
}

impl FakeState {
    /// The ids of a workgroup's queries, oldest first: running, scripted, then any flood.
    fn query_ids_of(&self, workgroup: &str) -> Vec<String> {
        let running = self.running_queries.get(workgroup).into_iter().flatten();
        let scripted = self
            .queries
            .get(workgroup)
            .into_iter()
            .flatten()
            .map(|q| &q.id);
        let flood = self.floods.get(workgroup).map_or(0, |f| f.count);
        running
            .chain(scripted)
            .cloned()
            .chain((0..flood).map(|n| format!("{workgroup}-flood-{n:06}")))
            .collect()
    }

    /// One query's details, as Athena describes it.
    fn describe(&self, id: &str) -> Option<QueryExecution> {
        if self.running_queries.values().any(|ids| ids.contains(id)) {
            return Some(QueryExecution {
                id: id.to_owned(),
                sql: String::new(),
                database: None,
                state: QueryState::Running,
                state_change_reason: None,
                bytes_scanned: 0,
                engine_ms: 0,
                submitted_at: None,
                completed_at: None,
            });
        }
        if let Some(q) = self.queries.values().flatten().find(|q| q.id == id) {
            return Some(q.clone());
        }
        let (workgroup, _) = id.rsplit_once("-flood-")?;
        let flood = self.floods.get(workgroup)?;
        let filler = flood.sql_bytes.saturating_sub(40);
        Some(QueryExecution {
            id: id.to_owned(),
            sql: format!("SELECT 1 /* {} */ FROM nowhere", "x".repeat(filler)),
            database: None,
            state: QueryState::Failed,
            state_change_reason: Some(
                "TABLE_NOT_FOUND: line 1:8: Table 'nowhere' does not exist".into(),
            ),
            bytes_scanned: 0,
            engine_ms: 10,
            submitted_at: Some(flood.at),
            completed_at: Some(flood.at),
        })
    }
}

/// A statement started through `start_query`, with the session that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleRun {
    pub query_id: String,
    pub access_key_id: String,
    pub workgroup: String,
    pub sql: String,
    pub database: Option<String>,
}

/// In-memory AWS. Tables are seeded with `with_table`; failures are scripted with `fail_next`.
pub struct FakeCloud {
    identity: CloudIdentity,
    tables: Mutex<HashMap<(String, String), TableInfo>>,
    state: Mutex<FakeState>,
    /// operation name → errors to return on its next calls
    failures: Mutex<HashMap<&'static str, Vec<CloudError>>>,
    /// What "now" is for session expirations (STS answers now + duration).
    clock: Option<Arc<dyn Clock>>,
}

impl Default for FakeCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCloud {
    pub fn new() -> Self {
        Self {
            identity: CloudIdentity {
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                broker_principal_arn: "arn:aws:iam::123456789012:user/lakegate-broker".into(),
            },
            tables: Mutex::new(HashMap::new()),
            state: Mutex::new(FakeState::default()),
            failures: Mutex::new(HashMap::new()),
            clock: None,
        }
    }

    /// Session expirations follow this clock instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The sample catalog the README describes.
    pub fn with_sample_catalog() -> Self {
        Self::new()
            .with_table(
                "sales",
                "orders",
                &["order_id", "customer_id", "amount", "status"],
                &["dt"],
            )
            .with_table(
                "sales",
                "customers",
                &["customer_id", "name", "email", "country"],
                &[],
            )
            .with_table(
                "hr",
                "employees",
                &["employee_id", "name", "department", "salary", "national_id"],
                &[],
            )
    }

    /// The table gains a column (as an `ALTER TABLE … ADD COLUMNS` would), after the fact.
    pub fn add_column(&self, db: &str, table: &str, column: &str) {
        let mut tables = self.tables.lock().unwrap();
        let t = tables
            .get_mut(&(db.to_owned(), table.to_owned()))
            .unwrap_or_else(|| panic!("no table {db}.{table} in the fake catalog"));
        t.columns.push(ColumnInfo {
            name: column.to_owned(),
            data_type: "string".into(),
            comment: None,
        });
    }

    pub fn with_table(
        mut self,
        db: &str,
        table: &str,
        columns: &[&str],
        partitions: &[&str],
    ) -> Self {
        let col = |n: &&str| ColumnInfo {
            name: (*n).to_owned(),
            data_type: "string".into(),
            comment: None,
        };
        self.tables.get_mut().unwrap().insert(
            (db.to_owned(), table.to_owned()),
            TableInfo {
                database: db.to_owned(),
                name: table.to_owned(),
                columns: columns.iter().map(col).collect(),
                partition_keys: partitions.iter().map(col).collect(),
            },
        );
        self
    }

    /// The next call of `operation` fails with `error` (queue several by calling repeatedly).
    pub fn fail_next(&self, operation: &'static str, error: CloudError) {
        self.failures
            .lock()
            .unwrap()
            .entry(operation)
            .or_default()
            .push(error);
    }

    pub fn state(&self) -> FakeState {
        self.state.lock().unwrap().clone()
    }

    /// Marks a query as running in a workgroup.
    pub fn start_query(&self, workgroup: &str, query_id: &str) {
        self.state
            .lock()
            .unwrap()
            .running_queries
            .entry(workgroup.to_owned())
            .or_default()
            .insert(query_id.to_owned());
    }

    /// `count` failed queries of `sql_bytes` of SQL each appear in the workgroup, as from a
    /// grant holder firing them from the CLI.
    pub fn flood(&self, workgroup: &str, count: usize, sql_bytes: usize, at: OffsetDateTime) {
        self.state.lock().unwrap().floods.insert(
            workgroup.to_owned(),
            Flood {
                count,
                sql_bytes,
                at,
            },
        );
    }

    /// Sets what Athena reports about a workgroup's queries (replacing what was set before).
    pub fn set_queries(&self, workgroup: &str, queries: Vec<QueryExecution>) {
        self.state
            .lock()
            .unwrap()
            .queries
            .insert(workgroup.to_owned(), queries);
    }

    /// The next statement started gets these results (queue several by calling repeatedly).
    pub fn queue_results(&self, columns: &[&str], rows: &[&[Option<&str>]]) {
        self.state.lock().unwrap().canned_results.push(ResultPage {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(ToOwned::to_owned)).collect())
                .collect(),
            next: None,
        });
    }

    /// Moves a query (started by the console or scripted) to `state` with `bytes` scanned.
    pub fn set_query_state(&self, id: &str, state: QueryState, bytes: i64) {
        let mut s = self.state.lock().unwrap();
        for q in s.queries.values_mut().flatten() {
            if q.id == id {
                q.state = state;
                q.bytes_scanned = bytes;
            }
        }
    }

    /// Like [`Self::session_role`], and the session's role must be the one of `workgroup`'s
    /// grant (lakegate names both `lakegate-<request>`): a grant's session cannot reach another
    /// grant's workgroup.
    fn session_for(&self, session: &SessionCredentials, workgroup: &str) -> Result<(), CloudError> {
        let role = self.session_role(session)?;
        if role == workgroup {
            Ok(())
        } else {
            Err(CloudError::Denied(format!(
                "AccessDeniedException: {role} may not use workgroup {workgroup}"
            )))
        }
    }

    /// The workgroup of a query this fake knows.
    fn workgroup_of(&self, id: &str) -> Result<String, CloudError> {
        let s = self.state.lock().unwrap();
        s.queries
            .iter()
            .find(|(_, qs)| qs.iter().any(|q| q.id == id))
            .map(|(wg, _)| wg.clone())
            .ok_or_else(|| CloudError::NotFound(format!("query {id}")))
    }

    /// The role of a session this fake handed out; a key it never issued (the broker's own,
    /// or made up) is refused like AWS refuses an unknown key.
    fn session_role(&self, session: &SessionCredentials) -> Result<String, CloudError> {
        let s = self.state.lock().unwrap();
        let role = s
            .session_roles
            .get(&session.access_key_id)
            .cloned()
            .ok_or_else(|| {
                CloudError::Denied(format!(
                    "UnrecognizedClientException: {} is not a session of a lakegate role",
                    session.access_key_id
                ))
            })?;
        let revoked = s
            .role_policies
            .get(&role)
            .is_some_and(|p| p.contains_key(lakegate_domain::naming::REVOKE_POLICY_NAME));
        if revoked || !s.roles.contains_key(&role) {
            return Err(CloudError::Denied(format!(
                "AccessDeniedException: sessions of {role} are denied"
            )));
        }
        Ok(role)
    }

    /// Whether anything of this role or workgroup is left.
    pub fn leftovers(&self, role: &str, workgroup: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let mut left = Vec::new();
        if s.roles.contains_key(role) {
            left.push(format!("role {role}"));
        }
        if s.role_policies.get(role).is_some_and(|p| !p.is_empty()) {
            left.push(format!("policies of {role}"));
        }
        if s.workgroups.contains_key(workgroup) {
            left.push(format!("workgroup {workgroup}"));
        }
        let arn_suffix = format!("/{role}");
        for g in &s.grants {
            if g.principal_arn.ends_with(&arn_suffix) {
                left.push(format!("grant {}", g.id));
            }
        }
        left
    }

    fn enter(&self, operation: &'static str) -> Result<(), CloudError> {
        self.state.lock().unwrap().calls.push(operation.to_owned());
        let mut failures = self.failures.lock().unwrap();
        match failures.get_mut(operation) {
            Some(queue) if !queue.is_empty() => Err(queue.remove(0)),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl CloudAccess for FakeCloud {
    fn identity(&self) -> &CloudIdentity {
        &self.identity
    }

    async fn describe_table(&self, database: &str, table: &str) -> Result<TableLookup, CloudError> {
        self.enter("describe_table")?;
        let tables = self.tables.lock().unwrap();
        if let Some(t) = tables.get(&(database.to_owned(), table.to_owned())) {
            return Ok(TableLookup::Found(t.clone()));
        }
        if tables.keys().any(|(db, _)| db == database) {
            Ok(TableLookup::NoSuchTable)
        } else {
            Ok(TableLookup::NoSuchDatabase)
        }
    }

    async fn list_tables(
        &self,
        database: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TableInfo>, bool), CloudError> {
        self.enter("list_tables")?;
        let tables = self.tables.lock().unwrap();
        let mut all: Vec<TableInfo> = tables
            .values()
            .filter(|t| database.is_none_or(|d| t.database == d))
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.database, &a.name).cmp(&(&b.database, &b.name)));
        let more = all.len() > limit;
        all.truncate(limit);
        Ok((all, more))
    }

    async fn create_role(&self, spec: &RoleSpec) -> Result<(), CloudError> {
        self.enter("create_role")?;
        self.state
            .lock()
            .unwrap()
            .roles
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        document: &str,
    ) -> Result<(), CloudError> {
        self.enter("put_role_policy")?;
        let mut s = self.state.lock().unwrap();
        if !s.roles.contains_key(role) {
            return Err(CloudError::NotFound(format!("role {role}")));
        }
        s.role_policies
            .entry(role.to_owned())
            .or_default()
            .insert(name.to_owned(), document.to_owned());
        Ok(())
    }

    async fn create_workgroup(&self, spec: &WorkgroupSpec) -> Result<(), CloudError> {
        self.enter("create_workgroup")?;
        self.state
            .lock()
            .unwrap()
            .workgroups
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn grant_lake_formation(&self, grants: &[LfGrant]) -> Result<(), CloudError> {
        self.enter("grant_lake_formation")?;
        let mut s = self.state.lock().unwrap();
        for g in grants {
            if !s.grants.contains(g) {
                s.grants.push(g.clone());
            }
        }
        Ok(())
    }

    async fn assume_role(&self, spec: &SessionSpec) -> Result<SessionCredentials, CloudError> {
        self.enter("assume_role")?;
        let mut s = self.state.lock().unwrap();
        let role = spec.role_arn.rsplit('/').next().unwrap_or_default();
        if !s.roles.contains_key(role) {
            return Err(CloudError::Denied(format!(
                "cannot assume {}",
                spec.role_arn
            )));
        }
        s.sessions.push(spec.clone());
        let n = s.sessions.len();
        s.session_roles
            .insert(format!("ASIAFAKE{n:08}"), role.to_owned());
        Ok(SessionCredentials {
            access_key_id: format!("ASIAFAKE{n:08}"),
            secret_access_key: format!("secret-{n}"),
            session_token: format!("token-{n}"),
            // As STS does: now + duration.
            expiration: self
                .clock
                .as_ref()
                .map_or_else(OffsetDateTime::now_utc, |c| c.now())
                + Duration::seconds(i64::from(spec.duration_seconds)),
        })
    }

    async fn deny_sessions_issued_before(
        &self,
        role: &str,
        cutoff: OffsetDateTime,
    ) -> Result<(), CloudError> {
        self.enter("deny_sessions_issued_before")?;
        let mut s = self.state.lock().unwrap();
        if !s.roles.contains_key(role) {
            return Err(CloudError::NotFound(format!("no role {role}")));
        }
        s.role_policies.entry(role.to_owned()).or_default().insert(
            lakegate_domain::naming::SUPERSEDED_POLICY_NAME.to_owned(),
            lakegate_domain::iam_policy::superseded_sessions_policy(cutoff),
        );
        Ok(())
    }

    async fn deny_all_sessions(&self, role: &str) -> Result<bool, CloudError> {
        self.enter("deny_all_sessions")?;
        let mut s = self.state.lock().unwrap();
        if !s.roles.contains_key(role) {
            return Ok(false);
        }
        s.role_policies.entry(role.to_owned()).or_default().insert(
            lakegate_domain::naming::REVOKE_POLICY_NAME.to_owned(),
            lakegate_domain::iam_policy::revoke_policy(),
        );
        Ok(true)
    }

    async fn stop_running_queries(&self, workgroup: &str) -> Result<u32, CloudError> {
        self.enter("stop_running_queries")?;
        let mut s = self.state.lock().unwrap();
        let mut stopped = s.running_queries.remove(workgroup).map_or(0, |q| q.len());
        for q in s.queries.get_mut(workgroup).into_iter().flatten() {
            if !q.state.is_final() {
                q.state = QueryState::Cancelled;
                stopped += 1;
            }
        }
        Ok(u32::try_from(stopped).unwrap_or(u32::MAX))
    }

    async fn new_query_ids(
        &self,
        workgroup: &str,
        known: &HashSet<String>,
    ) -> Result<Vec<String>, CloudError> {
        self.enter("new_query_ids")?;
        // Newest first, as Athena lists them.
        let mut ids = self.state.lock().unwrap().query_ids_of(workgroup);
        ids.reverse();
        Ok(ids.into_iter().filter(|id| !known.contains(id)).collect())
    }

    async fn describe_queries(&self, ids: &[String]) -> Result<Vec<QueryExecution>, CloudError> {
        self.enter("describe_queries")?;
        let s = self.state.lock().unwrap();
        Ok(ids.iter().filter_map(|id| s.describe(id)).collect())
    }

    async fn set_workgroup_cutoff(&self, workgroup: &str, bytes: i64) -> Result<(), CloudError> {
        self.enter("set_workgroup_cutoff")?;
        match self.state.lock().unwrap().workgroups.get_mut(workgroup) {
            Some(wg) => {
                wg.bytes_scanned_cutoff = bytes;
                Ok(())
            }
            None => Err(CloudError::Rejected(format!(
                "athena:UpdateWorkGroup: WorkGroup {workgroup} is not found"
            ))),
        }
    }

    async fn delete_workgroup(&self, workgroup: &str) -> Result<(), CloudError> {
        self.enter("delete_workgroup")?;
        self.state.lock().unwrap().workgroups.remove(workgroup);
        Ok(())
    }

    async fn delete_results(&self, results_uri: &str) -> Result<u64, CloudError> {
        self.enter("delete_results")?;
        let mut state = self.state.lock().unwrap();
        let before = state.result_objects.len();
        state.result_objects.retain(|k| !k.starts_with(results_uri));
        Ok((before - state.result_objects.len()) as u64)
    }

    async fn revoke_lake_formation(&self, grants: &[LfGrant]) -> Result<(), CloudError> {
        self.enter("revoke_lake_formation")?;
        self.state
            .lock()
            .unwrap()
            .grants
            .retain(|g| !grants.contains(g));
        Ok(())
    }

    async fn delete_role(&self, role: &str) -> Result<(), CloudError> {
        self.enter("delete_role")?;
        let mut s = self.state.lock().unwrap();
        s.role_policies.remove(role);
        s.roles.remove(role);
        Ok(())
    }

    async fn list_lakegate_roles(&self) -> Result<Vec<String>, CloudError> {
        self.enter("list_lakegate_roles")?;
        Ok(self.state.lock().unwrap().roles.keys().cloned().collect())
    }

    async fn list_lakegate_workgroups(&self) -> Result<Vec<String>, CloudError> {
        self.enter("list_lakegate_workgroups")?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .workgroups
            .keys()
            .cloned()
            .collect())
    }

    async fn lake_formation_grants_of(
        &self,
        principal_arn: &str,
    ) -> Result<Vec<LfGrant>, CloudError> {
        self.enter("lake_formation_grants_of")?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .grants
            .iter()
            .filter(|g| g.principal_arn == principal_arn)
            .cloned()
            .collect())
    }

    fn athena_as<'a>(&'a self, session: &SessionCredentials) -> Box<dyn GrantAthena + 'a> {
        Box::new(FakeSessionAthena {
            cloud: self,
            session: session.clone(),
        })
    }
}

/// The fake's Athena as one grant session: the console's calls, checked against the session.
struct FakeSessionAthena<'a> {
    cloud: &'a FakeCloud,
    session: SessionCredentials,
}

#[async_trait]
impl GrantAthena for FakeSessionAthena<'_> {
    async fn start_query(&self, run: &QueryRun<'_>) -> Result<String, CloudError> {
        self.cloud.console_start_query(&self.session, run)
    }

    async fn query_execution(&self, id: &str) -> Result<QueryExecution, CloudError> {
        self.cloud.console_query_execution(&self.session, id)
    }

    async fn query_results(
        &self,
        id: &str,
        from: Option<&str>,
        max_rows: i32,
    ) -> Result<ResultPage, CloudError> {
        self.cloud
            .console_query_results(&self.session, id, from, max_rows)
    }

    async fn stop_query(&self, id: &str) -> Result<(), CloudError> {
        self.cloud.console_stop_query(&self.session, id)
    }
}

impl FakeCloud {
    fn console_start_query(
        &self,
        session: &SessionCredentials,
        run: &QueryRun<'_>,
    ) -> Result<String, CloudError> {
        self.enter("start_query")?;
        self.session_for(session, run.workgroup)?;
        let now = self
            .clock
            .as_ref()
            .map_or_else(OffsetDateTime::now_utc, |c| c.now());
        let mut s = self.state.lock().unwrap();
        if !s.workgroups.contains_key(run.workgroup) {
            return Err(CloudError::Rejected(format!(
                "InvalidRequestException: WorkGroup {} is not found",
                run.workgroup
            )));
        }
        if let Some(token) = run.client_token
            && let Some((id, sql)) = s.client_tokens.get(token)
        {
            return if sql == run.sql {
                Ok(id.clone())
            } else {
                Err(CloudError::Rejected(
                    "InvalidRequestException: the client request token was used with another query"
                        .into(),
                ))
            };
        }
        let id = format!("fake-query-{:04}", s.console_runs.len() + 1);
        if let Some(token) = run.client_token {
            s.client_tokens
                .insert(token.to_owned(), (id.clone(), run.sql.to_owned()));
        }
        s.console_runs.push(ConsoleRun {
            query_id: id.clone(),
            access_key_id: session.access_key_id.clone(),
            workgroup: run.workgroup.to_owned(),
            sql: run.sql.to_owned(),
            database: run.database.map(ToOwned::to_owned),
        });
        let results = if s.canned_results.is_empty() {
            ResultPage::default()
        } else {
            s.canned_results.remove(0)
        };
        s.results.insert(id.clone(), results);
        s.queries
            .entry(run.workgroup.to_owned())
            .or_default()
            .push(QueryExecution {
                id: id.clone(),
                sql: run.sql.to_owned(),
                database: run.database.map(ToOwned::to_owned),
                state: QueryState::Succeeded,
                state_change_reason: None,
                bytes_scanned: 0,
                engine_ms: 0,
                submitted_at: Some(now),
                completed_at: Some(now),
            });
        Ok(id)
    }

    fn console_query_execution(
        &self,
        session: &SessionCredentials,
        id: &str,
    ) -> Result<QueryExecution, CloudError> {
        self.enter("query_execution")?;
        self.session_for(session, &self.workgroup_of(id)?)?;
        let s = self.state.lock().unwrap();
        s.queries
            .values()
            .flatten()
            .find(|q| q.id == id)
            .cloned()
            .ok_or_else(|| CloudError::NotFound(format!("query {id}")))
    }

    fn console_query_results(
        &self,
        session: &SessionCredentials,
        id: &str,
        from: Option<&str>,
        max_rows: i32,
    ) -> Result<ResultPage, CloudError> {
        self.enter("query_results")?;
        self.session_for(session, &self.workgroup_of(id)?)?;
        let s = self.state.lock().unwrap();
        let all = s
            .results
            .get(id)
            .ok_or_else(|| CloudError::NotFound(format!("results of {id}")))?;
        let start: usize = from.and_then(|f| f.parse().ok()).unwrap_or(0);
        let end = start
            .saturating_add(usize::try_from(max_rows).unwrap_or(1))
            .min(all.rows.len());
        Ok(ResultPage {
            columns: all.columns.clone(),
            rows: all.rows.get(start..end).unwrap_or_default().to_vec(),
            next: (end < all.rows.len()).then(|| end.to_string()),
        })
    }

    fn console_stop_query(&self, session: &SessionCredentials, id: &str) -> Result<(), CloudError> {
        self.enter("stop_query")?;
        self.session_for(session, &self.workgroup_of(id)?)?;
        let mut s = self.state.lock().unwrap();
        for q in s.queries.values_mut().flatten() {
            if q.id == id && !q.state.is_final() {
                q.state = QueryState::Cancelled;
            }
        }
        Ok(())
    }
}

/// Decodes `%XY` escapes (and `+`): IAM answers policy documents URL-encoded (RFC 3986).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
