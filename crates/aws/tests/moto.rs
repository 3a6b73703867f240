//! The AWS adapter against moto in server mode, over the real wire protocol, retries disabled.
//! `scripts/test` starts moto and sets LAKEGATE_TEST_AWS_ENDPOINT. moto's state is shared by
//! all tests, so every test works under names derived from a fresh request id.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;
use lakegate_aws::AwsCloudAccess;
use lakegate_domain::iam_policy::{access_policy, session_policy, trust_policy};
use lakegate_domain::lake_formation::{LfGrant, plan_grants};
use lakegate_domain::naming::{
    ACCESS_POLICY_NAME, GrantResources, REVOKE_POLICY_NAME, ROLE_PATH, TAG_REQUEST,
};
use lakegate_domain::ports::{
    CloudAccess, CloudError, RoleSpec, SessionSpec, TableLookup, WorkgroupSpec,
};
use lakegate_domain::usage::QueryState;
use lakegate_domain::{RequestId, ResourceSpec, ResultsLocation};
use lakegate_testkit::aws_proxy::{AwsProxy, Fault};
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};

const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/lakegate-boundary";

fn endpoint() -> String {
    std::env::var("LAKEGATE_TEST_AWS_ENDPOINT").expect(
        "LAKEGATE_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test, which starts moto",
    )
}

async fn sdk_config(credentials: Credentials) -> SdkConfig {
    sdk_config_at(&endpoint(), credentials).await
}

