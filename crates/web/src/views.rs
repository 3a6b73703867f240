//! View models: display-ready fields only. One module per templates/ folder.

pub mod audit;
pub mod auth;
pub mod chart;
pub mod console;
pub mod requests;
pub mod settings;

use lakegate_domain::duration::format_duration;
use lakegate_domain::{AccessRequest, Principal};
use time::OffsetDateTime;
use time::macros::format_description;
use tower_sessions::Session;

use crate::csrf;
use crate::error::WebError;
use crate::session::{Flash, take_flash};
use crate::state::AppState;

/// The signed-in person, as the header shows them.
pub struct UserView {
    pub name: String,
    pub email: String,
    pub groups: String,
}

/// What every page's frame needs: who is signed in, the CSRF token for its forms, a flash.
pub struct Chrome {
    pub user: Option<UserView>,
    /// Show the audit trail in the navigation.
    pub is_admin: bool,
    pub csrf_token: String,
    pub flash: Option<Flash>,
}

impl Chrome {
    pub async fn new(
        state: &AppState,
        session: &Session,
        user: Option<&Principal>,
    ) -> Result<Self, WebError> {
        Ok(Self {
            is_admin: user.is_some_and(|u| state.services.settings.policy.is_admin(u)),
            user: user.map(|p| UserView {
                name: p.display_name().to_owned(),
                email: p.email.clone(),
                groups: p.groups.join(", "),
            }),
            csrf_token: csrf::token(session).await?,
            flash: take_flash(session).await?,
        })
    }
}

pub fn fmt_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_else(|_| t.to_string())
}

/// RFC 3339, for `<time datetime=…>` (which the page's script shows in the viewer's zone).
pub fn fmt_iso(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

pub fn fmt_opt_time(t: Option<OffsetDateTime>) -> String {
    t.map(fmt_time).unwrap_or_default()
}

/// One request in a list.
pub struct RequestRow {
    pub id: String,
    pub status: &'static str,
    pub tables: String,
    pub requester: String,
    pub duration: String,
    pub created_at: String,
    pub expires_at: String,
    pub break_glass: bool,
    pub needs_review: bool,
}

/// Who asked: the person, or `agent <token> on behalf of <person>` when an AI agent asked for
/// them through the MCP server.
pub fn requested_by(r: &AccessRequest, person: String) -> String {
    match &r.agent {
        Some(agent) => format!("agent {agent} on behalf of {person}"),
        None => person,
    }
}

impl RequestRow {
    pub fn from(r: &AccessRequest) -> Self {
        let tables: Vec<String> = r.resources.iter().map(|s| s.qualified_table()).collect();
        Self {
            id: r.id.to_string(),
            status: r.status.as_str(),
            tables: tables.join(", "),
            requester: requested_by(r, r.requester.display_name().to_owned()),
            duration: format_duration(r.granted_total()),
            created_at: fmt_time(r.created_at),
            expires_at: fmt_opt_time(r.expires_at),
            break_glass: r.break_glass,
            needs_review: r.needs_review(),
        }
    }
}
