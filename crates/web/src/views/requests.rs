//! The dashboard and the request pages.

use askama::Template;
use askama_web::WebTemplate;
use lakegate_app::requests::{
    EVENTS_PER_PAGE, ExtensionDetail, PageInfo, QUERIES_PER_PAGE, RequestDetail,
};
use lakegate_domain::RequestStatus;
use lakegate_domain::access::AllowedActions;
use lakegate_domain::duration::format_duration;
use lakegate_domain::extension::ExtensionStatus;
use lakegate_domain::naming::NAME_PREFIX;
use lakegate_domain::policy_file::{DEFAULTS, Evaluation, format_bytes};
use lakegate_domain::request::{Decision, DecisionRecord};
use lakegate_domain::usage::{Micros, approx_bytes, cumulative_bytes};
use time::OffsetDateTime;

use crate::views::chart::UsageChart;
use crate::views::{Chrome, RequestRow, fmt_opt_time, fmt_time};

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub mine: Vec<RequestRow>,
    /// Shows the approvers' and admins' sections.
    pub is_approver: bool,
    pub is_admin: bool,
    /// The viewer's groups that approve something, for the hint under the lists.
    pub approver_groups: String,
    pub pending: Vec<QueueRow>,
    pub extensions: Vec<ExtensionRow>,
    pub needs_review: Vec<RequestRow>,
    pub live: Vec<RequestRow>,
}

/// A pending request in the approver's queue: enough to decide from the queue itself.
pub struct QueueRow {
    pub request: RequestRow,
    pub reason: String,
    /// One line per table: `sales.customers: customer_id, email` (or `all columns`).
    pub exposure: Vec<String>,
    /// `database.table.column` of each sensitive column it touches.
    pub sensitive: Vec<String>,
    /// What is still needed before it is approved.
    pub missing: String,
}

impl QueueRow {
    pub fn from(q: &lakegate_app::requests::Queued) -> Self {
        let r = &q.request;
        let reason = match r.reason.char_indices().nth(200) {
            Some((at, _)) => format!("{}…", &r.reason[..at]),
            None => r.reason.clone(),
        };
        Self {
            request: RequestRow::from(r),
            reason,
            exposure: r
                .resources
                .iter()
                .map(|s| match &s.columns {
                    Some(c) => format!("{}: {}", s.qualified_table(), c.join(", ")),
                    None => format!("{}: all columns", s.qualified_table()),
                })
                .collect(),
            sensitive: q.sensitive.clone(),
            missing: q.missing.join("; "),
        }
    }
}

/// A pending extension in the approvers' queue.
pub struct ExtensionRow {
    pub request: RequestRow,
    pub extra: String,
    pub reason: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/new.html")]
pub struct NewRequestPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    pub resources: String,
    pub duration: String,
    pub reason: String,
    pub min_duration: String,
    pub max_duration: String,
    pub max_resources: usize,
    /// Some rule lets this person break the glass.
    pub may_break_glass: bool,
    pub break_glass: bool,
}

pub struct ResourceView {
    pub table: String,
    pub columns: String,
}

pub struct DecisionView {
    pub who: String,
    pub groups: String,
    pub decision: &'static str,
    pub comment: String,
    pub at: String,
}