async fn sdk_config_at(endpoint: &str, credentials: Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

async fn conf() -> SdkConfig {
    sdk_config(Credentials::new("testing", "testing", None, None, "static")).await
}

async fn cloud() -> AwsCloudAccess {
    AwsCloudAccess::from_conf(&conf().await, None)
        .await
        .expect("moto answers GetCallerIdentity")
}

/// A database and table of our own, so tests do not depend on the dev seed.
async fn seed_table(conf: &SdkConfig) -> (String, String) {
    use aws_sdk_glue::types::{Column, DatabaseInput, StorageDescriptor, TableInput};
    let glue = aws_sdk_glue::Client::new(conf);
    let db = format!("db_{}", uuid::Uuid::new_v4().simple());
    glue.create_database()
        .database_input(DatabaseInput::builder().name(&db).build().unwrap())
        .send()
        .await
        .unwrap();
    let col = |n: &str, t: &str| Column::builder().name(n).r#type(t).build().unwrap();
    glue.create_table()
        .database_name(&db)
        .table_input(
            TableInput::builder()
                .name("orders")
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .columns(col("order_id", "bigint"))
                        .columns(col("email", "string"))
                        .columns(col("amount", "decimal(10,2)"))
                        .location("s3://datalake/orders/")
                        .build(),
                )
                .partition_keys(col("dt", "string"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (db, "orders".into())
}

struct Fixture {
    cloud: AwsCloudAccess,
    conf: SdkConfig,
    g: GrantResources,
    grants: Vec<LfGrant>,
    db: String,
}

async fn fixture() -> Fixture {
    fixture_at(&endpoint()).await
}

/// A fixture whose calls go through the test proxy in front of moto.
async fn fixture_via_proxy() -> (Fixture, AwsProxy) {
    let proxy = AwsProxy::start(&endpoint()).await.unwrap();
    (fixture_at(proxy.url()).await, proxy)
}

async fn fixture_at(endpoint: &str) -> Fixture {
    let conf = sdk_config_at(
        endpoint,
        Credentials::new("testing", "testing", None, None, "static"),
    )
    .await;
    let cloud = AwsCloudAccess::from_conf(&conf, None)
        .await
        .expect("moto answers GetCallerIdentity");
    let (db, table) = seed_table(&conf).await;
    let id = RequestId::new_random();
    let g = GrantResources::derive(
        id,
        cloud.identity(),
        &ResultsLocation::parse("s3://lakegate-athena-results/lakegate/").unwrap(),
    );
    let resources = vec![ResourceSpec {
        database: db.clone(),
        table,
        columns: Some(vec!["order_id".into(), "amount".into()]),
    }];
    let grants = plan_grants(&g.account_id, &g.role_arn, &resources, &[]);
    Fixture {
        cloud,
        conf,
        g,
        grants,
        db,
    }
}

impl Fixture {
    fn role_spec(&self) -> RoleSpec {
        RoleSpec {
            name: self.g.role_name.clone(),
            path: ROLE_PATH.into(),
            trust_policy: trust_policy(&self.cloud.identity().broker_principal_arn),
            permissions_boundary_arn: BOUNDARY.into(),
            max_session_seconds: 3600,
            tags: vec![(TAG_REQUEST.into(), self.g.request.to_string())],
        }
    }

    fn workgroup_spec(&self) -> WorkgroupSpec {
        WorkgroupSpec {
            name: self.g.workgroup.clone(),
            output_location: self.g.results_uri(),
            bytes_scanned_cutoff: 10_000_000_000,
            tags: vec![(TAG_REQUEST.into(), self.g.request.to_string())],
        }
    }

    async fn provision(&self) {
        let c = &self.cloud;
        c.create_role(&self.role_spec()).await.unwrap();
        c.put_role_policy(
            &self.g.role_name,
            ACCESS_POLICY_NAME,
            &access_policy(&self.g, std::slice::from_ref(&self.db)),
        )
        .await
        .unwrap();
        c.create_workgroup(&self.workgroup_spec()).await.unwrap();
        c.grant_lake_formation(&self.grants).await.unwrap();
    }

    async fn teardown(&self) {
        let c = &self.cloud;
        c.deny_all_sessions(&self.g.role_name).await.unwrap();
        c.stop_running_queries(&self.g.workgroup).await.unwrap();
        c.delete_workgroup(&self.g.workgroup).await.unwrap();
        c.revoke_lake_formation(&self.grants).await.unwrap();
        c.delete_role(&self.g.role_name).await.unwrap();
    }

    fn session(&self, seconds: i32) -> SessionSpec {
        SessionSpec {
            role_arn: self.g.role_arn.clone(),
            session_name: "alice-test".into(),
            duration_seconds: seconds,
            session_policy: session_policy(OffsetDateTime::now_utc() + Duration::hours(1)),
            source_identity: "alice@example.com".into(),
            tags: vec![(TAG_REQUEST.into(), self.g.request.to_string())],
        }
    }

    /// Lake Formation permissions held by this fixture's role, listed unfiltered (moto cannot
    /// filter on TableWithColumns) and matched client-side.
    async fn lf_permissions(&self) -> Vec<String> {
        let lf = aws_sdk_lakeformation::Client::new(&self.conf);
        let out = lf.list_permissions().send().await.unwrap();
        out.principal_resource_permissions()
            .iter()
            .filter(|p| {
                p.principal()
                    .and_then(|p| p.data_lake_principal_identifier())
                    == Some(self.g.role_arn.as_str())
            })
            .map(|p| {
                let r = p.resource().unwrap();
                let perms: Vec<&str> = p.permissions().iter().map(|p| p.as_str()).collect();
                if let Some(d) = r.database() {
                    format!("{} on database {}", perms.join(","), d.name())
                } else if let Some(t) = r.table_with_columns() {
                    format!(
                        "{} on {}.{} columns {:?} wildcard {}",
                        perms.join(","),
                        t.database_name(),
                        t.name(),
                        t.column_names(),
                        t.column_wildcard().is_some()
                    )
                } else {
                    format!("{perms:?} on {r:?}")
                }
            })
            .collect()
    }

    async fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let iam = aws_sdk_iam::Client::new(&self.conf);
        if iam
            .get_role()
            .role_name(&self.g.role_name)
            .send()
            .await
            .is_ok()
        {
            left.push("role".to_owned());
        }
        let athena = aws_sdk_athena::Client::new(&self.conf);
        let wg = athena
            .get_work_group()
            .work_group(&self.g.workgroup)
            .send()
            .await
            .unwrap();
        if wg.work_group().is_some() {
            left.push("workgroup".to_owned());
        }
        left.extend(self.lf_permissions().await);
        left
    }
}

#[tokio::test]
async fn identity_comes_from_sts() {
    let c = cloud().await;
    assert_eq!(c.identity().account_id, "123456789012");
    assert_eq!(c.identity().region, "us-east-1");
    // moto names its default caller `arn:aws:sts::123456789012:user/moto`.
    assert!(c.identity().broker_principal_arn.contains(":123456789012:"));
}

#[tokio::test]
async fn describe_table_tells_missing_database_table_and_columns() {
    let f = fixture().await;
    match f.cloud.describe_table(&f.db, "orders").await.unwrap() {
        TableLookup::Found(t) => {
            let cols: Vec<&str> = t.column_names().collect();
            assert_eq!(cols, ["order_id", "email", "amount", "dt"]);
            assert_eq!(t.partition_keys[0].name, "dt");
            assert_eq!(t.columns[2].data_type, "decimal(10,2)");
        }
        other => panic!("expected the table, got {other:?}"),
    }
    assert_eq!(
        f.cloud.describe_table(&f.db, "nope").await.unwrap(),
        TableLookup::NoSuchTable
    );
    assert_eq!(
        f.cloud
            .describe_table("no_such_db_here", "orders")
            .await
            .unwrap(),
        TableLookup::NoSuchDatabase
    );
}

#[tokio::test]
async fn provisioning_creates_exactly_the_described_resources() {
    let f = fixture().await;
    f.provision().await;

    let iam = aws_sdk_iam::Client::new(&f.conf);
    let role = iam
        .get_role()
        .role_name(&f.g.role_name)
        .send()
        .await
        .unwrap();
    let role = role.role().unwrap();
    assert_eq!(role.path(), ROLE_PATH);
    assert_eq!(role.arn(), f.g.role_arn);
    assert_eq!(role.max_session_duration(), Some(3600));
    assert_eq!(
        role.permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(BOUNDARY)
    );
    assert!(
        role.tags()
            .iter()
            .any(|t| t.key() == TAG_REQUEST && t.value() == f.g.request.to_string())
    );
    let trust = lakegate_testkit::percent_decode(role.assume_role_policy_document().unwrap());
    assert!(
        trust.contains(&f.cloud.identity().broker_principal_arn),
        "{trust}"
    );

    let policies = iam
        .list_role_policies()
        .role_name(&f.g.role_name)
        .send()
        .await
        .unwrap();
    assert_eq!(policies.policy_names(), [ACCESS_POLICY_NAME]);
    let doc = iam
        .get_role_policy()
        .role_name(&f.g.role_name)
        .policy_name(ACCESS_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&lakegate_testkit::percent_decode(doc.policy_document())).unwrap();
    let athena_stmt = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "AthenaOwnWorkgroup")
        .unwrap();
    assert_eq!(athena_stmt["Resource"], f.g.workgroup_arn);

    let athena = aws_sdk_athena::Client::new(&f.conf);
    let wg = athena
        .get_work_group()
        .work_group(&f.g.workgroup)
        .send()
        .await
        .unwrap();
    let conf = wg.work_group().unwrap().configuration().unwrap();
    assert_eq!(conf.bytes_scanned_cutoff_per_query(), Some(10_000_000_000));
    assert_eq!(conf.enforce_work_group_configuration(), Some(true));
    assert_eq!(
        conf.result_configuration()
            .and_then(|r| r.output_location()),
        Some(f.g.results_uri().as_str())
    );

    let mut perms = f.lf_permissions().await;
    perms.sort();
    let mut expected = vec![
        format!("DESCRIBE on database {}", f.db),
        "DESCRIBE on database default".to_owned(),
        format!(
            "SELECT on {}.orders columns [\"amount\", \"order_id\"] wildcard false",
            f.db
        ),
    ];
    expected.sort();
    assert_eq!(perms, expected);

    f.teardown().await;
}

#[tokio::test]
async fn sessions_of_the_role_are_the_role() {
    let f = fixture().await;
    f.provision().await;
    let creds = f.cloud.assume_role(&f.session(3600)).await.unwrap();
    assert!(creds.access_key_id.starts_with("ASIA"));
    let left = creds.expiration - OffsetDateTime::now_utc();
    assert!(
        left > Duration::minutes(59) && left <= Duration::hours(1),
        "{left}"
    );
    assert!(!format!("{creds:?}").contains(&creds.secret_access_key));

    let as_session = sdk_config(Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        Some(creds.session_token.clone()),
        None,
        "session",
    ))
    .await;
    let me = aws_sdk_sts::Client::new(&as_session)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.arn(),
        Some(
            format!(
                "arn:aws:sts::123456789012:assumed-role/{}/alice-test",
                f.g.role_name
            )
            .as_str()
        )
    );
    f.teardown().await;
}

