//! The JSON API's bodies, as the OpenAPI document describes them: what handlers answer and
//! what clients (the `lakegate` CLI among them) read back. Times are RFC 3339.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Every error: a stable `code` for programs and a `message` for people.
///
/// Codes: `Unauthorized` (401: no token, or one unknown, expired or revoked),
/// `InsufficientScope` (403: the token lacks the route's scope), `Forbidden` (403: the
/// policy does not let the token's owner do this), `InvalidToken` (403: a credentials token
/// that does not match), `GrantNotActive` (403), `NotFound` (404), `WrongState` and
/// `AlreadyDecided` (409), `TooLarge` (413), `InvalidInput` (422: the body or the query
/// string, with what is wrong), `QueryRefused` (422: the SQL guard's reason),
/// `InternalError` (500, with a reference in the server's log), `Unavailable` (503: AWS did
/// not answer in time).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// A person, as requests name them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub email: String,
    pub name: Option<String>,
}

/// A Glue table, and the columns asked for; no `columns` (or `null`) means every column.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[schema(min_length = 1, max_length = 255)]
    pub database: String,
    #[schema(min_length = 1, max_length = 255)]
    pub table: String,
    #[serde(default)]
    pub columns: Option<Vec<String>>,
}

/// Who the token acts as.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The identity provider's `sub`.
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    /// The owner's groups, as of their latest sign-in.
    pub groups: Vec<String>,
    pub token: TokenInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    /// Of `requests:read`, `requests:write`, `approvals:write`, `credentials`, `console`,
    /// `audit:read`.
    pub scopes: Vec<String>,
}

/// A request as lists show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestSummary {
    pub id: Uuid,
    /// One of `pending`, `approved` (being set up), `active`, `revoking`, `expired`,
    /// `revoked`, `denied`, `cancelled`, `failed`, `lapsed` (nobody decided in time).
    pub status: String,
    /// The person the access is for (an agent's requests are on behalf of its token's owner).
    pub requester: Person,
    /// Set when an AI agent asked, through the MCP server: the name of the token it used.
    pub agent: Option<String>,
    /// Set when an AI agent asked: the email of the person it asked for (the requester).
    pub on_behalf_of: Option<String>,
    pub resources: Vec<Resource>,
    pub duration_seconds: i64,
    pub reason: String,
    pub break_glass: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the grant ends; set once it is active.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// `GET /api/v1/requests`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestList {
    /// The filter applied: `mine`, `to_approve` or `live`.
    pub filter: String,
    pub requests: Vec<RequestSummary>,
}

/// One request with its decisions, what it still needs, its extensions and its usage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestDetail {
    #[serde(flatten)]
    pub summary: RequestSummary,
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// One line per approval still needed, like `1 more approval from data-owners (rule
    /// sales)`; empty once approved.
    pub missing_approvals: Vec<String>,
    pub decisions: Vec<DecisionView>,
    pub extensions: Vec<ExtensionView>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    /// The approver's email.
    pub by: String,
    /// `approve` or `deny`.
    pub decision: String,
    pub comment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExtensionView {
    pub id: i64,
    pub extra_seconds: i64,
    pub reason: String,
    /// `pending`, `approved`, `denied`, `cancelled` or `lapsed`.
    pub status: String,
    pub missing_approvals: Vec<String>,
}

/// What the grant's queries used, as the monitor recorded them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub queries: u64,
    pub bytes_scanned: i64,
    /// In millionths of a US dollar.
    pub cost_usd_micros: i64,
}

/// The body of `POST /api/v1/requests`: the same fields and checks as the form.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    #[schema(min_items = 1)]
    pub resources: Vec<Resource>,
    /// How long, like `30m`, `1h` or `2h30m` (units `d`, `h`, `m`, `s`, largest first), within
    /// the policy's bounds.
    #[schema(
        pattern = r"^\s*[1-9][0-9]{0,5}[dhmsDHMS]([0-9]{1,6}[hmsHMS])?([0-9]{1,6}[msMS])?([0-9]{1,6}[sS])?\s*$",
        example = "1h"
    )]
    pub duration: String,
    /// Why, for the approvers and the audit.
    #[schema(min_length = 10, max_length = 2000)]
    pub reason: String,
    /// Active at once for those the policy lets break the glass; reviewed afterwards.
    #[serde(default)]
    pub break_glass: bool,
}

