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
