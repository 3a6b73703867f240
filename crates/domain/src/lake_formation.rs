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

impl LfGrant {
    /// Whether any of this entry's permissions is among `held` (the principal's permissions as
    /// Lake Formation lists them): what decides that a revoke Lake Formation refused is in
    /// fact done, by the state rather than by the wording of its refusal.
    pub fn is_held_in(&self, held: &[LfGrant]) -> bool {
        held.iter().any(|h| {
            h.principal_arn == self.principal_arn
                && h.permissions.iter().any(|p| self.permissions.contains(p))
                && match (&self.resource, &h.resource) {
                    (
                        LfResource::Database { catalog_id, name },
                        LfResource::Database {
                            catalog_id: c,
                            name: n,
                        },
                    ) => catalog_id == c && name == n,
                    (
                        LfResource::TableWithColumns {
                            catalog_id,
                            database,
                            table,
                            columns,
                        },
                        LfResource::TableWithColumns {
                            catalog_id: c,
                            database: d,
                            table: t,
                            columns: cols,
                        },
                    ) => {
                        catalog_id == c
                            && database == d
                            && table == t
                            && match (columns, cols) {
                                (LfColumns::Names(a), LfColumns::Names(b)) => {
                                    a.iter().any(|x| b.contains(x))
                                }
                                _ => true,
                            }
                    }
                    _ => false,
                }
        })
    }
}

/// DESCRIBE on every database named (and on `default`, which Athena requires: docs/aws.md §5),
/// SELECT on exactly the requested tables and columns. A request for all of a table's columns
/// gets the explicit list `approved_columns` gives for it (aligned with `resources`), never
/// Lake Formation's `ColumnWildcard`, which would also grant every column the table gains
/// later, sensitive ones included. Only when that list is empty (not known) is the wildcard
/// left.
pub fn plan_grants(
    catalog_id: &str,
    principal_arn: &str,
    resources: &[ResourceSpec],
    approved_columns: &[Vec<String>],
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
    let sorted = |cols: &[String]| {
        let mut cols = cols.to_vec();
        cols.sort();
        cols.dedup();
        LfColumns::Names(cols)
    };
    grants.extend(resources.iter().enumerate().map(|(i, r)| LfGrant {
        id: format!("table-{i}"),
        principal_arn: principal_arn.to_owned(),
        resource: LfResource::TableWithColumns {
            catalog_id: catalog_id.to_owned(),
            database: r.database.clone(),
            table: r.table.clone(),
            columns: match (&r.columns, approved_columns.get(i)) {
                (Some(cols), _) => sorted(cols),
                (None, Some(all)) if !all.is_empty() => sorted(all),
                (None, _) => LfColumns::All,
            },
        },
        permissions: vec![LfPermission::Select],
    }));
    grants
}

/// The columns an all-columns request is granted at approval: those the catalog had when it
/// was requested (what the approver was shown) that it still has, and those it has gained
/// since, which are not granted (to be flagged). `requested` empty means not known: then
/// everything the catalog has now.
pub fn approved_all_columns(requested: &[String], now: &[String]) -> (Vec<String>, Vec<String>) {
    if requested.is_empty() {
        return (now.to_vec(), Vec::new());
    }
    let granted = requested
        .iter()
        .filter(|c| now.contains(c))
        .cloned()
        .collect();
    let gained = now
        .iter()
        .filter(|c| !requested.contains(c))
        .cloned()
        .collect();
    (granted, gained)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_revoke_is_done_when_nothing_it_names_is_held() {
        let grant = |resource, permissions| LfGrant {
            id: "g".into(),
            principal_arn: "arn:aws:iam::1:role/lakegate/r".into(),
            resource,
            permissions,
        };
        let table = |cols: LfColumns| LfResource::TableWithColumns {
            catalog_id: "1".into(),
            database: "sales".into(),
            table: "orders".into(),
            columns: cols,
        };
        let wanted = grant(
            table(LfColumns::Names(vec!["a".into(), "b".into()])),
            vec![LfPermission::Select],
        );
        assert!(!wanted.is_held_in(&[]));
        let held_b = grant(
            table(LfColumns::Names(vec!["b".into()])),
            vec![LfPermission::Select],
        );
        assert!(wanted.is_held_in(std::slice::from_ref(&held_b)));
        let held_c = grant(
            table(LfColumns::Names(vec!["c".into()])),
            vec![LfPermission::Select],
        );
        assert!(!wanted.is_held_in(&[held_c]));
        assert!(wanted.is_held_in(&[grant(table(LfColumns::All), vec![LfPermission::Select])]));
        assert!(!wanted.is_held_in(&[grant(table(LfColumns::All), vec![LfPermission::Describe])]));
        let mut other_principal = held_b;
        other_principal.principal_arn = "arn:aws:iam::1:role/other".into();
        assert!(!wanted.is_held_in(&[other_principal]));
    }

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
        let catalog = vec![
            vec!["status".into(), "amount".into(), "order_id".into()],
            vec!["customer_id".into(), "email".into(), "phone".into()],
        ];
        let plan = plan_grants("123456789012", "arn:role", &resources, &catalog);
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
        // All columns: the explicit list, sorted, never the wildcard.
        assert_eq!(
            plan[2].resource,
            LfResource::TableWithColumns {
                catalog_id: "123456789012".into(),
                database: "sales".into(),
                table: "orders".into(),
                columns: LfColumns::Names(vec![
                    "amount".into(),
                    "order_id".into(),
                    "status".into()
                ]),
            }
        );
        // Not known (a request stored before columns were kept): the wildcard stays.
        let unknown = plan_grants("1", "arn", &resources[..1], &[]);
        assert!(matches!(
            &unknown[2].resource,
            LfResource::TableWithColumns {
                columns: LfColumns::All,
                ..
            }
        ));
    }

    #[test]
    fn all_columns_are_those_shown_that_still_exist() {
        let s = |v: &[&str]| v.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        let (granted, gained) =
            approved_all_columns(&s(&["id", "amount", "note"]), &s(&["id", "amount", "ssn"]));
        assert_eq!(granted, s(&["id", "amount"]));
        assert_eq!(gained, s(&["ssn"]));
        let (granted, gained) = approved_all_columns(&[], &s(&["id"]));
        assert_eq!(granted, s(&["id"]));
        assert!(gained.is_empty());
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
            &[],
        );
        let json = serde_json::to_string(&plan).unwrap();
        let back: Vec<LfGrant> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
        assert!(json.contains(r#""columns":"all""#), "{json}");
    }
}
