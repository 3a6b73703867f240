//! Submitting, deciding, cancelling, revoking, extending and reading access requests.
//!
//! Every decision is taken under the policy in force ([`PolicyFile`]): a request is evaluated
//! from what was stored when it was submitted (its tables, the catalog's columns then, the
//! requester's groups then), so the page that explains a decision and the code that takes it
//! agree. Deciders of one request queue behind a row lock, so approvals that together fill the
//! policy always see each other.

use lakegate_domain::access::{AllowedActions, RequestAccess};
use lakegate_domain::audit::AuditAction;
use lakegate_domain::duration::parse_duration;
use lakegate_domain::lake_formation::{approved_all_columns, plan_grants};
use lakegate_domain::naming::GrantResources;
use lakegate_domain::policy_file::{
    ApprovalStatus, Approver, Evaluation, PolicyFile, RequestFacts, TableFacts,
};
use lakegate_domain::ports::TableLookup;
use lakegate_domain::request::{Event, Requester, parse_comment, parse_reason};
use lakegate_domain::steps::{ProvisionStep, RevokeStep};
use lakegate_domain::target::parse_resources;
use lakegate_domain::usage::{Price, QueryUsage, UsageSummary, summarize};
use lakegate_domain::{
    AccessRequest, EndState, Principal, RequestId, RequestStatus, ResourceSpec, ValidationError,
};
use lakegate_store::audit::{self, Actor, AuditEvent};
use lakegate_store::extensions::{self, Extension};
use lakegate_store::requests::{
    self, Decision, DecisionRecord, GrantPlan, NewDecision, NewRequest,
};
use lakegate_store::usage::{self, QueryPoint, StoredQuery};
use serde_json::json;

use crate::{AppError, Services, in_tx, record};

/// The new-request form, as typed.
#[derive(Debug, Clone, Default)]
pub struct SubmitInput<'a> {
    pub resources: &'a str,
    pub duration: &'a str,
    pub reason: &'a str,
    /// Activate at once, without approval (only for the policy's break-glass groups).
    pub break_glass: bool,
}

/// What became of a submitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Waiting for approvers.
    Pending,
    /// The policy approved it; access is being set up.
    AutoApproved,
    /// Break-glass: access is being set up now; approvers review it afterwards.
    BreakGlass,
}

pub(crate) fn actor(who: &Principal) -> Actor {
    Actor {
        subject: who.subject.clone(),
        email: who.email.clone(),
        via_token: who.via_token.clone(),
        via: who.via.clone(),
    }
}

/// The policy applied to a stored request.
pub(crate) fn evaluate(policy: &PolicyFile, request: &AccessRequest) -> Evaluation {
    policy.evaluate(&RequestFacts::of(request))
}

/// The approvals among `decisions`, with the approvers' groups when they approved.
pub(crate) fn approvals(decisions: &[DecisionRecord]) -> Vec<Approver> {
    decisions
        .iter()
        .filter(|d| d.decision == Decision::Approve)
        .map(|d| Approver {
            subject: d.actor.subject.clone(),
            groups: d.groups.clone(),
        })
        .collect()
}

