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
