//! What people are told about, and when: a notification event for each audit action that
//! someone outside lakegate's pages needs to hear of. The names are part of the notification
//! schema (docs/notifications.md): receivers switch on them, so they never change meaning.

use serde_json::Value;

use crate::audit::AuditAction;

/// One kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationEvent {
    /// Someone asked for access: their approvers are asked to decide.
    Requested,
    /// An approval was recorded; more are needed.
    PartiallyApproved,
    /// Every approval needed is in (or the policy approved it on its own).
    Approved,
    Denied,
    /// The grant is usable.
    Active,
    /// The grant ends in 10 minutes or less.
    Expiring,
    ExtensionRequested,
    ExtensionApproved,
    ExtensionDenied,
    /// Someone ended the grant early; its sessions are cut off.
    Revoked,
    /// The grant's time ran out and everything it had is removed.
    Expired,
    /// Provisioning could not complete; whatever was created is removed.
    Failed,
    /// 80 % of the grant's scan budget is spent.
    BudgetWarning,
    /// The budget is spent: the grant is being revoked.
    BudgetExhausted,
    /// Someone used break-glass: access without approval, to be reviewed.
    BreakGlass,
    /// The monitor flagged a query.
    QueryFlagged,
    /// The sweep removed an AWS resource no live request backs.
    OrphanRemoved,
}

