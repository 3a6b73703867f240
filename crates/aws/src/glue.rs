//! Glue: checking requested tables and columns against the catalog, and listing what it holds.

use aws_sdk_glue::Client;
use aws_sdk_glue::types::Column;
use lakegate_domain::ports::{CloudError, ColumnInfo, TableInfo, TableLookup};

use crate::error::{classify, code_of};

fn column(c: &Column) -> ColumnInfo {
    ColumnInfo {
        name: c.name().to_owned(),
        data_type: c.r#type().unwrap_or_default().to_owned(),
        comment: c.comment().map(ToOwned::to_owned),
    }
}

fn table_info(database: &str, t: &aws_sdk_glue::types::Table) -> TableInfo {
    TableInfo {
        database: database.to_owned(),
        name: t.name().to_owned(),
        columns: t
            .storage_descriptor()
            .map(|sd| sd.columns().iter().map(column).collect())
            .unwrap_or_default(),
        partition_keys: t.partition_keys().iter().map(column).collect(),
    }
}

/// `glue:GetDatabases` and `glue:GetTables`, page by page, until `limit` tables are read.
pub(crate) async fn list_tables(
    glue: &Client,
    database: Option<&str>,
    limit: usize,
) -> Result<(Vec<TableInfo>, bool), CloudError> {
    let databases = match database {
        Some(d) => vec![d.to_owned()],
        None => {
            let mut names = Vec::new();
            let mut pages = glue.get_databases().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("glue:GetDatabases", e))?;
                names.extend(page.database_list().iter().map(|d| d.name().to_owned()));
            }
            names
        }
    };
    let mut tables = Vec::new();
    for db in &databases {
        let mut pages = glue.get_tables().database_name(db).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                // A database named by the caller that does not exist holds no tables.
                Err(e) if code_of(&e) == Some("EntityNotFoundException") => break,
                Err(e) => return Err(classify("glue:GetTables", e)),
            };
            for t in page.table_list() {
                if tables.len() == limit {
                    return Ok((tables, true));
                }
                tables.push(table_info(db, t));
            }
        }
    }
    Ok((tables, false))
}

pub(crate) async fn describe_table(
    glue: &Client,
    database: &str,
    table: &str,
) -> Result<TableLookup, CloudError> {
    match glue
        .get_table()
        .database_name(database)
        .name(table)
        .send()
        .await
    {
        Ok(out) => {
            let t = out
                .table()
                .ok_or_else(|| CloudError::Other("glue:GetTable returned no table".into()))?;
            Ok(TableLookup::Found(table_info(database, t)))
        }
        Err(e) if code_of(&e) == Some("EntityNotFoundException") => {
            // Tell a missing database from a missing table.
            match glue.get_database().name(database).send().await {
                Ok(_) => Ok(TableLookup::NoSuchTable),
                Err(e) if code_of(&e) == Some("EntityNotFoundException") => {
                    Ok(TableLookup::NoSuchDatabase)
                }
                Err(e) => Err(classify("glue:GetDatabase", e)),
            }
        }
        Err(e) => Err(classify("glue:GetTable", e)),
    }
}
