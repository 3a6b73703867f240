//! Flags on risky query patterns: what the monitor marks on a query for people to look at.
//! They warn; they never stop anything (the cutoff, the budget and Lake Formation do that).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::QueryState;
use super::sql::{PartitionKeys, analyze_sql};
use crate::duration::format_duration;

/// What Athena writes into a query's `StateChangeReason` when the workgroup's per-query
/// cutoff stopped it ("Bytes scanned limit was exceeded"), in lower case.
const CUTOFF_REASON: &str = "bytes scanned limit";

/// The kind of a [`QueryFlag`], without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueryFlagKind {
    CancelledByCutoff,
    LargeScan,
    UnfilteredPartitionScan,
    Burst,
    SensitiveColumns,
    UnreadableSql,
}

impl QueryFlagKind {
    pub const ALL: [Self; 6] = [
        Self::CancelledByCutoff,
        Self::LargeScan,
        Self::UnfilteredPartitionScan,
        Self::Burst,
        Self::SensitiveColumns,
        Self::UnreadableSql,
    ];

    /// The stable code, as stored and as used in URLs: `large_scan`, `burst`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CancelledByCutoff => "cancelled_by_cutoff",
            Self::LargeScan => "large_scan",
            Self::UnfilteredPartitionScan => "unfiltered_partition_scan",
            Self::Burst => "burst",
            Self::SensitiveColumns => "sensitive_columns",
            Self::UnreadableSql => "unreadable_sql",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }

    /// A short label for a filter or a legend.
    pub fn description(self) -> &'static str {
        match self {
            Self::CancelledByCutoff => "stopped by the per-query scan cutoff",
            Self::LargeScan => "large scan",
            Self::UnfilteredPartitionScan => "partitioned table read without a partition filter",
            Self::Burst => "one of many queries in a short time",
            Self::SensitiveColumns => "reads sensitive columns",
            Self::UnreadableSql => "SQL the monitor could not read as Athena does",
        }
    }
}

/// A risky pattern seen in one query. Stored as JSON tagged with the kind's code:
/// `{"code":"large_scan","bytes":…,"threshold":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum QueryFlag {
    /// The workgroup's per-query cutoff cancelled the query (Athena bills what it scanned).
    CancelledByCutoff,
    /// The query scanned at least `threshold` bytes.
    LargeScan { bytes: i64, threshold: i64 },
    /// The SQL reads a partitioned table, `(database, table)`, without a condition on any of
    /// its partition `keys`: Athena reads every partition.
    UnfilteredPartitionScan {
        table: (String, String),
        keys: Vec<String>,
    },
    /// The query is one of `count` submitted within `window_seconds`.
    Burst { count: usize, window_seconds: i64 },
    /// The SQL reads these sensitive columns, as `database.table.column`.
    SensitiveColumns { columns: Vec<String> },
    /// The SQL could not be read the way Athena reads it (`reason` says why), so what it
    /// reads was not checked: a person should look.
    UnreadableSql { reason: String },
}

impl QueryFlag {
    pub fn kind(&self) -> QueryFlagKind {
        match self {
            Self::CancelledByCutoff => QueryFlagKind::CancelledByCutoff,
            Self::LargeScan { .. } => QueryFlagKind::LargeScan,
            Self::UnfilteredPartitionScan { .. } => QueryFlagKind::UnfilteredPartitionScan,
            Self::Burst { .. } => QueryFlagKind::Burst,
            Self::SensitiveColumns { .. } => QueryFlagKind::SensitiveColumns,
            Self::UnreadableSql { .. } => QueryFlagKind::UnreadableSql,
        }
    }

