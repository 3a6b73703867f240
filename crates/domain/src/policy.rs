//! The approval settings of the core product (one approver group, duration bounds, a scan
//! cutoff), as read from the environment when there is no policy file. Who may do what is
//! decided in [`crate::access`] under the policy these settings become.

use time::Duration;

use crate::duration::format_duration;
use crate::error::ValidationError;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_settings_are_validated() {
        let ok = Policy::new(
            "data-owners",
            Duration::minutes(15),
            Duration::hours(8),
            10_000_000_000,
        );
        assert_eq!(ok.unwrap().approver_group, "data-owners");
        assert!(Policy::new(" ", Duration::minutes(15), Duration::hours(1), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::seconds(30), Duration::hours(1), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::hours(2), Duration::hours(1), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::hours(1), Duration::days(8), 10_000_000).is_err());
        assert!(Policy::new("g", Duration::hours(1), Duration::hours(2), 9_999_999).is_err());
    }
}
