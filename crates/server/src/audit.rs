//! `lakegate audit verify` and `lakegate audit export`.

use std::io::Write;

use lakegate_app::audit::{hex, write_export};
use lakegate_store::audit::{self, ChainReport};
use sqlx::PgPool;

use crate::cli::ExportFormat;

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

/// Writes every event, oldest first.
pub async fn export(
    pool: &PgPool,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let mut conn = pool.acquire().await?;
    let events = audit::list_all(&mut conn).await?;
    write_export(out, &events, format.into())?;
    Ok(events.len())
}
