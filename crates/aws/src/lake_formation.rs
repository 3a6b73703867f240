//! Lake Formation: granting and revoking exactly the stored entries.

use aws_sdk_lakeformation::Client;
use aws_sdk_lakeformation::types::{
    BatchPermissionsFailureEntry, BatchPermissionsRequestEntry, ColumnWildcard, DataLakePrincipal,
    DatabaseResource, Permission, Resource, TableWithColumnsResource,
};
use lakegate_domain::lake_formation::{LfColumns, LfGrant, LfPermission, LfResource};
use lakegate_domain::ports::CloudError;

use crate::error::{classify, classify_code};

/// The id `plan_grants` gives DESCRIBE on the `default` database.
const DEFAULT_DATABASE_ENTRY: &str = "db-default";

/// Entries per batch call (the API's limit is on the total request; 20 keeps well inside it).
const BATCH: usize = 20;

/// Builds the SDK entry from the stored canonical form, the same way every time, so that a
/// revoke matches its grant exactly.
fn entry(g: &LfGrant) -> Result<BatchPermissionsRequestEntry, CloudError> {
    let build = |e: aws_sdk_lakeformation::error::BuildError| {
        CloudError::Other(format!("grant {}: {e}", g.id))
    };
    let resource = match &g.resource {
        LfResource::Database { catalog_id, name } => Resource::builder()
            .database(
                DatabaseResource::builder()
                    .catalog_id(catalog_id)
                    .name(name)
                    .build()
                    .map_err(build)?,
            )
            .build(),
        LfResource::TableWithColumns {
            catalog_id,
            database,
            table,
            columns,
        } => {
            let t = TableWithColumnsResource::builder()
                .catalog_id(catalog_id)
                .database_name(database)
                .name(table);
            let t = match columns {
                LfColumns::All => t.column_wildcard(ColumnWildcard::builder().build()),
                LfColumns::Names(names) => t.set_column_names(Some(names.clone())),
            };
            Resource::builder()
                .table_with_columns(t.build().map_err(build)?)
                .build()
        }
    };
    let permissions = g
        .permissions
        .iter()
        .map(|p| match p {
            LfPermission::Describe => Permission::Describe,
            LfPermission::Select => Permission::Select,
        })
        .collect();
    BatchPermissionsRequestEntry::builder()
        .id(&g.id)
        .principal(
            DataLakePrincipal::builder()
                .data_lake_principal_identifier(&g.principal_arn)
                .build(),
        )
        .resource(resource)
        .set_permissions(Some(permissions))
        .build()
        .map_err(build)
}

fn failure_error(op: &str, f: &BatchPermissionsFailureEntry) -> (String, String, CloudError) {
    let id = f
        .request_entry()
        .map(|e| e.id())
        .unwrap_or_default()
        .to_owned();
    let code = f
        .error()
        .and_then(|e| e.error_code())
        .unwrap_or_default()
        .to_owned();
    let message = f
        .error()
        .and_then(|e| e.error_message())
        .unwrap_or_default()
        .to_owned();
    let err = classify_code(
        &code,
        &message,
        400,
        format!("{op} entry {id}: {code}: {message}"),
    );
    (code, message, err)
}

pub(crate) async fn grant(
    lf: &Client,
    catalog_id: &str,
    grants: &[LfGrant],
) -> Result<(), CloudError> {
    for chunk in grants.chunks(BATCH) {
        let entries = chunk.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
        let out = lf
            .batch_grant_permissions()
            .catalog_id(catalog_id)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("lakeformation:BatchGrantPermissions", e))?;
        for f in out.failures() {
            let (code, _, err) = failure_error("lakeformation:BatchGrantPermissions", f);
            // Athena wants DESCRIBE on `default` (docs/aws.md §5), but an account may not have that
            // database; without it there is nothing to describe and the grant is moot.
            let entry_id = f.request_entry().map(|e| e.id()).unwrap_or_default();
            if entry_id == DEFAULT_DATABASE_ENTRY && code == "EntityNotFoundException" {
                tracing::warn!("no `default` database in the catalog; skipping DESCRIBE on it");
                continue;
            }
            return Err(err);
        }
    }
    Ok(())
}