#[tokio::test]
async fn provisioning_twice_is_harmless() {
    let f = fixture().await;
    f.provision().await;
    let before = f.lf_permissions().await;
    f.provision().await;
    assert_eq!(f.lf_permissions().await, before, "re-granting adds nothing");
    f.teardown().await;
    assert_eq!(f.leftovers().await, Vec::<String>::new());
}

#[tokio::test]
async fn someone_elses_role_of_the_same_name_is_refused() {
    let f = fixture().await;
    let mut spec = f.role_spec();
    spec.tags = vec![(TAG_REQUEST.into(), "another-request".into())];
    f.cloud.create_role(&spec).await.unwrap();
    let err = f.cloud.create_role(&f.role_spec()).await.unwrap_err();
    assert!(matches!(err, CloudError::Rejected(_)), "{err:?}");
    f.cloud.delete_role(&f.g.role_name).await.unwrap();
}

#[tokio::test]
async fn teardown_removes_everything_and_twice_is_harmless() {
    let f = fixture().await;
    f.provision().await;
    assert_eq!(
        f.leftovers().await.len(),
        2 + 3,
        "role, workgroup and three grants exist"
    );

    f.teardown().await;
    assert_eq!(f.leftovers().await, Vec::<String>::new());
    // Every step again, with everything already gone.
    f.teardown().await;
    assert!(!f.cloud.deny_all_sessions(&f.g.role_name).await.unwrap());
    assert_eq!(f.leftovers().await, Vec::<String>::new());
}

