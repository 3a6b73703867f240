//! The orphan sweep through the real binary (`lakegate sweep [--dry-run]`), against a moto of
//! this test's own (a shared one holds other tests' live grants, which this database does not
//! know): orphans made behind lakegate's back are removed and audited, an active grant's
//! resources are untouched, and names lakegate does not give are left alone.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;

use lakegate_testkit::peers::{Moto, free_port};
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::aws_support::{conf_at, leftovers_at, seed_catalog_at};
use crate::binary::{Browser, Lakegate, base_env, database_url, run_to_end};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_sweep_removes_orphans_and_nothing_else(pool: PgPool) {
    let moto = Moto::start().await;
    let db = seed_catalog_at(Some(&moto.url), "sweep").await;
    let port = free_port();
    let mut env = base_env(&database_url(&pool), port);
    env.extend(
        [
            ("LAKEGATE_DEV_LOGIN", "true"),
            ("LAKEGATE_SWEEP_INTERVAL", "off"),
            ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let server = Lakegate::start(&env).await;

    // An active grant, made the ordinary way.
    let sign_in =
        async |email: &str, groups: &str| Browser::signed_in_dev(&server.base, email, groups).await;
    let alice = sign_in("alice@example.com", "analysts").await;
    let bob = sign_in("bob@example.com", "data-owners").await;
    let res = alice
        .submit(
            "/requests/new",
            "/requests",
            &[
                ("resources", &format!("{db}.orders")),
                ("duration", "1h"),
                ("reason", "the sweep must leave this alone"),
            ],
        )
        .await;
    let page = res.location.unwrap();
    let live = page.rsplit('/').next().unwrap().to_owned();
    let path = format!("/requests/{live}");
    let res = bob.submit(&path, &format!("{path}/approve"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let status = alice.wait_for_status(&path, "active").await;
    assert_eq!(status, "active", "{}", server.output());

    // Behind lakegate's back: a role under its path with a policy and a Lake Formation grant, a
    // workgroup under its prefix, and a role under its path with a name it never gives.
    let conf = conf_at(Some(&moto.url)).await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let orphan_id = uuid::Uuid::new_v4();
    let orphan_role = format!("lakegate-{orphan_id}");
    let orphan_wg = format!("lakegate-{}", uuid::Uuid::new_v4());
    for name in [orphan_role.as_str(), "someone-elses-role"] {
        iam.create_role()
            .role_name(name)
            .path("/lakegate/")
            .assume_role_policy_document(TRUST)
            .send()
            .await
            .unwrap();
    }
    iam.put_role_policy()
        .role_name(&orphan_role)
        .policy_name("leftover")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"athena:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let orphan_arn = format!("arn:aws:iam::123456789012:role/lakegate/{orphan_role}");
    let lf = aws_sdk_lakeformation::Client::new(&conf);
    use aws_sdk_lakeformation::types::{
        ColumnWildcard, DataLakePrincipal, Permission, Resource, TableWithColumnsResource,
    };
    lf.grant_permissions()
        .principal(
            DataLakePrincipal::builder()
                .data_lake_principal_identifier(&orphan_arn)
                .build(),
        )
        .resource(
            Resource::builder()
                .table_with_columns(
                    TableWithColumnsResource::builder()
                        .catalog_id("123456789012")
                        .database_name(&db)
                        .name("orders")
                        .column_wildcard(ColumnWildcard::builder().build())
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .permissions(Permission::Select)
        .send()
        .await
        .unwrap();
    aws_sdk_athena::Client::new(&conf)
        .create_work_group()
        .name(&orphan_wg)
        .send()
        .await
        .unwrap();

    // A dry run names them and removes nothing.
    let (ok, out) = run_to_end(&env, &["sweep", "--dry-run"]).await;
    assert!(ok.success(), "{out}");
    assert!(
        out.contains(&format!("would remove role {orphan_role}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("would remove workgroup {orphan_wg}")),
        "{out}"
    );
    assert!(out.contains("left alone role someone-elses-role"), "{out}");
    assert!(!out.contains(&live), "the live grant is no orphan: {out}");
    assert!(iam.get_role().role_name(&orphan_role).send().await.is_ok());

    // The sweep removes them, and audits each.
    let (ok, out) = run_to_end(&env, &["sweep"]).await;
    assert!(ok.success(), "{out}");
    assert!(out.contains("2 orphans found, 2 removed"), "{out}");
    assert!(iam.get_role().role_name(&orphan_role).send().await.is_err());
    assert!(
        iam.get_role()
            .role_name("someone-elses-role")
            .send()
            .await
            .is_ok(),
        "a name lakegate does not give is left alone"
    );
    let wg = aws_sdk_athena::Client::new(&conf)
        .get_work_group()
        .work_group(&orphan_wg)
        .send()
        .await;
    assert!(
        wg.map_or(true, |w| w.work_group().is_none()),
        "orphan workgroup left"
    );
    let perms = lf.list_permissions().send().await.unwrap();
    assert!(
        !perms.principal_resource_permissions().iter().any(|p| p
            .principal()
            .and_then(|p| p.data_lake_principal_identifier())
            == Some(orphan_arn.as_str())),
        "the orphan's Lake Formation grant is left"
    );
    let audited: Vec<String> = sqlx::query_scalar(
        "select detail->>'name' from audit_event where action = 'orphan.removed' order by detail->>'name'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected = vec![orphan_role.clone(), orphan_wg.clone()];
    expected.sort();
    assert_eq!(audited, expected);

    // The active grant has everything it had.
    let left = leftovers_at(Some(&moto.url), &live).await;
    assert!(left.contains(&"role".to_owned()), "{left:?}");
    assert!(left.contains(&"workgroup".to_owned()), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("grant")), "{left:?}");
    let again = run_to_end(&env, &["sweep"]).await.1;
    assert!(again.contains("0 orphans found"), "{again}");
}
