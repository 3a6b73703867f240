//! The audit trail for admins: a filtered, paged view and its exports.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lakegate_app::AppError;
use lakegate_app::audit::{self, ExportFormat, hex, write_export};
use lakegate_domain::audit::AuditAction;
use lakegate_domain::audit::AuditFilter;
use lakegate_domain::{RequestId, ValidationError};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

use crate::error::WebError;
use crate::extract::Fresh;
use crate::state::AppState;
use crate::views::audit::{AuditPage, AuditRow, DeliveryView, NotificationsPage};
use crate::views::{Chrome, fmt_iso, fmt_time};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(audit_page))
        .route("/audit/export", get(export_audit))
        .route("/audit/notifications", get(notifications_page))
}

/// The filter as typed in the form (and carried in links, and the API's query).
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct FilterForm {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) request: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) until: String,
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(flatten)]
    filter: FilterForm,
    before: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    #[serde(flatten)]
    filter: FilterForm,
    format: Option<String>,
}

/// `2026-11-01` (the start of that day, UTC) or an RFC 3339 time. `end_of_day` makes a date
/// include its whole day.
fn parse_time(
    input: &str,
    field: &str,
    end_of_day: bool,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Some(t));
    }
    let date = Date::parse(s, format_description!("[year]-[month]-[day]")).map_err(|_| {
        ValidationError::new(format!("`{s}` in “{field}” is not a date like 2026-11-01"))
    })?;
    let t = date.midnight().assume_utc();
    Ok(Some(if end_of_day { t + Duration::days(1) } else { t }))
}

impl FilterForm {
    pub(crate) fn parse(&self, before: Option<i64>) -> Result<AuditFilter, ValidationError> {
        let request = match self.request.trim() {
            "" => None,
            r => Some(r.parse::<RequestId>()?),
        };
        let action = match self.action.trim() {
            "" => None,
            a => Some(
                AuditAction::parse(a)
                    .ok_or_else(|| ValidationError::new(format!("`{a}` is not an audit event")))?,
            ),
        };
        Ok(AuditFilter {
            request,
            actor: Some(self.actor.trim().to_owned()).filter(|a| !a.is_empty()),
            action,
            from: parse_time(&self.from, "From", false)?,
            until: parse_time(&self.until, "Until", true)?,
            before,
        })
    }

    fn query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

fn detail_line(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        other => other.to_string(),
    }
}

async fn audit_page(
    State(state): State<AppState>,
    Fresh(user): Fresh,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    lakegate_domain::access::check_audit(&state.services.settings.policy, &user.principal)
        .map_err(AppError::from)?;
    let filter = q.filter.parse(q.before).map_err(AppError::from)?;
    let page = audit::page(&state.services, &user.principal, &filter).await?;
    let rows = page
        .events
        .iter()
        .map(|(e, hash)| AuditRow {
            id: e.id,
            at: fmt_time(e.at),
            request: e.request.map(|r| r.to_string()).unwrap_or_default(),
            actor: e
                .actor
                .as_ref()
                .map_or_else(|| "lakegate".to_owned(), |a| a.email.clone()),
            action: e.action.as_str(),
            detail: detail_line(&e.detail),
            hash: hex(hash),
        })
        .collect();
    Ok(AuditPage {
        chrome: Chrome::new(&state, &user.session, Some(&user.principal)).await?,
        rows,
        query: q.filter.query_string(),
        request: q.filter.request,
        actor: q.filter.actor,
        action: q.filter.action,
        from: q.filter.from,
        until: q.filter.until,
        actions: AuditAction::ALL.iter().map(|a| a.as_str()).collect(),
        older: page.older,
    }
    .into_response())
}

/// The outbox for admins: what is pending, what was given up and why, what was delivered.
async fn notifications_page(
    State(state): State<AppState>,
    Fresh(user): Fresh,
) -> Result<Response, WebError> {
    let o = lakegate_app::notify::overview(&state.services, &user.principal).await?;
    let deliveries = o
        .deliveries
        .into_iter()
        .map(|d| {
            let (state, state_class, when) = match (d.delivered_at, d.given_up_at) {
                (Some(at), _) => ("delivered", "delivered", Some(at)),
                (None, Some(at)) => ("given up", "given-up", Some(at)),
                (None, None) => ("pending, next try", "pending", Some(d.next_attempt_at)),
            };
            DeliveryView {
                id: d.notification_id,
                event: d.event,
                request: d.request_id.map(|r| r.to_string()).unwrap_or_default(),
                target: d.target,
                created_at: fmt_time(d.created_at),
                created_at_iso: fmt_iso(Some(d.created_at)),
                attempts: d.attempts,
                state,
                state_class,
                when: when.map(fmt_time).unwrap_or_default(),
                when_iso: fmt_iso(when),
                last_error: d.last_error.unwrap_or_default(),
            }
        })
        .collect();
    Ok(NotificationsPage {
        chrome: Chrome::new(&state, &user.session, Some(&user.principal)).await?,
        pending: o.counts.pending,
        failed: o.counts.failed,
        delivered: o.counts.delivered,
        unrouted: o.counts.unrouted,
        deliveries,
    }
    .into_response())
}

async fn export_audit(
    State(state): State<AppState>,
    Fresh(user): Fresh,
    Query(q): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let format = match q.format.as_deref() {
        None | Some("jsonl") => ExportFormat::Jsonl,
        Some("csv") => ExportFormat::Csv,
        Some(other) => {
            return Err(AppError::from(ValidationError::new(format!(
                "unknown export format `{other}`: use jsonl or csv"
            )))
            .into());
        }
    };
    let filter = q.filter.parse(None).map_err(AppError::from)?;
    let export = audit::export(&state.services, &user.principal, &filter).await?;
    let mut body = Vec::new();
    write_export(&mut body, &export.events, format)
        .map_err(|e| WebError::Internal(format!("audit export: {e}")))?;
    let (content_type, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Cut at the row cap: said in a header and in the file's name, never silently.
    let name = if export.truncated {
        h.insert(
            HeaderName::from_static("x-lakegate-export-truncated"),
            HeaderValue::from_str(&format!(
                "only the latest {} events; narrow the filter, or use `lakegate audit export`",
                audit::EXPORT_LIMIT
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("true")),
        );
        "lakegate-audit-latest"
    } else {
        "lakegate-audit"
    };
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn dates_and_times_parse() {
        assert_eq!(parse_time("", "From", false).unwrap(), None);
        assert_eq!(
            parse_time("2026-11-01", "From", false).unwrap(),
            Some(datetime!(2026-11-01 0:00 UTC))
        );
        assert_eq!(
            parse_time("2026-11-01", "Until", true).unwrap(),
            Some(datetime!(2026-11-02 0:00 UTC))
        );
        assert_eq!(
            parse_time("2026-11-01T10:00:00Z", "From", false).unwrap(),
            Some(datetime!(2026-11-01 10:00 UTC))
        );
        let err = parse_time("yesterday", "From", false).unwrap_err();
        assert_eq!(err.0, "`yesterday` in “From” is not a date like 2026-11-01");
    }
}