/// Checks every requested table and column against the Glue catalog, and returns each table's
/// columns (what an all-columns request covers, and what the policy's sensitive patterns are
/// matched against).
///
/// Only tables the policy makes requestable are looked up, and a table that is not
/// requestable, does not exist, or sits in a database that does not exist gets one and the same
/// answer: the form tells nobody what the catalog holds beyond what they may ask for. Column
/// names are listed only for requestable tables.
async fn check_catalog(
    svc: &Services,
    resources: &[ResourceSpec],
) -> Result<Vec<Vec<String>>, AppError> {
    let not_found = |r: &ResourceSpec| -> AppError {
        ValidationError::new(format!(
            "`{}` is not found or not requestable: check the name, or ask an administrator which tables the policy lets people request",
            r.qualified_table()
        ))
        .into()
    };
    let mut catalog = Vec::with_capacity(resources.len());
    for r in resources {
        if !svc.settings.policy.is_requestable(&r.database, &r.table) {
            return Err(not_found(r));
        }
        let table = match svc.cloud.describe_table(&r.database, &r.table).await? {
            TableLookup::Found(t) => t,
            TableLookup::NoSuchDatabase | TableLookup::NoSuchTable => return Err(not_found(r)),
        };
        let known: Vec<&str> = table.column_names().collect();
        if let Some(cols) = &r.columns {
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
        catalog.push(known.into_iter().map(ToOwned::to_owned).collect());
    }
    Ok(catalog)
}

/// What the policy would make of a request for `resources` (and, when given, `duration`)
/// before it is submitted: the tables checked against the catalog exactly as [`submit`] checks
/// them, then evaluated. The new-request page shows it as the picker fills the form.
pub async fn preview(
    svc: &Services,
    who: &Principal,
    resources: &str,
    duration: Option<&str>,
) -> Result<Evaluation, AppError> {
    let resources = parse_resources(resources)?;
    let catalog = check_catalog(svc, &resources).await?;
    let tables: Vec<TableFacts> = resources
        .iter()
        .zip(&catalog)
        .map(|(spec, cols)| TableFacts::from_spec(spec, cols))
        .collect();
    let policy = &svc.settings.policy;
    let asked = duration
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(parse_duration)
        .transpose()?;
    // Without a duration, the one the policy proposes for these tables.
    let duration = match asked {
        Some(d) => d,
        None => {
            policy
                .evaluate(&RequestFacts::new(
                    who,
                    time::Duration::hours(1),
                    tables.clone(),
                ))
                .default_duration
        }
    };
    Ok(policy.evaluate(&RequestFacts::new(who, duration, tables)))
}

/// Validates the form, checks the catalog, applies the policy and stores the request: pending,
/// approved by the policy, or (break-glass) approved at once and flagged for review.
pub async fn submit(
    svc: &Services,
    who: &Principal,
    input: SubmitInput<'_>,
) -> Result<(RequestId, Submitted), AppError> {
    let resources = parse_resources(input.resources)?;
    submit_resources(svc, who, resources, input).await
}

/// [`submit`] with the tables already read (the JSON API's list); `input.resources` is not
/// looked at.
#[tracing::instrument(skip_all, fields(requester = %who.subject))]
pub async fn submit_resources(
    svc: &Services,
    who: &Principal,
    resources: Vec<ResourceSpec>,
    input: SubmitInput<'_>,
) -> Result<(RequestId, Submitted), AppError> {
    let duration = parse_duration(input.duration)?;
    let reason = parse_reason(input.reason)?;
    let catalog = check_catalog(svc, &resources).await?;
    let tables = resources
        .iter()
        .zip(&catalog)
        .map(|(spec, cols)| TableFacts::from_spec(spec, cols))
        .collect();
    let evaluation = svc
        .settings
        .policy
        .evaluate(&RequestFacts::new(who, duration, tables));
    // An agent acting for a person: named by its token, and never breaking the glass.
    let agent = who.agent.then_some(who.via_token.as_deref()).flatten();
    if who.agent && input.break_glass {
        return Err(ValidationError::new(
            "an agent may not break the glass: only the person it acts for can, themselves",
        )
        .into());
    }
    let outcome = if input.break_glass {
        evaluation.check_break_glass(duration)?;
        Submitted::BreakGlass
    } else {
        evaluation.check_duration(duration)?;
        if evaluation.auto_approval.allowed {
            Submitted::AutoApproved
        } else {
            Submitted::Pending
        }
    };

    let id = RequestId::new_random();
    let now = svc.clock.now();
    let requester = Requester {
        subject: who.subject.clone(),
        email: who.email.clone(),
        name: who.name.clone(),
    };
    let approver_groups = evaluation.approver_groups();
    let mut detail = json!({
        "resources": resources.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "duration_seconds": duration.whole_seconds(),
        "reason": reason,
        "break_glass": outcome == Submitted::BreakGlass,
        "rules": rules_by_table(&evaluation),
    });
    if let Some(agent) = agent {
        detail["agent"] = json!(agent);
        detail["on_behalf_of"] = json!(who.email);
    }
    let mut tx = svc.db.begin().await?;
    let cap = svc.settings.requests.max_pending_per_person;
    if outcome == Submitted::Pending && cap > 0 {
        let pending = requests::count_pending_locked(&mut tx, &who.subject).await?;
        if pending >= i64::from(cap) {
            return Err(ValidationError::new(format!(
                "you already have {pending} requests waiting for a decision, the most one person may have \
                 (LAKEGATE_MAX_PENDING_PER_PERSON); cancel some you no longer need, or wait for decisions"
            ))
            .into());
        }
    }
    requests::insert(
        &mut tx,
        NewRequest {
            id,
            requester: &requester,
            requester_groups: &who.groups,
            resources: &resources,
            catalog_columns: &catalog,
            approver_groups: &approver_groups,
            break_glass: outcome == Submitted::BreakGlass,
            agent,
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
        detail,
    )
    .await?;
    // The catalog was read just now: an all-columns grant covers exactly what it holds.
    let plan = grant_plan(svc, id, &resources, &catalog, &evaluation);
    match outcome {
        Submitted::Pending => {}
        Submitted::AutoApproved => {
            requests::approve(&mut tx, id, now, &plan, true).await?;
            record(
                &mut tx,
                now,
                Some(id),
                None,
                AuditAction::RequestAutoApproved,
                json!({ "rules": rules_by_table(&evaluation) }),
            )
            .await?;
        }
        Submitted::BreakGlass => {
            requests::approve(&mut tx, id, now, &plan, false).await?;
            record(
                &mut tx,
                now,
                Some(id),
                Some(&actor(who)),
                AuditAction::BreakGlassActivated,
                json!({
                    "reason": reason,
                    "duration_seconds": duration.whole_seconds(),
                    "rules": rules_by_table(&evaluation),
                }),
            )
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(request_id = %id, ?outcome, "request submitted");
    match outcome {
        Submitted::Pending => {}
        // Break-glass is told through the outbox, enqueued with its audit event.
        Submitted::AutoApproved | Submitted::BreakGlass => svc.wake.notify_one(),
    }
    Ok((id, outcome))
}

/// `{"sales.orders": ["sales"], ...}`: which rules applied, for the audit trail.
fn rules_by_table(e: &Evaluation) -> serde_json::Value {
    e.tables
        .iter()
        .map(|t| (format!("{}.{}", t.database, t.table), json!(t.rules)))
        .collect::<serde_json::Map<_, _>>()
        .into()
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

/// What lakegate will create for this request, derived from its id, with the limits the
/// policy sets for it.
/// `approved_columns` (aligned with `resources`) is what an all-columns resource is granted.
pub fn grant_plan(
    svc: &Services,
    id: RequestId,
    resources: &[ResourceSpec],
    approved_columns: &[Vec<String>],
    evaluation: &Evaluation,
) -> GrantPlan {
    let g = GrantResources::derive(id, svc.cloud.identity(), &svc.settings.results);
    GrantPlan {
        lf_grants: plan_grants(&g.account_id, &g.role_arn, resources, approved_columns),
        results_uri: g.results_uri(),
        role_name: g.role_name,
        role_arn: g.role_arn,
        workgroup: g.workgroup,
        first_step: ProvisionStep::first().as_str(),
        scan_cutoff_bytes: evaluation.scan_cutoff_bytes.value,
        scan_budget_bytes: evaluation.scan_budget_bytes.as_ref().map(|l| l.value),
    }
}

/// Reads a request for a change, locked until the transaction ends, with its evaluation and
/// the approvals it has; refused unless `who` may see it, so every verb checks that first.
pub(crate) async fn lock_visible(
    svc: &Services,
    conn: &mut sqlx::PgConnection,
    id: RequestId,
    who: &Principal,
) -> Result<(AccessRequest, Evaluation, Vec<Approver>), AppError> {
    let request = requests::find_for_update(conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let evaluation = evaluate(&svc.settings.policy, &request);
    let approvals = approvals(&requests::list_decisions(conn, id, None).await?);
    access(svc, &request, &evaluation, &approvals).check_view(who)?;
    Ok((request, evaluation, approvals))
}

pub(crate) fn access<'a>(
    svc: &'a Services,
    request: &'a AccessRequest,
    evaluation: &'a Evaluation,
    approvals: &'a [Approver],
) -> RequestAccess<'a> {
    RequestAccess {
        policy: &svc.settings.policy,
        request,
        evaluation,
        approvals,
    }
}

/// Why someone who approved cannot deny (or approve again): one decision per person.
pub(crate) const ALREADY_APPROVED: &str =
    "you have approved this already, and an approval stands: another approver can still deny it";

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The last approval needed: access is being set up.
    Approved,
    /// Recorded; these are still missing.
    NeedsMore(Vec<String>),
    Denied,
}

/// Approve or deny. An approval is recorded; the request is approved when the approvals so far
/// fill every requirement of the policy, and provisioning starts in the background.
#[tracing::instrument(skip_all, fields(request_id = %id, approver = %who.subject, ?decision))]
pub async fn decide(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    decision: Decision,
    comment: Option<&str>,
) -> Result<Decided, AppError> {
    let comment = parse_comment(comment)?;
    // Read before the transaction (AWS is never called inside one): what the catalog holds now
    // of each table asked for whole, in case this approval is the last one needed.
    let catalog_now = match decision {
        Decision::Approve => catalog_now(svc, id).await?,
        Decision::Deny => Vec::new(),
    };
    let now = svc.clock.now();
    let outcome = in_tx(svc, async |tx: &mut sqlx::PgConnection| {
        let (request, evaluation, mut approvals) = lock_visible(svc, &mut *tx, id, who).await?;
        let access = access(svc, &request, &evaluation, &approvals);
        let event = match decision {
            Decision::Approve => Event::Approve,
            Decision::Deny => Event::Deny,
        };
        request.status.next(event, None)?;
        match decision {
            Decision::Approve => access.check_approve(who)?,
            Decision::Deny => access.check_deny(who)?,
        }
        if approvals.iter().any(|a| a.subject == who.subject) {
            return Err(AppError::AlreadyDecided(ALREADY_APPROVED));
        }
        requests::record_decision(
            &mut *tx,
            NewDecision {
                request: id,
                extension: None,
                actor: &actor(who),
                groups: &who.groups,
                decision,
                comment: comment.as_deref(),
                at: now,
            },
        )
        .await?;
        let outcome = match decision {
            Decision::Deny => {
                // We hold the row lock and saw `pending`: the guarded update cannot lose.
                if !requests::deny(&mut *tx, id, now).await? {
                    return Err(lost_race(&mut *tx, id, event).await);
                }
                record(
                    &mut *tx,
                    now,
                    Some(id),
                    Some(&actor(who)),
                    AuditAction::RequestDenied,
                    json!({ "comment": comment }),
                )
                .await?;
                Decided::Denied
            }
            Decision::Approve => {
                approvals.push(Approver::from(who));
                let status = evaluation.approval_status(&approvals);
                if status.satisfied {
                    let (approved, gained) = approved_columns(&request, &catalog_now);
                    let plan = grant_plan(svc, id, &request.resources, &approved, &evaluation);
                    if !requests::approve(&mut *tx, id, now, &plan, false).await? {
                        return Err(lost_race(&mut *tx, id, event).await);
                    }
                    if !gained.is_empty() {
                        record(
                            &mut *tx,
                            now,
                            Some(id),
                            None,
                            AuditAction::GrantColumnsChanged,
                            json!({ "not_granted": gained, "when": "approval" }),
                        )
                        .await?;
                    }
                    record(
                        &mut *tx,
                        now,
                        Some(id),
                        Some(&actor(who)),
                        AuditAction::RequestApproved,
                        json!({
                            "comment": comment,
                            "approvers": approvals.iter().map(|a| &a.subject).collect::<Vec<_>>(),
                        }),
                    )
                    .await?;
                    Decided::Approved
                } else {
                    record(
                        &mut *tx,
                        now,
                        Some(id),
                        Some(&actor(who)),
                        AuditAction::ApprovalRecorded,
                        json!({ "comment": comment, "missing": status.missing }),
                    )
                    .await?;
                    Decided::NeedsMore(status.missing)
                }
            }
        };
        Ok(outcome)
    })
    .await?;
    tracing::info!(?outcome, "request decided");
    if outcome == Decided::Approved {
        svc.wake.notify_one();
    }
    Ok(outcome)
}

/// For each resource of request `id` that asks for all columns, the table's columns in the
/// catalog now (`None` for the others, and when the table cannot be read: the list stored at
/// submit stands).
async fn catalog_now(svc: &Services, id: RequestId) -> Result<Vec<Option<Vec<String>>>, AppError> {
    let request = {
        let mut conn = svc.db.acquire().await?;
        requests::find(&mut conn, id).await?
    };
    let Some(request) = request else {
        return Ok(Vec::new());
    };
    let mut now = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        now.push(match &r.columns {
            Some(_) => None,
            None => match svc.cloud.describe_table(&r.database, &r.table).await? {
                TableLookup::Found(t) => Some(t.column_names().map(ToOwned::to_owned).collect()),
                TableLookup::NoSuchDatabase | TableLookup::NoSuchTable => None,
            },
        });
    }
    Ok(now)
}

/// What each all-columns resource of `request` is granted, given the catalog `now` (from
/// [`catalog_now`]), and the columns tables gained since the request (`table: [columns]`),
/// which are not granted: the approver saw the list stored at submit.
fn approved_columns(
    request: &AccessRequest,
    now: &[Option<Vec<String>>],
) -> (Vec<Vec<String>>, serde_json::Map<String, serde_json::Value>) {
    let mut gained_by_table = serde_json::Map::new();
    let approved = request
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let stored = request.catalog_columns.get(i).cloned().unwrap_or_default();
            match (&r.columns, now.get(i).and_then(Option::as_ref)) {
                (None, Some(current)) => {
                    let (granted, gained) = approved_all_columns(&stored, current);
                    if !gained.is_empty() {
                        gained_by_table.insert(r.qualified_table(), json!(gained));
                    }
                    granted
                }
                _ => stored,
            }
        })
        .collect();
    (approved, gained_by_table)
}

