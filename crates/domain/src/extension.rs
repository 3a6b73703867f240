//! Extensions of a live grant: the requester asks for more time, the policy decides.

/// Where an extension stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionStatus {
    Pending,
    Approved,
    Denied,
    /// Still pending when its grant ended.
    Lapsed,
}

impl ExtensionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Lapsed]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for st in [
            ExtensionStatus::Pending,
            ExtensionStatus::Approved,
            ExtensionStatus::Denied,
        ] {
            assert_eq!(ExtensionStatus::parse(st.as_str()), Some(st));
        }
        assert_eq!(ExtensionStatus::parse("maybe"), None);
    }
}
