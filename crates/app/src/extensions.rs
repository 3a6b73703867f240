//! Extensions: the requester of an active grant asks for more time with a reason, and the
//! policy decides as it does for requests (auto-approval judged on the grant's new total,
//! otherwise the request's approvers). The total never passes the rules' maximum; an approved
//! extension moves `expires_at`, which the credentials URL and the reaper follow.

use lakegate_domain::audit::AuditAction;
use lakegate_domain::duration::parse_duration;
use lakegate_domain::policy_file::{Approver, RequestFacts};
use lakegate_domain::request::{parse_comment, parse_reason};
use lakegate_domain::{
    AccessRequest, Principal, RequestId, RequestStatus, TransitionError, ValidationError,
};
use lakegate_store::extensions;
use lakegate_store::requests::{self, Decision, NewDecision};
use serde_json::json;
use time::OffsetDateTime;

use crate::requests::{Decided, access, actor, approvals, lock_visible};
use crate::{AppError, Services, in_tx, record};

/// What became of a request for more time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extended {
    /// The policy approved it: the grant now ends at this time.
    Now(OffsetDateTime),
    /// Waiting for approvers.
    Pending,
}

fn not_active(request: &AccessRequest, action: &'static str) -> AppError {
    AppError::Conflict(TransitionError {
        from: request.status,
        action,
    })
}

/// The requester of an active grant asks for `extra` more time. The policy decides as for a
/// request (auto-approval judged on the grant's new total); the total never passes the rule's
/// maximum.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn extend(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    extra: &str,
    reason: &str,
) -> Result<Extended, AppError> {
    let extra = parse_duration(extra)?;
    let reason = parse_reason(reason)?;
    let now = svc.clock.now();
    let outcome = in_tx(svc, async |tx: &mut sqlx::PgConnection| {
        let (request, evaluation, approvals) = lock_visible(svc, &mut *tx, id, who).await?;
        let access = access(svc, &request, &evaluation, &approvals);
        access.check_extend(who)?;
        if !request.is_usable_at(now) {
            return Err(not_active(&request, "extend"));
        }
        evaluation.check_extension(request.granted_total(), extra)?;
        // Auto-approval looks at the whole access (what was granted plus this), asked by the
        // requester as they are now.
        let mut facts = RequestFacts::of(&request);
        facts.requester_groups.clone_from(&who.groups);
        facts.duration = request.granted_total() + extra;
        let auto =
            !request.break_glass && svc.settings.policy.evaluate(&facts).auto_approval.allowed;

        let Some(ext_id) = extensions::insert(&mut *tx, id, extra, &reason, now).await? else {
            return Err(ValidationError::new(
                "an extension of this grant is already waiting for approval",
            )
            .into());
        };
        record(
        &mut *tx,
        now,
        Some(id),
        Some(&actor(who)),
        AuditAction::ExtensionRequested,
        json!({ "extension_id": ext_id, "extra_seconds": extra.whole_seconds(), "reason": reason }),
    )
    .await?;
        let outcome = if auto {
            let Some(expires_at) =
                extensions::approve(&mut *tx, id, ext_id, extra, true, now).await?
            else {
                return Err(not_active(&request, "extend"));
            };
            record(
                &mut *tx,
                now,
                Some(id),
                None,
                AuditAction::ExtensionAutoApproved,
                json!({ "extension_id": ext_id, "expires_at": expires_at.unix_timestamp() }),
            )
            .await?;
            Extended::Now(expires_at)
        } else {
            Extended::Pending
        };
        Ok(outcome)
    })
    .await?;
    if let Extended::Now(_) = outcome {
        extension_applied(svc, id);
    }
    Ok(outcome)
}

/// The grant lasts longer: sessions cached for the old expiry are minted again, and the worker
/// looks at its schedule again.
fn extension_applied(svc: &Services, id: RequestId) {
    svc.forget_grant(id);
    svc.wake.notify_one();
}

/// Approve or deny the pending extension `extension` of a grant, under the same requirements
/// as the request itself.
#[tracing::instrument(skip_all, fields(request_id = %id, extension, approver = %who.subject))]
pub async fn decide_extension(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    extension: i64,
    decision: Decision,
    comment: Option<&str>,
) -> Result<Decided, AppError> {
    let comment = parse_comment(comment)?;
    let now = svc.clock.now();
    let outcome = in_tx(svc, async |tx: &mut sqlx::PgConnection| {
        let (request, evaluation, approvals) = lock_visible(svc, &mut *tx, id, who).await?;
        let access = access(svc, &request, &evaluation, &approvals);
        if request.status != RequestStatus::Active {
            return Err(not_active(&request, "extend"));
        }
        let Some(ext) = extensions::list(&mut *tx, id)
            .await?
            .into_iter()
            .find(|e| e.id == extension && e.status == extensions::ExtensionStatus::Pending)
        else {
            return Err(ValidationError::new("this extension has already been decided").into());
        };
        let mut ext_approvals = approvals_of_extension(&mut *tx, id, ext.id).await?;
        match decision {
            Decision::Approve => access.check_approve_with(who, &ext_approvals)?,
            Decision::Deny => access.check_deny(who)?,
        }
        if ext_approvals.iter().any(|a| a.subject == who.subject) {
            return Err(AppError::AlreadyDecided(crate::requests::ALREADY_APPROVED));
        }
        requests::record_decision(
            &mut *tx,
            NewDecision {
                request: id,
                extension: Some(ext.id),
                actor: &actor(who),
                groups: &who.groups,
                decision,
                comment: comment.as_deref(),
                at: now,
            },
        )
        .await?;
        let detail = |extra: serde_json::Value| {
            let mut d = json!({ "extension_id": ext.id, "comment": comment });
            if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
                d.extend(extra.clone());
            }
            d
        };
        let outcome = match decision {
            Decision::Deny => {
                extensions::deny(&mut *tx, ext.id, now).await?;
                record(
                    &mut *tx,
                    now,
                    Some(id),
                    Some(&actor(who)),
                    AuditAction::ExtensionDenied,
                    detail(json!({})),
                )
                .await?;
                Decided::Denied
            }
            Decision::Approve => {
                ext_approvals.push(Approver::from(who));
                let status = evaluation.approval_status(&ext_approvals);
                if status.satisfied {
                    let Some(expires_at) =
                        extensions::approve(&mut *tx, id, ext.id, ext.extra, false, now).await?
                    else {
                        return Err(not_active(&request, "extend"));
                    };
                    record(
                        &mut *tx,
                        now,
                        Some(id),
                        Some(&actor(who)),
                        AuditAction::ExtensionApproved,
                        detail(json!({ "expires_at": expires_at.unix_timestamp() })),
                    )
                    .await?;
                    Decided::Approved
                } else {
                    record(
                        &mut *tx,
                        now,
                        Some(id),
                        Some(&actor(who)),
                        AuditAction::ExtensionApprovalRecorded,
                        detail(json!({ "missing": status.missing })),
                    )
                    .await?;
                    Decided::NeedsMore(status.missing)
                }
            }
        };
        Ok(outcome)
    })
    .await?;
    if outcome == Decided::Approved {
        extension_applied(svc, id);
    }
    Ok(outcome)
}

async fn approvals_of_extension(
    conn: &mut sqlx::PgConnection,
    id: RequestId,
    extension: i64,
) -> Result<Vec<Approver>, AppError> {
    Ok(approvals(
        &requests::list_decisions(conn, id, Some(extension)).await?,
    ))
}