    /// The kind's stable code (a flag's details cannot be parsed back from it: see
    /// [`QueryFlagKind::parse`], or store the flag as JSON).
    pub fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }

    /// A sentence for the query's page, with the details.
    pub fn description(&self) -> String {
        match self {
            Self::CancelledByCutoff => {
                "cancelled by the workgroup's per-query scan cutoff (billed for what it scanned)"
                    .to_owned()
            }
            Self::LargeScan { bytes, threshold } => format!(
                "scanned {}, at or over the large-scan threshold of {}",
                approx_bytes(*bytes),
                approx_bytes(*threshold)
            ),
            Self::UnfilteredPartitionScan {
                table: (database, table),
                keys,
            } => format!(
                "reads {database}.{table} without a condition on its partition {} {}, so every partition is scanned",
                if keys.len() == 1 { "key" } else { "keys" },
                keys.join(", ")
            ),
            Self::Burst {
                count,
                window_seconds,
            } => format!(
                "one of {count} queries submitted within {}",
                format_duration(Duration::seconds(*window_seconds))
            ),
            Self::SensitiveColumns { columns } => {
                format!("reads sensitive columns: {}", columns.join(", "))
            }
            Self::UnreadableSql { reason } => format!(
                "the SQL could not be read as Athena reads it, so what it reads was not checked: {reason}"
            ),
        }
    }
}

/// `123.4 GB`: decimal units, one decimal place, rounded down.
pub fn approx_bytes(bytes: i64) -> String {
    const UNITS: [(&str, i64); 5] = [
        ("PB", 1_000_000_000_000_000),
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenth = (bytes % size) / (size / 10);
            return if tenth == 0 {
                format!("{whole} {unit}")
            } else {
                format!("{whole}.{tenth} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

/// More than `max_queries` submitted within `window` is a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstRule {
    pub max_queries: usize,
    pub window: Duration,
}

/// The thresholds of the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagRules {
    /// A query that scanned at least this much is flagged; 0 or less turns the flag off.
    pub large_scan_bytes: i64,
    pub burst: BurstRule,
}

impl Default for FlagRules {
    /// 100 GB is a large scan; more than 30 queries in 60 seconds is a burst.
    fn default() -> Self {
        Self {
            large_scan_bytes: 100_000_000_000,
            burst: BurstRule {
                max_queries: 30,
                window: Duration::seconds(60),
            },
        }
    }
}

/// One query in a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstHit {
    /// Its index in the submission times given to [`find_bursts`].
    pub index: usize,
    /// The most queries any window of the rule's length that holds this query holds.
    pub count: usize,
}

impl BurstHit {
    pub fn flag(&self, rule: &BurstRule) -> QueryFlag {
        QueryFlag::Burst {
            count: self.count,
            window_seconds: rule.window.whole_seconds(),
        }
    }
}

/// The queries that are part of a burst: of a sliding window of `rule.window` that holds more
/// than `rule.max_queries` submissions. A window is half open: queries exactly `window` apart
/// are not in one window. Sorted by index; empty when there is no burst. `times` need not be
/// sorted.
pub fn find_bursts(times: &[OffsetDateTime], rule: &BurstRule) -> Vec<BurstHit> {
    if rule.window <= Duration::ZERO {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| times[i]);
    let sorted: Vec<OffsetDateTime> = order.iter().map(|&i| times[i]).collect();

    // The largest window ending at each query j starts at start[j]; it holds j - start[j] + 1.
    let mut start = vec![0; sorted.len()];
    let mut first = 0;
    for (j, at) in sorted.iter().enumerate() {
        while *at - sorted[first] >= rule.window {
            first += 1;
        }
        start[j] = first;
    }
    // A query k lies in the windows ending at j for k <= j <= last_end(k), where last_end(k)
    // is the last j with start[j] <= k; both ends move forward with k, so the largest such
    // window is a sliding maximum over j, kept in a deque of decreasing sizes.
    let size = |j: usize| j - start[j] + 1;
    let mut hits = Vec::new();
    let mut deque: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut next = 0;
    for (k, &index) in order.iter().enumerate() {
        while next < sorted.len() && start[next] <= k {
            while deque.back().is_some_and(|&j| size(j) <= size(next)) {
                deque.pop_back();
            }
            deque.push_back(next);
            next += 1;
        }
        while deque.front().is_some_and(|&j| j < k) {
            deque.pop_front();
        }
        if let Some(&j) = deque.front()
            && size(j) > rule.max_queries
        {
            hits.push(BurstHit {
                index,
                count: size(j),
            });
        }
    }
    hits.sort_by_key(|hit| hit.index);
    hits
}

/// The sensitive columns a query reads, as `database.table.column`, sorted, without
/// duplicates. `read_columns` are the columns attributed to tables (the SQL guard's
/// [`CheckedQuery::columns`](crate::sql_guard::CheckedQuery)); `star_tables` are the tables
/// read with `SELECT *` or `t.*`, which read every sensitive column they have. A sensitive
/// entry whose column is `*` (the policy could not tell which columns; see
/// [`SensitiveColumn`](crate::policy_file::SensitiveColumn)) matches any column of its table.
/// Names compare case-insensitively (Glue keeps them in lower case).
pub fn sensitive_reads(
    read_columns: &[(String, String, String)],
    star_tables: &[(String, String)],
    sensitive: &[(String, String, String)],
) -> Vec<String> {
    let read: BTreeSet<(String, String, String)> = read_columns
        .iter()
        .map(|(d, t, c)| (d.to_lowercase(), t.to_lowercase(), c.to_lowercase()))
        .collect();
    let stars: BTreeSet<(String, String)> = star_tables
        .iter()
        .map(|(d, t)| (d.to_lowercase(), t.to_lowercase()))
        .collect();
    let mut hits = BTreeSet::new();
    for (d, t, c) in sensitive {
        let (d, t, c) = (d.to_lowercase(), t.to_lowercase(), c.to_lowercase());
        let table = (d, t);
        if stars.contains(&table) {
            hits.insert(format!("{}.{}.{c}", table.0, table.1));
        }
        for (rd, rt, rc) in &read {
            if *rd == table.0 && *rt == table.1 && (c == "*" || *rc == c) {
                hits.insert(format!("{rd}.{rt}.{rc}"));
            }
        }
    }
    hits.into_iter().collect()
}

/// What the monitor knows about one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryFacts<'a> {
    pub sql: &'a str,
    /// The database the query ran in (Athena's `QueryExecutionContext.Database`): unqualified
    /// table names mean tables of it.
    pub default_database: Option<&'a str>,
    pub state: QueryState,
    /// Athena's `Status.StateChangeReason`.
    pub state_change_reason: Option<&'a str>,
    pub bytes_scanned: i64,
    /// `(database, table, column)` the SQL reads, as far as known: the SQL guard's
    /// [`CheckedQuery::columns`](crate::sql_guard::CheckedQuery), or empty. Tables read with
    /// `*` are found from `sql`.
    pub read_columns: &'a [(String, String, String)],
    /// Why the SQL guard could not read `sql` the way Athena does (see
    /// [`Refusal::is_unreadable`](crate::sql_guard::Refusal::is_unreadable)), if it could not.
    pub unreadable: Option<&'a str>,
}

