//! The signed-in person, as the identity provider (or the development sign-in) describes them.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Stable identifier from the identity provider (`sub`); what lakegate compares.
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// Acting through this personal API token (by name), not the pages: the audit says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_token: Option<String>,
    /// An AI agent acts for this person with the token (`via_token`), through the MCP server:
    /// its requests say so, and auto-approval applies to them only where a rule allows agents.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent: bool,
    /// Acting from another application lakegate is wired to (`slack`), not its own pages: the
    /// audit says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl Principal {
    /// Builds a principal from claims, normalising groups (trimmed, deduplicated, sorted).
    pub fn new(
        subject: impl Into<String>,
        email: impl Into<String>,
        name: Option<String>,
        groups: impl IntoIterator<Item = String>,
    ) -> Result<Self, ValidationError> {
        let subject = subject.into().trim().to_owned();
        let email = email.into().trim().to_owned();
        if subject.is_empty() || subject.len() > 255 {
            return Err(ValidationError::new(
                "the subject must be 1 to 255 characters",
            ));
        }
        if !is_plausible_email(&email) {
            return Err(ValidationError::new(format!(
                "`{email}` is not an email address"
            )));
        }
        let mut groups: Vec<String> = groups
            .into_iter()
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect();
        groups.sort();
        groups.dedup();
        if let Some(g) = groups
            .iter()
            .find(|g| g.len() > 128 || g.chars().any(char::is_control))
        {
            return Err(ValidationError::new(format!(
                "group name `{g}` is not valid"
            )));
        }
        Ok(Self {
            subject,
            email,
            name: name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            groups,
            via_token: None,
            agent: false,
            via: None,
        })
    }

    /// The same person acting through their personal API token `name`.
    #[must_use]
    pub fn through_token(mut self, name: impl Into<String>) -> Self {
        self.via_token = Some(name.into());
        self
    }

    /// The same person acting from application `app` (`slack`).
    #[must_use]
    pub fn through_app(mut self, app: impl Into<String>) -> Self {
        self.via = Some(app.into());
        self
    }

    /// The same person, as an AI agent acting for them with their token (the MCP server).
    #[must_use]
    pub fn as_agent(mut self) -> Self {
        self.agent = true;
        self
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// What to show for this person.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.email)
    }
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_normalised() {
        let p = Principal::new(
            "alice",
            "alice@example.com",
            None,
            [" b ".to_owned(), "a".into(), "b".into(), "".into()],
        )
        .unwrap();
        assert_eq!(p.groups, ["a", "b"]);
        assert!(p.in_group("b"));
        assert_eq!(p.display_name(), "alice@example.com");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in ["", "alice", "@x", "a@", "a b@c", "a@b@c"] {
            assert!(
                Principal::new("s", bad, None, []).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
