//! Telling people where they already are: webhooks and Slack, through an outbox
//! (docs/decisions/0022-notifications-through-an-outbox.md). [`crate::record`] enqueues a
//! notification in the transaction of the audit event that causes it; [`run`] fans each out
//! to its targets and delivers them with retries and backoff, so none is lost when lakegate or
//! the receiver restarts. What goes over the wire is in docs/notifications.md.

use std::collections::BTreeSet;

use async_trait::async_trait;
use futures_util::StreamExt;
use lakegate_domain::notification::NotificationEvent;
use lakegate_domain::{AccessRequest, RequestId, ResourceSpec};
use lakegate_store::outbox::{self, Claimed};
use lakegate_store::requests;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tokio_util::sync::CancellationToken;

use crate::{AppError, Services};

/// Where notifications go, as the deployment configures them.
#[derive(Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// Webhooks that receive every notification (`LAKEGATE_WEBHOOK_URLS`).
    pub webhooks: Vec<String>,
    /// A webhook that receives break-glass notifications only (`LAKEGATE_NOTIFY_WEBHOOK_URL`).
    pub break_glass_webhook: Option<String>,
    /// Slack is configured, and this is its default channel (`LAKEGATE_SLACK_CHANNEL`);
    /// rules may name their own.
    pub slack_channel: Option<String>,
    /// Whether a Slack bot token is configured: without one, no Slack target is made.
    pub slack: bool,
    /// A delivery still failing this long after its notification is given up.
    pub max_age: Duration,
    /// Delivered and given-up notifications are kept this long for the admins' view.
    pub keep: Duration,
}

/// Webhook URLs may carry a secret in their path: only how many there are is shown.
impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySettings")
            .field("webhooks", &self.webhooks.len())
            .field("break_glass_webhook", &self.break_glass_webhook.is_some())
            .field("slack_channel", &self.slack_channel)
            .field("slack", &self.slack)
            .field("max_age", &self.max_age)
            .field("keep", &self.keep)
            .finish()
    }
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            break_glass_webhook: None,
            slack_channel: None,
            slack: false,
            max_age: Duration::hours(24),
            keep: Duration::days(7),
        }
    }
}

/// One receiver of notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Webhook {
        url: String,
    },
    Slack {
        channel: String,
    },
    /// A direct message in Slack to the person with this email (the requester).
    SlackPerson {
        email: String,
    },
}

impl Target {
    /// How the outbox names it: never the URL itself, which may carry a secret.
    pub fn key(&self) -> String {
        match self {
            Self::Webhook { url } => format!("webhook:{}", digest(url)),
            Self::Slack { channel } => format!("slack:{channel}"),
            Self::SlackPerson { email } => format!("slack-dm:{email}"),
        }
    }
}

fn digest(url: &str) -> String {
    Sha256::digest(url.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends one message to one target. Implemented over HTTP by the server crate.
#[async_trait]
pub trait Sender: Send + Sync {
    /// Delivers `message`; `Ok(receipt)` when the target took it, with what later messages of
    /// the same request refer to (a Slack message's timestamp). `Err` is retried.
    async fn send(&self, target: &Target, message: &Message) -> Result<Option<String>, String>;
}

/// Refuses everything: what a deployment without targets has (it makes no deliveries).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSender;

#[async_trait]
impl Sender for NoSender {
    async fn send(&self, _: &Target, _: &Message) -> Result<Option<String>, String> {
        Err("no notification sender is configured".into())
    }
}

/// The request a notification is about, as receivers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    pub id: RequestId,
    pub requester: String,
    pub status: &'static str,
    pub reason: String,
    pub duration: Duration,
    pub expires_at: Option<OffsetDateTime>,
    pub scan_budget_bytes: Option<i64>,
    pub resources: Vec<ResourceSpec>,
    /// `database.table.column` of each sensitive column it covers (`*`: every column).
    pub sensitive_columns: Vec<String>,
    /// The policy rules that apply to its tables.
    pub rules: Vec<String>,
    /// The groups whose members may approve it.
    pub approver_groups: Vec<String>,
    /// The agent token it was made through, for a person.
    pub agent: Option<String>,
}

/// One notification, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Unique and stable across retries: receivers de-duplicate on it.
    pub id: i64,
    pub event: NotificationEvent,
    pub occurred_at: OffsetDateTime,
    /// Who caused it (`None`: lakegate itself).
    pub actor: Option<String>,
    pub request: Option<RequestSummary>,
    /// The audit event's detail.
    pub detail: Value,
    /// One line a person can read in a chat channel, safe to post as it is.
    pub text: String,
    /// What the first delivered message of the same request to the same target answered
    /// (for Slack, the message to update and answer in the thread of).
    pub thread: Option<String>,
}