/// An approver marks a break-glass grant as reviewed, with an optional comment.
#[tracing::instrument(skip_all, fields(request_id = %id, reviewer = %who.subject))]
pub async fn review(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    comment: Option<&str>,
) -> Result<(), AppError> {
    let comment = parse_comment(comment)?;
    let now = svc.clock.now();
    in_tx(svc, async |tx: &mut sqlx::PgConnection| {
        let (request, evaluation, approvals) = lock_visible(svc, &mut *tx, id, who).await?;
        let access = access(svc, &request, &evaluation, &approvals);
        access.check_review(who)?;
        if !request.needs_review() {
            return Err(ValidationError::new(if request.break_glass {
                "this break-glass access has already been reviewed"
            } else {
                "only break-glass access is reviewed; this request was approved"
            })
            .into());
        }
        if !requests::review(&mut *tx, id, &actor(who), comment.as_deref(), now).await? {
            return Err(ValidationError::new("this access has already been reviewed").into());
        }
        record(
            &mut *tx,
            now,
            Some(id),
            Some(&actor(who)),
            AuditAction::BreakGlassReviewed,
            json!({ "comment": comment }),
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// The requester withdraws a pending request.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn cancel(svc: &Services, who: &Principal, id: RequestId) -> Result<(), AppError> {
    let now = svc.clock.now();
    in_tx(svc, async |tx: &mut sqlx::PgConnection| {
        let (request, evaluation, approvals) = lock_visible(svc, &mut *tx, id, who).await?;
        let access = access(svc, &request, &evaluation, &approvals);
        access.check_cancel(who)?;
        request.status.next(Event::Cancel, None)?;
        if !requests::cancel(&mut *tx, id, now).await? {
            return Err(lost_race(&mut *tx, id, Event::Cancel).await);
        }
        record(
            &mut *tx,
            now,
            Some(id),
            Some(&actor(who)),
            AuditAction::RequestCancelled,
            json!({}),
        )
        .await?;
        Ok(())
    })
    .await?;
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
    in_tx(svc, async |tx: &mut sqlx::PgConnection| {
        let (request, evaluation, approvals) = lock_visible(svc, &mut *tx, id, who).await?;
        let access = access(svc, &request, &evaluation, &approvals);
        access.check_revoke(who)?;
        let event = Event::BeginRevoke(EndState::Revoked);
        request.status.next(event, None)?;
        let reason = match &comment {
            Some(c) => format!("revoked by {}: {c}", who.email),
            None => format!("revoked by {}", who.email),
        };
        if !requests::begin_revoke(
            &mut *tx,
            id,
            request.status,
            EndState::Revoked,
            &reason,
            RevokeStep::first().as_str(),
            now,
        )
        .await?
        {
            return Err(lost_race(&mut *tx, id, event).await);
        }
        record(
            &mut *tx,
            now,
            Some(id),
            Some(&actor(who)),
            AuditAction::RevokeRequested,
            json!({ "end_state": "revoked", "reason": reason, "from": request.status.as_str() }),
        )
        .await?;
        Ok(())
    })
    .await?;
    svc.forget_grant(id);
    svc.wake.notify_one();
    tracing::info!("revoke started");
    Ok(())
}

/// One request as its page shows it.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    pub request: AccessRequest,
    pub decisions: Vec<DecisionRecord>,
    /// One page of the request's events, oldest first.
    pub timeline: Vec<AuditEvent>,
    pub timeline_page: PageInfo,
    pub actions: AllowedActions,
    /// The policy applied to the request: which rules, what they require, what is sensitive.
    pub evaluation: Evaluation,
    /// How far the request is from approved (also shown once decided, as the record).
    pub approval: ApprovalStatus,
    pub extensions: Vec<ExtensionDetail>,
    /// One page of the grant's Athena queries as the monitor recorded them, newest first.
    pub queries: Vec<StoredQuery>,
    pub queries_page: PageInfo,
    /// Every query, without its SQL: for the usage chart.
    pub query_points: Vec<QueryPoint>,
    pub usage: UsageSummary,
}

/// An extension and how far it is from approved.
#[derive(Debug, Clone)]
pub struct ExtensionDetail {
    pub extension: Extension,
    pub decisions: Vec<DecisionRecord>,
    pub approval: ApprovalStatus,
}

pub async fn view(
    svc: &Services,
    who: &Principal,
    id: RequestId,
) -> Result<RequestDetail, AppError> {
    view_pages(svc, who, id, DetailPages::default()).await
}

/// A request's page with the given pages of its queries and of its timeline.
pub async fn view_pages(
    svc: &Services,
    who: &Principal,
    id: RequestId,
    pages: DetailPages,
) -> Result<RequestDetail, AppError> {
    let mut conn = svc.db.acquire().await?;
    let request = requests::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let evaluation = evaluate(&svc.settings.policy, &request);
    let decisions = requests::list_decisions(&mut conn, id, None).await?;
    let approvals = approvals(&decisions);
    let access = access(svc, &request, &evaluation, &approvals);
    access.check_view(who)?;
    let mut ext_details = Vec::new();
    for extension in extensions::list(&mut conn, id).await? {
        let decisions = requests::list_decisions(&mut conn, id, Some(extension.id)).await?;
        let approval = evaluation.approval_status(&self::approvals(&decisions));
        ext_details.push(ExtensionDetail {
            extension,
            decisions,
            approval,
        });
    }
    let pending_ext_approvals = ext_details
        .iter()
        .find(|e| e.extension.status == extensions::ExtensionStatus::Pending)
        .map(|e| self::approvals(&e.decisions));
    let events_total = audit::total_for_request(&mut conn, id).await?;
    let timeline_page = PageInfo::new(pages.events, events_total, EVENTS_PER_PAGE);
    let timeline = audit::page_for_request(
        &mut conn,
        id,
        timeline_page.offset(EVENTS_PER_PAGE),
        EVENTS_PER_PAGE,
    )
    .await?;
    let query_points = usage::points(&mut conn, id).await?;
    let queries_page = PageInfo::new(
        pages.queries,
        i64::try_from(query_points.len()).unwrap_or(i64::MAX),
        QUERIES_PER_PAGE,
    );
    let queries = usage::page(
        &mut conn,
        id,
        queries_page.offset(QUERIES_PER_PAGE),
        QUERIES_PER_PAGE,
    )
    .await?;
    Ok(RequestDetail {
        usage: summarize_queries(&query_points, svc.settings.monitor.price),
        actions: access.allowed_actions(who, pending_ext_approvals.as_deref()),
        approval: evaluation.approval_status(&approvals),
        request,
        decisions,
        timeline,
        timeline_page,
        evaluation,
        extensions: ext_details,
        queries,
        queries_page,
        query_points,
    })
}

/// How many of a grant's queries one page of its request shows (newest first).
pub const QUERIES_PER_PAGE: i64 = 50;
/// How many timeline events one page of a request shows (oldest first).
pub const EVENTS_PER_PAGE: i64 = 100;

/// Which page of a request's queries and of its timeline to show, from 1; a page past the
/// last shows the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailPages {
    pub queries: u32,
    pub events: u32,
}

impl Default for DetailPages {
    fn default() -> Self {
        Self {
            queries: 1,
            events: 1,
        }
    }
}

/// Where one page sits among all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// From 1.
    pub page: u32,
    /// At least 1, even with nothing to show.
    pub pages: u32,
    pub total: i64,
}

