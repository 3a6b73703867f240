//! lakegate's AWS side: [`CloudAccess`] implemented with the official SDK crates. Every
//! operation is idempotent: "already exists" and "already gone" are success (docs/aws.md §13), and
//! errors are classified into what the caller should do next (retry, give up, skip).
#![forbid(unsafe_code)]

mod athena;
mod call_metrics;
mod error;
mod glue;
mod iam;
mod lake_formation;
mod s3;
mod sts;

use std::collections::HashSet;

use async_trait::async_trait;
use aws_config::SdkConfig;
use lakegate_domain::lake_formation::LfGrant;
use lakegate_domain::naming::CloudIdentity;
use lakegate_domain::ports::{
    CloudAccess, CloudError, GrantAthena, QueryExecution, QueryRun, ResultPage, RoleSpec,
    SessionCredentials, SessionSpec, TableInfo, TableLookup, WorkgroupSpec,
};

pub use aws_config;

/// The AWS clients lakegate uses, and who it is.
#[derive(Clone, Debug)]
pub struct AwsCloudAccess {
    identity: CloudIdentity,
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    lf: aws_sdk_lakeformation::Client,
    athena: aws_sdk_athena::Client,
    glue: aws_sdk_glue::Client,
    s3: aws_sdk_s3::Client,
}

impl AwsCloudAccess {
    /// Builds the clients and asks STS who we are. `broker_principal_arn` overrides the
    /// principal named in the roles' trust policies (needed when the broker runs as a role
    /// with a path, which its session ARN does not show).
    pub async fn from_conf(
        conf: &SdkConfig,
        broker_principal_arn: Option<String>,
    ) -> Result<Self, CloudError> {
        use call_metrics::CallMetrics;
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(conf)
                .interceptor(CallMetrics)
                .build(),
        );
        let me = sts::caller_identity(&sts).await?;
        let region = conf.region().map(ToString::to_string).ok_or_else(|| {
            CloudError::Rejected("no AWS region configured (set AWS_REGION)".into())
        })?;
        let broker_principal_arn =
            broker_principal_arn.unwrap_or_else(|| sts::principal_of(&me.account, &me.arn));
        tracing::info!(account = %me.account, %region, broker = %broker_principal_arn, "AWS identity");
        Ok(Self {
            identity: CloudIdentity {
                account_id: me.account,
                region,
                broker_principal_arn,
            },
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(conf)
                    .interceptor(CallMetrics)
                    .build(),
            ),
            sts,
            lf: aws_sdk_lakeformation::Client::from_conf(
                aws_sdk_lakeformation::config::Builder::from(conf)
                    .interceptor(CallMetrics)
                    .build(),
            ),
            athena: aws_sdk_athena::Client::from_conf(
                aws_sdk_athena::config::Builder::from(conf)
                    .interceptor(CallMetrics)
                    .build(),
            ),
            glue: aws_sdk_glue::Client::from_conf(
                aws_sdk_glue::config::Builder::from(conf)
                    .interceptor(CallMetrics)
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(conf)
                    // An emulator at one endpoint has no per-bucket host names.
                    .force_path_style(conf.endpoint_url().is_some())
                    .interceptor(CallMetrics)
                    .build(),
            ),
        })
    }

    /// An Athena client that signs with a grant's session instead of the broker's
    /// credentials: same Region, endpoint, retries and HTTP connections.
    fn session_athena_client(&self, session: &SessionCredentials) -> aws_sdk_athena::Client {
        let expires = std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(
                u64::try_from(session.expiration.unix_timestamp()).unwrap_or(0),
            );
        let credentials = aws_sdk_athena::config::Credentials::new(
            &session.access_key_id,
            &session.secret_access_key,
            Some(session.session_token.clone()),
            Some(expires),
            "lakegate-grant-session",
        );
        let conf = self
            .athena
            .config()
            .to_builder()
            .credentials_provider(credentials)
            // Not the broker's shared cache: one entry per session would push the broker's own
            // credentials out of it. Static credentials need no caching.
            .identity_cache(aws_sdk_athena::config::IdentityCache::no_cache())
            .build();
        aws_sdk_athena::Client::from_conf(conf)
    }
}

#[async_trait]
impl CloudAccess for AwsCloudAccess {
    fn identity(&self) -> &CloudIdentity {
        &self.identity
    }

    async fn describe_table(&self, database: &str, table: &str) -> Result<TableLookup, CloudError> {
        glue::describe_table(&self.glue, database, table).await
    }

    async fn list_tables(
        &self,
        database: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TableInfo>, bool), CloudError> {
        glue::list_tables(&self.glue, database, limit).await
    }

    async fn create_role(&self, spec: &RoleSpec) -> Result<(), CloudError> {
        iam::create_role(&self.iam, spec).await
    }

