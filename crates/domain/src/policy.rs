//! Who may do what, and the bounds a request must stay within. Self-approval is never allowed.

use time::Duration;

use crate::duration::format_duration;
use crate::error::{PolicyError, ValidationError};
use crate::principal::Principal;
use crate::request::{AccessRequest, RequestStatus};

/// Athena refuses a per-query cutoff below 10 MB.
pub const MIN_SCAN_CUTOFF_BYTES: i64 = 10_000_000;

/// The approval policy of the core product: one approver group, one approval, duration bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub approver_group: String,
    pub min_duration: Duration,
    pub max_duration: Duration,
    /// Per-query bytes-scanned cutoff of every grant's Athena workgroup.
    pub scan_cutoff_bytes: i64,
    /// Members see every request, may revoke any grant and read the audit trail. They approve
    /// only if they are approvers too.
    pub admin_group: Option<String>,
}

impl Policy {
    pub fn new(
        approver_group: impl Into<String>,
        min_duration: Duration,
        max_duration: Duration,
        scan_cutoff_bytes: i64,
    ) -> Result<Self, ValidationError> {
        let approver_group = approver_group.into().trim().to_owned();
        if approver_group.is_empty() {
            return Err(ValidationError::new("the approver group must not be empty"));
        }
        if min_duration < Duration::minutes(1) {
            return Err(ValidationError::new(
                "the minimum duration must be at least 1m",
            ));
        }
        if max_duration < min_duration {
            return Err(ValidationError::new(format!(
                "the maximum duration ({}) is shorter than the minimum ({})",
                format_duration(max_duration),
                format_duration(min_duration)
            )));
        }
        if max_duration > Duration::days(7) {
            return Err(ValidationError::new(
                "the maximum duration must be at most 7d",
            ));
        }
        if scan_cutoff_bytes < MIN_SCAN_CUTOFF_BYTES {
            return Err(ValidationError::new(format!(
                "the per-query scan cutoff must be at least {MIN_SCAN_CUTOFF_BYTES} bytes (Athena's minimum)"
            )));
        }
        Ok(Self {
            approver_group,
            min_duration,
            max_duration,
            scan_cutoff_bytes,
            admin_group: None,
        })
    }

    /// Names the admin group (blank means none).
    pub fn with_admin_group(mut self, group: Option<String>) -> Self {
        self.admin_group = group.map(|g| g.trim().to_owned()).filter(|g| !g.is_empty());
        self
    }

    pub fn is_admin(&self, who: &Principal) -> bool {
        self.admin_group.as_deref().is_some_and(|g| who.in_group(g))
    }

    /// Reading the audit trail of everyone: admins only.
    pub fn check_audit(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_admin(who) {
            Ok(())
        } else {
            Err(PolicyError::NotAdmin)
        }
    }

    pub fn check_duration(&self, d: Duration) -> Result<(), ValidationError> {
        if d < self.min_duration || d > self.max_duration {
            return Err(ValidationError::new(format!(
                "the duration must be between {} and {}; you asked for {}",
                format_duration(self.min_duration),
                format_duration(self.max_duration),
                format_duration(d)
            )));
        }
        Ok(())
    }

    pub fn is_approver(&self, who: &Principal) -> bool {
        who.in_group(&self.approver_group)
    }

    /// Approve or deny: approvers only, never their own request.
    pub fn check_decide(
        &self,
        who: &Principal,
        request: &AccessRequest,
    ) -> Result<(), PolicyError> {
        if who.subject == request.requester.subject {
            return Err(PolicyError::SelfApproval);
        }
        if !self.is_approver(who) {
            return Err(PolicyError::NotApprover {
                group: self.approver_group.clone(),
                action: "approve or deny requests",
            });
        }
        Ok(())
    }

    pub fn check_cancel(
        &self,
        who: &Principal,
        request: &AccessRequest,
    ) -> Result<(), PolicyError> {
        if who.subject != request.requester.subject {
            return Err(PolicyError::NotRequester {
                action: "cancel a request",
            });
        }
        Ok(())
    }

    /// Ending a grant early: the requester (done with it), an approver or an admin.
    pub fn check_revoke(
        &self,
        who: &Principal,
        request: &AccessRequest,
    ) -> Result<(), PolicyError> {
        if who.subject == request.requester.subject || self.is_approver(who) || self.is_admin(who) {
            return Ok(());
        }
        Err(PolicyError::NotApprover {
            group: self.approver_group.clone(),
            action: "revoke someone else's access",
        })
    }

    /// Credentials are the requester's alone; not even an approver gets them.
    pub fn check_credentials(
        &self,
        who: &Principal,
        request: &AccessRequest,
    ) -> Result<(), PolicyError> {
        if who.subject != request.requester.subject {
            return Err(PolicyError::NotRequester {
                action: "get credentials for a request",
            });
        }
        Ok(())
    }

    pub fn check_view(&self, who: &Principal, request: &AccessRequest) -> Result<(), PolicyError> {
        if who.subject == request.requester.subject || self.is_approver(who) || self.is_admin(who) {
            Ok(())
        } else {
            Err(PolicyError::NotVisible)
        }
    }

