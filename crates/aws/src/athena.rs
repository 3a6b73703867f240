//! Athena: the grant's own workgroup, its queries, and its deletion.

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{
    ResultConfiguration, Tag, WorkGroupConfiguration, WorkGroupConfigurationUpdates,
};
use lakegate_domain::ports::{CloudError, QueryExecution, WorkgroupSpec};
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
async fn query_ids(athena: &Client, workgroup: &str) -> Result<Vec<String>, CloudError> {
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
        ids.extend(page.query_execution_ids().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(ids)
}

/// Athena describes at most this many queries per `BatchGetQueryExecution`.
const BATCH: usize = 50;

/// Every query of the workgroup with its details. A missing workgroup has none. Ids Athena
/// could not describe this time are left for the next look.
pub(crate) async fn query_executions(
    athena: &Client,
    workgroup: &str,
) -> Result<Vec<QueryExecution>, CloudError> {
    if !workgroup_exists(athena, workgroup).await? {
        return Ok(Vec::new());
    }
    let ids = query_ids(athena, workgroup).await?;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH) {
        let page = athena
            .batch_get_query_execution()
            .set_query_execution_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| classify("athena:BatchGetQueryExecution", e))?;
        for missed in page.unprocessed_query_execution_ids() {
            tracing::debug!(%workgroup, id = ?missed.query_execution_id(), error = ?missed.error_message(),
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
    for q in query_executions(athena, workgroup).await? {
        if !q.state.is_final() {
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
