//! Athena: the grant's own workgroup, its queries, and its deletion; and the query console's
//! calls, made with the grant's own session.

use std::collections::HashSet;

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{
    QueryExecutionContext, ResultConfiguration, Tag, WorkGroupConfiguration,
    WorkGroupConfigurationUpdates,
};
use lakegate_domain::ports::{CloudError, QueryExecution, QueryRun, ResultPage, WorkgroupSpec};
use lakegate_domain::usage::QueryState;
use time::OffsetDateTime;

use crate::error::{classify, code_of};

async fn workgroup_exists(athena: &Client, name: &str) -> Result<bool, CloudError> {
    match athena.get_work_group().work_group(name).send().await {
        Ok(out) => Ok(out.work_group().is_some()),
        Err(e) if code_of(&e) == Some("InvalidRequestException") => Ok(false),
        Err(e) => Err(classify("athena:GetWorkGroup", e)),
    }
}

pub(crate) async fn create_workgroup(
    athena: &Client,
    spec: &WorkgroupSpec,
) -> Result<(), CloudError> {
    let configuration = WorkGroupConfiguration::builder()
        .result_configuration(
            ResultConfiguration::builder()
                .output_location(&spec.output_location)
                .build(),
        )
        // The workgroup's settings override the client's: output location and scan cutoff hold.
        .enforce_work_group_configuration(true)
        .bytes_scanned_cutoff_per_query(spec.bytes_scanned_cutoff)
        .publish_cloud_watch_metrics_enabled(true)
        .build();
    let tags: Vec<Tag> = spec
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let created = athena
        .create_work_group()
        .name(&spec.name)
        .description("lakegate: queries of one approved request")
        .configuration(configuration)
        .set_tags(Some(tags))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        // "already created" comes back as InvalidRequestException: confirm it is there.
        Err(e) if code_of(&e) == Some("InvalidRequestException") => {
            if workgroup_exists(athena, &spec.name).await? {
                Ok(())
            } else {
                Err(classify("athena:CreateWorkGroup", e))
            }
        }
        Err(e) => Err(classify("athena:CreateWorkGroup", e)),
    }
}

/// The ids of every query of the workgroup, newest first, all pages.
/// The ids of the workgroup's queries not in `known`, newest first. Athena lists newest first
/// (docs/aws.md §21), so the listing stops after a page of known ids only: everything past it
/// is older, and was seen before. A missing workgroup has none.
pub(crate) async fn new_query_ids(
    athena: &Client,
    workgroup: &str,
    known: &HashSet<String>,
) -> Result<Vec<String>, CloudError> {
    if !workgroup_exists(athena, workgroup).await? {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = athena
            .list_query_executions()
            .work_group(workgroup)
            .max_results(50)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| classify("athena:ListQueryExecutions", e))?;
        let page_ids = page.query_execution_ids();
        let all_known = !page_ids.is_empty() && page_ids.iter().all(|id| known.contains(id));
        ids.extend(page_ids.iter().filter(|id| !known.contains(*id)).cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() && !all_known => next = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(ids)
}

/// Athena describes at most this many queries per `BatchGetQueryExecution`.
const BATCH: usize = 50;

/// These queries with their details, in batches of [`BATCH`]. Ids Athena could not describe
/// this time are left out, to be asked for again.
pub(crate) async fn describe_queries(
    athena: &Client,
    ids: &[String],
) -> Result<Vec<QueryExecution>, CloudError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH) {
        let page = athena
            .batch_get_query_execution()
            .set_query_execution_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| classify("athena:BatchGetQueryExecution", e))?;
        for missed in page.unprocessed_query_execution_ids() {
            tracing::debug!(id = ?missed.query_execution_id(), error = ?missed.error_message(),
                "Athena did not describe a query; it is looked at again next time");
        }
        out.extend(page.query_executions().iter().filter_map(execution));
    }
    Ok(out)
}

fn execution(q: &aws_sdk_athena::types::QueryExecution) -> Option<QueryExecution> {
    let status = q.status();
    let state = status
        .and_then(|s| s.state())
        .map(|s| s.as_str())
        .and_then(QueryState::parse)
        // A state this version does not know yet is treated as still going: looked at again.
        .unwrap_or(QueryState::Running);
    let stats = q.statistics();
    let at = |t: Option<&aws_sdk_athena::primitives::DateTime>| {
        t.and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok())
    };
    Some(QueryExecution {
        id: q.query_execution_id()?.to_owned(),
        sql: q.query().unwrap_or_default().to_owned(),
        database: q
            .query_execution_context()
            .and_then(|c| c.database())
            .map(ToOwned::to_owned),
        state,
        state_change_reason: status
            .and_then(|s| s.state_change_reason())
            .map(ToOwned::to_owned),
        bytes_scanned: stats.and_then(|s| s.data_scanned_in_bytes()).unwrap_or(0),
        engine_ms: stats
            .and_then(|s| s.engine_execution_time_in_millis())
            .unwrap_or(0),
        submitted_at: at(status.and_then(|s| s.submission_date_time())),
        completed_at: at(status.and_then(|s| s.completion_date_time())),
    })
}

/// Stops every queued or running query of the workgroup. A missing workgroup has none.
pub(crate) async fn stop_running_queries(
    athena: &Client,
    workgroup: &str,
) -> Result<u32, CloudError> {
    let mut stopped = 0;
    // Described a batch at a time, so a workgroup of many queries costs little memory.
    let ids = new_query_ids(athena, workgroup, &HashSet::new()).await?;
    for chunk in ids.chunks(BATCH) {
        for q in describe_queries(athena, chunk).await? {
            if q.state.is_final() {
                continue;
            }
            athena
                .stop_query_execution()
                .query_execution_id(&q.id)
                .send()
                .await
                .map_err(|e| classify("athena:StopQueryExecution", e))?;
            tracing::info!(%workgroup, query_execution_id = %q.id, "stopped running query");
            stopped += 1;
        }
    }
    Ok(stopped)
}

