//! Who may do what to one request, under the policy in force.
//!
//! Roles are per request, not global: someone is an *approver of this request* when they are in
//! a group one of its requirements names ([`Evaluation::is_approver`]). An approver of the `hr`
//! tables is nobody special for a `sales` request: they neither see it nor decide it. Admins
//! (the policy's admin group) see every request and may revoke any grant, but approve only
//! where they are approvers too. Nobody ever approves, denies or reviews their own request.

use crate::error::PolicyError;
use crate::policy_file::{Approver, Evaluation, PolicyFile};
use crate::principal::Principal;
use crate::request::{AccessRequest, RequestStatus};

/// Reading the audit trail of everyone: admins only.
pub fn check_audit(policy: &PolicyFile, who: &Principal) -> Result<(), PolicyError> {
    if policy.is_admin(who) {
        Ok(())
    } else {
        Err(PolicyError::NotAdmin)
    }
}

/// One request, its evaluation under the policy, and the approvals it has so far.
#[derive(Debug, Clone, Copy)]
pub struct RequestAccess<'a> {
    pub policy: &'a PolicyFile,
    pub request: &'a AccessRequest,
    pub evaluation: &'a Evaluation,
    /// Approvals of the request itself (not of its extensions), with the approvers' groups at
    /// the time they approved.
    pub approvals: &'a [Approver],
}

