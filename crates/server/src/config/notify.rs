//! Notification settings: webhooks, their signing secret, Slack, and how long a failing
//! delivery is tried (docs/notifications.md, docs/slack.md).

use anyhow::{Context, bail};
use lakegate_app::notify::NotifySettings;
use lakegate_domain::duration::parse_duration;
use lakegate_domain::policy_file::PolicyFile;
use secrecy::SecretString;
use time::Duration;

use crate::cli::ServeArgs;

/// Slack's own Web API.
pub const SLACK_API_URL: &str = "https://slack.com/api";

/// What the notification senders need besides [`NotifySettings`]: the secrets.
#[derive(Clone, Default)]
pub struct NotifyConfig {
    pub webhook_secret: Option<SecretString>,
    pub slack: Option<SlackConfig>,
}

#[derive(Clone)]
pub struct SlackConfig {
    pub bot_token: SecretString,
    pub signing_secret: SecretString,
    pub api_url: String,
}

fn non_empty(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn http_url(url: &str, variable: &str) -> anyhow::Result<String> {
    if (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(char::is_whitespace)
    {
        Ok(url.to_owned())
    } else {
        bail!(
            "{variable}: `{}` is not an http:// or https:// URL",
            crate::config::redact_webhook(url)
        )
    }
}

/// Reads and checks the notification settings. `policy` may name webhooks and Slack channels
/// of its own, which need the same secrets.
pub fn notify_config(
    a: &ServeArgs,
    policy: &PolicyFile,
) -> anyhow::Result<(NotifySettings, NotifyConfig)> {
    let break_glass_webhook = non_empty(a.notify_webhook_url.as_ref())
        .map(|u| http_url(u, "LAKEGATE_NOTIFY_WEBHOOK_URL"))
        .transpose()?;
    let webhooks = non_empty(a.webhook_urls.as_ref())
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| http_url(u, "LAKEGATE_WEBHOOK_URLS"))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    let webhook_secret =
        non_empty(a.webhook_secret.as_ref()).map(|s| SecretString::from(s.to_owned()));
    let rule_webhooks = policy.rules().iter().any(|r| !r.notify.webhooks.is_empty());
    if (!webhooks.is_empty() || rule_webhooks) && webhook_secret.is_none() {
        bail!(
            "LAKEGATE_WEBHOOK_SECRET is required with {}: every webhook is signed with it, so receivers can tell lakegate's notifications from anyone's",
            if webhooks.is_empty() {
                "the policy file's notify.webhooks"
            } else {
                "LAKEGATE_WEBHOOK_URLS"
            }
        );
    }
    if let Some(secret) = &a.webhook_secret
        && !secret.trim().is_empty()
        && secret.trim().len() < 16
    {
        bail!(
            "LAKEGATE_WEBHOOK_SECRET must be at least 16 characters (a random string, like `openssl rand -hex 32` prints)"
        );
    }

    let token = non_empty(a.slack_bot_token.as_ref());
    let signing = non_empty(a.slack_signing_secret.as_ref());
    let channel = non_empty(a.slack_channel.as_ref());
    let slack = match (token, signing, channel) {
        (None, None, None) => None,
        (Some(token), Some(signing), Some(_)) => Some(SlackConfig {
            bot_token: SecretString::from(token.to_owned()),
            signing_secret: SecretString::from(signing.to_owned()),
            api_url: http_url(a.slack_api_url.trim(), "LAKEGATE_SLACK_API_URL")?
                .trim_end_matches('/')
                .to_owned(),
        }),
        _ => bail!(
            "Slack needs LAKEGATE_SLACK_BOT_TOKEN, LAKEGATE_SLACK_SIGNING_SECRET and LAKEGATE_SLACK_CHANNEL together (missing: {})",
            [
                (token.is_none(), "LAKEGATE_SLACK_BOT_TOKEN"),
                (signing.is_none(), "LAKEGATE_SLACK_SIGNING_SECRET"),
                (channel.is_none(), "LAKEGATE_SLACK_CHANNEL"),
            ]
            .iter()
            .filter(|(missing, _)| *missing)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(", ")
        ),
    };
    if slack.is_none()
        && policy
            .rules()
            .iter()
            .any(|r| r.notify.slack_channel.is_some())
    {
        tracing::warn!(
            "the policy file names Slack channels, but Slack is not configured (LAKEGATE_SLACK_BOT_TOKEN)"
        );
    }

    let max_age = parse_duration(&a.notify_max_age).context("LAKEGATE_NOTIFY_MAX_AGE")?;
    if max_age < Duration::minutes(1) || max_age > Duration::days(30) {
        bail!("LAKEGATE_NOTIFY_MAX_AGE must be between 1m and 30d");
    }
    let settings = NotifySettings {
        webhooks,
        break_glass_webhook,
        slack_channel: slack.as_ref().and(channel.map(ToOwned::to_owned)),
        slack: slack.is_some(),
        max_age,
        ..NotifySettings::default()
    };
    Ok((
        settings,
        NotifyConfig {
            webhook_secret,
            slack,
        },
    ))
}