    /// The buttons to show `who` on the request page.
    pub fn allowed_actions(&self, who: &Principal, request: &AccessRequest) -> AllowedActions {
        let st = request.status;
        AllowedActions {
            approve: st == RequestStatus::Pending && self.check_decide(who, request).is_ok(),
            cancel: st == RequestStatus::Pending && self.check_cancel(who, request).is_ok(),
            revoke: matches!(st, RequestStatus::Approved | RequestStatus::Active)
                && self.check_revoke(who, request).is_ok(),
            credentials: st == RequestStatus::Active
                && self.check_credentials(who, request).is_ok(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowedActions {
    /// Approve and deny go together.
    pub approve: bool,
    pub cancel: bool,
    pub revoke: bool,
    pub credentials: bool,
}

impl AllowedActions {
    pub fn any(&self) -> bool {
        self.approve || self.cancel || self.revoke || self.credentials
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::request::{RequestId, Requester};

    fn policy() -> Policy {
        Policy::new(
            "data-owners",
            Duration::minutes(15),
            Duration::hours(8),
            10_000_000_000,
        )
        .unwrap()
    }

    fn person(sub: &str, groups: &[&str]) -> Principal {
        Principal::new(
            sub,
            format!("{sub}@example.com"),
            None,
            groups.iter().map(|g| (*g).to_owned()),
        )
        .unwrap()
    }

    fn request(by: &str, status: RequestStatus) -> AccessRequest {
        AccessRequest {
            id: RequestId::new_random(),
            requester: Requester {
                subject: by.into(),
                email: format!("{by}@example.com"),
                name: None,
            },
            resources: vec![],
            duration: Duration::hours(1),
            reason: "a good reason".into(),
            status,
            end_state: None,
            end_reason: None,
            created_at: datetime!(2026-01-01 0:00 UTC),
            decided_at: None,
            activated_at: None,
            expires_at: None,
            ended_at: None,
            last_error: None,
            has_credentials_token: false,
        }
    }

    #[test]
    fn duration_bounds() {
        let p = policy();
        assert!(p.check_duration(Duration::minutes(15)).is_ok());
        assert!(p.check_duration(Duration::hours(8)).is_ok());
        let short = p.check_duration(Duration::minutes(14)).unwrap_err();
        assert_eq!(
            short.0,
            "the duration must be between 15m and 8h; you asked for 14m"
        );
        assert!(p.check_duration(Duration::hours(9)).is_err());
    }

    #[test]
    fn policy_settings_are_validated() {
        assert!(Policy::new(" ", Duration::minutes(15), Duration::hours(1), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::seconds(30), Duration::hours(1), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::hours(2), Duration::hours(1), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::hours(1), Duration::days(8), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::hours(1), Duration::hours(2), 9_999_999).is_err());
    }

    #[test]
    fn who_may_do_what() {
        let p = policy();
        let alice = person("alice", &["analysts"]);
        let bob = person("bob", &["data-owners"]);
        let carol = person("carol", &["analysts"]);
        let self_approver = person("alice", &["data-owners"]);

        let pending = request("alice", RequestStatus::Pending);
        // (who, request, approve, cancel, revoke, credentials, view)
        let cases = [
            (
                &alice,
                RequestStatus::Pending,
                false,
                true,
                false,
                false,
                true,
            ),
            (
                &bob,
                RequestStatus::Pending,
                true,
                false,
                false,
                false,
                true,
            ),
            (
                &carol,
                RequestStatus::Pending,
                false,
                false,
                false,
                false,
                false,
            ),
            (
                &self_approver,
                RequestStatus::Pending,
                false,
                true,
                false,
                false,
                true,
            ),
            (
                &alice,
                RequestStatus::Active,
                false,
                false,
                true,
                true,
                true,
            ),
            (&bob, RequestStatus::Active, false, false, true, false, true),
            (
                &carol,
                RequestStatus::Active,
                false,
                false,
                false,
                false,
                false,
            ),
            (
                &alice,
                RequestStatus::Approved,
                false,
                false,
                true,
                false,
                true,
            ),
            (
                &bob,
                RequestStatus::Revoking,
                false,
                false,
                false,
                false,
                true,
            ),
            (
                &alice,
                RequestStatus::Expired,
                false,
                false,
                false,
                false,
                true,
            ),
        ];
        for (who, st, approve, cancel, revoke, credentials, view) in cases {
            let r = request("alice", st);
            let got = p.allowed_actions(who, &r);
            assert_eq!(
                got,
                AllowedActions {
                    approve,
                    cancel,
                    revoke,
                    credentials
                },
                "{} on a {st} request",
                who.subject
            );
            assert_eq!(
                p.check_view(who, &r).is_ok(),
                view,
                "{} view {st}",
                who.subject
            );
        }
        assert_eq!(
            p.check_decide(&self_approver, &pending),
            Err(PolicyError::SelfApproval)
        );

        // An admin sees and revokes everything, but approves only as an approver.
        let p = p.with_admin_group(Some(" security ".into()));
        let dora = person("dora", &["security"]);
        let active = request("alice", RequestStatus::Active);
        assert!(p.check_view(&dora, &active).is_ok());
        assert!(p.check_revoke(&dora, &active).is_ok());
        assert!(p.check_decide(&dora, &pending).is_err());
        assert!(p.check_audit(&dora).is_ok());
        assert_eq!(p.check_audit(&bob), Err(PolicyError::NotAdmin));
        assert!(!policy().with_admin_group(Some("  ".into())).is_admin(&dora));
        assert!(matches!(
            p.check_decide(&carol, &pending),
            Err(PolicyError::NotApprover { .. })
        ));
    }
}
