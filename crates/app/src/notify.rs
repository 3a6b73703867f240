//! Telling people about events that must not wait for someone to open a page: break-glass
//! access above all. Delivery is best effort and never holds up the verb that caused it: the
//! audit row, written in the verb's own transaction, is the record; a notification is a nudge.

use async_trait::async_trait;
use lakegate_domain::RequestId;
use serde_json::{Value, json};

/// One thing to tell people about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Stable name, like `break_glass.activated`.
    pub event: &'static str,
    pub request: RequestId,
    /// One line a person can read in a chat channel.
    pub summary: String,
    pub detail: Value,
}

impl Notification {
    /// The JSON body a webhook receives.
    pub fn to_json(&self, public_url: &str) -> Value {
        json!({
            "event": self.event,
            "request_id": self.request.to_string(),
            "url": format!("{public_url}/requests/{}", self.request),
            "text": self.summary,
            "detail": self.detail,
        })
    }
}

/// Text a person wrote (a reason, a comment), made safe to put in a one-line summary that
/// goes to logs and chat: control characters are written as escapes (`\n`, `\u{1b}`), so no
/// line can be forged; `<`, `>` and `&` are escaped as Slack asks (no `<!channel>`, no
/// `<@U123>` link); and an `@` gets a zero-width space after it, so `@here` or `@alice`
/// mentions no one.
pub fn quote_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' => out.push_str("@\u{200B}"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, n: &Notification);
}

/// Writes notifications to the log (at WARN, so they stand out). Always on, whatever else is
/// configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, n: &Notification) {
        tracing::warn!(event = n.event, request_id = %n.request, detail = %n.detail, "{}", n.summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_forges_no_line_and_mentions_no_one() {
        let quoted = quote_text(
            "fix\n2026-12-02T00:00:00Z INFO approved\r\u{1b}[31m @here <!channel> <@U1> a&b",
        );
        assert!(!quoted.chars().any(char::is_control), "{quoted:?}");
        assert!(quoted.starts_with("fix\\n2026"), "{quoted:?}");
        assert!(quoted.contains("@\u{200B}here"), "{quoted:?}");
        assert!(!quoted.contains('<') && !quoted.contains('>'), "{quoted:?}");
        assert!(quoted.contains("a&amp;b"), "{quoted:?}");
        assert_eq!(quote_text("incident 42"), "incident 42");
    }
}