/// A request just made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    pub id: Uuid,
    /// `pending`, or `approved` when the policy approved it at once.
    pub status: String,
    pub break_glass: bool,
    /// The request's page.
    pub url: String,
}

/// An optional comment with a decision, a cancel or a revoke; no body at all is the same as
/// `{}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// Where a request (or one of its extensions) stands after a decision, a cancel or a revoke.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusChange {
    pub id: Uuid,
    /// Set for an extension's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<i64>,
    /// `approved`, `denied`, `pending` (more approvals needed), `cancelled` or `revoking`.
    pub status: String,
    /// What is still needed, when `pending`.
    #[serde(default)]
    pub missing_approvals: Vec<String>,
}

/// A new credentials token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedCredentials {
    /// Set `AWS_CONTAINER_CREDENTIALS_FULL_URI` to this.
    pub url: String,
    /// Set `AWS_CONTAINER_AUTHORIZATION_TOKEN` to this.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The body of `POST /api/v1/requests/{id}/extensions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// More time, like `30m`.
    #[schema(
        pattern = r"^\s*[1-9][0-9]{0,5}[dhmsDHMS]([0-9]{1,6}[hmsHMS])?([0-9]{1,6}[msMS])?([0-9]{1,6}[sS])?\s*$",
        example = "30m"
    )]
    pub extra: String,
    #[schema(min_length = 10, max_length = 2000)]
    pub reason: String,
}

/// An extension just asked for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Extended {
    pub id: Uuid,
    /// `approved` (the policy approved it at once) or `pending`.
    pub status: String,
    /// The grant's new end, when approved.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// The body of `POST /api/v1/requests/{id}/queries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// One statement the guard allows: a `SELECT` on what the grant covers.
    #[schema(min_length = 1)]
    pub sql: String,
    /// One of the grant's databases, for unqualified table names.
    #[serde(default)]
    pub database: Option<String>,
    /// 16 to 128 letters, digits, `-` or `_` of the client's choosing (a UUID will do): the
    /// same one sent again starts no second query.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9_-]{16,128}$")]
    pub client_token: Option<String>,
}

/// A console query just started.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueryStarted {
    /// Athena's query execution id.
    pub id: String,
    /// `QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED` or `CANCELLED`; `null` if Athena could not be
    /// asked just now.
    pub state: Option<String>,
    /// Where to read it.
    pub url: String,
}

/// A console query now, and once it has succeeded a page of its rows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueryView {
    pub id: String,
    /// `QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED` or `CANCELLED`.
    pub state: String,
    /// Why it failed or was cancelled, as Athena says.
    pub state_reason: Option<String>,
    pub sql: String,
    pub database: Option<String>,
    pub bytes_scanned: i64,
    /// What Athena bills for it (at least 10 MB a query).
    pub billed_bytes: i64,
    /// In millionths of a US dollar.
    pub cost_usd_micros: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub submitted_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// Once `SUCCEEDED`: the column names.
    pub columns: Option<Vec<String>>,
    /// Once `SUCCEEDED`: up to 1,000 rows of this page, each value a string or `null`.
    pub rows: Option<Vec<Vec<Option<String>>>>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/audit`: newest first, 100 a page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `before` for the next (older) page; `null` on the last.
    pub older: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub request_id: Option<Uuid>,
    /// Who did it; `null` for lakegate's own work (expiry, teardown).
    pub actor: Option<AuditActor>,
    /// Like `request.created`, `request.approved`, `grant.revoked`.
    pub action: String,
    /// What the action records, by action.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// This event's link in the hash chain, hex.
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditActor {
    pub subject: String,
    pub email: String,
}
