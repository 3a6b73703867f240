//! An access request and its lifecycle:
//!
//! ```text
//! pending ─approve─▶ approved ─activate─▶ active ─begin_revoke─▶ revoking ─finish─▶ expired | revoked
//!    │ └─deny─▶ denied     └─begin_revoke (revoked early, or provisioning failed)─▶ revoking ─▶ revoked | failed
//!    └─cancel─▶ cancelled
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::{TransitionError, ValidationError};
use crate::target::ResourceSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub Uuid);

impl RequestId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for RequestId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ValidationError::new(format!("`{s}` is not a request id")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Approved,
    Active,
    Revoking,
    Expired,
    Revoked,
    Denied,
    Cancelled,
    Failed,
    /// Still pending after `LAKEGATE_PENDING_TTL`: nobody decided it.
    Lapsed,
}

/// How a grant ends once it is being torn down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndState {
    /// Its time ran out.
    Expired,
    /// Someone ended it early.
    Revoked,
    /// Provisioning could not complete; whatever was created is removed.
    Failed,
}

impl EndState {
    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }

    pub fn status(self) -> RequestStatus {
        match self {
            Self::Expired => RequestStatus::Expired,
            Self::Revoked => RequestStatus::Revoked,
            Self::Failed => RequestStatus::Failed,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "expired" => Some(Self::Expired),
            "revoked" => Some(Self::Revoked),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// What can happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Approve,
    Deny,
    Cancel,
    Lapse,
    Activate,
    BeginRevoke(EndState),
    FinishRevoke,
}

impl Event {
    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::Cancel => "cancel",
            Self::Lapse => "lapse",
            Self::Activate => "activate",
            Self::BeginRevoke(EndState::Expired) => "expire",
            Self::BeginRevoke(EndState::Revoked) => "revoke",
            Self::BeginRevoke(EndState::Failed) => "fail",
            Self::FinishRevoke => "finish revoking",
        }
    }
}

impl RequestStatus {
    pub const ALL: [Self; 10] = [
        Self::Pending,
        Self::Approved,
        Self::Active,
        Self::Revoking,
        Self::Expired,
        Self::Revoked,
        Self::Denied,
        Self::Cancelled,
        Self::Failed,
        Self::Lapsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Active => "active",
            Self::Revoking => "revoking",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further transitions, nothing left in AWS.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Expired
                | Self::Revoked
                | Self::Denied
                | Self::Cancelled
                | Self::Failed
                | Self::Lapsed
        )
    }

    /// The state after `event`, given the end state recorded when revoking began.
    pub fn next(self, event: Event, end: Option<EndState>) -> Result<Self, TransitionError> {
        use RequestStatus::*;
        let to = match (self, event) {
            (Pending, Event::Approve) => Some(Approved),
            (Pending, Event::Deny) => Some(Denied),
            (Pending, Event::Cancel) => Some(Cancelled),
            (Pending, Event::Lapse) => Some(Lapsed),
            (Approved, Event::Activate) => Some(Active),
            (Approved, Event::BeginRevoke(EndState::Revoked | EndState::Failed)) => Some(Revoking),
            (Active, Event::BeginRevoke(EndState::Revoked | EndState::Expired)) => Some(Revoking),
            (Revoking, Event::FinishRevoke) => end.map(EndState::status),
            _ => None,
        };
        to.ok_or(TransitionError {
            from: self,
            action: event.verb(),
        })
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the person wants access. Shown to approvers and kept in the audit trail.
pub fn parse_reason(input: &str) -> Result<String, ValidationError> {
    // Browsers send textarea line breaks as CRLF: normalise before counting, so the length
    // checked is the length stored.
    let reason = input.replace("\r\n", "\n");
    let reason = reason.trim();
    let len = reason.chars().count();
    if len < 10 {
        return Err(ValidationError::new(
            "the reason must be at least 10 characters: say what you need the data for",
        ));
    }
    if len > 2000 {
        return Err(ValidationError::new(format!(
            "the reason must be at most 2000 characters; it has {len}"
        )));
    }
    if reason
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ValidationError::new(
            "the reason contains control characters",
        ));
    }
    Ok(reason.to_owned())
}

/// An optional comment on a decision or a revoke.
pub fn parse_comment(input: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(c) = input.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if c.chars().count() > 2000 {
        return Err(ValidationError::new(
            "a comment must be at most 2000 characters",
        ));
    }
    Ok(Some(c.to_owned()))
}

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
}

impl Requester {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.email)
    }
}

/// An access request as stored, with its grant's lifecycle timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub id: RequestId,
    pub requester: Requester,
    pub resources: Vec<ResourceSpec>,
    pub duration: Duration,
    pub reason: String,
    pub status: RequestStatus,
    pub end_state: Option<EndState>,
    pub end_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
    pub activated_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub has_credentials_token: bool,
    /// The requester's groups when they asked: auto-approval and break-glass depend on them.
    pub requester_groups: Vec<String>,
    /// For each of `resources`, in the same order, the table's columns in the catalog when it
    /// was requested (what an all-columns request covers). Empty when not known, which the
    /// policy treats as touching every sensitive column.
    pub catalog_columns: Vec<Vec<String>>,
    /// Activated at once by the requester, without approval (break-glass).
    pub break_glass: bool,
    /// An approver's look at a break-glass grant after the fact.
    pub review: Option<Review>,
    /// Approved by the policy's auto-approval, without anyone.
    pub auto_approved: bool,
    /// The grant's per-query cutoff and total scan budget, fixed when it was approved.
    pub scan_cutoff_bytes: Option<i64>,
    pub scan_budget_bytes: Option<i64>,
    /// Time added by approved extensions.
    pub extended: Duration,
    /// Whose members may decide it, as the policy said when it was last evaluated (at submit,
    /// and at start-up): what approvers' queues select on.
    pub approver_groups: Vec<String>,
    /// An AI agent asked, on the requester's behalf, through the MCP server with this
    /// personal token (by name); `None` when the person asked themselves.
    pub agent: Option<String>,
}