impl RequestAccess<'_> {
    pub fn is_requester(&self, who: &Principal) -> bool {
        who.subject == self.request.requester.subject
    }

    /// In a group named by one of this request's requirements (never the requester).
    pub fn is_approver(&self, who: &Principal) -> bool {
        self.evaluation.is_approver(&Approver::from(who))
    }

    /// `hr-owners or privacy`: the groups that approve this request.
    fn approver_groups(&self) -> String {
        let mut groups: Vec<&str> = self
            .evaluation
            .requirements
            .iter()
            .flat_map(|r| r.groups.iter().map(String::as_str))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        match groups.as_slice() {
            [] => "an approver group".to_owned(),
            [one] => format!("`{one}`"),
            [init @ .., last] => format!(
                "{} or `{last}`",
                init.iter()
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn not_approver(&self, action: &'static str) -> PolicyError {
        PolicyError::NotApprover {
            groups: self.approver_groups(),
            action,
        }
    }

    pub fn check_view(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) || self.policy.is_admin(who) || self.is_approver(who) {
            Ok(())
        } else {
            Err(PolicyError::NotVisible)
        }
    }

    /// Approving the request (or, with the extension's approvals, an extension of it): an
    /// approver, not the requester, who has not approved yet, and whose approval fills a
    /// requirement still short.
    pub fn check_approve_with(
        &self,
        who: &Principal,
        approvals: &[Approver],
    ) -> Result<(), PolicyError> {
        if self.is_requester(who) {
            return Err(PolicyError::SelfApproval);
        }
        if !self.is_approver(who) {
            return Err(self.not_approver("approve this request"));
        }
        if approvals.iter().any(|a| a.subject == who.subject) {
            return Err(PolicyError::AlreadyApproved);
        }
        if !self.evaluation.can_approve(&Approver::from(who), approvals) {
            let status = self.evaluation.approval_status(approvals);
            return Err(PolicyError::ApprovalNotNeeded {
                missing: status.missing.join("; "),
            });
        }
        Ok(())
    }

    pub fn check_approve(&self, who: &Principal) -> Result<(), PolicyError> {
        self.check_approve_with(who, self.approvals)
    }

    /// Denying: any approver of the request but the requester.
    pub fn check_deny(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) {
            return Err(PolicyError::SelfApproval);
        }
        if !self.is_approver(who) {
            return Err(self.not_approver("deny this request"));
        }
        Ok(())
    }

    pub fn check_cancel(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) {
            Ok(())
        } else {
            Err(PolicyError::NotRequester {
                action: "cancel a request",
            })
        }
    }

    /// Ending a grant early: the requester (done with it), an approver of it, or an admin.
    pub fn check_revoke(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) || self.is_approver(who) || self.policy.is_admin(who) {
            Ok(())
        } else {
            Err(self.not_approver("revoke someone else's access"))
        }
    }

    /// Credentials are the requester's alone; not even an approver gets them.
    pub fn check_credentials(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) {
            Ok(())
        } else {
            Err(PolicyError::NotRequester {
                action: "get credentials for a request",
            })
        }
    }

    /// Running statements in the query console: the requester, as with credentials (the
    /// statements run as the grant's own session).
    pub fn check_query(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) {
            Ok(())
        } else {
            Err(PolicyError::NotRequester {
                action: "run queries with this access",
            })
        }
    }

    /// Asking for more time: the requester.
    pub fn check_extend(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) {
            Ok(())
        } else {
            Err(PolicyError::NotRequester {
                action: "ask for more time",
            })
        }
    }

    /// Reviewing a break-glass grant after the fact: an approver of it, never its requester.
    pub fn check_review(&self, who: &Principal) -> Result<(), PolicyError> {
        if self.is_requester(who) {
            return Err(PolicyError::SelfApproval);
        }
        if !self.is_approver(who) {
            return Err(self.not_approver("review break-glass access"));
        }
        Ok(())
    }

    /// The buttons to show `who` on the request page. `extension_approvals` are the approvals of
    /// the pending extension, if there is one.
    pub fn allowed_actions(
        &self,
        who: &Principal,
        extension_approvals: Option<&[Approver]>,
    ) -> AllowedActions {
        let st = self.request.status;
        let live = matches!(st, RequestStatus::Approved | RequestStatus::Active);
        AllowedActions {
            approve: st == RequestStatus::Pending && self.check_approve(who).is_ok(),
            deny: st == RequestStatus::Pending
                && self.check_deny(who).is_ok()
                && !self.approvals.iter().any(|a| a.subject == who.subject),
            cancel: st == RequestStatus::Pending && self.check_cancel(who).is_ok(),
            revoke: live && self.check_revoke(who).is_ok(),
            credentials: st == RequestStatus::Active && self.check_credentials(who).is_ok(),
            query: st == RequestStatus::Active && self.check_query(who).is_ok(),
            extend: st == RequestStatus::Active
                && extension_approvals.is_none()
                && self.check_extend(who).is_ok(),
            decide_extension: st == RequestStatus::Active
                && extension_approvals.is_some_and(|a| self.check_approve_with(who, a).is_ok()),
            review: self.request.needs_review() && self.check_review(who).is_ok(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowedActions {
    pub approve: bool,
    pub deny: bool,
    pub cancel: bool,
    pub revoke: bool,
    pub credentials: bool,
    /// Open the query console.
    pub query: bool,
    /// Ask for more time (no extension is pending).
    pub extend: bool,
    /// Approve or deny the pending extension.
    pub decide_extension: bool,
    /// Mark a break-glass grant as reviewed.
    pub review: bool,
}

impl AllowedActions {
    pub fn any(&self) -> bool {
        self.approve
            || self.deny
            || self.cancel
            || self.revoke
            || self.credentials
            || self.query
            || self.extend
            || self.decide_extension
            || self.review
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::policy_file::RequestFacts;
    use crate::request::{RequestId, Requester};
    use crate::target::ResourceSpec;

    const POLICY: &str = r#"
admin_group = "security"

[defaults]
approver_groups = ["data-owners"]

[[rule]]
name = "hr"
match = ["hr.*"]
approver_groups = ["hr-owners"]
approvals = 2
sensitive_columns = ["salary"]
sensitive_approver_groups = ["privacy"]
break_glass = { groups = ["oncall"], max_duration = "1h" }
"#;

    fn person(sub: &str, groups: &[&str]) -> Principal {
        Principal::new(
            sub,
            format!("{sub}@example.com"),
            None,
            groups.iter().map(|g| (*g).to_owned()),
        )
        .unwrap()
    }

    fn request(table: &str, status: RequestStatus) -> AccessRequest {
        let (database, table) = table.split_once('.').unwrap();
        AccessRequest {
            id: RequestId::new_random(),
            requester: Requester {
                subject: "alice".into(),
                email: "alice@example.com".into(),
                name: None,
            },
            resources: vec![ResourceSpec {
                database: database.into(),
                table: table.into(),
                columns: Some(vec!["id".into()]),
            }],
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
            requester_groups: vec!["analysts".into()],
            catalog_columns: vec![vec!["id".into(), "salary".into()]],
            break_glass: false,
            review: None,
            auto_approved: false,
            scan_cutoff_bytes: None,
            scan_budget_bytes: None,
            extended: Duration::ZERO,
            approver_groups: Vec::new(),
            agent: None,
        }
    }

    fn actions(
        policy: &PolicyFile,
        who: &Principal,
        r: &AccessRequest,
        approvals: &[Approver],
    ) -> (AllowedActions, bool) {
        let evaluation = policy.evaluate(&RequestFacts::of(r));
        let access = RequestAccess {
            policy,
            request: r,
            evaluation: &evaluation,
            approvals,
        };
        (
            access.allowed_actions(who, None),
            access.check_view(who).is_ok(),
        )
    }

    /// (who, table, status, view, approve, deny, cancel, revoke, credentials)
    type Case<'a> = (
        &'a Principal,
        &'a str,
        RequestStatus,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
    );

    /// Every role against requests in each state: what they see and may press.
    #[test]
    fn who_may_do_what() {
        let policy = PolicyFile::parse(POLICY, "policy.toml").unwrap();
        let alice = person("alice", &["analysts"]);
        let alice_owner = person("alice", &["data-owners"]);
        let bob = person("bob", &["data-owners"]);
        let carol = person("carol", &["analysts"]);
        let hr_owner = person("harriet", &["hr-owners"]);
        let admin = person("dora", &["security"]);

        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&alice, "sales.orders", RequestStatus::Pending, true, false, false, true, false, false),
            (&alice_owner, "sales.orders", RequestStatus::Pending, true, false, false, true, false, false),
            (&bob, "sales.orders", RequestStatus::Pending, true, true, true, false, false, false),
            (&carol, "sales.orders", RequestStatus::Pending, false, false, false, false, false, false),
            // An approver of another database neither sees nor decides.
            (&hr_owner, "sales.orders", RequestStatus::Pending, false, false, false, false, false, false),
            (&bob, "hr.people", RequestStatus::Pending, false, false, false, false, false, false),
            (&hr_owner, "hr.people", RequestStatus::Pending, true, true, true, false, false, false),
            // Admins see and revoke everything, and approve only as approvers.
            (&admin, "sales.orders", RequestStatus::Pending, true, false, false, false, false, false),
            (&admin, "hr.people", RequestStatus::Active, true, false, false, false, true, false),
            (&alice, "sales.orders", RequestStatus::Active, true, false, false, false, true, true),
            (&bob, "sales.orders", RequestStatus::Active, true, false, false, false, true, false),
            (&carol, "sales.orders", RequestStatus::Active, false, false, false, false, false, false),
            (&alice, "sales.orders", RequestStatus::Approved, true, false, false, false, true, false),
            (&bob, "sales.orders", RequestStatus::Revoking, true, false, false, false, false, false),
            (&alice, "sales.orders", RequestStatus::Expired, true, false, false, false, false, false),
        ];
        for &(who, table, st, view, approve, deny, cancel, revoke, credentials) in cases {
            let r = request(table, st);
            let (got, seen) = actions(&policy, who, &r, &[]);
            assert_eq!(seen, view, "{} view {table} {st}", who.subject);
            assert_eq!(
                (
                    got.approve,
                    got.deny,
                    got.cancel,
                    got.revoke,
                    got.credentials
                ),
                (approve, deny, cancel, revoke, credentials),
                "{} on {table} {st}",
                who.subject
            );
            assert_eq!(
                got.extend, credentials,
                "only the requester of a live grant extends"
            );
        }
    }

    #[test]
    fn approvals_are_distinct_and_must_fill_something() {
        let policy = PolicyFile::parse(POLICY, "policy.toml").unwrap();
        let r = request("hr.people", RequestStatus::Pending);
        let evaluation = policy.evaluate(&RequestFacts::of(&r));
        let h1 = person("h1", &["hr-owners"]);
        let h2 = person("h2", &["hr-owners"]);
        let first = [Approver::from(&h1)];
        let access = RequestAccess {
            policy: &policy,
            request: &r,
            evaluation: &evaluation,
            approvals: &first,
        };
        assert_eq!(access.check_approve(&h1), Err(PolicyError::AlreadyApproved));
        assert!(access.check_approve(&h2).is_ok());
        // h1 may not deny after approving, but h2 may.
        let (h1_actions, _) = actions(&policy, &h1, &r, &first);
        assert!(!h1_actions.deny && !h1_actions.approve);
        assert!(access.check_deny(&h2).is_ok());

        let both = [Approver::from(&h1), Approver::from(&h2)];
        let full = RequestAccess {
            approvals: &both,
            ..access
        };
        let h3 = person("h3", &["hr-owners"]);
        assert_eq!(
            full.check_approve(&h3),
            Err(PolicyError::ApprovalNotNeeded {
                missing: String::new()
            })
        );
        assert_eq!(
            full.check_approve(&person("alice", &["hr-owners"])),
            Err(PolicyError::SelfApproval)
        );
        assert_eq!(
            full.check_approve(&person("bob", &["data-owners"])),
            Err(PolicyError::NotApprover {
                groups: "`hr-owners`".into(),
                action: "approve this request"
            })
        );
    }

    #[test]
    fn break_glass_review_and_audit() {
        let policy = PolicyFile::parse(POLICY, "policy.toml").unwrap();
        let mut r = request("hr.people", RequestStatus::Active);
        r.break_glass = true;
        let h1 = person("h1", &["hr-owners"]);
        let (got, _) = actions(&policy, &h1, &r, &[]);
        assert!(got.review);
        let (got, _) = actions(&policy, &person("alice", &["hr-owners"]), &r, &[]);
        assert!(!got.review, "nobody reviews their own break-glass access");
        r.review = Some(crate::request::Review {
            by_email: "h1@example.com".into(),
            comment: None,
            at: datetime!(2026-01-01 1:00 UTC),
        });
        let (got, _) = actions(&policy, &h1, &r, &[]);
        assert!(!got.review);

        assert!(check_audit(&policy, &person("dora", &["security"])).is_ok());
        assert_eq!(
            check_audit(&policy, &person("bob", &["data-owners"])),
            Err(PolicyError::NotAdmin)
        );
    }
}