/// Sets the workgroup's per-query cutoff.
pub(crate) async fn set_workgroup_cutoff(
    athena: &Client,
    workgroup: &str,
    bytes: i64,
) -> Result<(), CloudError> {
    athena
        .update_work_group()
        .work_group(workgroup)
        .configuration_updates(
            WorkGroupConfigurationUpdates::builder()
                .bytes_scanned_cutoff_per_query(bytes)
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("athena:UpdateWorkGroup", e))?;
    Ok(())
}

pub(crate) async fn delete_workgroup(athena: &Client, workgroup: &str) -> Result<(), CloudError> {
    match athena
        .delete_work_group()
        .work_group(workgroup)
        .recursive_delete_option(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == Some("InvalidRequestException") => {
            if workgroup_exists(athena, workgroup).await? {
                Err(classify("athena:DeleteWorkGroup", e))
            } else {
                Ok(())
            }
        }
        Err(e) => Err(classify("athena:DeleteWorkGroup", e)),
    }
}

// ---------------------------------------------------------------------------------------------
// The query console: these run on a client holding the grant's own session.

/// Starts a console statement in the grant's workgroup. With no token of the caller's, the SDK
/// makes one up, so a retried call never starts the statement twice.
pub(crate) async fn start_query(athena: &Client, run: &QueryRun<'_>) -> Result<String, CloudError> {
    let context = QueryExecutionContext::builder()
        .catalog("AwsDataCatalog")
        .set_database(run.database.map(ToOwned::to_owned))
        .build();
    let out = athena
        .start_query_execution()
        .query_string(run.sql)
        .work_group(run.workgroup)
        .query_execution_context(context)
        .set_client_request_token(run.client_token.map(ToOwned::to_owned))
        .send()
        .await
        .map_err(|e| classify("athena:StartQueryExecution", e))?;
    out.query_execution_id()
        .map(ToOwned::to_owned)
        .ok_or_else(|| CloudError::Other("athena:StartQueryExecution: no query id".into()))
}

pub(crate) async fn get_query(athena: &Client, id: &str) -> Result<QueryExecution, CloudError> {
    let out = athena
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await
        .map_err(|e| classify("athena:GetQueryExecution", e))?;
    out.query_execution()
        .and_then(execution)
        .ok_or_else(|| CloudError::NotFound(format!("athena:GetQueryExecution: no query {id}")))
}

pub(crate) async fn query_results(
    athena: &Client,
    id: &str,
    from: Option<&str>,
    max_rows: i32,
) -> Result<ResultPage, CloudError> {
    let out = athena
        .get_query_results()
        .query_execution_id(id)
        .set_next_token(from.map(ToOwned::to_owned))
        .max_results(max_rows.clamp(1, 1000))
        .send()
        .await
        .map_err(|e| classify("athena:GetQueryResults", e))?;
    let set = out.result_set();
    let columns: Vec<String> = set
        .and_then(|s| s.result_set_metadata())
        .map(|m| {
            m.column_info()
                .iter()
                .map(|c| c.label().unwrap_or(c.name()).to_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut rows: Vec<Vec<Option<String>>> = set
        .map(|s| {
            s.rows()
                .iter()
                .map(|r| {
                    r.data()
                        .iter()
                        .map(|d| d.var_char_value().map(ToOwned::to_owned))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    // A SELECT's first page starts with the column names as a row; statements like SHOW and
    // DESCRIBE have none.
    if from.is_none() && is_header(rows.first(), &columns) {
        rows.remove(0);
    }
    Ok(ResultPage {
        columns,
        rows,
        next: out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(ToOwned::to_owned),
    })
}

fn is_header(row: Option<&Vec<Option<String>>>, columns: &[String]) -> bool {
    row.is_some_and(|row| {
        !columns.is_empty()
            && row.len() == columns.len()
            && row
                .iter()
                .zip(columns)
                .all(|(v, c)| v.as_deref() == Some(c))
    })
}

pub(crate) async fn stop_query(athena: &Client, id: &str) -> Result<(), CloudError> {
    athena
        .stop_query_execution()
        .query_execution_id(id)
        .send()
        .await
        .map_err(|e| classify("athena:StopQueryExecution", e))?;
    Ok(())
}

/// Every workgroup whose name starts with `prefix`.
pub(crate) async fn list_workgroups(
    athena: &Client,
    prefix: &str,
) -> Result<Vec<String>, CloudError> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = athena
            .list_work_groups()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify("athena:ListWorkGroups", e))?;
        names.extend(
            page.work_groups()
                .iter()
                .filter_map(|w| w.name())
                .filter(|n| n.starts_with(prefix))
                .map(ToOwned::to_owned),
        );
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return Ok(names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(ToOwned::to_owned)).collect()
    }

    #[test]
    fn the_header_row_is_the_column_names_in_order() {
        let columns = vec!["id".to_owned(), "amount".to_owned()];
        assert!(is_header(
            Some(&row(&[Some("id"), Some("amount")])),
            &columns
        ));
        assert!(!is_header(
            Some(&row(&[Some("amount"), Some("id")])),
            &columns
        ));
        assert!(!is_header(Some(&row(&[Some("1"), Some("9.99")])), &columns));
        assert!(!is_header(Some(&row(&[Some("id"), None])), &columns));
        assert!(!is_header(Some(&row(&[Some("id")])), &columns));
        assert!(!is_header(None, &columns));
        assert!(!is_header(Some(&row(&[])), &[]));
    }
}
