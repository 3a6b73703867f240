//! Glue: checking requested tables and columns against the catalog.

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
            Ok(TableLookup::Found(TableInfo {
                database: database.to_owned(),
                name: t.name().to_owned(),
                columns: t
                    .storage_descriptor()
                    .map(|sd| sd.columns().iter().map(column).collect())
                    .unwrap_or_default(),
                partition_keys: t.partition_keys().iter().map(column).collect(),
            }))
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
