//! Submitting, deciding, cancelling, revoking and reading access requests.

use lakegate_domain::audit::AuditAction;
use lakegate_domain::duration::parse_duration;
use lakegate_domain::lake_formation::plan_grants;
use lakegate_domain::naming::GrantResources;
use lakegate_domain::policy::AllowedActions;
use lakegate_domain::ports::TableLookup;
use lakegate_domain::request::{Event, Requester, parse_comment, parse_reason};
use lakegate_domain::steps::{ProvisionStep, RevokeStep};
use lakegate_domain::target::parse_resources;
use lakegate_domain::{
    AccessRequest, EndState, Principal, RequestId, RequestStatus, ResourceSpec, ValidationError,
};
use lakegate_store::audit::{self, Actor, AuditEvent};
use lakegate_store::requests::{self, Decision, DecisionRecord, GrantPlan, NewRequest};
use serde_json::json;

use crate::{AppError, Services, record};

/// The new-request form, as typed.
#[derive(Debug, Clone, Default)]
pub struct SubmitInput<'a> {
    pub resources: &'a str,
    pub duration: &'a str,
    pub reason: &'a str,
}

pub(crate) fn actor(who: &Principal) -> Actor {
    Actor {
        subject: who.subject.clone(),
        email: who.email.clone(),
    }
}

