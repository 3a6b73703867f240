//! IAM: the ephemeral role, its inline policies, and its deletion.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use lakegate_domain::iam_policy::{revoke_policy, superseded_sessions_policy};
use lakegate_domain::naming::{REVOKE_POLICY_NAME, SUPERSEDED_POLICY_NAME, TAG_REQUEST};
use lakegate_domain::ports::{CloudError, RoleSpec};
use time::OffsetDateTime;

use crate::error::{classify, code_of};

pub(crate) async fn create_role(iam: &Client, spec: &RoleSpec) -> Result<(), CloudError> {
    let tags = spec
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CloudError::Other(format!("role tag: {e}")))?;
    let created = iam
        .create_role()
        .role_name(&spec.name)
        .path(&spec.path)
        .assume_role_policy_document(&spec.trust_policy)
        .permissions_boundary(&spec.permissions_boundary_arn)
        .max_session_duration(spec.max_session_seconds)
        .description("lakegate: temporary access for one approved request")
        .set_tags(Some(tags))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == Some("EntityAlreadyExists") => confirm_own_role(iam, spec).await,
        Err(e) => Err(classify("iam:CreateRole", e)),
    }
}

/// A role of that name exists: fine if it is the one an earlier run created for this request.
async fn confirm_own_role(iam: &Client, spec: &RoleSpec) -> Result<(), CloudError> {
    let out = iam
        .get_role()
        .role_name(&spec.name)
        .send()
        .await
        .map_err(|e| classify("iam:GetRole", e))?;
    let expected = spec
        .tags
        .iter()
        .find(|(k, _)| k == TAG_REQUEST)
        .map(|(_, v)| v.as_str());
    let actual = out.role().and_then(|r| {
        r.tags()
            .iter()
            .find(|t| t.key() == TAG_REQUEST)
            .map(|t| t.value())
    });
    if expected.is_some() && expected == actual {
        Ok(())
    } else {
        Err(CloudError::Rejected(format!(
            "role {} exists but was not created by lakegate for this request",
            spec.name
        )))
    }
}

pub(crate) async fn role_exists(iam: &Client, role: &str) -> Result<bool, CloudError> {
    match iam.get_role().role_name(role).send().await {
        Ok(_) => Ok(true),
        Err(e) if code_of(&e) == Some("NoSuchEntity") => Ok(false),
        Err(e) => Err(classify("iam:GetRole", e)),
    }
}

pub(crate) async fn put_role_policy(
    iam: &Client,
    role: &str,
    name: &str,
    document: &str,
) -> Result<(), CloudError> {
    iam.put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(document)
        .send()
        .await
        .map(drop)
        .map_err(|e| classify("iam:PutRolePolicy", e))
}

pub(crate) async fn deny_all_sessions(iam: &Client, role: &str) -> Result<bool, CloudError> {
    match put_role_policy(iam, role, REVOKE_POLICY_NAME, &revoke_policy()).await {
        Ok(()) => Ok(true),
        Err(CloudError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) async fn deny_sessions_issued_before(
    iam: &Client,
    role: &str,
    cutoff: OffsetDateTime,
) -> Result<(), CloudError> {
    put_role_policy(
        iam,
        role,
        SUPERSEDED_POLICY_NAME,
        &superseded_sessions_policy(cutoff),
    )
    .await
}

/// Managed policies someone attached to the role: DeleteRole refuses while any remain, and
/// lakegate attaches none itself, so whoever attached one cannot keep a grant's role alive.
/// `Ok(false)` when the role is gone.
async fn detach_managed_policies(iam: &Client, role: &str) -> Result<bool, CloudError> {
    let mut marker: Option<String> = None;
    let mut arns = Vec::new();
    loop {
        let page = match iam
            .list_attached_role_policies()
            .role_name(role)
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(false),
            Err(e) => return Err(classify("iam:ListAttachedRolePolicies", e)),
        };
        arns.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned)),
        );
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    for arn in arns {
        tracing::warn!(role, policy = %arn, "detaching a managed policy someone attached to a grant's role");
        match iam
            .detach_role_policy()
            .role_name(role)
            .policy_arn(&arn)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if code_of(&e) == Some("NoSuchEntity") => {}
            Err(e) => return Err(classify("iam:DetachRolePolicy", e)),
        }
    }
    Ok(true)
}

/// Attached managed policies and inline policies first (DeleteRole refuses while any remain),
/// then the role.
pub(crate) async fn delete_role(iam: &Client, role: &str) -> Result<(), CloudError> {
    if !detach_managed_policies(iam, role).await? {
        return Ok(());
    }
    let mut marker: Option<String> = None;
    let mut names = Vec::new();
    loop {
        let page = iam
            .list_role_policies()
            .role_name(role)
            .set_marker(marker.take())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(()),
            Err(e) => return Err(classify("iam:ListRolePolicies", e)),
        };
        names.extend(page.policy_names().iter().cloned());
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    for name in names {
        match iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(&name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if code_of(&e) == Some("NoSuchEntity") => {}
            Err(e) => return Err(classify("iam:DeleteRolePolicy", e)),
        }
    }
    match iam.delete_role().role_name(role).send().await {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == Some("NoSuchEntity") => Ok(()),
        // A policy (inline or managed) appeared meanwhile: the next attempt lists again.
        Err(e) if code_of(&e) == Some("DeleteConflict") => Err(CloudError::Transient(format!(
            "iam:DeleteRole: {role} still has policies attached"
        ))),
        Err(e) => Err(classify("iam:DeleteRole", e)),
    }
}

/// Every role under `path` (like `/lakegate/`), by name.
pub(crate) async fn list_roles(iam: &Client, path: &str) -> Result<Vec<String>, CloudError> {
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam
            .list_roles()
            .path_prefix(path)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| classify("iam:ListRoles", e))?;
        names.extend(
            page.roles()
                .iter()
                // The prefix matches `/lakegate/…` deeper paths too; only lakegate's own path.
                .filter(|r| r.path() == path)
                .map(|r| r.role_name().to_owned()),
        );
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_owned()),
            _ => return Ok(names),
        }
    }
}
