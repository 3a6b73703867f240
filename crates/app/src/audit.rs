//! Reading the audit trail: the admins' page and its exports, and the export format shared with
//! `lakegate audit export`.

use lakegate_domain::Principal;
use lakegate_store::audit::{self, AuditEvent, AuditFilter};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::csv::csv_field;
use crate::{AppError, Services};

/// Events per page.
pub const PAGE: i64 = 100;
/// Most events one web export returns (the CLI exports everything).
pub const EXPORT_LIMIT: i64 = 100_000;

/// One page of the trail, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<(AuditEvent, Vec<u8>)>,
    /// Where the next (older) page starts, if there is one.
    pub older: Option<i64>,
}

pub async fn page(
    svc: &Services,
    who: &Principal,
    filter: &AuditFilter,
) -> Result<AuditPage, AppError> {
    lakegate_domain::access::check_audit(&svc.settings.policy, who)?;
    let mut conn = svc.db.acquire().await?;
    let mut events = audit::search(&mut conn, filter, PAGE + 1).await?;
    let older = if events.len() > usize::try_from(PAGE).unwrap_or(usize::MAX) {
        events.pop();
        events.last().map(|(e, _)| e.id)
    } else {
        None
    };
    Ok(AuditPage { events, older })
}

/// The matching events for an export, oldest first: the latest [`EXPORT_LIMIT`] of them.
#[derive(Debug)]
pub struct Export {
    pub events: Vec<(AuditEvent, Vec<u8>)>,
    /// More events match than the export holds: the oldest were left out.
    pub truncated: bool,
}

/// The matching events, oldest first, for an export; at most [`EXPORT_LIMIT`] of the latest,
/// and says so when there were more.
pub async fn export(
    svc: &Services,
    who: &Principal,
    filter: &AuditFilter,
) -> Result<Export, AppError> {
    lakegate_domain::access::check_audit(&svc.settings.policy, who)?;
    let mut conn = svc.db.acquire().await?;
    let mut events = audit::search(&mut conn, filter, EXPORT_LIMIT + 1).await?;
    let truncated = events.len() > usize::try_from(EXPORT_LIMIT).unwrap_or(usize::MAX);
    if truncated {
        events.pop();
    }
    events.reverse();
    Ok(Export { events, truncated })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The columns of an export, in order.
const COLUMNS: [&str; 8] = [
    "event_id",
    "occurred_at",
    "request_id",
    "actor_subject",
    "actor_email",
    "action",
    "detail",
    "hash",
];

fn record(e: &AuditEvent, hash: &[u8]) -> serde_json::Value {
    json!({
        "event_id": e.id,
        "occurred_at": e.at.format(&Rfc3339).unwrap_or_default(),
        "request_id": e.request.map(|r| r.to_string()),
        "actor_subject": e.actor.as_ref().map(|a| a.subject.as_str()),
        "actor_email": e.actor.as_ref().map(|a| a.email.as_str()),
        "action": e.action.as_str(),
        "detail": e.detail,
        "hash": hex(hash),
    })
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row (`detail` as JSON).
    Csv,
}

/// Writes `events` in `format`, one record per line (after a header row for CSV). Shared by
/// `lakegate audit export` and the admins' download, so both give the same file.
pub fn write_export(
    out: &mut impl std::io::Write,
    events: &[(AuditEvent, Vec<u8>)],
    format: ExportFormat,
) -> std::io::Result<()> {
    if format == ExportFormat::Csv {
        writeln!(out, "{}", COLUMNS.join(","))?;
    }
    for (e, hash) in events {
        match format {
            ExportFormat::Jsonl => writeln!(out, "{}", record(e, hash))?,
            ExportFormat::Csv => writeln!(out, "{}", csv_line(e, hash))?,
        }
    }
    out.flush()
}

/// One CSV record (`detail` as JSON), no trailing newline.
fn csv_line(e: &AuditEvent, hash: &[u8]) -> String {
    let r = record(e, hash);
    COLUMNS
        .iter()
        .map(|c| match &r[*c] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => csv_field(s),
            other => csv_field(&other.to_string()),
        })
        .collect::<Vec<_>>()
        .join(",")
}
