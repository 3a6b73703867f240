//! The dashboard and the request pages.

use askama::Template;
use askama_web::WebTemplate;
use lakegate_domain::policy::AllowedActions;

use crate::views::{Chrome, RequestRow};

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub mine: Vec<RequestRow>,
    pub is_approver: bool,
    pub approver_group: String,
    pub pending: Vec<RequestRow>,
    pub live: Vec<RequestRow>,
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
}

pub struct ResourceView {
    pub table: String,
    pub columns: String,
}

pub struct DecisionView {
    pub who: String,
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
