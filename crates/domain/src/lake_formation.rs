//! The Lake Formation grants of one request, in a canonical form. lakegate stores exactly these
//! entries when a request is approved and revokes exactly the same entries later: Lake
//! Formation (and moto) only revoke what matches the grant's shape, so the shape must never
//! be rebuilt differently (sorted columns, explicit catalog id; docs/aws.md §5, §6).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::target::ResourceSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LfPermission {
    Describe,
    Select,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LfColumns {
    /// Every column, now and later (`ColumnWildcard {}`).
    All,
    /// Exactly these, sorted.
    Names(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LfResource {
    Database {
        catalog_id: String,
        name: String,
    },
    TableWithColumns {
        catalog_id: String,
        database: String,
        table: String,
        columns: LfColumns,
    },
}

/// One entry of a BatchGrantPermissions / BatchRevokePermissions call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfGrant {
    /// Unique within the request; the batch entry id.
    pub id: String,
    pub principal_arn: String,
    pub resource: LfResource,
    pub permissions: Vec<LfPermission>,
}

/// DESCRIBE on every database named (and on `default`, which Athena requires: docs/aws.md §5),
/// SELECT on exactly the requested tables and columns.
pub fn plan_grants(
    catalog_id: &str,
    principal_arn: &str,
    resources: &[ResourceSpec],
) -> Vec<LfGrant> {
    let mut databases: BTreeSet<&str> = resources.iter().map(|r| r.database.as_str()).collect();
    databases.insert("default");
    let mut grants: Vec<LfGrant> = databases
        .into_iter()
        .map(|db| LfGrant {
            id: format!("db-{db}"),
            principal_arn: principal_arn.to_owned(),
            resource: LfResource::Database {
                catalog_id: catalog_id.to_owned(),
                name: db.to_owned(),
            },
            permissions: vec![LfPermission::Describe],
        })
        .collect();
    grants.extend(resources.iter().enumerate().map(|(i, r)| LfGrant {
        id: format!("table-{i}"),
        principal_arn: principal_arn.to_owned(),
        resource: LfResource::TableWithColumns {
            catalog_id: catalog_id.to_owned(),
            database: r.database.clone(),
            table: r.table.clone(),
            columns: match &r.columns {
                None => LfColumns::All,
                Some(cols) => {
                    let mut cols = cols.clone();
                    cols.sort();
                    cols.dedup();
                    LfColumns::Names(cols)
                }
            },
        },
        permissions: vec![LfPermission::Select],
    }));
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_databases_default_and_exact_columns() {
        let resources = vec![
            ResourceSpec {
                database: "sales".into(),
                table: "orders".into(),
                columns: None,
            },
            ResourceSpec {
                database: "sales".into(),
                table: "customers".into(),
                columns: Some(vec!["email".into(), "customer_id".into()]),
            },
        ];
        let plan = plan_grants("123456789012", "arn:role", &resources);
        let ids: Vec<&str> = plan.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["db-default", "db-sales", "table-0", "table-1"]);
        assert_eq!(
            plan[3].resource,
            LfResource::TableWithColumns {
                catalog_id: "123456789012".into(),
                database: "sales".into(),
                table: "customers".into(),
                columns: LfColumns::Names(vec!["customer_id".into(), "email".into()]),
            }
        );
        assert_eq!(plan[2].permissions, [LfPermission::Select]);
        assert_eq!(plan[0].permissions, [LfPermission::Describe]);
    }

    #[test]
    fn stored_form_round_trips_exactly() {
        let plan = plan_grants(
            "1",
            "arn",
            &[ResourceSpec {
                database: "hr".into(),
                table: "employees".into(),
                columns: None,
            }],
        );
        let json = serde_json::to_string(&plan).unwrap();
        let back: Vec<LfGrant> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
        assert!(json.contains(r#""columns":"all""#), "{json}");
    }
}
