//! Athena: the grant's own workgroup, its queries, and its deletion.

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{
    QueryExecutionState, ResultConfiguration, Tag, WorkGroupConfiguration,
};
use lakegate_domain::ports::{CloudError, WorkgroupSpec};

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

/// Stops every queued or running query of the workgroup. A missing workgroup has none.
pub(crate) async fn stop_running_queries(
    athena: &Client,
    workgroup: &str,
) -> Result<u32, CloudError> {
    if !workgroup_exists(athena, workgroup).await? {
        return Ok(0);
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
        ids.extend(page.query_execution_ids().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => break,
        }
    }
    let mut stopped = 0;
    for id in ids {
        let out = athena
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| classify("athena:GetQueryExecution", e))?;
        let state = out
            .query_execution()
            .and_then(|q| q.status())
            .and_then(|s| s.state());
        if matches!(
            state,
            Some(QueryExecutionState::Queued | QueryExecutionState::Running)
        ) {
            athena
                .stop_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .map_err(|e| classify("athena:StopQueryExecution", e))?;
            tracing::info!(%workgroup, query_execution_id = %id, "stopped running query");
            stopped += 1;
        }
    }
    Ok(stopped)
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
