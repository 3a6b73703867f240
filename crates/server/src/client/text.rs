//! What the client commands print for people: lists, a request, result tables, CSV, and a
//! progress line that rewrites itself on a terminal and prints only changes elsewhere.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use lakegate_web::api::{RequestDetail, RequestSummary, Resource};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A duration as the policy writes them: `1h 30m`.
fn span(seconds: i64) -> String {
    lakegate_domain::duration::format_duration(time::Duration::seconds(seconds))
}

pub fn bytes(n: i64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n.max(0) as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < units.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

fn resources(rs: &[Resource]) -> String {
    rs.iter()
        .map(|r| match &r.columns {
            Some(c) => format!("{}.{}:{}", r.database, r.table, c.join(",")),
            None => format!("{}.{}", r.database, r.table),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn clip(s: &str, n: usize) -> String {
    let one_line = s.replace(['\n', '\r', '\t'], " ");
    match one_line.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// Requests as a table; `who` adds the requester.
pub fn list(requests: &[RequestSummary], who: bool) -> String {
    if requests.is_empty() {
        return "  (none)\n".to_owned();
    }
    let mut header = vec!["ID", "STATUS"];
    if who {
        header.push("REQUESTER");
    }
    header.extend(["UNTIL", "TABLES", "REASON"]);
    let rows: Vec<Vec<Option<String>>> = requests
        .iter()
        .map(|r| {
            let mut row = vec![Some(r.id.to_string()), Some(r.status.clone())];
            if who {
                row.push(Some(match &r.agent {
                    Some(agent) => format!("{} (agent {agent})", r.requester.email),
                    None => r.requester.email.clone(),
                }));
            }
            row.push(Some(r.expires_at.map(time).unwrap_or_else(|| "-".into())));
            row.push(Some(clip(&resources(&r.resources), 60)));
            row.push(Some(clip(&r.reason, 40)));
            row
        })
        .collect();
    let header: Vec<String> = header.into_iter().map(str::to_owned).collect();
    table(&header, &rows)
}

/// One request in full.
pub fn detail(d: &RequestDetail, base: &str) -> String {
    let r = &d.summary;
    let mut out = String::new();
    let _ = writeln!(out, "Request   {}", r.id);
    let _ = writeln!(out, "Status    {}", r.status);
    let _ = writeln!(
        out,
        "Requester {}{}",
        r.requester.email,
        r.agent
            .as_deref()
            .map(|a| format!(" (asked by agent {a} on their behalf)"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "Tables    {}", resources(&r.resources));
    let _ = writeln!(out, "Duration  {}", span(r.duration_seconds));
    let _ = writeln!(out, "Reason    {}", clip(&r.reason, 200));
    if r.break_glass {
        let _ = writeln!(out, "Break-glass");
    }
    if let Some(t) = d.activated_at {
        let _ = writeln!(out, "Active    since {}", time(t));
    }
    if let Some(t) = r.expires_at {
        let _ = writeln!(out, "Until     {}", time(t));
    }
    if let Some(t) = d.ended_at {
        let _ = writeln!(out, "Ended     {}", time(t));
    }
    for m in &d.missing_approvals {
        let _ = writeln!(out, "Needs     {m}");
    }
    for x in &d.decisions {
        let _ = writeln!(
            out,
            "Decision  {} by {} at {}{}",
            x.decision,
            x.by,
            time(x.at),
            x.comment
                .as_deref()
                .map(|c| format!(": {}", clip(c, 100)))
                .unwrap_or_default()
        );
    }
    for x in &d.extensions {
        let _ = writeln!(
            out,
            "Extension {} +{} {}: {}",
            x.id,
            span(x.extra_seconds),
            x.status,
            clip(&x.reason, 80)
        );
    }
    let _ = writeln!(
        out,
        "Usage     {} quer{}, {} scanned, about ${:.4}",
        d.usage.queries,
        if d.usage.queries == 1 { "y" } else { "ies" },
        bytes(d.usage.bytes_scanned),
        d.usage.cost_usd_micros as f64 / 1e6
    );
    let _ = writeln!(out, "Page      {base}/requests/{}", r.id);
    out
}

/// Rows under their column names, aligned; SQL `NULL` as `NULL`.
pub fn table(columns: &[String], rows: &[Vec<Option<String>>]) -> String {
    let cell = |v: &Option<String>| clip(v.as_deref().unwrap_or("NULL"), 80);
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |values: &[String]| {
        let mut s = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(columns);
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

/// RFC 4180 CSV with a header row; `NULL` is an empty field.
pub fn csv(columns: &[String], rows: &[Vec<Option<String>>]) -> String {
    let field = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_owned()
        }
    };
    let mut out = columns
        .iter()
        .map(|c| field(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(
            &row.iter()
                .map(|v| field(v.as_deref().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

/// A line on standard error saying what is being waited for.
pub struct Progress {
    terminal: bool,
    last: String,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: String::new(),
        }
    }

    pub fn show(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
        } else {
            // Without the time: one line per change of what is waited for.
            let what = line.rsplit_once(" · ").map_or(line, |(w, _)| w);
            if what != self.last {
                let _ = writeln!(err, "{line}");
                what.clone_into(&mut self.last);
            }
        }
    }

    pub fn done(&mut self) {
        if self.terminal {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_show_null() {
        let t = table(
            &["id".into(), "name".into()],
            &[
                vec![Some("1".into()), None],
                vec![Some("22".into()), Some("x".into())],
            ],
        );
        assert_eq!(t, "id  name\n1   NULL\n22  x\n");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let c = csv(
            &["a".into(), "b".into()],
            &[
                vec![Some("x,y".into()), None],
                vec![Some("say \"hi\"".into()), Some("z".into())],
            ],
        );
        assert_eq!(c, "a,b\r\n\"x,y\",\r\n\"say \"\"hi\"\"\",z\r\n");
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(10_485_760), "10.5 MB");
    }
}
