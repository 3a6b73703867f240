//! `lakegate audit verify` and `lakegate audit export`.

use std::io::Write;

use lakegate_store::audit::{self, AuditEvent, ChainReport};
use serde_json::json;
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;

use crate::cli::ExportFormat;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn verify(pool: &PgPool) -> anyhow::Result<ChainReport> {
    let mut conn = pool.acquire().await?;
    Ok(audit::verify_chain(&mut conn).await?)
}

/// What `verify` prints.
pub fn describe(report: &ChainReport) -> String {
    match &report.first_broken {
        None => format!(
            "audit trail intact: {} events, head {}",
            report.events,
            report
                .head
                .as_deref()
                .map_or_else(|| "(empty)".to_owned(), hex)
        ),
        Some(b) => format!(
            "audit trail BROKEN at event {}: {} ({} events checked)",
            b.event_id, b.reason, report.events
        ),
    }
}

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

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub async fn export(
    pool: &PgPool,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let mut conn = pool.acquire().await?;
    let events = audit::list_all(&mut conn).await?;
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
    if format == ExportFormat::Csv {
        writeln!(out, "{}", COLUMNS.join(","))?;
    }
    for (e, hash) in &events {
        let r = record(e, hash);
        match format {
            ExportFormat::Jsonl => writeln!(out, "{r}")?,
            ExportFormat::Csv => {
                let fields: Vec<String> = COLUMNS
                    .iter()
                    .map(|c| match &r[*c] {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => csv_field(s),
                        other => csv_field(&other.to_string()),
                    })
                    .collect();
                writeln!(out, "{}", fields.join(","))?;
            }
        }
    }
    out.flush()?;
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\n"), "\"say \"\"hi\"\"\n\"");
    }
}
