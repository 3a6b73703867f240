//! The dashboard and the request pages.

use askama::Template;
use askama_web::WebTemplate;
use lakegate_domain::access::AllowedActions;

use crate::views::{Chrome, RequestRow};

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub mine: Vec<RequestRow>,
    /// Shows the approvers' and admins' sections.
    pub is_approver: bool,
    pub is_admin: bool,
    /// The viewer's groups that approve something, for the hint under the lists.
    pub approver_groups: String,
    pub pending: Vec<RequestRow>,
    pub extensions: Vec<ExtensionRow>,
    pub needs_review: Vec<RequestRow>,
    pub live: Vec<RequestRow>,
}

/// A pending extension in the approvers' queue.
pub struct ExtensionRow {
    pub request: RequestRow,
    pub extra: String,
    pub reason: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/new.html")]
pub struct NewRequestPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    pub resources: String,
    pub duration: String,
    pub reason: String,
    pub min_duration: String,
    pub max_duration: String,
    pub max_resources: usize,
    /// Some rule lets this person break the glass.
    pub may_break_glass: bool,
    pub break_glass: bool,
}

pub struct ResourceView {
    pub table: String,
    pub columns: String,
}

pub struct DecisionView {
    pub who: String,
    pub groups: String,
    pub decision: &'static str,
    pub comment: String,
    pub at: String,
}

pub struct EventView {
    pub at: String,
    pub who: String,
    pub what: &'static str,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/show.html")]
pub struct ShowRequestPage {
    pub chrome: Chrome,
    pub id: String,
    pub status: &'static str,
    pub status_note: String,
    /// The page refreshes itself while lakegate is working on the request.
    pub in_progress: bool,
    /// `Name <email>`, or the email alone.
    pub requester: String,
    pub reason: String,
    pub duration: String,
    pub created_at: String,
    pub activated_at: String,
    pub expires_at: String,
    pub ended_at: String,
    pub end_reason: String,
    pub last_error: String,
    pub workgroup: String,
    pub resources: Vec<ResourceView>,
    pub decisions: Vec<DecisionView>,
    pub timeline: Vec<EventView>,
    pub actions: AllowedActions,
    pub has_token: bool,
    pub break_glass: bool,
    pub auto_approved: bool,
    /// `reviewed by … at …: comment`, once a break-glass grant is reviewed.
    pub review: String,
    pub why: PolicyView,
    pub extensions: Vec<ExtensionView>,
    /// The pending extension, if any, for the approve/deny forms.
    pub pending_extension: Option<ExtensionView>,
    pub scan_cutoff: String,
    pub scan_budget: String,
    /// The grant became active: its usage is worth showing.
    pub show_usage: bool,
    /// `3 queries · 94 MB scanned · about $0.0005`.
    pub usage_summary: String,
    /// Server-rendered SVG (numbers and fixed text only).
    pub usage_chart: String,
    pub queries: Vec<QueryView>,
}

pub struct QueryView {
    pub submitted: String,
    pub state: &'static str,
    pub scanned: String,
    pub cost: String,
    pub sql: String,
    pub reason: String,
    /// The flags' descriptions, one per line.
    pub flags: Vec<String>,
}

/// "The approver sees why": how the policy applies to this request.
pub struct PolicyView {
    /// One per requested table: `sales.orders` → `rule sales, rule marketing`.
    pub tables: Vec<(String, String)>,
    pub requirements: Vec<RequirementView>,
    /// Still waiting for approvals: what is still needed is worth showing.
    pub pending: bool,
    /// One line per requirement still short; empty once approved.
    pub missing: Vec<String>,
    /// `hr.people.salary (rule hr)`.
    pub sensitive: Vec<String>,
    /// (what, value, where it comes from)
    pub limits: Vec<(String, String, String)>,
    /// `yes` or why not.
    pub auto_approval: String,
    pub break_glass: String,
}

pub struct RequirementView {
    /// `2 approvals from hr-owners`.
    pub what: String,
    /// `rule hr`, `sensitive columns, rule hr`.
    pub from: String,
    pub approved_by: String,
    pub still_needed: u32,
}

pub struct ExtensionView {
    pub id: i64,
    pub extra: String,
    pub reason: String,
    pub status: &'static str,
    pub requested_at: String,
    pub decided_at: String,
    pub auto_approved: bool,
    pub decisions: Vec<DecisionView>,
    pub missing: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/credentials.html")]
pub struct CredentialsPage {
    pub chrome: Chrome,
    pub id: String,
    pub short_id: String,
    pub url: String,
    pub token: String,
    pub expires_at: String,
    pub region: String,
    pub workgroup: String,
    pub example_table: String,
}