#[tokio::test]
async fn teardown_deletes_the_grants_results_and_nothing_beside_them() {
    let f = fixture().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&f.conf)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("results-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let mine = format!("s3://{bucket}/lakegate/{}/", f.g.request);
    let keys: Vec<String> = (0..1_005)
        .map(|i| format!("lakegate/{}/q{i}.csv", f.g.request))
        .chain([
            // A neighbour whose id starts like this one, and another grant's results.
            format!("lakegate/{}0/q.csv", f.g.request),
            "lakegate/other/q.csv".to_owned(),
        ])
        .collect();
    for key in &keys {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                b"a,b\n1,2\n",
            ))
            .send()
            .await
            .unwrap();
    }

    assert_eq!(f.cloud.delete_results(&mine).await.unwrap(), 1_005);
    let left = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let mut left: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    left.sort_unstable();
    let mut beside = vec![keys[1_005].as_str(), keys[1_006].as_str()];
    beside.sort_unstable();
    assert_eq!(left, beside);
    // Already gone, and a bucket that does not exist: done.
    assert_eq!(f.cloud.delete_results(&mine).await.unwrap(), 0);
    let no_bucket = format!("s3://no-such-{bucket}/lakegate/{}/", f.g.request);
    assert_eq!(f.cloud.delete_results(&no_bucket).await.unwrap(), 0);
    // Never a whole bucket.
    assert!(matches!(
        f.cloud.delete_results(&format!("s3://{bucket}/")).await,
        Err(CloudError::Rejected(_))
    ));
}

#[tokio::test]
async fn teardown_detaches_managed_policies_someone_attached() {
    let f = fixture().await;
    f.provision().await;
    let iam = aws_sdk_iam::Client::new(&f.conf);
    let policy = iam
        .create_policy()
        .policy_name(format!("someone-elses-{}", uuid::Uuid::new_v4().simple()))
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let arn = policy.policy().unwrap().arn().unwrap().to_owned();
    iam.attach_role_policy()
        .role_name(&f.g.role_name)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    f.teardown().await;
    assert_eq!(f.leftovers().await, Vec::<String>::new());
    // The policy itself is someone else's: detached, not deleted.
    assert!(iam.get_policy().policy_arn(&arn).send().await.is_ok());
}

