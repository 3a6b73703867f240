//! Break-glass and other urgent notifications, POSTed as JSON to a webhook (a chat channel's
//! incoming webhook, an incident tool, a small relay of your own) and always written to the log.

use std::time::Duration;

use async_trait::async_trait;
use lakegate_app::notify::{LogNotifier, Notification, Notifier};

/// Attempts per notification: a webhook that is down for a moment should not lose it.
const ATTEMPTS: u32 = 3;

pub struct WebhookNotifier {
    client: reqwest::Client,
    url: String,
    public_url: String,
}

impl WebhookNotifier {
    pub fn new(url: String, public_url: String) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url,
            public_url,
        })
    }

    async fn post(&self, body: &serde_json::Value) -> Result<(), String> {
        let res = self
            .client
            .post(&self.url)
            .json(body)
            .send()
            .await
            // reqwest's error text carries the URL, and webhook URLs carry their secret.
            .map_err(|e| e.without_url().to_string())?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", res.status()))
        }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, n: &Notification) {
        LogNotifier.notify(n).await;
        let body = n.to_json(&self.public_url);
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            match self.post(&body).await {
                Ok(()) => return,
                Err(e) if attempt == ATTEMPTS => {
                    tracing::error!(event = n.event, request_id = %n.request, error = %e,
                        "could not deliver a notification to the webhook; it is in the log and the audit trail");
                }
                Err(e) => {
                    tracing::warn!(event = n.event, attempt, error = %e, "webhook delivery failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use lakegate_domain::RequestId;
    use serde_json::{Value, json};

    use super::*;

    type Seen = Arc<Mutex<Vec<Value>>>;

    /// A webhook on loopback that fails `failures` times, then records what it gets.
    async fn webhook(failures: usize) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let left = Arc::new(Mutex::new(failures));
        let app = axum::Router::new()
            .route(
                "/hook/secret",
                post(
                    |State((seen, left)): State<(Seen, Arc<Mutex<usize>>)>,
                     Json(body): Json<Value>| async move {
                        let mut left = left.lock().unwrap();
                        if *left > 0 {
                            *left -= 1;
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        seen.lock().unwrap().push(body);
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .with_state((Arc::clone(&seen), left));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/hook/secret"), seen)
    }

    fn notification() -> Notification {
        Notification {
            event: "break_glass.activated",
            request: RequestId::new_random(),
            summary: "BREAK-GLASS: alice activated access".into(),
            detail: json!({ "reason": "incident 42" }),
        }
    }

    #[tokio::test]
    async fn posts_the_notification_as_json_and_retries() {
        let (url, seen) = webhook(1).await;
        let n = notification();
        WebhookNotifier::new(url, "https://lakegate.example.com".into())
            .unwrap()
            .notify(&n)
            .await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "delivered once, after one failure");
        assert_eq!(seen[0]["event"], "break_glass.activated");
        assert_eq!(seen[0]["request_id"], n.request.to_string());
        assert_eq!(
            seen[0]["url"],
            format!("https://lakegate.example.com/requests/{}", n.request)
        );
        assert_eq!(seen[0]["text"], "BREAK-GLASS: alice activated access");
        assert_eq!(seen[0]["detail"]["reason"], "incident 42");
    }

    #[tokio::test]
    async fn gives_up_after_three_attempts() {
        let (url, seen) = webhook(5).await;
        WebhookNotifier::new(url, "http://127.0.0.1:8080".into())
            .unwrap()
            .notify(&notification())
            .await;
        assert!(seen.lock().unwrap().is_empty());
    }
}
