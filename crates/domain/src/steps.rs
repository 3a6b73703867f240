//! The ordered steps of provisioning a grant and of tearing it down (docs/aws.md §11, §12).
//! The step about to be taken is written to the database before it is taken; every step is
//! idempotent, so after a crash the worker resumes at the recorded step and nothing leaks.

macro_rules! steps {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

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
        CreateRole => "create_role",
        PutAccessPolicy => "put_access_policy",
        CreateWorkgroup => "create_workgroup",
        GrantLakeFormation => "grant_lake_formation",
        AwaitPropagation => "await_propagation",
    }
}

steps! {
    /// From `revoking` to `expired`, `revoked` or `failed`. Lake Formation grants are revoked
    /// before the role is deleted: a grant left on a deleted role's ARN would pass to any role
    /// later created under that ARN (docs/aws.md §12).
    RevokeStep {
        DenySessions => "deny_sessions",
        StopQueries => "stop_queries",
        DeleteWorkgroup => "delete_workgroup",
        DeleteResults => "delete_results",
        RevokeLakeFormation => "revoke_lake_formation",
        DeleteRole => "delete_role",
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
        }
        let lf = RevokeStep::ALL
            .iter()
            .position(|s| *s == RevokeStep::RevokeLakeFormation);
        let role = RevokeStep::ALL
            .iter()
            .position(|s| *s == RevokeStep::DeleteRole);
        assert!(
            lf < role,
            "grants must be revoked before the role is deleted"
        );
        assert_eq!(RevokeStep::DeleteRole.next(), None);
        assert_eq!(ProvisionStep::parse("bogus"), None);
    }
}
