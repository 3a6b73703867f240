//! Slack, both ways (docs/slack.md): notifications posted through the bot token in Block Kit,
//! with Approve / Deny buttons on a request; the message updated in place once it is decided,
//! and every later notification of the request answered in its thread. Clicks come back to
//! `POST /integrations/slack/interactions` (routes/slack.rs). The API base URL is configurable,
//! so tests point it at a Slack-compatible receiver of their own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lakegate_app::notify::{Message, RequestSummary};
use lakegate_domain::duration::format_duration;
use lakegate_domain::notification::NotificationEvent;
use lakegate_domain::policy_file::format_bytes;
use serde_json::{Value, json};

/// How long a Slack user's email, once looked up, is trusted without asking Slack again.
const EMAIL_CACHE: Duration = Duration::from_secs(10 * 60);

/// The Slack Web API, as the bot.
pub struct Slack {
    client: reqwest::Client,
    api_url: String,
    bot_token: String,
    /// Checks the signature of what Slack sends back.
    pub signing_secret: String,
    emails: Mutex<HashMap<String, (Option<String>, Instant)>>,
    /// Email → Slack user id, for direct messages (cached as long).
    users: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Slack {
    /// `api_url` without a trailing `/`, like `https://slack.com/api`.
    pub fn new(
        api_url: &str,
        bot_token: String,
        signing_secret: String,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            api_url: api_url.trim_end_matches('/').to_owned(),
            bot_token,
            signing_secret,
            emails: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
        })
    }

    /// Calls `method` with a JSON body (Slack takes JSON for the methods that write).
    async fn call(&self, method: &str, body: &Value) -> Result<Value, String> {
        self.answer(method, self.post(method).json(body)).await
    }

    /// Calls `method` with a form body (Slack's read methods take only that).
    async fn call_form(&self, method: &str, form: &[(&str, &str)]) -> Result<Value, String> {
        self.answer(method, self.post(method).form(form)).await
    }

    fn post(&self, method: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(&self.bot_token)
    }

    /// Slack's `ok: false` and HTTP errors are errors (a 429 is retried by the outbox's
    /// backoff).
    async fn answer(&self, method: &str, req: reqwest::RequestBuilder) -> Result<Value, String> {
        let res = req
            .send()
            .await
            .map_err(|e| format!("Slack {method}: {}", http_error(&e.without_url())))?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("Slack {method} answered {status}"));
        }
        let answer: Value = res
            .json()
            .await
            .map_err(|e| format!("Slack {method}: {}", http_error(&e.without_url())))?;
        if answer["ok"] == true {
            Ok(answer)
        } else {
            Err(format!(
                "Slack {method}: {}",
                answer["error"].as_str().unwrap_or("not ok")
            ))
        }
    }

    /// Delivers one notification to `channel`: the request's first message is posted (its
    /// receipt, `<channel id> <ts>`, is what later ones refer to); a decision updates it in
    /// place; every later notification is answered in its thread.
    pub async fn deliver(
        &self,
        channel: &str,
        m: &Message,
        public_url: &str,
    ) -> Result<Option<String>, String> {
        let thread = m.thread.as_deref().and_then(|t| t.split_once(' '));
        let Some((channel_id, ts)) = thread else {
            let answer = self
                .call(
                    "chat.postMessage",
                    &json!({
                        "channel": channel,
                        "text": m.text,
                        "blocks": blocks(m, public_url),
                        "unfurl_links": false,
                    }),
                )
                .await?;
            let id = answer["channel"].as_str().unwrap_or(channel);
            let ts = answer["ts"].as_str().unwrap_or_default();
            return Ok(Some(format!("{id} {ts}")));
        };
        if m.event.decides() {
            self.call(
                "chat.update",
                &json!({
                    "channel": channel_id,
                    "ts": ts,
                    "text": m.text,
                    "blocks": blocks(m, public_url),
                }),
            )
            .await?;
        }
        self.call(
            "chat.postMessage",
            &json!({ "channel": channel_id, "thread_ts": ts, "text": m.text }),
        )
        .await?;
        Ok(None)
    }

    /// The verified email of Slack user `user`, if Slack has one for them (`users.info`;
    /// cached for 10 minutes). Bots, deleted users and unconfirmed emails have none.
    pub async fn verified_email(&self, user: &str) -> Result<Option<String>, String> {
        if let Ok(cache) = self.emails.lock()
            && let Some((email, at)) = cache.get(user)
            && at.elapsed() < EMAIL_CACHE
        {
            return Ok(email.clone());
        }
        let answer = self.call_form("users.info", &[("user", user)]).await?;
        let u = &answer["user"];
        let email =
            (u["is_bot"] != true && u["deleted"] != true && u["is_email_confirmed"] == true)
                .then(|| u["profile"]["email"].as_str().map(ToOwned::to_owned))
                .flatten();
        if let Ok(mut cache) = self.emails.lock() {
            cache.insert(user.to_owned(), (email.clone(), Instant::now()));
        }
        Ok(email)
    }

    /// Tells the person with `email` in a direct message from the bot (what the requester hears
    /// of: a decision, their access active, ending soon, ended). Someone Slack does not know by
    /// that email is skipped, not retried.
    pub async fn tell_person(
        &self,
        email: &str,
        m: &Message,
        public_url: &str,
    ) -> Result<Option<String>, String> {
        let Some(user) = self.user_by_email(email).await? else {
            tracing::info!(
                notification = m.id,
                "no Slack user has the requester's email; no direct message"
            );
            return Ok(None);
        };
        let link = m
            .request
            .as_ref()
            .map(|r| format!("{public_url}/requests/{}", r.id));
        let mut blocks =
            vec![json!({ "type": "section", "text": { "type": "mrkdwn", "text": m.text } })];
        if let Some(url) = &link {
            blocks.push(json!({
                "type": "actions",
                "elements": [{
                    "type": "button", "action_id": "open",
                    "text": { "type": "plain_text", "text": "Open in lakegate" },
                    "url": url,
                }],
            }));
        }
        self.call(
            "chat.postMessage",
            &json!({ "channel": user, "text": m.text, "blocks": blocks, "unfurl_links": false }),
        )
        .await?;
        Ok(None)
    }

    /// The Slack user id of `email` (`users.lookupByEmail`; cached for 10 minutes).
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, String> {
        if let Ok(cache) = self.users.lock()
            && let Some((user, at)) = cache.get(email)
            && at.elapsed() < EMAIL_CACHE
        {
            return Ok(user.clone());
        }
        let user = match self
            .call_form("users.lookupByEmail", &[("email", email)])
            .await
        {
            Ok(answer) => answer["user"]["id"].as_str().map(ToOwned::to_owned),
            Err(e) if e.ends_with(": users_not_found") => None,
            Err(e) => return Err(e),
        };
        if let Ok(mut cache) = self.users.lock() {
            cache.insert(email.to_owned(), (user.clone(), Instant::now()));
        }
        Ok(user)
    }

    /// Tells `user` something in `channel` that only they see.
    pub async fn tell(&self, channel: &str, user: &str, text: &str) -> Result<(), String> {
        self.call(
            "chat.postEphemeral",
            &json!({ "channel": channel, "user": user, "text": text }),
        )
        .await
        .map(|_| ())
    }
}