    async fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        document: &str,
    ) -> Result<(), CloudError> {
        iam::put_role_policy(&self.iam, role, name, document).await
    }

    async fn create_workgroup(&self, spec: &WorkgroupSpec) -> Result<(), CloudError> {
        athena::create_workgroup(&self.athena, spec).await
    }

    async fn grant_lake_formation(&self, grants: &[LfGrant]) -> Result<(), CloudError> {
        lake_formation::grant(&self.lf, &self.identity.account_id, grants).await
    }

    async fn assume_role(&self, spec: &SessionSpec) -> Result<SessionCredentials, CloudError> {
        sts::assume_role(&self.sts, spec).await
    }

    async fn deny_all_sessions(&self, role: &str) -> Result<bool, CloudError> {
        iam::deny_all_sessions(&self.iam, role).await
    }

    async fn deny_sessions_issued_before(
        &self,
        role: &str,
        cutoff: time::OffsetDateTime,
    ) -> Result<(), CloudError> {
        iam::deny_sessions_issued_before(&self.iam, role, cutoff).await
    }

    async fn stop_running_queries(&self, workgroup: &str) -> Result<u32, CloudError> {
        athena::stop_running_queries(&self.athena, workgroup).await
    }

    async fn new_query_ids(
        &self,
        workgroup: &str,
        known: &HashSet<String>,
    ) -> Result<Vec<String>, CloudError> {
        athena::new_query_ids(&self.athena, workgroup, known).await
    }

    async fn describe_queries(&self, ids: &[String]) -> Result<Vec<QueryExecution>, CloudError> {
        athena::describe_queries(&self.athena, ids).await
    }

    async fn set_workgroup_cutoff(&self, workgroup: &str, bytes: i64) -> Result<(), CloudError> {
        athena::set_workgroup_cutoff(&self.athena, workgroup, bytes).await
    }

    async fn delete_workgroup(&self, workgroup: &str) -> Result<(), CloudError> {
        athena::delete_workgroup(&self.athena, workgroup).await
    }

    async fn delete_results(&self, results_uri: &str) -> Result<u64, CloudError> {
        s3::delete_prefix(&self.s3, results_uri).await
    }

    async fn revoke_lake_formation(&self, grants: &[LfGrant]) -> Result<(), CloudError> {
        match lake_formation::revoke(&self.lf, &self.identity.account_id, grants).await {
            // Lake Formation may not know the principal. Right after CreateRole that means "not
            // yet" (retry); when the role does not exist (provisioning failed before creating
            // it, or an earlier pass deleted it after revoking) it holds no grants: done. Decided
            // by asking IAM, not by the wording of the error.
            Err(e) if !matches!(e, CloudError::Denied(_)) => {
                let role = grants
                    .first()
                    .and_then(|g| g.principal_arn.rsplit('/').next())
                    .unwrap_or_default();
                if role.is_empty() || iam::role_exists(&self.iam, role).await? {
                    Err(e)
                } else {
                    Ok(())
                }
            }
            other => other,
        }
    }

    async fn delete_role(&self, role: &str) -> Result<(), CloudError> {
        iam::delete_role(&self.iam, role).await
    }

    async fn list_lakegate_roles(&self) -> Result<Vec<String>, CloudError> {
        iam::list_roles(&self.iam, lakegate_domain::naming::ROLE_PATH).await
    }

    async fn list_lakegate_workgroups(&self) -> Result<Vec<String>, CloudError> {
        athena::list_workgroups(&self.athena, lakegate_domain::naming::NAME_PREFIX).await
    }

    async fn lake_formation_grants_of(
        &self,
        principal_arn: &str,
    ) -> Result<Vec<LfGrant>, CloudError> {
        lake_formation::grants_of(&self.lf, &self.identity.account_id, principal_arn).await
    }

    fn athena_as<'a>(&'a self, session: &SessionCredentials) -> Box<dyn GrantAthena + 'a> {
        Box::new(SessionAthena {
            client: self.session_athena_client(session),
        })
    }
}

/// Athena signed with a grant's session.
struct SessionAthena {
    client: aws_sdk_athena::Client,
}

#[async_trait]
impl GrantAthena for SessionAthena {
    async fn start_query(&self, run: &QueryRun<'_>) -> Result<String, CloudError> {
        athena::start_query(&self.client, run).await
    }

    async fn query_execution(&self, id: &str) -> Result<QueryExecution, CloudError> {
        athena::get_query(&self.client, id).await
    }

    async fn query_results(
        &self,
        id: &str,
        from: Option<&str>,
        max_rows: i32,
    ) -> Result<ResultPage, CloudError> {
        athena::query_results(&self.client, id, from, max_rows).await
    }

    async fn stop_query(&self, id: &str) -> Result<(), CloudError> {
        athena::stop_query(&self.client, id).await
    }
}