impl Message {
    /// The JSON body of a webhook (docs/notifications.md).
    pub fn to_json(&self, public_url: &str) -> Value {
        json!({
            "id": self.id.to_string(),
            "event": self.event.as_str(),
            "occurred_at": rfc3339(self.occurred_at),
            "actor": self.actor,
            "text": self.text,
            "request": self.request.as_ref().map(|r| json!({
                "id": r.id.to_string(),
                "url": format!("{public_url}/requests/{}", r.id),
                "requester": r.requester,
                "agent": r.agent,
                "status": r.status,
                "reason": r.reason,
                "duration_seconds": r.duration.whole_seconds(),
                "expires_at": r.expires_at.map(rfc3339),
                "scan_budget_bytes": r.scan_budget_bytes,
                "resources": r.resources.iter().map(|s| json!({
                    "database": s.database,
                    "table": s.table,
                    "columns": s.columns,
                })).collect::<Vec<_>>(),
                "sensitive_columns": r.sensitive_columns,
                "rules": r.rules,
                "approver_groups": r.approver_groups,
            })),
            "detail": self.detail,
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
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

/// Enqueues the notification an audit event causes, if any: called by [`crate::record`] in
/// the event's own transaction.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    audit_event: i64,
    action: lakegate_domain::audit::AuditAction,
    detail: &Value,
    request: Option<RequestId>,
    at: OffsetDateTime,
) -> Result<(), AppError> {
    if let Some(event) = NotificationEvent::of(action, detail, crate::monitor::BUDGET_EXHAUSTED) {
        outbox::enqueue(conn, audit_event, event.as_str(), request, at).await?;
    }
    Ok(())
}

/// The targets one notification goes to: the deployment's webhooks, the webhooks of the
/// rules that apply to its tables, one Slack channel (the first applying rule's, or the
/// default), and, for what the requester hears of, a Slack message to the requester.
pub fn targets(
    svc: &Services,
    event: NotificationEvent,
    request: Option<&AccessRequest>,
) -> Vec<Target> {
    let n = &svc.settings.notify;
    let mut urls: Vec<&str> = n.webhooks.iter().map(String::as_str).collect();
    if event == NotificationEvent::BreakGlass
        && let Some(url) = &n.break_glass_webhook
    {
        urls.push(url);
    }
    let mut channel = n.slack_channel.clone();
    if let Some(r) = request {
        let rules = applying_rules(svc, r);
        for rule in svc
            .settings
            .policy
            .rules()
            .iter()
            .filter(|rule| rules.contains(rule.name.as_str()))
        {
            urls.extend(rule.notify.webhooks.iter().map(String::as_str));
            if let Some(c) = &rule.notify.slack_channel
                && channel.as_ref() == n.slack_channel.as_ref()
            {
                channel = Some(c.clone());
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut out: Vec<Target> = urls
        .into_iter()
        .filter(|u| seen.insert(*u))
        .map(|url| Target::Webhook {
            url: url.to_owned(),
        })
        .collect();
    if n.slack
        && let Some(channel) = channel
    {
        out.push(Target::Slack { channel });
    }
    if n.slack
        && event.tells_requester()
        && let Some(r) = request
    {
        out.push(Target::SlackPerson {
            email: r.requester.email.clone(),
        });
    }
    out
}

fn applying_rules(svc: &Services, r: &AccessRequest) -> BTreeSet<String> {
    crate::requests::evaluate(&svc.settings.policy, r)
        .tables
        .into_iter()
        .flat_map(|t| t.rules)
        .collect()
}

/// Every target a key may name under the configuration in force.
fn resolve(svc: &Services, key: &str) -> Option<Target> {
    if let Some(channel) = key.strip_prefix("slack:") {
        return svc.settings.notify.slack.then(|| Target::Slack {
            channel: channel.to_owned(),
        });
    }
    if let Some(email) = key.strip_prefix("slack-dm:") {
        return svc.settings.notify.slack.then(|| Target::SlackPerson {
            email: email.to_owned(),
        });
    }
    let n = &svc.settings.notify;
    n.webhooks
        .iter()
        .chain(&n.break_glass_webhook)
        .chain(
            svc.settings
                .policy
                .rules()
                .iter()
                .flat_map(|r| &r.notify.webhooks),
        )
        .map(|url| Target::Webhook { url: url.clone() })
        .find(|t| t.key() == key)
}

/// Notifications fanned out and deliveries attempted by one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub routed: usize,
    pub delivered: usize,
    pub failed: usize,
    pub given_up: usize,
}

/// How long a replica holds a delivery it is sending: longer than any sender waits.
const DELIVERY_LEASE: Duration = Duration::seconds(30);
const BATCH: i64 = 32;
/// Deliveries sent at once (all to different request/target pairs).
const CONCURRENCY: usize = 8;

/// Fans out what is new and sends what is due, once.
pub async fn deliver_due(svc: &Services) -> Result<Pass, AppError> {
    let mut pass = Pass {
        routed: route_new(svc).await?,
        ..Pass::default()
    };
    loop {
        let now = svc.clock.now();
        let claimed = {
            let mut conn = svc.db.acquire().await?;
            outbox::claim_due(&mut conn, now, DELIVERY_LEASE, BATCH).await?
        };
        let n = claimed.len();
        let outcomes: Vec<Result<Outcome, AppError>> = futures_util::stream::iter(claimed)
            .map(|c| deliver_one(svc, c))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome? {
                Outcome::Delivered => pass.delivered += 1,
                Outcome::Retrying => pass.failed += 1,
                Outcome::GivenUp => pass.given_up += 1,
            }
        }
        if i64::try_from(n).unwrap_or(0) < BATCH {
            return Ok(pass);
        }
    }
}

/// Fans new notifications out to their targets (and writes each to the log).
async fn route_new(svc: &Services) -> Result<usize, AppError> {
    let mut routed = 0;
    loop {
        let now = svc.clock.now();
        let n = crate::in_tx(svc, async |tx: &mut PgConnection| {
            let batch = outbox::lock_unrouted(&mut *tx, 100).await?;
            for u in &batch {
                let event = NotificationEvent::parse(&u.event);
                let request = match u.request {
                    Some(id) => requests::find(&mut *tx, id).await?,
                    None => None,
                };
                let keys: Vec<String> = event
                    .map(|e| targets(svc, e, request.as_ref()))
                    .unwrap_or_default()
                    .iter()
                    .map(Target::key)
                    .collect();
                if event == Some(NotificationEvent::BreakGlass) {
                    tracing::warn!(notification = u.id, event = u.event, request_id = ?u.request, targets = keys.len(), "break-glass access");
                } else {
                    tracing::info!(notification = u.id, event = u.event, request_id = ?u.request, targets = keys.len(), "notification");
                }
                outbox::route(&mut *tx, u.id, &keys, now).await?;
            }
            Ok(batch.len())
        })
        .await?;
        routed += n;
        if n < 100 {
            return Ok(routed);
        }
    }
}

enum Outcome {
    Delivered,
    Retrying,
    GivenUp,
}

/// The wait before attempt `attempts + 1`: 1 s, doubling, at most 5 minutes.
fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 10) - 1).unwrap_or(0);
    Duration::seconds(1_i64 << exp).min(Duration::minutes(5))
}

async fn deliver_one(svc: &Services, c: Claimed) -> Result<Outcome, AppError> {
    let result = match resolve(svc, &c.target) {
        None => Err(Failure::Permanent(
            "this target is no longer configured".into(),
        )),
        Some(target) => match message(svc, &c).await? {
            None => Err(Failure::Permanent(format!("unknown event {}", c.event))),
            Some(m) => svc
                .sender
                .send(&target, &m)
                .await
                .map_err(Failure::Transient),
        },
    };
    let now = svc.clock.now();
    let mut conn = svc.db.acquire().await?;
    match result {
        Ok(receipt) => {
            outbox::mark_delivered(
                &mut conn,
                c.notification,
                &c.target,
                receipt.as_deref(),
                now,
            )
            .await?;
            metrics::counter!(crate::metrics::NOTIFICATIONS, "outcome" => "delivered").increment(1);
            Ok(Outcome::Delivered)
        }
        Err(failure) => {
            let (error, retry_at) = match failure {
                Failure::Permanent(e) => (e, None),
                Failure::Transient(e) => {
                    let at = now + backoff(c.attempts);
                    (
                        e,
                        (at - c.created_at <= svc.settings.notify.max_age).then_some(at),
                    )
                }
            };
            outbox::mark_failed(&mut conn, c.notification, &c.target, &error, retry_at, now)
                .await?;
            if retry_at.is_some() {
                tracing::warn!(notification = c.notification, target = c.target, attempt = c.attempts, %error, "notification not delivered; trying again");
                metrics::counter!(crate::metrics::NOTIFICATIONS, "outcome" => "retrying")
                    .increment(1);
                Ok(Outcome::Retrying)
            } else {
                tracing::error!(notification = c.notification, target = c.target, attempts = c.attempts, %error, "notification given up; it stays in the audit trail");
                metrics::counter!(crate::metrics::NOTIFICATIONS, "outcome" => "given_up")
                    .increment(1);
                Ok(Outcome::GivenUp)
            }
        }
    }
}

enum Failure {
    Permanent(String),
    Transient(String),
}

/// The message a claimed delivery sends, read as the request stands now.
async fn message(svc: &Services, c: &Claimed) -> Result<Option<Message>, AppError> {
    let Some(event) = NotificationEvent::parse(&c.event) else {
        return Ok(None);
    };
    let request = match c.request {
        Some(id) => {
            let mut conn = svc.db.acquire().await?;
            requests::find(&mut conn, id).await?
        }
        None => None,
    };
    let summary = request.as_ref().map(|r| summarize(svc, r));
    let text = summary_text(event, c.actor_email.as_deref(), summary.as_ref(), &c.detail);
    Ok(Some(Message {
        id: c.notification,
        event,
        occurred_at: c.occurred_at,
        actor: c.actor_email.clone(),
        request: summary,
        detail: c.detail.clone(),
        text,
        thread: c.thread.clone(),
    }))
}

fn summarize(svc: &Services, r: &AccessRequest) -> RequestSummary {
    let evaluation = crate::requests::evaluate(&svc.settings.policy, r);
    let rules: BTreeSet<String> = evaluation
        .tables
        .iter()
        .flat_map(|t| t.rules.iter().cloned())
        .collect();
    RequestSummary {
        id: r.id,
        requester: r.requester.email.clone(),
        status: r.status.as_str(),
        reason: r.reason.clone(),
        duration: r.duration + r.extended,
        expires_at: r.expires_at,
        scan_budget_bytes: r.scan_budget_bytes,
        resources: r.resources.clone(),
        sensitive_columns: evaluation
            .sensitive_columns
            .iter()
            .map(|c| format!("{}.{}.{}", c.database, c.table, c.column))
            .collect(),
        rules: rules.into_iter().collect(),
        approver_groups: r.approver_groups.clone(),
        agent: r.agent.clone(),
    }
}

/// "alice@example.com asks for access to sales.orders for 1h: incident 42".
fn summary_text(
    event: NotificationEvent,
    actor: Option<&str>,
    request: Option<&RequestSummary>,
    detail: &Value,
) -> String {
    let Some(r) = request else {
        let what = detail
            .get("resource")
            .or_else(|| detail.get("name"))
            .and_then(Value::as_str)
            .map(|s| format!(": {}", quote_text(s)))
            .unwrap_or_default();
        return format!("lakegate {}{what}", event.describe());
    };
    let tables = r
        .resources
        .iter()
        .map(ResourceSpec::qualified_table)
        .collect::<Vec<_>>()
        .join(", ");
    let who = actor.unwrap_or("lakegate");
    match event {
        NotificationEvent::Requested => format!(
            "{} asks for access to {tables} for {}: {}",
            r.requester,
            lakegate_domain::duration::format_duration(r.duration),
            quote_text(&r.reason)
        ),
        NotificationEvent::BreakGlass => format!(
            "BREAK-GLASS: {} activated access to {tables} for {} without approval: {}",
            r.requester,
            lakegate_domain::duration::format_duration(r.duration),
            quote_text(&r.reason)
        ),
        NotificationEvent::Approved
        | NotificationEvent::Denied
        | NotificationEvent::PartiallyApproved
        | NotificationEvent::ExtensionApproved
        | NotificationEvent::ExtensionDenied => {
            let comment = detail
                .get("comment")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(|c| format!(": {}", quote_text(c)))
                .unwrap_or_default();
            let by = if actor.is_some() {
                format!(" by {who}")
            } else {
                " by the policy".into()
            };
            format!(
                "{}'s request for {tables}: {}{by}{comment}",
                r.requester,
                event.describe()
            )
        }
        _ => format!("{}'s access to {tables}: {}", r.requester, event.describe()),
    }
}

/// Runs until cancelled: delivers what is due whenever a notification is committed (through
/// `LISTEN`), when a retry comes due, and every few seconds whatever happens.
pub async fn run(svc: Services, shutdown: CancellationToken) {
    const POLL: std::time::Duration = std::time::Duration::from_secs(5);
    let mut listener = None;
    let mut last_prune = OffsetDateTime::UNIX_EPOCH;
    loop {
        if listener.is_none() {
            match outbox::listen(&svc.db).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "could not listen for new notifications; looking every few seconds")
                }
            }
        }
        let wait = match deliver_due(&svc).await {
            Ok(pass) => {
                if pass.routed + pass.delivered + pass.failed + pass.given_up > 0 {
                    tracing::debug!(?pass, "notification pass");
                }
                next_wait(&svc).await.unwrap_or(POLL).min(POLL)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not deliver notifications; will try again");
                POLL
            }
        };
        let now = svc.clock.now();
        if now - last_prune > Duration::hours(1) {
            last_prune = now;
            if let Err(e) = prune(&svc, now).await {
                tracing::warn!(error = %e, "could not remove old notifications");
            }
        }
        let woken = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            r = woken => if let Err(e) = r {
                tracing::warn!(error = %e, "lost the notification listener; listening again");
                listener = None;
            },
        }
    }
}

