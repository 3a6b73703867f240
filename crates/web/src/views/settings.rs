//! The personal API tokens page.

use askama::Template;
use askama_web::WebTemplate;

use crate::views::Chrome;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: String,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
}

pub struct ScopeChoice {
    pub value: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings/tokens.html")]
pub struct TokensPage {
    pub chrome: Chrome,
    pub tokens: Vec<TokenRow>,
    pub scopes: Vec<ScopeChoice>,
    /// A token just created: shown this once.
    pub created: Option<String>,
    pub error: Option<String>,
    /// The form as typed, after an error.
    pub name: String,
    pub expires_in: String,
}