/// An HTTP client error as an admin can act on it ("error sending request: client error
/// (Connect): tcp connect error: Connection refused"), without its URL, which may carry a
/// secret (a webhook's path).
pub fn http_error(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    if let Some(url) = e.url() {
        out = out.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Slack's own escaping for text it renders: `&`, `<` and `>`.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Block Kit blocks of a request's message, as it stands: who asks, the tables and columns
/// (sensitive ones marked), duration, budget, reason and rules; the buttons while it waits for
/// a decision; the outcome once it has one.
pub fn blocks(m: &Message, public_url: &str) -> Value {
    let Some(r) = &m.request else {
        return json!([{ "type": "section", "text": { "type": "mrkdwn", "text": m.text } }]);
    };
    let mut blocks = vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": headline(m, r) } }),
        json!({ "type": "section", "fields": fields(r) }),
    ];
    let open = json!({
        "type": "button",
        "action_id": "open",
        "text": { "type": "plain_text", "text": "Open in lakegate" },
        "url": format!("{public_url}/requests/{}", r.id),
    });
    let waiting = r.status == "pending";
    if waiting {
        blocks.push(json!({
            "type": "actions",
            "block_id": "decide",
            "elements": [
                {
                    "type": "button", "action_id": "approve", "style": "primary",
                    "text": { "type": "plain_text", "text": "Approve" },
                    "value": r.id.to_string(),
                },
                {
                    "type": "button", "action_id": "deny", "style": "danger",
                    "text": { "type": "plain_text", "text": "Deny" },
                    "value": r.id.to_string(),
                },
                open,
            ],
        }));
    } else {
        blocks.push(json!({ "type": "actions", "block_id": "open", "elements": [open] }));
    }
    let status = if m.event == NotificationEvent::Requested {
        format!(
            "Waiting for approval from {}",
            esc(&r.approver_groups.join(", "))
        )
    } else {
        // Already safe for Slack: what people wrote in it is quoted (notify::quote_text).
        m.text.clone()
    };
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": format!("*{}* · {status}", r.status) }],
    }));
    json!(blocks)
}

fn headline(m: &Message, r: &RequestSummary) -> String {
    let who = match &r.agent {
        Some(agent) => format!("agent {} on behalf of *{}*", esc(agent), esc(&r.requester)),
        None => format!("*{}*", esc(&r.requester)),
    };
    let verb = if m.event == NotificationEvent::BreakGlass {
        ":rotating_light: broke the glass for"
    } else {
        "asks for"
    };
    // The reason is escaped (no mention, no link) and quoted.
    let reason = lakegate_app::notify::quote_text(&r.reason);
    format!(
        "{who} {verb} SELECT for *{}*\n>{reason}",
        format_duration(r.duration)
    )
}

fn fields(r: &RequestSummary) -> Vec<Value> {
    let tables = r
        .resources
        .iter()
        .map(|s| {
            let table = s.qualified_table();
            let sensitive = |c: &str| {
                r.sensitive_columns
                    .iter()
                    .any(|x| x == &format!("{table}.{c}") || x == &format!("{table}.*"))
            };
            let columns = match &s.columns {
                None if sensitive("*") => "every column :warning: sensitive".to_owned(),
                None => "every column".to_owned(),
                Some(cols) => cols
                    .iter()
                    .map(|c| {
                        if sensitive(c) {
                            format!("`{}` :warning: sensitive", esc(c))
                        } else {
                            format!("`{}`", esc(c))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            format!("`{}`: {columns}", esc(&table))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let budget = r
        .scan_budget_bytes
        .map_or_else(|| "no budget".to_owned(), format_bytes);
    vec![
        json!({ "type": "mrkdwn", "text": format!("*Tables*\n{tables}") }),
        json!({ "type": "mrkdwn", "text": format!("*Scan budget*\n{budget}") }),
        json!({ "type": "mrkdwn", "text": format!("*Rules*\n{}", esc(&r.rules.join(", "))) }),
    ]
}