async fn next_wait(svc: &Services) -> Result<std::time::Duration, AppError> {
    let mut conn = svc.db.acquire().await?;
    if outbox::any_unrouted(&mut conn).await? {
        return Ok(std::time::Duration::ZERO);
    }
    let Some(at) = outbox::next_due(&mut conn).await? else {
        return Ok(std::time::Duration::MAX);
    };
    Ok(std::time::Duration::try_from(at - svc.clock.now()).unwrap_or_default())
}

async fn prune(svc: &Services, now: OffsetDateTime) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    let n = outbox::prune(&mut conn, now - svc.settings.notify.keep).await?;
    if n > 0 {
        tracing::info!(notifications = n, "old notifications removed");
    }
    Ok(())
}

/// What admins see of the outbox.
#[derive(Debug, Clone)]
pub struct Overview {
    pub counts: outbox::Counts,
    pub deliveries: Vec<outbox::DeliveryRow>,
}

/// The outbox's state, for admins.
pub async fn overview(
    svc: &Services,
    who: &lakegate_domain::Principal,
) -> Result<Overview, AppError> {
    lakegate_domain::access::check_audit(&svc.settings.policy, who)?;
    let mut conn = svc.db.acquire().await?;
    Ok(Overview {
        counts: outbox::counts(&mut conn).await?,
        deliveries: outbox::recent(&mut conn, 200).await?,
    })
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

    #[test]
    fn retries_back_off_to_five_minutes() {
        assert_eq!(backoff(1), Duration::seconds(1));
        assert_eq!(backoff(2), Duration::seconds(2));
        assert_eq!(backoff(5), Duration::seconds(16));
        assert_eq!(backoff(50), Duration::minutes(5));
    }

    #[test]
    fn target_keys_never_carry_the_url() {
        let key = Target::Webhook {
            url: "https://hooks.example.com/T0/B0/secret".into(),
        }
        .key();
        assert!(
            key.starts_with("webhook:") && !key.contains("secret"),
            "{key}"
        );
        assert_eq!(
            Target::Slack {
                channel: "C0123".into()
            }
            .key(),
            "slack:C0123"
        );
    }
}
