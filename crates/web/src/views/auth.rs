//! Sign-in pages.

use askama::Template;
use askama_web::WebTemplate;

use crate::views::Chrome;

#[derive(Template, WebTemplate)]
#[template(path = "auth/dev.html")]
pub struct DevLoginPage {
    pub chrome: Chrome,
    pub next: String,
    pub error: Option<String>,
    pub email: String,
    pub name: String,
    pub groups: String,
}
