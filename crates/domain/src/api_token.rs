//! Personal API tokens: what a token may do (its scopes), how long it lives, and how people
//! name it. The token itself is random and stored only as a hash (`lakegate-app`).

use std::fmt;

use time::Duration;

use crate::duration::{format_duration, parse_duration};
use crate::error::ValidationError;

/// Every personal token starts with this, so it is recognisable in a secret scanner and apart
/// from a grant's credentials token.
pub const TOKEN_PREFIX: &str = "lgp_";

/// How long a token lives unless its owner says otherwise.
pub const DEFAULT_LIFETIME: Duration = Duration::days(30);
/// The longest a token may live.
pub const MAX_LIFETIME: Duration = Duration::days(365);

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read requests, queues and grants.
    RequestsRead,
    /// Submit, cancel, revoke and extend requests.
    RequestsWrite,
    /// Approve and deny (still only what the owner could approve).
    ApprovalsWrite,
    /// Issue a grant's credentials token.
    Credentials,
    /// Run statements through the guarded query console.
    Console,
    /// Read the audit trail (admins only, whatever the token says).
    AuditRead,
}

impl Scope {
    pub const ALL: [Self; 6] = [
        Self::RequestsRead,
        Self::RequestsWrite,
        Self::ApprovalsWrite,
        Self::Credentials,
        Self::Console,
        Self::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestsRead => "requests:read",
            Self::RequestsWrite => "requests:write",
            Self::ApprovalsWrite => "approvals:write",
            Self::Credentials => "credentials",
            Self::Console => "console",
            Self::AuditRead => "audit:read",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// For the settings page.
    pub fn describe(self) -> &'static str {
        match self {
            Self::RequestsRead => "read your requests, your approval queue and live grants",
            Self::RequestsWrite => "ask for access, cancel, extend and revoke",
            Self::ApprovalsWrite => "approve and deny what you may approve",
            Self::Credentials => "issue credentials tokens for your active grants",
            Self::Console => "run queries through the guarded console",
            Self::AuditRead => "read the audit trail (if you are an admin)",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes as a form sends them (each once, at least one), sorted.
pub fn parse_scopes<'a>(
    input: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, ValidationError> {
    let mut scopes = Vec::new();
    for s in input {
        let s = s.trim();
        let scope = Scope::parse(s).ok_or_else(|| {
            ValidationError::new(format!(
                "`{s}` is not a scope; the scopes are {}",
                Scope::ALL.map(Scope::as_str).join(", ")
            ))
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(ValidationError::new("choose at least one scope"));
    }
    scopes.sort();
    Ok(scopes)
}

/// `30d`, `12h`, or nothing for [`DEFAULT_LIFETIME`]; at least an hour, at most
/// [`MAX_LIFETIME`].
pub fn parse_lifetime(input: Option<&str>) -> Result<Duration, ValidationError> {
    let Some(text) = input.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_LIFETIME);
    };
    let d = parse_duration(text)?;
    if d < Duration::hours(1) || d > MAX_LIFETIME {
        return Err(ValidationError::new(format!(
            "a token lives between 1h and {}; you asked for {}",
            format_duration(MAX_LIFETIME),
            format_duration(d)
        )));
    }
    Ok(d)
}

/// What the owner calls the token (`laptop`, `nightly report`, `claude`): 1 to 100 printable
/// characters.
pub fn parse_name(input: &str) -> Result<String, ValidationError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(ValidationError::new("give the token a name, like `laptop`"));
    }
    if name.chars().count() > 100 {
        return Err(ValidationError::new(
            "a token's name is at most 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "a token's name cannot hold control characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_bad_ones_are_named() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            parse_scopes(["console", "requests:read", "console"]).unwrap(),
            [Scope::RequestsRead, Scope::Console]
        );
        let e = parse_scopes(["requests:admin"]).unwrap_err().to_string();
        assert!(e.contains("`requests:admin` is not a scope"), "{e}");
        assert!(parse_scopes([]).is_err());
    }

    #[test]
    fn lifetimes_default_and_are_bounded() {
        assert_eq!(parse_lifetime(None).unwrap(), Duration::days(30));
        assert_eq!(parse_lifetime(Some(" ")).unwrap(), Duration::days(30));
        assert_eq!(parse_lifetime(Some("90d")).unwrap(), Duration::days(90));
        assert!(parse_lifetime(Some("366d")).is_err());
        assert!(parse_lifetime(Some("30m")).is_err());
        assert!(parse_lifetime(Some("forever")).is_err());
    }

    #[test]
    fn names_are_short_and_printable() {
        assert_eq!(parse_name("  laptop ").unwrap(), "laptop");
        assert!(parse_name("").is_err());
        assert!(parse_name(&"x".repeat(101)).is_err());
        assert!(parse_name("a\u{1b}[31m").is_err());
    }
}
