//! AWS helpers shared by the server's test binaries (included with `#[path]`): a catalog of the
//! test's own in moto, and what is left in AWS of a request.
#![allow(
    dead_code,
    reason = "helpers shared by several test binaries; each uses some"
)]

/// The SDK configuration for moto at `endpoint`, or at AWS_ENDPOINT_URL.
pub async fn conf_at(endpoint: Option<&str>) -> aws_config::SdkConfig {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run the tests with scripts/test, which starts moto");
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// A Glue database of the test's own (`<prefix>_<random>`) holding `orders(order_id, email)`.
pub async fn seed_catalog(prefix: &str) -> String {
    seed_catalog_at(None, prefix).await
}

/// The same, in the moto at `endpoint` (AWS_ENDPOINT_URL's when `None`).
pub async fn seed_catalog_at(endpoint: Option<&str>, prefix: &str) -> String {
    use aws_sdk_glue::types::{Column, DatabaseInput, StorageDescriptor, TableInput};
    let conf = conf_at(endpoint).await;
    let glue = aws_sdk_glue::Client::new(&conf);
    let db = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
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
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    db
}

/// What is left in AWS of request `id`: its role, its workgroup, and each Lake Formation grant
/// to its role (listed unfiltered and matched here: moto cannot filter on column grants).
pub async fn leftovers(id: &str) -> Vec<String> {
    leftovers_at(None, id).await
}

/// The same, in the moto at `endpoint` (AWS_ENDPOINT_URL's when `None`).
pub async fn leftovers_at(endpoint: Option<&str>, id: &str) -> Vec<String> {
    let conf = conf_at(endpoint).await;
    let name = format!("lakegate-{id}");
    let mut left = Vec::new();
    if aws_sdk_iam::Client::new(&conf)
        .get_role()
        .role_name(&name)
        .send()
        .await
        .is_ok()
    {
        left.push("role".to_owned());
    }
    let wg = aws_sdk_athena::Client::new(&conf)
        .get_work_group()
        .work_group(&name)
        .send()
        .await
        .unwrap();
    if wg.work_group().is_some() {
        left.push("workgroup".to_owned());
    }
    let arn = format!("arn:aws:iam::123456789012:role/lakegate/{name}");
    let perms = aws_sdk_lakeformation::Client::new(&conf)
        .list_permissions()
        .send()
        .await
        .unwrap();
    for p in perms.principal_resource_permissions() {
        if p.principal()
            .and_then(|p| p.data_lake_principal_identifier())
            == Some(arn.as_str())
        {
            left.push(format!("grant {:?}", p.resource()));
        }
    }
    // Query results under the grant's prefix of the tests' results location (a moto without
    // that bucket holds none).
    if let Ok(objects) = results_s3(&conf)
        .list_objects_v2()
        .bucket(RESULTS_BUCKET)
        .prefix(format!("lakegate/{id}/"))
        .send()
        .await
    {
        left.extend(
            objects
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| format!("results object {k}")),
        );
    }
    left
}

/// The names of what AWS holds for lakegate, in one sweep: roles under `/lakegate/`,
/// workgroups, and the role names Lake Formation grants are made to.
pub async fn names_in_aws() -> std::collections::HashSet<String> {
    let conf = conf_at(None).await;
    let mut names = std::collections::HashSet::new();
    let mut roles = aws_sdk_iam::Client::new(&conf)
        .list_roles()
        .path_prefix("/lakegate/")
        .into_paginator()
        .send();
    while let Some(page) = roles.next().await {
        names.extend(
            page.unwrap()
                .roles()
                .iter()
                .map(|r| r.role_name().to_owned()),
        );
    }
    let mut groups = aws_sdk_athena::Client::new(&conf)
        .list_work_groups()
        .into_paginator()
        .send();
    while let Some(page) = groups.next().await {
        names.extend(
            page.unwrap()
                .work_groups()
                .iter()
                .filter_map(|w| w.name().map(str::to_owned)),
        );
    }
    let perms = aws_sdk_lakeformation::Client::new(&conf)
        .list_permissions()
        .send()
        .await
        .unwrap();
    for p in perms.principal_resource_permissions() {
        if let Some(arn) = p
            .principal()
            .and_then(|p| p.data_lake_principal_identifier())
            && let Some(name) = arn.rsplit('/').next()
        {
            names.insert(name.to_owned());
        }
    }
    names
}

/// The bucket of the tests' results location, `s3://lakegate-athena-results/lakegate/`.
pub const RESULTS_BUCKET: &str = "lakegate-athena-results";

/// An S3 client for moto (one endpoint: path-style addressing).
pub fn results_s3(conf: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .build(),
    )
}