impl PageInfo {
    fn new(asked: u32, total: i64, per_page: i64) -> Self {
        let pages =
            u32::try_from(((total.max(0) + per_page - 1) / per_page).max(1)).unwrap_or(u32::MAX);
        Self {
            page: asked.clamp(1, pages),
            pages,
            total,
        }
    }

    fn offset(self, per_page: i64) -> i64 {
        i64::from(self.page - 1) * per_page
    }
}

/// The totals of a grant's recorded queries.
pub(crate) fn summarize_queries(queries: &[QueryPoint], price: Price) -> UsageSummary {
    let usage: Vec<QueryUsage> = queries
        .iter()
        .map(|q| QueryUsage {
            state: q.state,
            bytes_scanned: q.bytes_scanned,
            flags: q.flags.clone(),
        })
        .collect();
    summarize(&usage, price)
}

/// The home page: my requests, and for approvers and admins what needs them and what is live.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    pub mine: Vec<AccessRequest>,
    /// In some approver group of the policy.
    pub is_approver: bool,
    pub is_admin: bool,
    /// Pending requests of other people that this approver can decide, with what each still
    /// needs and the sensitive columns it would expose.
    pub pending: Vec<Queued>,
    /// Pending extensions of other people's grants this approver can decide.
    pub extensions: Vec<(AccessRequest, Extension)>,
    /// Break-glass grants this approver should review.
    pub needs_review: Vec<AccessRequest>,
    /// Grants being provisioned, live, or being torn down, that this person approves (all of
    /// them for an admin).
    pub live: Vec<AccessRequest>,
}