impl NotificationEvent {
    pub const ALL: [Self; 17] = [
        Self::Requested,
        Self::PartiallyApproved,
        Self::Approved,
        Self::Denied,
        Self::Active,
        Self::Expiring,
        Self::ExtensionRequested,
        Self::ExtensionApproved,
        Self::ExtensionDenied,
        Self::Revoked,
        Self::Expired,
        Self::Failed,
        Self::BudgetWarning,
        Self::BudgetExhausted,
        Self::BreakGlass,
        Self::QueryFlagged,
        Self::OrphanRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "request.submitted",
            Self::PartiallyApproved => "request.partially_approved",
            Self::Approved => "request.approved",
            Self::Denied => "request.denied",
            Self::Active => "grant.active",
            Self::Expiring => "grant.expiring",
            Self::ExtensionRequested => "extension.requested",
            Self::ExtensionApproved => "extension.approved",
            Self::ExtensionDenied => "extension.denied",
            Self::Revoked => "grant.revoked",
            Self::Expired => "grant.expired",
            Self::Failed => "grant.failed",
            Self::BudgetWarning => "budget.warning",
            Self::BudgetExhausted => "budget.exhausted",
            Self::BreakGlass => "break_glass.activated",
            Self::QueryFlagged => "query.flagged",
            Self::OrphanRemoved => "orphan.removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The notification an audit event causes, if any. `budget_exhausted` is the reason the
    /// monitor gives when it revokes a grant whose budget is spent.
    pub fn of(action: AuditAction, detail: &Value, budget_exhausted: &str) -> Option<Self> {
        let end_state = || detail.get("end_state").and_then(Value::as_str);
        Some(match action {
            AuditAction::RequestSubmitted => Self::Requested,
            AuditAction::ApprovalRecorded => Self::PartiallyApproved,
            AuditAction::RequestApproved | AuditAction::RequestAutoApproved => Self::Approved,
            AuditAction::RequestDenied => Self::Denied,
            AuditAction::GrantActivated => Self::Active,
            AuditAction::GrantExpiringSoon => Self::Expiring,
            AuditAction::ExtensionRequested => Self::ExtensionRequested,
            AuditAction::ExtensionApproved | AuditAction::ExtensionAutoApproved => {
                Self::ExtensionApproved
            }
            AuditAction::ExtensionDenied => Self::ExtensionDenied,
            AuditAction::RevokeRequested
                if detail.get("reason").and_then(Value::as_str) == Some(budget_exhausted) =>
            {
                Self::BudgetExhausted
            }
            AuditAction::GrantEnded => match end_state() {
                Some("expired") => Self::Expired,
                Some("revoked") => Self::Revoked,
                Some("failed") => Self::Failed,
                _ => return None,
            },
            AuditAction::BudgetWarning => Self::BudgetWarning,
            AuditAction::BreakGlassActivated => Self::BreakGlass,
            AuditAction::QueryFlagged => Self::QueryFlagged,
            AuditAction::OrphanRemoved => Self::OrphanRemoved,
            _ => return None,
        })
    }

    /// Said to whoever decides: the approvers of the request's tables.
    pub fn asks_approvers(self) -> bool {
        matches!(
            self,
            Self::Requested | Self::PartiallyApproved | Self::ExtensionRequested
        )
    }

    /// What the requester hears of in person (a direct message in Slack): a decision on their
    /// request or extension, and what happens to their access.
    pub fn tells_requester(self) -> bool {
        matches!(
            self,
            Self::Approved
                | Self::Denied
                | Self::Active
                | Self::Expiring
                | Self::ExtensionApproved
                | Self::ExtensionDenied
                | Self::Revoked
                | Self::Expired
                | Self::Failed
                | Self::BudgetWarning
                | Self::BudgetExhausted
        )
    }

    /// A decision on the request itself: a chat message that asked for it is updated in place.
    pub fn decides(self) -> bool {
        matches!(
            self,
            Self::Approved | Self::Denied | Self::BreakGlass | Self::PartiallyApproved
        )
    }

    /// A sentence for a chat message: "access is active".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Requested => "asks for access",
            Self::PartiallyApproved => "approved; more approvals are needed",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Active => "access is active",
            Self::Expiring => "access ends in 10 minutes or less",
            Self::ExtensionRequested => "asks for more time",
            Self::ExtensionApproved => "extension approved: the grant lasts longer",
            Self::ExtensionDenied => "extension denied",
            Self::Revoked => "access revoked",
            Self::Expired => "access expired and was removed",
            Self::Failed => "access could not be set up and was removed",
            Self::BudgetWarning => "80 % of the scan budget is spent",
            Self::BudgetExhausted => "the scan budget is spent: access is being revoked",
            Self::BreakGlass => "broke the glass: access without approval, to be reviewed",
            Self::QueryFlagged => "a query was flagged",
            Self::OrphanRemoved => "removed an AWS resource no live request backs",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        for e in NotificationEvent::ALL {
            assert_eq!(NotificationEvent::parse(e.as_str()), Some(e));
        }
        let mut names: Vec<_> = NotificationEvent::ALL.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NotificationEvent::ALL.len());
    }

    #[test]
    fn the_requester_hears_of_decisions_and_their_access_not_of_asking() {
        use NotificationEvent as E;
        for e in [
            E::Approved,
            E::Denied,
            E::Active,
            E::Expiring,
            E::Revoked,
            E::BudgetWarning,
        ] {
            assert!(e.tells_requester(), "{e:?}");
        }
        for e in [
            E::Requested,
            E::PartiallyApproved,
            E::ExtensionRequested,
            E::BreakGlass,
            E::QueryFlagged,
            E::OrphanRemoved,
        ] {
            assert!(!e.tells_requester(), "{e:?}");
        }
    }

    #[test]
    fn audit_events_map_to_what_people_hear_of() {
        let of = |a, d: Value| NotificationEvent::of(a, &d, "budget exhausted");
        assert_eq!(
            of(AuditAction::RequestSubmitted, json!({})),
            Some(NotificationEvent::Requested)
        );
        assert_eq!(
            of(AuditAction::GrantEnded, json!({ "end_state": "expired" })),
            Some(NotificationEvent::Expired)
        );
        assert_eq!(
            of(AuditAction::GrantEnded, json!({ "end_state": "revoked" })),
            Some(NotificationEvent::Revoked)
        );
        assert_eq!(
            of(
                AuditAction::RevokeRequested,
                json!({ "reason": "budget exhausted" })
            ),
            Some(NotificationEvent::BudgetExhausted)
        );
        // A revoke is told once, when it is done; the step in between is not.
        assert_eq!(
            of(AuditAction::RevokeRequested, json!({ "reason": "done" })),
            None
        );
        assert_eq!(of(AuditAction::CredentialsMinted, json!({})), None);
        assert_eq!(of(AuditAction::SignedIn, json!({})), None);
    }
}
