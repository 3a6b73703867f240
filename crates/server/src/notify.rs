//! Sends the outbox's notifications over HTTP: signed JSON webhooks
//! (docs/notifications.md) and Slack (docs/slack.md).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lakegate_app::notify::{Message, Sender, Target};
use lakegate_domain::signature::webhook_signature;
use lakegate_web::slack::Slack;
use secrecy::{ExposeSecret, SecretString};

pub struct HttpSender {
    client: reqwest::Client,
    public_url: String,
    /// Signs every webhook body.
    webhook_secret: Option<SecretString>,
    slack: Option<Arc<Slack>>,
}

impl HttpSender {
    pub fn new(
        public_url: String,
        webhook_secret: Option<SecretString>,
        slack: Option<Arc<Slack>>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            public_url,
            webhook_secret,
            slack,
        })
    }

    /// POSTs the message's JSON with `X-Lakegate-Timestamp` and `X-Lakegate-Signature`.
    async fn webhook(&self, url: &str, m: &Message) -> Result<Option<String>, String> {
        let body = serde_json::to_vec(&m.to_json(&self.public_url))
            .map_err(|e| format!("could not write the notification: {e}"))?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Lakegate-Event", m.event.as_str())
            .header("X-Lakegate-Delivery", m.id.to_string())
            .header("X-Lakegate-Timestamp", timestamp.to_string());
        if let Some(secret) = &self.webhook_secret {
            req = req.header(
                "X-Lakegate-Signature",
                webhook_signature(secret.expose_secret().as_bytes(), timestamp, &body),
            );
        }
        let res = req
            .body(body)
            .send()
            .await
            // reqwest's error text carries the URL, and webhook URLs may carry a secret.
            .map_err(|e| lakegate_web::slack::http_error(&e.without_url()))?;
        if res.status().is_success() {
            Ok(None)
        } else {
            Err(format!("the webhook answered {}", res.status()))
        }
    }
}

#[async_trait]
impl Sender for HttpSender {
    async fn send(&self, target: &Target, m: &Message) -> Result<Option<String>, String> {
        match target {
            Target::Webhook { url } => self.webhook(url, m).await,
            Target::Slack { channel } => match &self.slack {
                Some(slack) => slack.deliver(channel, m, &self.public_url).await,
                None => Err("Slack is not configured".into()),
            },
            Target::SlackPerson { email } => match &self.slack {
                Some(slack) => slack.tell_person(email, m, &self.public_url).await,
                None => Err("Slack is not configured".into()),
            },
        }
    }
}