/// A request in an approver's queue.
#[derive(Debug, Clone)]
pub struct Queued {
    pub request: AccessRequest,
    /// `1 more approval from data-owners (defaults)`, one line per unfilled requirement.
    pub missing: Vec<String>,
    /// `database.table.column` for each sensitive column the request touches.
    pub sensitive: Vec<String>,
}

/// The most of each queue one page shows.
const QUEUE_LIMIT: i64 = 500;

/// Each queue is selected in SQL by the approver groups stored with each request (so requests
/// this person cannot decide never crowd out those they can), then checked against the policy
/// in force.
pub async fn dashboard(svc: &Services, who: &Principal) -> Result<Dashboard, AppError> {
    let policy = &svc.settings.policy;
    let mut conn = svc.db.acquire().await?;
    let mine = requests::list_by_requester(&mut conn, &who.subject, 100).await?;
    let is_approver = policy.approves_anything(who);
    let is_admin = policy.is_admin(who);
    let mut board = Dashboard {
        mine,
        is_approver,
        is_admin,
        ..Dashboard::default()
    };
    if !is_approver && !is_admin {
        return Ok(board);
    }
    let approves = |r: &AccessRequest| evaluate(policy, r).is_approver(&Approver::from(who));
    let live_states = [
        RequestStatus::Approved,
        RequestStatus::Active,
        RequestStatus::Revoking,
    ];
    if is_approver {
        let pending: Vec<AccessRequest> = requests::list_for_approver(
            &mut conn,
            &[RequestStatus::Pending],
            &who.groups,
            &who.subject,
            QUEUE_LIMIT,
        )
        .await?
        .into_iter()
        .filter(|r| approves(r))
        .collect();
        let ids: Vec<RequestId> = pending.iter().map(|r| r.id).collect();
        let mut decisions = requests::list_decisions_of(&mut conn, &ids).await?;
        board.pending = pending
            .into_iter()
            .map(|request| {
                let evaluation = evaluate(policy, &request);
                let done = decisions.remove(&request.id).unwrap_or_default();
                Queued {
                    missing: evaluation.approval_status(&approvals(&done)).missing,
                    sensitive: evaluation
                        .sensitive_columns
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    request,
                }
            })
            .collect();
        board.needs_review = requests::list_needing_review(&mut conn, QUEUE_LIMIT)
            .await?
            .into_iter()
            .filter(|r| approves(r))
            .collect();
        for ext in
            extensions::list_pending_for_approver(&mut conn, &who.groups, &who.subject, QUEUE_LIMIT)
                .await?
        {
            if let Some(r) = requests::find(&mut conn, ext.request).await?
                && approves(&r)
            {
                board.extensions.push((r, ext));
            }
        }
    }
    board.live = if is_admin {
        requests::list_by_status(&mut conn, &live_states, QUEUE_LIMIT).await?
    } else {
        requests::list_for_approver(
            &mut conn,
            &live_states,
            &who.groups,
            &who.subject,
            QUEUE_LIMIT,
        )
        .await?
        .into_iter()
        .filter(|r| approves(r))
        .collect()
    };
    Ok(board)
}
