//! The query console's pages: the form, and one query's page.

use askama::Template;
use askama_web::WebTemplate;
use lakegate_app::Settings;
use lakegate_app::console::{Console, PAGE_ROWS, QueryPage, elapsed};
use lakegate_domain::policy_file::format_bytes;
use lakegate_domain::usage::{Micros, QueryState, approx_bytes};
use time::{Duration, OffsetDateTime};

use crate::views::requests::source;
use crate::views::{Chrome, fmt_opt_time};

#[derive(Template, WebTemplate)]
#[template(path = "requests/console.html")]
pub struct ConsolePage {
    pub chrome: Chrome,
    pub id: String,
    /// `sales.orders` → `all columns` or `order_id, amount`.
    pub tables: Vec<(String, String)>,
    /// `(database, selected)`.
    pub databases: Vec<(String, bool)>,
    pub sql: String,
    /// Fresh for each rendering: the same form sent twice starts one query.
    pub run_token: String,
    pub placeholder: String,
    /// Why the statement was refused.
    pub error: Option<String>,
    /// `rule sales` when a rule asks for a LIMIT on every statement.
    pub require_limit: Option<String>,
    pub scan_cutoff: String,
    pub scan_budget: String,
    pub expires_at: String,
    pub recent: Vec<RecentQuery>,
}

pub struct RecentQuery {
    pub id: String,
    pub submitted: String,
    pub state: &'static str,
    pub scanned: String,
    pub cost: String,
    pub sql: String,
    /// Started in this console (not through the credentials URL).
    pub from_console: bool,
}

/// The first line of `sql`, at most 120 characters, for a list.
fn first_line(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None if sql.trim().lines().nth(1).is_some() => format!("{line} …"),
        None => line.to_owned(),
    }
}

impl ConsolePage {
    pub fn new(
        chrome: Chrome,
        c: &Console,
        settings: &Settings,
        sql: String,
        database: Option<String>,
        error: Option<String>,
    ) -> Self {
        let r = &c.request;
        // A fresh form proposes the grant's only database; one sent back keeps its choice,
        // "none" included.
        let chosen = match database {
            Some(d) => d,
            None if c.databases.len() == 1 => c.databases[0].clone(),
            None => String::new(),
        };
        let placeholder = r.resources.first().map_or_else(
            || "SELECT 1".to_owned(),
            |t| {
                let columns = t
                    .columns
                    .as_ref()
                    .map_or_else(|| "*".to_owned(), |c| c.join(", "));
                format!("SELECT {columns}\nFROM {}\nLIMIT 10", t.qualified_table())
            },
        );
        Self {
            chrome,
            id: r.id.to_string(),
            tables: r
                .resources
                .iter()
                .map(|t| {
                    (
                        t.qualified_table(),
                        t.columns
                            .as_ref()
                            .map_or_else(|| "all columns".to_owned(), |c| c.join(", ")),
                    )
                })
                .collect(),
            databases: c
                .databases
                .iter()
                .map(|d| (d.clone(), d.eq_ignore_ascii_case(&chosen)))
                .collect(),
            sql,
            run_token: uuid::Uuid::new_v4().simple().to_string(),
            placeholder,
            error,
            require_limit: c.require_limit.as_deref().map(source),
            scan_cutoff: format_bytes(
                r.scan_cutoff_bytes
                    .unwrap_or(settings.policy.defaults().scan_cutoff_bytes),
            ),
            scan_budget: r
                .scan_budget_bytes
                .map_or_else(|| "none".to_owned(), format_bytes),
            expires_at: fmt_opt_time(r.expires_at),
            recent: c
                .recent
                .iter()
                .map(|q| RecentQuery {
                    id: q.execution.id.clone(),
                    submitted: fmt_opt_time(q.execution.submitted_at),
                    state: q.execution.state.as_str(),
                    scanned: approx_bytes(q.execution.bytes_scanned),
                    cost: Micros(q.cost_micros).to_string(),
                    sql: first_line(&q.execution.sql),
                    from_console: q.from_console,
                })
                .collect(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/query.html")]
pub struct QueryPageView {
    pub chrome: Chrome,
    pub id: String,
    pub query_id: String,
    pub state: &'static str,
    /// Still queued or running: the page refreshes itself and offers to stop it.
    pub running: bool,
    pub succeeded: bool,
    pub elapsed: String,
    pub scanned: String,
    pub billed: String,
    pub cost: String,
    pub reason: String,
    pub sql: String,
    pub database: String,
    pub from_console: bool,
    pub flags: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    pub row_count: usize,
    pub more_rows: bool,
    pub page_rows: usize,
}

/// `0.4 s`, `12 s`, `3 min 05 s`.
fn format_elapsed(d: Duration) -> String {
    let ms = d.whole_milliseconds().max(0);
    if ms < 10_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 60_000 {
        format!("{} s", ms / 1000)
    } else {
        let s = ms / 1000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

impl QueryPageView {
    pub fn new(chrome: Chrome, q: &QueryPage, now: OffsetDateTime) -> Self {
        let e = &q.execution;
        let (columns, rows) = q
            .results
            .as_ref()
            .map(|r| (r.columns.clone(), r.rows.clone()))
            .unwrap_or_default();
        Self {
            chrome,
            id: q.request.id.to_string(),
            query_id: e.id.clone(),
            state: e.state.as_str(),
            running: !e.state.is_final(),
            succeeded: e.state == QueryState::Succeeded,
            elapsed: elapsed(e, now).map(format_elapsed).unwrap_or_default(),
            scanned: approx_bytes(e.bytes_scanned),
            billed: approx_bytes(q.billed_bytes),
            cost: q.cost.to_string(),
            reason: e.state_change_reason.clone().unwrap_or_default(),
            sql: e.sql.clone(),
            database: e.database.clone().unwrap_or_default(),
            from_console: q.from_console,
            flags: q.flags.iter().map(|f| f.description()).collect(),
            row_count: rows.len(),
            columns,
            rows,
            more_rows: q.more_rows,
            page_rows: PAGE_ROWS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_times_read_naturally() {
        assert_eq!(format_elapsed(Duration::milliseconds(420)), "0.4 s");
        assert_eq!(format_elapsed(Duration::milliseconds(9_999)), "9.9 s");
        assert_eq!(format_elapsed(Duration::seconds(12)), "12 s");
        assert_eq!(format_elapsed(Duration::seconds(185)), "3 min 05 s");
        assert_eq!(format_elapsed(Duration::seconds(-3)), "0.0 s");
    }

    #[test]
    fn lists_show_the_first_line_of_long_sql() {
        assert_eq!(first_line("select 1"), "select 1");
        assert_eq!(first_line("  select a\nfrom t"), "select a …");
        let long = "x".repeat(130);
        assert_eq!(first_line(&long).chars().count(), 121);
    }
}