#[tokio::test]
async fn deny_all_sessions_is_written_to_the_role() {
    let f = fixture().await;
    f.provision().await;
    assert!(f.cloud.deny_all_sessions(&f.g.role_name).await.unwrap());
    let iam = aws_sdk_iam::Client::new(&f.conf);
    let doc = iam
        .get_role_policy()
        .role_name(&f.g.role_name)
        .policy_name(REVOKE_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let doc = lakegate_testkit::percent_decode(doc.policy_document());
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["Statement"][0]["Effect"], "Deny");
    assert_eq!(doc["Statement"][0]["Action"], "*");
    assert!(doc["Statement"][0].get("Condition").is_none(), "{doc}");
    f.teardown().await;
    assert_eq!(f.leftovers().await, Vec::<String>::new());
}

#[tokio::test]
async fn running_queries_are_stopped() {
    // Queries are found with BatchGetQueryExecution, which moto lacks: through the proxy.
    let (f, _proxy) = fixture_via_proxy().await;
    f.provision().await;
    let athena = aws_sdk_athena::Client::new(&f.conf);
    // Hold queries in QUEUED/RUNNING (moto's state manager; global, and only this test starts queries).
    reqwest_free_post(
        &format!("{}/moto-api/state-manager/set-transition", endpoint()),
        r#"{"model_name":"athena::execution","transition":{"progression":"manual","times":1000}}"#,
    )
    .await;
    let q = athena
        .start_query_execution()
        .query_string(format!("SELECT order_id FROM {}.orders", f.db))
        .work_group(&f.g.workgroup)
        .send()
        .await
        .unwrap();
    let qid = q.query_execution_id().unwrap().to_owned();
    let stopped = f.cloud.stop_running_queries(&f.g.workgroup).await.unwrap();
    reqwest_free_post(
        &format!("{}/moto-api/state-manager/unset-transition", endpoint()),
        r#"{"model_name":"athena::execution"}"#,
    )
    .await;
    assert_eq!(stopped, 1);
    let state = athena
        .get_query_execution()
        .query_execution_id(&qid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state
            .query_execution()
            .and_then(|q| q.status())
            .and_then(|s| s.state())
            .map(|s| s.as_str()),
        Some("CANCELLED")
    );
    f.teardown().await;
}

#[tokio::test]
async fn query_details_come_in_batches_with_what_was_scanned() {
    let (f, proxy) = fixture_via_proxy().await;
    f.cloud.create_workgroup(&f.workgroup_spec()).await.unwrap();
    let athena = aws_sdk_athena::Client::new(&f.conf);
    let mut ids = Vec::new();
    for i in 0..55 {
        let q = athena
            .start_query_execution()
            .query_string(format!("SELECT order_id FROM orders WHERE order_id = {i}"))
            .query_execution_context(
                aws_sdk_athena::types::QueryExecutionContext::builder()
                    .database(&f.db)
                    .build(),
            )
            .work_group(&f.g.workgroup)
            .send()
            .await
            .unwrap();
        ids.push(q.query_execution_id().unwrap().to_owned());
    }
    proxy.set_scanned(&ids[0], 123_456_789);
    proxy.set_scanned(&ids[54], 7);

    let listed = f
        .cloud
        .new_query_ids(&f.g.workgroup, &HashSet::new())
        .await
        .unwrap();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    let mut all = ids.clone();
    all.sort_unstable();
    assert_eq!(sorted, all);
    let got = f.cloud.describe_queries(&listed).await.unwrap();
    assert_eq!(proxy.calls("BatchGetQueryExecution"), 2, "55 ids: 50 + 5");
    // Known ids are left out. (moto lists every id on one page, so where the listing stops
    // is not seen here.)
    let known: HashSet<String> = ids[..54].iter().cloned().collect();
    let fresh = f.cloud.new_query_ids(&f.g.workgroup, &known).await.unwrap();
    assert_eq!(fresh, [ids[54].clone()]);
    let mut got_ids: Vec<&str> = got.iter().map(|q| q.id.as_str()).collect();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    got_ids.sort_unstable();
    want.sort_unstable();
    assert_eq!(got_ids, want);
    let first = got.iter().find(|q| q.id == ids[0]).unwrap();
    assert_eq!(first.bytes_scanned, 123_456_789);
    assert_eq!(first.sql, "SELECT order_id FROM orders WHERE order_id = 0");
    assert_eq!(first.database.as_deref(), Some(f.db.as_str()));
    assert!(first.submitted_at.is_some());
    assert_eq!(
        got.iter().find(|q| q.id == ids[54]).unwrap().bytes_scanned,
        7
    );
    assert_eq!(
        got.iter().find(|q| q.id == ids[1]).unwrap().bytes_scanned,
        0
    );
    // moto's state manager may be holding queries for another test: any state Athena has.
    assert!(got.iter().all(|q| QueryState::ALL.contains(&q.state)));

    assert_eq!(
        f.cloud
            .new_query_ids("lakegate-no-such-workgroup", &HashSet::new())
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    f.cloud.delete_workgroup(&f.g.workgroup).await.unwrap();
}

#[tokio::test]
async fn the_workgroup_cutoff_can_be_lowered() {
    let (f, proxy) = fixture_via_proxy().await;
    f.cloud.create_workgroup(&f.workgroup_spec()).await.unwrap();
    f.cloud
        .set_workgroup_cutoff(&f.g.workgroup, 500_000_000)
        .await
        .unwrap();
    assert_eq!(
        proxy
            .workgroup(&f.g.workgroup)
            .unwrap()
            .bytes_scanned_cutoff,
        Some(500_000_000)
    );
    let athena = aws_sdk_athena::Client::new(&f.conf);
    let wg = athena
        .get_work_group()
        .work_group(&f.g.workgroup)
        .send()
        .await
        .unwrap();
    assert_eq!(
        wg.work_group()
            .and_then(|w| w.configuration())
            .and_then(|c| c.bytes_scanned_cutoff_per_query()),
        Some(500_000_000)
    );
    // Athena's minimum holds.
    let err = f
        .cloud
        .set_workgroup_cutoff(&f.g.workgroup, 1_000)
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Rejected(_)), "{err:?}");
    f.cloud.delete_workgroup(&f.g.workgroup).await.unwrap();
}