pub(crate) async fn revoke(
    lf: &Client,
    catalog_id: &str,
    grants: &[LfGrant],
) -> Result<(), CloudError> {
    // Entries Lake Formation refused to revoke; done if the principal no longer holds them.
    let mut refused: Vec<(&LfGrant, CloudError)> = Vec::new();
    for chunk in grants.chunks(BATCH) {
        let entries = chunk.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
        let out = lf
            .batch_revoke_permissions()
            .catalog_id(catalog_id)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("lakeformation:BatchRevokePermissions", e))?;
        for f in out.failures() {
            let (code, _, err) = failure_error("lakeformation:BatchRevokePermissions", f);
            // The table/database itself is gone, and its grants with it: the goal is reached.
            if code == "EntityNotFoundException" {
                continue;
            }
            if matches!(err, CloudError::Transient(_) | CloudError::Denied(_)) {
                return Err(err);
            }
            // Already revoked or never granted comes back as a refusal (docs/aws.md §6):
            // decided below by what the principal still holds, not by the message's wording.
            let id = f.request_entry().map(|e| e.id()).unwrap_or_default();
            match chunk.iter().find(|g| g.id == id) {
                Some(g) => refused.push((g, err)),
                None => return Err(err),
            }
        }
    }
    let Some(principal) = refused.first().map(|(g, _)| g.principal_arn.clone()) else {
        return Ok(());
    };
    let held = grants_of(lf, catalog_id, &principal).await?;
    match refused.into_iter().find(|(g, _)| g.is_held_in(&held)) {
        Some((_, err)) => Err(err),
        None => Ok(()),
    }
}

/// The permissions `principal_arn` holds, as entries `revoke` takes. Listed unfiltered and
/// matched here (not every implementation filters on the principal); entries on resources
/// lakegate never grants (plain tables, data locations, tags) are left out, with a warning.
pub(crate) async fn grants_of(
    lf: &Client,
    account_id: &str,
    principal_arn: &str,
) -> Result<Vec<LfGrant>, CloudError> {
    let mut grants = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = lf
            .list_permissions()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify("lakeformation:ListPermissions", e))?;
        for p in page.principal_resource_permissions() {
            if p.principal()
                .and_then(|p| p.data_lake_principal_identifier())
                != Some(principal_arn)
            {
                continue;
            }
            let permissions: Vec<LfPermission> = p
                .permissions()
                .iter()
                .filter_map(|perm| match perm {
                    Permission::Select => Some(LfPermission::Select),
                    Permission::Describe => Some(LfPermission::Describe),
                    _ => None,
                })
                .collect();
            let resource = p.resource().and_then(|r| {
                if let Some(db) = r.database() {
                    Some(LfResource::Database {
                        catalog_id: db.catalog_id().unwrap_or(account_id).to_owned(),
                        name: db.name().to_owned(),
                    })
                } else {
                    r.table_with_columns()
                        .map(|t| LfResource::TableWithColumns {
                            catalog_id: t.catalog_id().unwrap_or(account_id).to_owned(),
                            database: t.database_name().to_owned(),
                            table: t.name().to_owned(),
                            columns: if t.column_wildcard().is_some() {
                                LfColumns::All
                            } else {
                                LfColumns::Names(t.column_names().to_vec())
                            },
                        })
                }
            });
            match resource {
                Some(resource) if !permissions.is_empty() => grants.push(LfGrant {
                    id: format!("found-{}", grants.len()),
                    principal_arn: principal_arn.to_owned(),
                    resource,
                    permissions,
                }),
                _ => tracing::warn!(
                    principal = principal_arn,
                    resource = ?p.resource(),
                    "a Lake Formation permission of a kind lakegate does not grant is left in place"
                ),
            }
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return Ok(grants),
        }
    }
}
