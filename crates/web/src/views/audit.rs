//! The audit trail page.

use askama::Template;
use askama_web::WebTemplate;

use crate::views::Chrome;

pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub request: String,
    pub actor: String,
    pub action: &'static str,
    pub detail: String,
    pub hash: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/list.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub rows: Vec<AuditRow>,
    /// The filter as typed, to show it again and to build links.
    pub request: String,
    pub actor: String,
    pub action: String,
    pub from: String,
    pub until: String,
    pub actions: Vec<&'static str>,
    /// Query string of the current filter (without paging), for export and paging links.
    pub query: String,
    pub older: Option<i64>,
}

/// One delivery of a notification, for the admins' outbox page.
pub struct DeliveryView {
    pub id: i64,
    pub event: String,
    pub request: String,
    pub target: String,
    pub created_at: String,
    pub created_at_iso: String,
    pub attempts: i32,
    /// `pending`, `delivered` or `given up`.
    pub state: &'static str,
    pub state_class: &'static str,
    /// When it is tried next (pending), or when it was delivered or given up.
    pub when: String,
    pub when_iso: String,
    pub last_error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/notifications.html")]
pub struct NotificationsPage {
    pub chrome: Chrome,
    pub pending: i64,
    pub failed: i64,
    pub delivered: i64,
    pub unrouted: i64,
    pub deliveries: Vec<DeliveryView>,
}
