//! The ordered steps of provisioning a grant and of tearing it down (docs/aws.md §11, §12).
//! The step about to be taken is written to the database before it is taken; every step is
//! idempotent, so after a crash the worker resumes at the recorded step and nothing leaks.
//!
//! A step is a phase: the AWS calls within it do not depend on each other and run side by side;
//! a phase starts only when the one before it is done (ADR 0026).

macro_rules! steps {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|step| step.as_str() == s)
            }

            pub fn first() -> Self {
                Self::ALL[0]
            }

            /// The step after this one, or `None` when this is the last.
            pub fn next(self) -> Option<Self> {
                let i = Self::ALL.iter().position(|s| *s == self)?;
                Self::ALL.get(i + 1).copied()
            }
        }
    };
}

steps! {
    /// From `approved` to `active`.
    ProvisionStep {
        /// `iam:CreateRole` beside `athena:CreateWorkGroup`.
        CreateRoleAndWorkgroup => "create_role_and_workgroup",
        /// The role's access policy beside the Lake Formation grants to the role.
        GrantAccess => "grant_access",
        /// The propagation gate: STS lets lakegate assume the role.
        AwaitPropagation => "await_propagation",
    }
}

steps! {
    /// From `revoking` to `expired`, `revoked` or `failed`. Lake Formation grants are revoked
    /// (in `RevokeAccess`) before the role is deleted (in `DeleteResources`): a grant left on a
    /// deleted role's ARN would pass to any role later created under that ARN (docs/aws.md §12).
    RevokeStep {
        /// Every session of the role denied, first and alone.
        DenySessions => "deny_sessions",
        /// The grant's running queries stopped (and recorded) beside its Lake Formation
        /// permissions revoked.
        RevokeAccess => "revoke_access",
        /// The workgroup and then its results deleted, beside the role.
        DeleteResources => "delete_resources",
    }
}

impl ProvisionStep {
    /// Where to resume for a recorded step, including the one-call-at-a-time steps an earlier
    /// version recorded: each maps to the phase holding every call it may have left undone.
    /// Unknown or missing: from the start (every call is idempotent).
    pub fn resume_at(recorded: Option<&str>) -> Self {
        match recorded {
            Some("grant_lake_formation") => Self::GrantAccess,
            Some(s) => Self::parse(s).unwrap_or(Self::first()),
            None => Self::first(),
        }
    }
}

impl RevokeStep {
    /// Where to resume for a recorded step, including the one-call-at-a-time steps an earlier
    /// version recorded. Before `delete_role` those steps had not yet revoked the Lake Formation
    /// grants, so they resume at `RevokeAccess`; stopping queries again is harmless (a missing
    /// workgroup has none). Unknown or missing: from the deny (every call is idempotent).
    pub fn resume_at(recorded: Option<&str>) -> Self {
        match recorded {
            Some(
                "stop_queries" | "delete_workgroup" | "delete_results" | "revoke_lake_formation",
            ) => Self::RevokeAccess,
            Some("delete_role") => Self::DeleteResources,
            Some(s) => Self::parse(s).unwrap_or(Self::first()),
            None => Self::first(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_order_and_round_trip() {
        let mut order = vec![ProvisionStep::first()];
        while let Some(n) = order.last().and_then(|s| s.next()) {
            order.push(n);
        }
        assert_eq!(order, ProvisionStep::ALL);
        for s in RevokeStep::ALL {
            assert_eq!(RevokeStep::parse(s.as_str()), Some(*s));
            assert_eq!(RevokeStep::resume_at(Some(s.as_str())), *s);
        }
        for s in ProvisionStep::ALL {
            assert_eq!(ProvisionStep::resume_at(Some(s.as_str())), *s);
        }
        assert_eq!(RevokeStep::DeleteResources.next(), None);
        assert_eq!(ProvisionStep::parse("bogus"), None);
        assert_eq!(
            ProvisionStep::resume_at(Some("bogus")),
            ProvisionStep::first()
        );
        assert_eq!(RevokeStep::resume_at(None), RevokeStep::DenySessions);
    }

    #[test]
    fn steps_recorded_one_call_at_a_time_resume_where_nothing_is_skipped() {
        // The earlier order: create_role, put_access_policy, create_workgroup,
        // grant_lake_formation, await_propagation.
        for (old, phase) in [
            ("create_role", ProvisionStep::CreateRoleAndWorkgroup),
            // The workgroup was not created yet.
            ("put_access_policy", ProvisionStep::CreateRoleAndWorkgroup),
            ("create_workgroup", ProvisionStep::CreateRoleAndWorkgroup),
            // The policy is put again beside the grants: it overwrites.
            ("grant_lake_formation", ProvisionStep::GrantAccess),
            ("await_propagation", ProvisionStep::AwaitPropagation),
        ] {
            assert_eq!(ProvisionStep::resume_at(Some(old)), phase, "{old}");
        }
        // The earlier order: deny_sessions, stop_queries, delete_workgroup, delete_results,
        // revoke_lake_formation, delete_role. The role may go only once the grants are revoked.
        for (old, phase) in [
            ("deny_sessions", RevokeStep::DenySessions),
            ("stop_queries", RevokeStep::RevokeAccess),
            ("delete_workgroup", RevokeStep::RevokeAccess),
            ("delete_results", RevokeStep::RevokeAccess),
            ("revoke_lake_formation", RevokeStep::RevokeAccess),
            ("delete_role", RevokeStep::DeleteResources),
        ] {
            assert_eq!(RevokeStep::resume_at(Some(old)), phase, "{old}");
        }
    }
}