/// Who reviewed a break-glass grant, and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub by_email: String,
    pub comment: Option<String>,
    pub at: OffsetDateTime,
}

impl AccessRequest {
    /// Whether credentials may be handed out at `now`.
    pub fn is_usable_at(&self, now: OffsetDateTime) -> bool {
        self.status == RequestStatus::Active && self.expires_at.is_some_and(|e| now < e)
    }

    /// A break-glass grant no approver has looked at yet.
    pub fn needs_review(&self) -> bool {
        self.break_glass && self.review.is_none()
    }

    /// The whole time granted so far: the duration asked for and every approved extension.
    pub fn granted_total(&self) -> Duration {
        self.duration + self.extended
    }
}

/// An approver's decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub actor: crate::audit::Actor,
    /// The approver's groups when they decided: which requirements their approval fills.
    pub groups: Vec<String>,
    pub decision: Decision,
    pub comment: Option<String>,
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    #[test]
    fn transitions_table() {
        let revoked = Some(EndState::Revoked);
        // (from, event, end state recorded, expected)
        let cases: &[(
            RequestStatus,
            Event,
            Option<EndState>,
            Option<RequestStatus>,
        )] = &[
            (Pending, Event::Approve, None, Some(Approved)),
            (Pending, Event::Deny, None, Some(Denied)),
            (Pending, Event::Cancel, None, Some(Cancelled)),
            (Pending, Event::Activate, None, None),
            (Pending, Event::BeginRevoke(EndState::Revoked), None, None),
            (Approved, Event::Approve, None, None),
            (Approved, Event::Deny, None, None),
            (Approved, Event::Cancel, None, None),
            (Approved, Event::Activate, None, Some(Active)),
            (
                Approved,
                Event::BeginRevoke(EndState::Revoked),
                None,
                Some(Revoking),
            ),
            (
                Approved,
                Event::BeginRevoke(EndState::Failed),
                None,
                Some(Revoking),
            ),
            (Approved, Event::BeginRevoke(EndState::Expired), None, None),
            (
                Active,
                Event::BeginRevoke(EndState::Expired),
                None,
                Some(Revoking),
            ),
            (
                Active,
                Event::BeginRevoke(EndState::Revoked),
                None,
                Some(Revoking),
            ),
            (Active, Event::BeginRevoke(EndState::Failed), None, None),
            (Active, Event::Activate, None, None),
            (Active, Event::Cancel, None, None),
            (Revoking, Event::FinishRevoke, revoked, Some(Revoked)),
            (
                Revoking,
                Event::FinishRevoke,
                Some(EndState::Expired),
                Some(Expired),
            ),
            (
                Revoking,
                Event::FinishRevoke,
                Some(EndState::Failed),
                Some(Failed),
            ),
            (Revoking, Event::FinishRevoke, None, None),
            (Revoking, Event::BeginRevoke(EndState::Revoked), None, None),
            (Expired, Event::BeginRevoke(EndState::Revoked), None, None),
            (Denied, Event::Approve, None, None),
            (Cancelled, Event::Approve, None, None),
            (Failed, Event::Activate, None, None),
            (Revoked, Event::FinishRevoke, revoked, None),
        ];
        for &(from, event, end, expected) in cases {
            let got = from.next(event, end).ok();
            assert_eq!(got, expected, "{from} + {event:?} (end {end:?})");
        }
    }

    #[test]
    fn every_status_round_trips_and_terminal_states_have_no_exit() {
        let events = [
            Event::Approve,
            Event::Deny,
            Event::Cancel,
            Event::Activate,
            Event::BeginRevoke(EndState::Expired),
            Event::BeginRevoke(EndState::Revoked),
            Event::BeginRevoke(EndState::Failed),
            Event::FinishRevoke,
        ];
        for st in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(st.as_str()), Some(st));
            if st.is_terminal() {
                for e in events {
                    assert!(st.next(e, Some(EndState::Revoked)).is_err(), "{st} + {e:?}");
                }
            }
        }
    }

    #[test]
    fn transition_error_says_what_and_where() {
        let err = Active.next(Event::Approve, None).unwrap_err();
        assert_eq!(err.to_string(), "cannot approve a request that is active");
    }

    #[test]
    fn reasons_are_checked() {
        assert!(parse_reason("too short").is_err());
        assert!(parse_reason("   padded         ").is_err());
        assert_eq!(
            parse_reason("  Quarterly revenue audit ").unwrap(),
            "Quarterly revenue audit"
        );
        assert!(parse_reason(&"x".repeat(2001)).is_err());
        assert!(parse_reason(&"x".repeat(2000)).is_ok());
        assert!(parse_reason("valid reason \u{0007} bell").is_err());
        assert_eq!(
            parse_reason("line one\r\nline two").unwrap(),
            "line one\nline two"
        );
    }

    #[test]
    fn comments_are_optional_and_bounded() {
        assert_eq!(parse_comment(None).unwrap(), None);
        assert_eq!(parse_comment(Some("  ")).unwrap(), None);
        assert_eq!(parse_comment(Some(" ok ")).unwrap().as_deref(), Some("ok"));
        assert!(parse_comment(Some(&"x".repeat(2001))).is_err());
    }

    #[test]
    fn request_ids_parse() {
        assert!("not-a-uuid".parse::<RequestId>().is_err());
        let id = RequestId::new_random();
        assert_eq!(id.to_string().parse::<RequestId>().unwrap(), id);
    }
}
