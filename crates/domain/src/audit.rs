//! The facts the audit trail records. Each is written in the same transaction as the change it
//! describes, and never updated or deleted.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditAction {
    SignedIn,
    RequestSubmitted,
    RequestApproved,
    RequestDenied,
    RequestCancelled,
    ProvisioningStepFailed,
    GrantActivated,
    CredentialsTokenIssued,
    CredentialsMinted,
    RevokeRequested,
    RevokeStepFailed,
    GrantEnded,
    ApprovalRecorded,
    RequestAutoApproved,
    BreakGlassActivated,
    BreakGlassReviewed,
    ExtensionRequested,
    ExtensionApprovalRecorded,
    ExtensionApproved,
    ExtensionAutoApproved,
    ExtensionDenied,
    BudgetWarning,
    BudgetCutoffLowered,
    QueryFlagged,
    QueryStarted,
    QueryRefused,
    QueryStopped,
    OrphanRemoved,
    RequestLapsed,
    ExtensionLapsed,
    GrantColumnsChanged,
    ApiTokenCreated,
    ApiTokenRevoked,
    GrantExpiringSoon,
}

impl AuditAction {
    pub const ALL: [Self; 34] = [
        Self::SignedIn,
        Self::RequestSubmitted,
        Self::RequestApproved,
        Self::RequestDenied,
        Self::RequestCancelled,
        Self::ProvisioningStepFailed,
        Self::GrantActivated,
        Self::CredentialsTokenIssued,
        Self::CredentialsMinted,
        Self::RevokeRequested,
        Self::RevokeStepFailed,
        Self::GrantEnded,
        Self::ApprovalRecorded,
        Self::RequestAutoApproved,
        Self::BreakGlassActivated,
        Self::BreakGlassReviewed,
        Self::ExtensionRequested,
        Self::ExtensionApprovalRecorded,
        Self::ExtensionApproved,
        Self::ExtensionAutoApproved,
        Self::ExtensionDenied,
        Self::BudgetWarning,
        Self::BudgetCutoffLowered,
        Self::QueryFlagged,
        Self::QueryStarted,
        Self::QueryRefused,
        Self::QueryStopped,
        Self::OrphanRemoved,
        Self::RequestLapsed,
        Self::ExtensionLapsed,
        Self::GrantColumnsChanged,
        Self::ApiTokenCreated,
        Self::ApiTokenRevoked,
        Self::GrantExpiringSoon,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedIn => "user.signed_in",
            Self::RequestSubmitted => "request.submitted",
            Self::RequestApproved => "request.approved",
            Self::RequestDenied => "request.denied",
            Self::RequestCancelled => "request.cancelled",
            Self::ProvisioningStepFailed => "provisioning.step_failed",
            Self::GrantActivated => "grant.activated",
            Self::CredentialsTokenIssued => "credentials.token_issued",
            Self::CredentialsMinted => "credentials.minted",
            Self::RevokeRequested => "grant.revoke_started",
            Self::RevokeStepFailed => "revoke.step_failed",
            Self::GrantEnded => "grant.ended",
            Self::ApprovalRecorded => "request.approval_recorded",
            Self::RequestAutoApproved => "request.auto_approved",
            Self::BreakGlassActivated => "request.break_glass",
            Self::BreakGlassReviewed => "request.break_glass_reviewed",
            Self::ExtensionRequested => "extension.requested",
            Self::ExtensionApprovalRecorded => "extension.approval_recorded",
            Self::ExtensionApproved => "extension.approved",
            Self::ExtensionAutoApproved => "extension.auto_approved",
            Self::ExtensionDenied => "extension.denied",
            Self::BudgetWarning => "budget.warning",
            Self::BudgetCutoffLowered => "budget.cutoff_lowered",
            Self::QueryFlagged => "query.flagged",
            Self::QueryStarted => "query.started",
            Self::QueryRefused => "query.refused",
            Self::QueryStopped => "query.stopped",
            Self::OrphanRemoved => "orphan.removed",
            Self::RequestLapsed => "request.lapsed",
            Self::ExtensionLapsed => "extension.lapsed",
            Self::GrantColumnsChanged => "grant.columns_changed",
            Self::ApiTokenCreated => "api_token.created",
            Self::ApiTokenRevoked => "api_token.revoked",
            Self::GrantExpiringSoon => "grant.expiring_soon",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// A sentence fragment for the timeline: "alice@example.com approved the request".
    pub fn describe(self) -> &'static str {
        match self {
            Self::SignedIn => "signed in",
            Self::RequestSubmitted => "requested access",
            Self::RequestApproved => "approved the request",
            Self::RequestDenied => "denied the request",
            Self::RequestCancelled => "cancelled the request",
            Self::ProvisioningStepFailed => "provisioning step failed",
            Self::GrantActivated => "access became active",
            Self::CredentialsTokenIssued => "issued a credentials token",
            Self::CredentialsMinted => "minted temporary credentials",
            Self::RevokeRequested => "started revoking access",
            Self::RevokeStepFailed => "revoke step failed",
            Self::GrantEnded => "access ended",
            Self::ApprovalRecorded => "approved; more approvals are needed",
            Self::RequestAutoApproved => "the policy approved the request automatically",
            Self::BreakGlassActivated => "broke the glass: activated access without approval",
            Self::BreakGlassReviewed => "reviewed the break-glass access",
            Self::ExtensionRequested => "asked for more time",
            Self::ExtensionApprovalRecorded => "approved the extension; more approvals are needed",
            Self::ExtensionApproved => "approved the extension: the grant lasts longer",
            Self::ExtensionAutoApproved => "the policy approved the extension automatically",
            Self::ExtensionDenied => "denied the extension",
            Self::BudgetWarning => "80 % of the scan budget is spent",
            Self::QueryFlagged => "a query was flagged",
            Self::QueryStarted => "ran a query in the console",
            Self::QueryRefused => "wrote a query the console refused",
            Self::QueryStopped => "stopped a query",
            Self::OrphanRemoved => "removed an AWS resource no live request backs",
            Self::RequestLapsed => "the request lapsed: nobody decided it in time",
            Self::ExtensionLapsed => {
                "the extension lapsed: the grant ended before anyone decided it"
            }
            Self::GrantColumnsChanged => {
                "a table of this grant gained columns the grant does not cover"
            }
            Self::ApiTokenCreated => "created a personal API token",
            Self::ApiTokenRevoked => "revoked a personal API token",
            Self::GrantExpiringSoon => "the grant ends in 10 minutes or less",
            Self::BudgetCutoffLowered => {
                "lowered the per-query scan cutoff to what is left of the budget"
            }
        }
    }
}

/// Who did it: a person, or lakegate itself (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub email: String,
    /// The personal API token they acted through, by name (`None`: the pages). Kept in the
    /// event's detail as `via_token`, so the chain hash covers it.
    pub via_token: Option<String>,
    /// The application they acted from (`slack`; `None`: lakegate's own pages or API). Kept in
    /// the event's detail as `via`.
    pub via: Option<String>,
}

impl Actor {
    /// A person acting through the pages.
    pub fn person(subject: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            email: email.into(),
            via_token: None,
            via: None,
        }
    }
}

/// What the audit page and export narrow the trail to; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub request: Option<crate::RequestId>,
    /// A substring of the actor's email, case-insensitive.
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub from: Option<time::OffsetDateTime>,
    pub until: Option<time::OffsetDateTime>,
    /// Only events older than this id (paging backwards from the newest).
    pub before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            assert!(seen.insert(a.as_str()));
        }
    }
}