pub struct EventView {
    pub at: String,
    pub who: String,
    pub what: &'static str,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/show.html")]
pub struct ShowRequestPage {
    pub chrome: Chrome,
    pub id: String,
    pub status: &'static str,
    pub status_note: String,
    /// The page refreshes itself while lakegate is working on the request.
    pub in_progress: bool,
    /// `Name <email>`, or the email alone.
    pub requester: String,
    pub reason: String,
    pub duration: String,
    pub created_at: String,
    pub activated_at: String,
    pub expires_at: String,
    pub ended_at: String,
    /// The same four in RFC 3339, for `<time datetime>`.
    pub created_at_iso: String,
    pub activated_at_iso: String,
    pub expires_at_iso: String,
    pub ended_at_iso: String,
    pub end_reason: String,
    pub last_error: String,
    pub workgroup: String,
    pub resources: Vec<ResourceView>,
    pub decisions: Vec<DecisionView>,
    pub timeline: Vec<EventView>,
    pub actions: AllowedActions,
    pub has_token: bool,
    pub break_glass: bool,
    pub auto_approved: bool,
    /// `reviewed by … at …: comment`, once a break-glass grant is reviewed.
    pub review: String,
    pub why: PolicyView,
    pub extensions: Vec<ExtensionView>,
    /// The pending extension, if any, for the approve/deny forms.
    pub pending_extension: Option<ExtensionView>,
    pub scan_cutoff: String,
    pub scan_budget: String,
    /// The grant became active: its usage is worth showing.
    pub show_usage: bool,
    /// `3 queries · 94 MB scanned · about $0.0005`.
    pub usage_summary: String,
    /// Server-rendered SVG (numbers and fixed text only).
    pub usage_chart: String,
    pub queries: Vec<QueryView>,
    /// Links between pages of the queries (newest first) and of the timeline (oldest first).
    pub queries_pager: Pager,
    pub timeline_pager: Pager,
}

/// Where a page sits and the links to its neighbours; nothing to show with a single page.
pub struct Pager {
    /// `51–100 of 2,340`; empty when everything fits on one page.
    pub label: String,
    /// The page before (newer queries, earlier events).
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `href(page)` is the link to another page.
    fn new(info: PageInfo, per_page: i64, href: impl Fn(u32) -> String) -> Self {
        if info.pages <= 1 {
            return Self {
                label: String::new(),
                previous: None,
                next: None,
            };
        }
        let first = i64::from(info.page - 1) * per_page + 1;
        let last = (first + per_page - 1).min(info.total);
        Self {
            label: format!("{first}–{last} of {}", info.total),
            previous: (info.page > 1).then(|| href(info.page - 1)),
            next: (info.page < info.pages).then(|| href(info.page + 1)),
        }
    }
}

pub struct QueryView {
    pub submitted: String,
    pub state: &'static str,
    pub scanned: String,
    pub cost: String,
    pub sql: String,
    pub reason: String,
    /// The flags' descriptions, one per line.
    pub flags: Vec<String>,
    /// Started in the query console (otherwise through the credentials URL).
    pub from_console: bool,
    /// The query's own page, for the requester while the console is open to them.
    pub link: Option<String>,
}

/// "The approver sees why": how the policy applies to this request.
pub struct PolicyView {
    /// One per requested table: `sales.orders` → `rule sales, rule marketing`.
    pub tables: Vec<(String, String)>,
    pub requirements: Vec<RequirementView>,
    /// Still waiting for approvals: what is still needed is worth showing.
    pub pending: bool,
    /// One line per requirement still short; empty once approved.
    pub missing: Vec<String>,
    /// `hr.people.salary (rule hr)`.
    pub sensitive: Vec<String>,
    /// (what, value, where it comes from)
    pub limits: Vec<(String, String, String)>,
    /// `yes` or why not.
    pub auto_approval: String,
    pub break_glass: String,
}

pub struct RequirementView {
    /// `2 approvals from hr-owners`.
    pub what: String,
    /// `rule hr`, `sensitive columns, rule hr`.
    pub from: String,
    pub approved_by: String,
    pub still_needed: u32,
}

pub struct ExtensionView {
    pub id: i64,
    pub extra: String,
    pub reason: String,
    pub status: &'static str,
    pub requested_at: String,
    pub decided_at: String,
    pub auto_approved: bool,
    pub decisions: Vec<DecisionView>,
    pub missing: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/credentials.html")]
pub struct CredentialsPage {
    pub chrome: Chrome,
    pub id: String,
    pub short_id: String,
    pub url: String,
    pub token: String,
    pub expires_at: String,
    pub region: String,
    pub workgroup: String,
    pub example_table: String,
}

impl ShowRequestPage {
    /// The page of one request, as `viewer` sees it (`detail.actions` are theirs).
    pub fn new(chrome: Chrome, d: &RequestDetail, now: OffsetDateTime) -> Self {
        let r = &d.request;
        ShowRequestPage {
            chrome,
            id: r.id.to_string(),
            status: r.status.as_str(),
            status_note: status_note(d),
            in_progress: matches!(r.status, RequestStatus::Approved | RequestStatus::Revoking),
            requester: crate::views::requested_by(
                r,
                match &r.requester.name {
                    Some(name) => format!("{name} <{}>", r.requester.email),
                    None => r.requester.email.clone(),
                },
            ),
            reason: r.reason.clone(),
            duration: format_duration(r.duration),
            created_at: fmt_time(r.created_at),
            activated_at: fmt_opt_time(r.activated_at),
            expires_at: fmt_opt_time(r.expires_at),
            ended_at: fmt_opt_time(r.ended_at),
            created_at_iso: crate::views::fmt_iso(Some(r.created_at)),
            activated_at_iso: crate::views::fmt_iso(r.activated_at),
            expires_at_iso: crate::views::fmt_iso(r.expires_at),
            ended_at_iso: crate::views::fmt_iso(r.ended_at),
            end_reason: r.end_reason.clone().unwrap_or_default(),
            last_error: r.last_error.clone().unwrap_or_default(),
            workgroup: format!("{NAME_PREFIX}{}", r.id),
            resources: r
                .resources
                .iter()
                .zip(
                    r.catalog_columns
                        .iter()
                        .chain(std::iter::repeat(&Vec::new())),
                )
                .map(|(s, catalog)| ResourceView {
                    table: s.qualified_table(),
                    columns: match (&s.columns, catalog.is_empty()) {
                        (Some(c), _) => c.join(", "),
                        (None, true) => "all columns".to_owned(),
                        // What is granted is this list: a column the table gains later is not.
                        (None, false) => format!(
                            "all {} columns when requested: {}",
                            catalog.len(),
                            catalog.join(", ")
                        ),
                    },
                })
                .collect(),
            decisions: d.decisions.iter().map(decision_view).collect(),
            timeline: d
                .timeline
                .iter()
                .map(|e| EventView {
                    at: fmt_time(e.at),
                    who: e
                        .actor
                        .as_ref()
                        .map_or_else(|| "lakegate".to_owned(), |a| a.email.clone()),
                    what: e.action.describe(),
                    detail: event_detail(&e.detail),
                })
                .collect(),
            actions: d.actions,
            has_token: r.has_credentials_token,
            break_glass: r.break_glass,
            auto_approved: r.auto_approved,
            review: r.review.as_ref().map_or_else(String::new, |v| {
                format!(
                    "reviewed by {} at {}{}",
                    v.by_email,
                    fmt_time(v.at),
                    v.comment
                        .as_ref()
                        .map_or_else(String::new, |c| format!(": “{c}”"))
                )
            }),
            why: policy_view(d),
            extensions: d.extensions.iter().map(extension_view).collect(),
            pending_extension: d
                .extensions
                .iter()
                .find(|e| e.extension.status == ExtensionStatus::Pending)
                .map(extension_view),
            scan_cutoff: format_bytes(
                r.scan_cutoff_bytes
                    .unwrap_or(d.evaluation.scan_cutoff_bytes.value),
            ),
            show_usage: r.activated_at.is_some(),
            usage_summary: usage_summary(d),
            usage_chart: usage_chart(d, now),
            queries: d
                .queries
                .iter()
                .map(|q| QueryView {
                    submitted: fmt_opt_time(q.execution.submitted_at),
                    state: q.execution.state.as_str(),
                    scanned: approx_bytes(q.execution.bytes_scanned),
                    cost: Micros(q.cost_micros).to_string(),
                    sql: q.execution.sql.clone(),
                    reason: q.execution.state_change_reason.clone().unwrap_or_default(),
                    flags: q.flags.iter().map(|f| f.description()).collect(),
                    from_console: q.from_console,
                    link: d
                        .actions
                        .query
                        .then(|| format!("/requests/{}/query/{}", r.id, q.execution.id)),
                })
                .collect(),
            queries_pager: Pager::new(d.queries_page, QUERIES_PER_PAGE, |q| {
                format!(
                    "/requests/{}?queries={q}&events={}#queries",
                    r.id, d.timeline_page.page
                )
            }),
            timeline_pager: Pager::new(d.timeline_page, EVENTS_PER_PAGE, |e| {
                format!(
                    "/requests/{}?queries={}&events={e}#timeline",
                    r.id, d.queries_page.page
                )
            }),
            scan_budget: r
                .scan_budget_bytes
                .or(d.evaluation.scan_budget_bytes.as_ref().map(|l| l.value))
                .map_or_else(|| "none".to_owned(), format_bytes),
        }
    }
}

fn status_note(d: &RequestDetail) -> String {
    let r = &d.request;
    match r.status {
        RequestStatus::Pending if d.approval.missing.is_empty() => {
            "Waiting for an approver.".into()
        }
        RequestStatus::Pending => format!("Waiting for {}.", d.approval.missing.join("; ")),
        RequestStatus::Approved => {
            "Approved. lakegate is creating the role, workgroup and grants…".into()
        }
        RequestStatus::Active => format!("Access is live until {}.", fmt_opt_time(r.expires_at)),
        RequestStatus::Revoking => "Access is being removed…".into(),
        RequestStatus::Expired => "The requested time ran out; access was removed.".into(),
        RequestStatus::Revoked => "Access was ended early and removed.".into(),
        RequestStatus::Denied => "An approver denied this request.".into(),
        RequestStatus::Cancelled => "The requester withdrew this request.".into(),
        RequestStatus::Failed => {
            "lakegate could not set up access; whatever it created was removed.".into()
        }
        RequestStatus::Lapsed => {
            "Nobody decided this request in time; it lapsed. Ask again if you still need access."
                .into()
        }
    }
}

/// `3 queries (1 failed) · 94 MB scanned · about $0.0005`.
fn usage_summary(d: &RequestDetail) -> String {
    let u = &d.usage;
    let mut parts = vec![format!(
        "{} {}",
        u.queries,
        if u.queries == 1 { "query" } else { "queries" }
    )];
    for (n, what) in [
        (u.failed, "failed"),
        (u.cancelled, "cancelled"),
        (u.in_progress, "in progress"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!(
        "{} · {} scanned · about {}",
        parts.join(", "),
        approx_bytes(u.bytes_scanned),
        u.cost
    )
}

/// Cumulative bytes over the grant's time, against its budget.
fn usage_chart(d: &RequestDetail, now: OffsetDateTime) -> String {
    let r = &d.request;
    let from = r.activated_at.unwrap_or(r.created_at);
    let until = r.ended_at.or(r.expires_at).unwrap_or(now).max(from);
    let points: Vec<_> = d
        .query_points
        .iter()
        .map(|q| (q.at.unwrap_or(from), q.bytes_scanned))
        .collect();
    UsageChart {
        cumulative: &cumulative_bytes(&points),
        budget: r.scan_budget_bytes,
        from,
        until,
    }
    .to_svg()
}

fn decision_view(x: &DecisionRecord) -> DecisionView {
    DecisionView {
        who: x.actor.email.clone(),
        groups: x.groups.join(", "),
        decision: match x.decision {
            Decision::Approve => "approved",
            Decision::Deny => "denied",
        },
        comment: x.comment.clone().unwrap_or_default(),
        at: fmt_time(x.at),
    }
}

fn extension_view(e: &ExtensionDetail) -> ExtensionView {
    let x = &e.extension;
    ExtensionView {
        id: x.id,
        extra: format_duration(x.extra),
        reason: x.reason.clone(),
        status: x.status.as_str(),
        requested_at: fmt_time(x.requested_at),
        decided_at: fmt_opt_time(x.decided_at),
        auto_approved: x.auto_approved,
        decisions: e.decisions.iter().map(decision_view).collect(),
        missing: if x.status == ExtensionStatus::Pending {
            e.approval.missing.clone()
        } else {
            Vec::new()
        },
    }
}

/// `rule sales`, or `the defaults`: where a limit comes from.
pub(crate) fn source(rule: &str) -> String {
    if rule == DEFAULTS {
        "the defaults".to_owned()
    } else {
        format!("rule {rule}")
    }
}

/// How the policy applies to the request, for the "why" panel.
fn policy_view(d: &RequestDetail) -> PolicyView {
    let e: &Evaluation = &d.evaluation;
    let mut limits = vec![
        (
            "Longest access".to_owned(),
            format_duration(e.max_duration.value),
            source(&e.max_duration.rule),
        ),
        (
            "Shortest access".to_owned(),
            format_duration(e.min_duration.value),
            source(&e.min_duration.rule),
        ),
        (
            "Per-query scan cutoff".to_owned(),
            format_bytes(e.scan_cutoff_bytes.value),
            source(&e.scan_cutoff_bytes.rule),
        ),
    ];
    if let Some(b) = &e.scan_budget_bytes {
        limits.push((
            "Total scan budget".to_owned(),
            format_bytes(b.value),
            source(&b.rule),
        ));
    }
    if let Some(rule) = &e.require_limit {
        limits.push((
            "Query console".to_owned(),
            "every statement needs a LIMIT".to_owned(),
            source(rule),
        ));
    }
    PolicyView {
        tables: e
            .tables
            .iter()
            .map(|t| {
                (
                    format!("{}.{}", t.database, t.table),
                    t.rules
                        .iter()
                        .map(|r| source(r))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
            .collect(),
        requirements: e
            .requirements
            .iter()
            .zip(&d.approval.progress)
            .map(|(req, p)| RequirementView {
                what: format!(
                    "{} {} from {}",
                    req.count,
                    if req.count == 1 {
                        "approval"
                    } else {
                        "approvals"
                    },
                    req.groups.join(" or ")
                ),
                from: req.label(),
                approved_by: p.approved_by.join(", "),
                still_needed: p.still_needed,
            })
            .collect(),
        pending: d.request.status == RequestStatus::Pending,
        missing: if d.request.status == RequestStatus::Pending {
            d.approval.missing.clone()
        } else {
            Vec::new()
        },
        sensitive: e
            .sensitive_columns
            .iter()
            .map(|c| format!("{c} ({})", source(&c.rule)))
            .collect(),
        limits,
        auto_approval: if e.auto_approval.allowed {
            "yes".to_owned()
        } else {
            format!("no: {}", e.auto_approval.reasons.join("; "))
        },
        break_glass: if e.break_glass.allowed {
            e.break_glass.max_duration.as_ref().map_or_else(
                || "yes".to_owned(),
                |m| format!("yes, for at most {}", format_duration(m.value)),
            )
        } else {
            format!("no: {}", e.break_glass.reasons.join("; "))
        },
    }
}

/// The interesting part of an event's detail, as one line.
fn event_detail(detail: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for key in [
        "comment",
        "reason",
        "step",
        "error",
        "end_state",
        "session_name",
    ] {
        if let Some(v) = detail.get(key).and_then(|v| v.as_str()) {
            parts.push(format!("{key}: {v}"));
        }
    }
    // What a partial approval still misses, one line each.
    if let Some(items) = detail.get("missing").and_then(|v| v.as_array())
        && !items.is_empty()
    {
        let items: Vec<&str> = items.iter().filter_map(|v| v.as_str()).collect();
        parts.push(format!("still missing: {}", items.join("; ")));
    }
    parts.join(" · ")
}