/// Each fault the proxy can inject comes back as the error kind the worker's retry logic
/// expects, and the retried call (or the teardown after it) reaches the goal.
#[tokio::test]
async fn injected_faults_are_classified_and_retries_reach_the_goal() {
    let (f, proxy) = fixture_via_proxy().await;
    let c = &f.cloud;
    c.create_role(&f.role_spec()).await.unwrap();

    // A new role that STS does not see yet: denied twice, then it works.
    proxy.fail("AssumeRole", 2, Fault::access_denied());
    for _ in 0..2 {
        let err = c.assume_role(&f.session(900)).await.unwrap_err();
        assert!(
            matches!(err, CloudError::Denied(_)) && err.is_retryable(),
            "{err:?}"
        );
    }
    c.assume_role(&f.session(900)).await.unwrap();

    // Throttled create: transient; the retry creates it once.
    proxy.fail(
        "CreateWorkGroup",
        1,
        Fault::throttling("TooManyRequestsException"),
    );
    let err = c.create_workgroup(&f.workgroup_spec()).await.unwrap_err();
    assert!(matches!(err, CloudError::Transient(_)), "{err:?}");
    c.create_workgroup(&f.workgroup_spec()).await.unwrap();
    c.create_workgroup(&f.workgroup_spec()).await.unwrap();

    // Lake Formation busy: transient; then granted.
    proxy.fail("BatchGrantPermissions", 1, Fault::concurrent_modification());
    let err = c.grant_lake_formation(&f.grants).await.unwrap_err();
    assert!(matches!(err, CloudError::Transient(_)), "{err:?}");
    c.grant_lake_formation(&f.grants).await.unwrap();
    assert!(!f.lf_permissions().await.is_empty());

    // A revoke whose entries all come back "No permissions revoked" (already done) is done.
    proxy.fail("BatchRevokePermissions", 1, Fault::no_permissions_revoked());
    c.revoke_lake_formation(&f.grants).await.unwrap();
    c.revoke_lake_formation(&f.grants).await.unwrap();
    assert_eq!(proxy.calls("BatchRevokePermissions"), 2);

    f.teardown().await;
    assert_eq!(f.leftovers().await, Vec::<String>::new());
}

/// A tiny HTTP POST over a plain TCP stream (moto's control API); keeps reqwest out of this crate.
async fn reqwest_free_post(url: &str, body: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 2") || resp.starts_with("HTTP/1.0 2"),
        "{resp}"
    );
}
