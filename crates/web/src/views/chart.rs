//! The usage chart on a request's page: cumulative bytes scanned over the grant's time, against
//! its budget, as server-rendered SVG (no JavaScript; only numbers and fixed text go into it).

use time::OffsetDateTime;

use lakegate_domain::usage::approx_bytes;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 8.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 8.0;

/// What the chart shows.
pub struct UsageChart<'a> {
    /// The running total, sorted by time (`usage::cumulative_bytes`).
    pub cumulative: &'a [(OffsetDateTime, i64)],
    pub budget: Option<i64>,
    /// The time axis: from activation to expiry (or now, or the end).
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
}

impl UsageChart<'_> {
    /// The SVG element.
    pub fn to_svg(&self) -> String {
        let total = self.cumulative.last().map_or(0, |(_, b)| *b);
        let top = self.budget.unwrap_or(0).max(total).max(1) as f64 * 1.05;
        let span = (self.until - self.from).as_seconds_f64().max(1.0);
        let x = |t: OffsetDateTime| {
            let f = ((t - self.from).as_seconds_f64() / span).clamp(0.0, 1.0);
            LEFT + f * (WIDTH - LEFT - RIGHT)
        };
        let y = |bytes: i64| {
            let f = (bytes as f64 / top).clamp(0.0, 1.0);
            HEIGHT - BOTTOM - f * (HEIGHT - TOP - BOTTOM)
        };
        // A step line: the total stays flat until the next query adds to it.
        let mut points = vec![(x(self.from), y(0))];
        let mut last = 0;
        for &(at, bytes) in self.cumulative {
            points.push((x(at), y(last)));
            points.push((x(at), y(bytes)));
            last = bytes;
        }
        points.push((x(self.until), y(last)));
        let line: Vec<String> = points
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        let label = match self.budget {
            Some(b) => format!("{} of {} scanned", approx_bytes(total), approx_bytes(b)),
            None => format!("{} scanned", approx_bytes(total)),
        };
        let mut svg = format!(
            r#"<svg id="usage-chart" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"#
        );
        svg.push_str(&format!(
            r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fafbfc" stroke="#d0d7de"/>"##
        ));
        if let Some(b) = self.budget {
            let by = y(b);
            svg.push_str(&format!(
                r##"<line class="budget" x1="{LEFT}" y1="{by:.1}" x2="{:.1}" y2="{by:.1}" stroke="#cf222e" stroke-dasharray="6 4"/>"##,
                WIDTH - RIGHT
            ));
            svg.push_str(&format!(
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="#cf222e">budget {}</text>"##,
                WIDTH - RIGHT,
                by - 4.0,
                approx_bytes(b)
            ));
        }
        svg.push_str(&format!(
            r##"<polyline class="scanned" fill="none" stroke="#0969da" stroke-width="2" points="{}"/>"##,
            line.join(" ")
        ));
        svg.push_str(&format!(
            r##"<text x="{LEFT}" y="13" font-size="11" fill="#57606a">{label}</text></svg>"##
        ));
        svg
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-05-01 09:00 UTC);

    fn polyline(svg: &str) -> Vec<(f64, f64)> {
        let start = svg.find(r#"points=""#).unwrap() + 8;
        let end = start + svg[start..].find('"').unwrap();
        svg[start..end]
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn steps_up_at_each_query_and_draws_the_budget() {
        let cumulative = [
            (T0 + Duration::minutes(15), 50_000_000),
            (T0 + Duration::minutes(30), 80_000_000),
        ];
        let svg = UsageChart {
            cumulative: &cumulative,
            budget: Some(100_000_000),
            from: T0,
            until: T0 + Duration::hours(1),
        }
        .to_svg();
        let pts = polyline(&svg);
        // Start, two points per query, end.
        assert_eq!(pts.len(), 6);
        assert_eq!(pts[0], (8.0, 192.0), "starts at zero");
        // A quarter of the way along, the line rises; it stays flat to the end.
        assert_eq!(pts[1].0, 164.0);
        assert_eq!(pts[1].1, 192.0);
        assert!(pts[2].1 < pts[1].1);
        assert_eq!(pts[5].0, 632.0);
        assert_eq!(pts[5].1, pts[4].1);
        // Half the budget height: 50 MB of a 105 MB axis.
        let half = 192.0 - (50.0 / 105.0) * 174.0;
        assert!((pts[2].1 - half).abs() < 0.1, "{}", pts[2].1);
        assert!(svg.contains(r#"class="budget""#));
        assert!(svg.contains("80 MB of 100 MB scanned"), "{svg}");
    }

    #[test]
    fn without_queries_or_budget_it_is_a_flat_line() {
        let svg = UsageChart {
            cumulative: &[],
            budget: None,
            from: T0,
            until: T0,
        }
        .to_svg();
        assert_eq!(polyline(&svg), [(8.0, 192.0), (8.0, 192.0)]);
        assert!(!svg.contains(r#"class="budget""#));
        assert!(svg.contains("0 B scanned"), "{svg}");
    }
}