/// Checks every requested table and column against the Glue catalog.
async fn check_catalog(svc: &Services, resources: &[ResourceSpec]) -> Result<(), AppError> {
    for r in resources {
        let table = match svc.cloud.describe_table(&r.database, &r.table).await? {
            TableLookup::Found(t) => t,
            TableLookup::NoSuchDatabase => {
                return Err(ValidationError::new(format!(
                    "there is no database `{}` in the catalog",
                    r.database
                ))
                .into());
            }
            TableLookup::NoSuchTable => {
                return Err(ValidationError::new(format!(
                    "there is no table `{}` in database `{}`",
                    r.table, r.database
                ))
                .into());
            }
        };
        if let Some(cols) = &r.columns {
            let known: Vec<&str> = table.column_names().collect();
            let unknown: Vec<&str> = cols
                .iter()
                .map(String::as_str)
                .filter(|c| !known.contains(c))
                .collect();
            if !unknown.is_empty() {
                return Err(ValidationError::new(format!(
                    "{} has no column {}; its columns are: {}",
                    r.qualified_table(),
                    unknown
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    known.join(", ")
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// Validates the form, checks the catalog, stores the request as `pending`.
#[tracing::instrument(skip_all, fields(requester = %who.subject))]
pub async fn submit(
    svc: &Services,
    who: &Principal,
    input: SubmitInput<'_>,
) -> Result<RequestId, AppError> {
    let resources = parse_resources(input.resources)?;
    let duration = parse_duration(input.duration)?;
    svc.settings.policy.check_duration(duration)?;
    let reason = parse_reason(input.reason)?;
    check_catalog(svc, &resources).await?;

    let id = RequestId::new_random();
    let now = svc.clock.now();
    let requester = Requester {
        subject: who.subject.clone(),
        email: who.email.clone(),
        name: who.name.clone(),
    };
    let mut tx = svc.db.begin().await?;
    requests::insert(
        &mut tx,
        NewRequest {
            id,
            requester: &requester,
            resources: &resources,
            duration,
            reason: &reason,
            at: now,
        },
    )
    .await?;
    record(
        &mut tx,
        now,
        Some(id),
        Some(&actor(who)),
        AuditAction::RequestSubmitted,
        json!({
            "resources": resources.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "duration_seconds": duration.whole_seconds(),
            "reason": reason,
        }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(request_id = %id, "request submitted");
    Ok(id)
}

/// The guarded update found the request in another state than just read: someone else acted in
/// between. Report the state they left it in.
async fn lost_race(conn: &mut sqlx::PgConnection, id: RequestId, event: Event) -> AppError {
    match requests::get(conn, id).await {
        Ok(current) => current
            .status
            .next(event, None)
            .err()
            .map_or(AppError::NotFound, AppError::Conflict),
        Err(e) => e.into(),
    }
}

/// What lakegate will create for this request, derived from its id.
pub fn grant_plan(svc: &Services, request: &AccessRequest) -> GrantPlan {
    let g = GrantResources::derive(request.id, svc.cloud.identity(), &svc.settings.results);
    GrantPlan {
        lf_grants: plan_grants(&g.account_id, &g.role_arn, &request.resources),
        results_uri: g.results_uri(),
        role_name: g.role_name,
        role_arn: g.role_arn,
        workgroup: g.workgroup,
        first_step: ProvisionStep::first().as_str(),
    }
}

/// Approve (provisioning starts in the background) or deny.
#[tracing::instrument(skip_all, fields(request_id = %id, approver = %who.subject, ?decision))]
pub async fn decide(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    decision: Decision,
    comment: Option<&str>,
) -> Result<(), AppError> {
    let comment = parse_comment(comment)?;
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let request = requests::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    svc.settings.policy.check_view(who, &request)?;
    svc.settings.policy.check_decide(who, &request)?;
    let (event, action) = match decision {
        Decision::Approve => (Event::Approve, AuditAction::RequestApproved),
        Decision::Deny => (Event::Deny, AuditAction::RequestDenied),
    };
    request.status.next(event, None)?;
    let won = match decision {
        Decision::Approve => {
            requests::approve(&mut tx, id, now, &grant_plan(svc, &request)).await?
        }
        Decision::Deny => requests::deny(&mut tx, id, now).await?,
    };
    if !won {
        // Someone else decided between our read and our write: report the state they left.
        return Err(lost_race(&mut tx, id, event).await);
    }
    requests::record_decision(&mut tx, id, &actor(who), decision, comment.as_deref(), now).await?;
    record(
        &mut tx,
        now,
        Some(id),
        Some(&actor(who)),
        action,
        json!({ "comment": comment }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!("request decided");
    if decision == Decision::Approve {
        svc.wake.notify_one();
    }
    Ok(())
}

/// The requester withdraws a pending request.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn cancel(svc: &Services, who: &Principal, id: RequestId) -> Result<(), AppError> {
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let request = requests::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    svc.settings.policy.check_view(who, &request)?;
    svc.settings.policy.check_cancel(who, &request)?;
    request.status.next(Event::Cancel, None)?;
    if !requests::cancel(&mut tx, id, now).await? {
        return Err(lost_race(&mut tx, id, Event::Cancel).await);
    }
    record(
        &mut tx,
        now,
        Some(id),
        Some(&actor(who)),
        AuditAction::RequestCancelled,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends access early. The credentials URL refuses from this moment; the worker tears the grant
/// down in the background.
#[tracing::instrument(skip_all, fields(request_id = %id, by = %who.subject))]
pub async fn revoke(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    comment: Option<&str>,
) -> Result<(), AppError> {
    let comment = parse_comment(comment)?;
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let request = requests::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    svc.settings.policy.check_view(who, &request)?;
    svc.settings.policy.check_revoke(who, &request)?;
    let event = Event::BeginRevoke(EndState::Revoked);
    request.status.next(event, None)?;
    let reason = match &comment {
        Some(c) => format!("revoked by {}: {c}", who.email),
        None => format!("revoked by {}", who.email),
    };
    if !requests::begin_revoke(
        &mut tx,
        id,
        request.status,
        EndState::Revoked,
        &reason,
        RevokeStep::first().as_str(),
        now,
    )
    .await?
    {
        return Err(lost_race(&mut tx, id, event).await);
    }
    record(
        &mut tx,
        now,
        Some(id),
        Some(&actor(who)),
        AuditAction::RevokeRequested,
        json!({ "end_state": "revoked", "reason": reason, "from": request.status.as_str() }),
    )
    .await?;
    tx.commit().await?;
    svc.sessions.forget(id);
    svc.wake.notify_one();
    tracing::info!("revoke started");
    Ok(())
}

/// One request as its page shows it.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    pub request: AccessRequest,
    pub decisions: Vec<DecisionRecord>,
    pub timeline: Vec<AuditEvent>,
    pub actions: AllowedActions,
    pub viewer_is_requester: bool,
}

pub async fn view(
    svc: &Services,
    who: &Principal,
    id: RequestId,
) -> Result<RequestDetail, AppError> {
    let mut conn = svc.db.acquire().await?;
    let request = requests::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    svc.settings.policy.check_view(who, &request)?;
    let decisions = requests::list_decisions(&mut conn, id).await?;
    let timeline = audit::list_for_request(&mut conn, id).await?;
    Ok(RequestDetail {
        actions: svc.settings.policy.allowed_actions(who, &request),
        viewer_is_requester: request.requester.subject == who.subject,
        request,
        decisions,
        timeline,
    })
}

/// The home page: my requests, and for approvers the queue and what is live.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    pub mine: Vec<AccessRequest>,
    pub is_approver: bool,
    /// Pending requests of other people that this approver can decide.
    pub pending: Vec<AccessRequest>,
    /// Grants being provisioned, live, or being torn down.
    pub live: Vec<AccessRequest>,
}

pub async fn dashboard(svc: &Services, who: &Principal) -> Result<Dashboard, AppError> {
    let mut conn = svc.db.acquire().await?;
    let mine = requests::list_by_requester(&mut conn, &who.subject, 100).await?;
    let is_approver = svc.settings.policy.is_approver(who);
    let (pending, live) = if is_approver {
        let pending = requests::list_by_status(&mut conn, &[RequestStatus::Pending], 200)
            .await?
            .into_iter()
            .filter(|r| r.requester.subject != who.subject)
            .collect();
        let live = requests::list_by_status(
            &mut conn,
            &[
                RequestStatus::Approved,
                RequestStatus::Active,
                RequestStatus::Revoking,
            ],
            200,
        )
        .await?;
        (pending, live)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Dashboard {
        mine,
        is_approver,
        pending,
        live,
    })
}