/// The flags of one query on its own (bursts need all of a grant's queries: [`find_bursts`]),
/// in this order: cutoff cancellation, large scan, unfiltered partition scans (by table),
/// sensitive columns, unreadable SQL. `partition_keys` are the partitioned tables of the
/// grant; `sensitive` its sensitive `(database, table, column)`. SQL that cannot be read as
/// Athena reads it is flagged as such, never passed over in silence.
pub fn flags_for_query(
    facts: &QueryFacts<'_>,
    rules: &FlagRules,
    partition_keys: &PartitionKeys,
    sensitive: &[(String, String, String)],
) -> Vec<QueryFlag> {
    let mut flags = Vec::new();
    let cut_off = matches!(facts.state, QueryState::Cancelled | QueryState::Failed)
        && facts
            .state_change_reason
            .is_some_and(|reason| reason.to_lowercase().contains(CUTOFF_REASON));
    if cut_off {
        flags.push(QueryFlag::CancelledByCutoff);
    }
    if rules.large_scan_bytes > 0 && facts.bytes_scanned >= rules.large_scan_bytes {
        flags.push(QueryFlag::LargeScan {
            bytes: facts.bytes_scanned,
            threshold: rules.large_scan_bytes,
        });
    }
    let shape = analyze_sql(facts.sql, facts.default_database, partition_keys);
    let shape_read = shape.is_some();
    let star_tables = match shape {
        Some(shape) => {
            flags.extend(
                shape
                    .unfiltered_partition_scans
                    .into_iter()
                    .map(|(table, keys)| QueryFlag::UnfilteredPartitionScan { table, keys }),
            );
            shape.star_tables
        }
        None => Vec::new(),
    };
    let columns = sensitive_reads(facts.read_columns, &star_tables, sensitive);
    if !columns.is_empty() {
        flags.push(QueryFlag::SensitiveColumns { columns });
    }
    let unreadable = match (facts.unreadable, shape_read) {
        (Some(reason), _) => Some(reason.to_owned()),
        (None, false) => Some("it does not parse as one Athena statement".to_owned()),
        (None, true) => None,
    };
    if let Some(reason) = unreadable {
        flags.push(QueryFlag::UnreadableSql { reason });
    }
    flags
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn flag_codes_are_stable_and_match_the_json_tag() {
        let flags = [
            QueryFlag::CancelledByCutoff,
            QueryFlag::LargeScan {
                bytes: 1,
                threshold: 1,
            },
            QueryFlag::UnfilteredPartitionScan {
                table: (s("a"), s("b")),
                keys: vec![s("dt")],
            },
            QueryFlag::Burst {
                count: 31,
                window_seconds: 60,
            },
            QueryFlag::SensitiveColumns {
                columns: vec![s("a.b.c")],
            },
        ];
        let codes: Vec<&str> = flags.iter().map(QueryFlag::as_str).collect();
        assert_eq!(
            codes,
            [
                "cancelled_by_cutoff",
                "large_scan",
                "unfiltered_partition_scan",
                "burst",
                "sensitive_columns"
            ]
        );
        for (flag, kind) in flags.iter().zip(QueryFlagKind::ALL) {
            assert_eq!(flag.kind(), kind);
            assert_eq!(QueryFlagKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(flag).unwrap();
            assert_eq!(json["code"], kind.as_str());
            let back: QueryFlag = serde_json::from_value(json).unwrap();
            assert_eq!(&back, flag);
        }
        assert_eq!(QueryFlagKind::parse("Burst"), None);
        assert_eq!(
            serde_json::to_string(&flags[3]).unwrap(),
            r#"{"code":"burst","count":31,"window_seconds":60}"#
        );
    }

    #[test]
    fn descriptions_give_the_details() {
        let cases = [
            (
                QueryFlag::LargeScan {
                    bytes: 123_456_789_012,
                    threshold: 100_000_000_000,
                },
                "scanned 123.4 GB, at or over the large-scan threshold of 100 GB",
            ),
            (
                QueryFlag::UnfilteredPartitionScan {
                    table: (s("sales"), s("orders")),
                    keys: vec![s("year"), s("month")],
                },
                "reads sales.orders without a condition on its partition keys year, month, so every partition is scanned",
            ),
            (
                QueryFlag::Burst {
                    count: 42,
                    window_seconds: 90,
                },
                "one of 42 queries submitted within 1m 30s",
            ),
            (
                QueryFlag::SensitiveColumns {
                    columns: vec![s("hr.people.ssn"), s("hr.people.salary")],
                },
                "reads sensitive columns: hr.people.ssn, hr.people.salary",
            ),
        ];
        for (flag, want) in cases {
            assert_eq!(flag.description(), want);
        }
        for (bytes, want) in [
            (0, "0 B"),
            (999, "999 B"),
            (1_000, "1 KB"),
            (10_500_000, "10.5 MB"),
            (1_999_999_999_999, "1.9 TB"),
        ] {
            assert_eq!(approx_bytes(bytes), want);
        }
    }

    fn rule(max_queries: usize, seconds: i64) -> BurstRule {
        BurstRule {
            max_queries,
            window: Duration::seconds(seconds),
        }
    }

    #[test]
    fn bursts_in_a_sliding_window() {
        let t0 = datetime!(2025-03-01 10:00 UTC);
        let at = |secs: &[f64]| -> Vec<OffsetDateTime> {
            secs.iter()
                .map(|s| t0 + Duration::seconds_f64(*s))
                .collect()
        };
        // Seconds after t0, max queries, window seconds; (index, count) of each hit.
        type Case<'a> = (&'a [f64], usize, i64, &'a [(usize, usize)]);
        let cases: [Case; 9] = [
            (&[], 3, 60, &[]),
            // Exactly the maximum is no burst.
            (&[0.0, 10.0, 20.0], 3, 60, &[]),
            // One more within the window is.
            (
                &[0.0, 20.0, 40.0, 59.999],
                3,
                60,
                &[(0, 4), (1, 4), (2, 4), (3, 4)],
            ),
            // 60 s apart: not in the same window.
            (&[0.0, 20.0, 40.0, 60.0], 3, 60, &[]),
            // The window slides: the first and the last are each outside the burst of the middle.
            (
                &[0.0, 50.0, 51.0, 52.0, 53.0, 200.0],
                3,
                60,
                &[(0, 5), (1, 5), (2, 5), (3, 5), (4, 5)],
            ),
            (
                &[0.0, 70.0, 71.0, 72.0, 73.0, 200.0],
                3,
                60,
                &[(1, 4), (2, 4), (3, 4), (4, 4)],
            ),
            // Unsorted input: indexes refer to the input order.
            (&[30.0, 0.0, 100.0, 10.0], 2, 60, &[(0, 3), (1, 3), (3, 3)]),
            // A query keeps the largest window it belongs to.
            (
                &[0.0, 1.0, 2.0, 61.5, 62.0, 62.5, 63.0],
                2,
                60,
                &[(0, 3), (1, 3), (2, 3), (3, 4), (4, 4), (5, 4), (6, 4)],
            ),
            // Same instant counts.
            (&[5.0, 5.0], 1, 60, &[(0, 2), (1, 2)]),
        ];
        for (secs, max, window, want) in cases {
            let got: Vec<(usize, usize)> = find_bursts(&at(secs), &rule(max, window))
                .iter()
                .map(|h| (h.index, h.count))
                .collect();
            assert_eq!(got, want, "{secs:?} max {max} in {window}s");
        }
        assert!(find_bursts(&at(&[0.0, 0.0, 0.0]), &rule(1, 0)).is_empty());
        let hit = BurstHit { index: 0, count: 4 };
        assert_eq!(
            hit.flag(&rule(3, 60)),
            QueryFlag::Burst {
                count: 4,
                window_seconds: 60
            }
        );
    }

    proptest! {
        #[test]
        fn bursts_match_a_brute_force_count(
            secs in proptest::collection::vec(0i64..300, 0..40),
            max in 0usize..6,
            window in 1i64..90,
        ) {
            let t0 = datetime!(2025-03-01 10:00 UTC);
            let times: Vec<OffsetDateTime> =
                secs.iter().map(|s| t0 + Duration::seconds(*s)).collect();
            let rule = rule(max, window);
            let mut want = Vec::new();
            for (k, tk) in times.iter().enumerate() {
                // Every window [s, s + window) holding tk that starts at a submission.
                let best = times
                    .iter()
                    .filter(|s| **s <= *tk && *tk - **s < rule.window)
                    .map(|s| times.iter().filter(|t| **t >= *s && **t - *s < rule.window).count())
                    .max()
                    .unwrap_or(0);
                if best > max {
                    want.push((k, best));
                }
            }
            let got: Vec<(usize, usize)> =
                find_bursts(&times, &rule).iter().map(|h| (h.index, h.count)).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn sensitive_reads_by_name_star_and_unknown_column() {
        let sensitive = vec![
            (s("hr"), s("people"), s("ssn")),
            (s("hr"), s("people"), s("salary")),
            (s("sales"), s("leads"), s("*")),
        ];
        let col = |d: &str, t: &str, c: &str| (s(d), s(t), s(c));
        type Case = (
            Vec<(String, String, String)>,
            Vec<(String, String)>,
            &'static [&'static str],
        );
        let cases: [Case; 6] = [
            (vec![col("hr", "people", "name")], vec![], &[]),
            (
                vec![col("hr", "people", "name"), col("HR", "People", "SSN")],
                vec![],
                &["hr.people.ssn"],
            ),
            // A star read reads every sensitive column of the table.
            (
                vec![],
                vec![(s("hr"), s("people"))],
                &["hr.people.salary", "hr.people.ssn"],
            ),
            (
                vec![col("hr", "people", "ssn")],
                vec![(s("hr"), s("people")), (s("hr"), s("other"))],
                &["hr.people.salary", "hr.people.ssn"],
            ),
            // Unknown sensitive columns: any column read counts; a star read shows as `*`.
            (
                vec![col("sales", "leads", "email")],
                vec![],
                &["sales.leads.email"],
            ),
            (vec![], vec![(s("sales"), s("leads"))], &["sales.leads.*"]),
        ];
        for (read, stars, want) in cases {
            assert_eq!(
                sensitive_reads(&read, &stars, &sensitive),
                want,
                "{read:?} {stars:?}"
            );
        }
    }

    #[test]
    fn flags_for_one_query() {
        let keys = PartitionKeys::from([((s("sales"), s("orders")), vec![s("dt")])]);
        let sensitive = vec![(s("sales"), s("orders"), s("card_number"))];
        let rules = FlagRules::default();
        let facts = |sql, state, reason, bytes| QueryFacts {
            sql,
            default_database: Some("sales"),
            state,
            state_change_reason: reason,
            bytes_scanned: bytes,
            read_columns: &[],
            unreadable: None,
        };
        let cutoff_reason = Some("Query cancelled! : Bytes Scanned Limit was exceeded");
        let cases = [
            (
                facts(
                    "SELECT id FROM orders WHERE dt = '2025-03-01'",
                    QueryState::Succeeded,
                    None,
                    5,
                ),
                vec![],
            ),
            (
                facts(
                    "SELECT id FROM orders WHERE dt = '2025-03-01'",
                    QueryState::Cancelled,
                    cutoff_reason,
                    200_000_000_000,
                ),
                vec![
                    QueryFlag::CancelledByCutoff,
                    QueryFlag::LargeScan {
                        bytes: 200_000_000_000,
                        threshold: 100_000_000_000,
                    },
                ],
            ),
            (
                facts(
                    "SELECT id FROM orders",
                    QueryState::Failed,
                    cutoff_reason,
                    0,
                ),
                vec![
                    QueryFlag::CancelledByCutoff,
                    QueryFlag::UnfilteredPartitionScan {
                        table: (s("sales"), s("orders")),
                        keys: vec![s("dt")],
                    },
                ],
            ),
            // Another reason, or a succeeded query, is no cutoff cancellation.
            (
                facts(
                    "SELECT 1",
                    QueryState::Cancelled,
                    Some("Query cancelled by user"),
                    0,
                ),
                vec![],
            ),
            (
                facts("SELECT 1", QueryState::Succeeded, cutoff_reason, 0),
                vec![],
            ),
            (
                facts(
                    "SELECT * FROM orders WHERE dt > '2025'",
                    QueryState::Succeeded,
                    None,
                    100_000_000_000,
                ),
                vec![
                    QueryFlag::LargeScan {
                        bytes: 100_000_000_000,
                        threshold: 100_000_000_000,
                    },
                    QueryFlag::SensitiveColumns {
                        columns: vec![s("sales.orders.card_number")],
                    },
                ],
            ),
            // SQL that does not parse is flagged as such, never passed over.
            (
                facts("SELEC * FRM orders", QueryState::Failed, None, 0),
                vec![QueryFlag::UnreadableSql {
                    reason: "it does not parse as one Athena statement".into(),
                }],
            ),
            // Nor does SQL that Athena reads otherwise: after a lone carriage return, the
            // rest of a `--` line is SQL to Athena.
            (
                facts(
                    "SELECT 1 -- note\r, ssn FROM hr.people",
                    QueryState::Succeeded,
                    None,
                    0,
                ),
                vec![QueryFlag::UnreadableSql {
                    reason: "it does not parse as one Athena statement".into(),
                }],
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(
                flags_for_query(&facts, &rules, &keys, &sensitive),
                want,
                "{}",
                facts.sql
            );
        }
        // Named sensitive columns come from the caller (the SQL guard attributes them).
        let read = vec![(s("sales"), s("orders"), s("card_number"))];
        let named = QueryFacts {
            read_columns: &read,
            unreadable: None,
            ..facts(
                "SELECT card_number FROM orders WHERE dt = '1'",
                QueryState::Succeeded,
                None,
                0,
            )
        };
        assert_eq!(
            flags_for_query(&named, &rules, &keys, &sensitive),
            vec![QueryFlag::SensitiveColumns {
                columns: vec![s("sales.orders.card_number")]
            }]
        );
        // A threshold of 0 turns the large-scan flag off.
        let off = FlagRules {
            large_scan_bytes: 0,
            ..rules
        };
        assert_eq!(
            flags_for_query(
                &facts("SELECT 1", QueryState::Succeeded, None, i64::MAX),
                &off,
                &keys,
                &sensitive
            ),
            vec![]
        );
    }
}
