//! What a grant's Athena queries cost and what they did: cost estimates as Athena bills,
//! the budget rule the monitor applies, flags on risky query patterns, and the totals and
//! series the grant's page shows. Pure: the monitor fetches the facts and the time.
//!
//! Athena bills each query for the bytes it scanned, rounded up to the next whole megabyte,
//! with a minimum of 10 MB per query. Failed queries are free; cancelled ones are billed for
//! what they scanned (a query the workgroup's per-query cutoff stopped is cancelled, and
//! billed). lakegate counts decimal units throughout (1 MB = 10^6 bytes, 1 TB = 10^12 bytes),
//! as it does for cutoffs and budgets.
//!
//! Money is whole micro-dollars in integers, never floating point: sums over thousands of
//! queries must come out the same in the monitor, the database and the page, and a budget
//! check must not flip on a rounding error. Products are taken in `i128`, so that bytes times
//! a price cannot overflow.

mod flags;
mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::iter::Sum;
use std::ops::Add;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::policy::MIN_SCAN_CUTOFF_BYTES;

pub use flags::{
    BurstHit, BurstRule, FlagRules, QueryFacts, QueryFlag, QueryFlagKind, approx_bytes,
    find_bursts, flags_for_query, sensitive_reads,
};
pub use sql::{PartitionKeys, SqlFacts, analyze_sql, unfiltered_partition_scans};

/// Bytes in a megabyte, the unit Athena rounds scans up to.
pub const BYTES_PER_MB: i64 = 1_000_000;

/// Bytes in a terabyte, the unit Athena's price is given in.
pub const BYTES_PER_TB: i64 = 1_000_000_000_000;

/// Athena bills every query that ran for at least this much.
pub const MIN_BILLED_BYTES: i64 = 10 * BYTES_PER_MB;

/// The share of the budget, in percent, past which the grant's people are warned once.
pub const WARN_PERCENT: u8 = 80;

/// The state of one query execution, as Athena reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QueryState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl QueryState {
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// Athena's name for the state: `QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Reads Athena's name for the state (exactly as Athena writes it, upper case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The query will not change any more: its bytes scanned are final. (A transient error
    /// can move a RUNNING query back to QUEUED, so neither of those is.)
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for QueryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of US dollars in whole micro-dollars (10^-6 USD).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Micros(pub i64);

impl Add for Micros {
    type Output = Micros;
    /// Saturates: a sum of estimates is never worth a panic.
    fn add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }
}

impl Sum for Micros {
    fn sum<I: Iterator<Item = Micros>>(iter: I) -> Micros {
        iter.fold(Micros(0), Add::add)
    }
}

impl fmt::Display for Micros {
    /// Dollars and cents (`$0.05`, `$12.34`, rounded half up to the cent); an amount below
    /// a cent keeps the digits it needs (`$0.0005`, `$0.00005`), so that a single small
    /// query does not show as `$0.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let amount = self.0.unsigned_abs();
        if amount == 0 || amount >= 10_000 {
            let cents = (amount + 5_000) / 10_000;
            write!(f, "{sign}${}.{:02}", cents / 100, cents % 100)
        } else {
            let digits = format!("{amount:06}");
            write!(f, "{sign}$0.{}", digits.trim_end_matches('0'))
        }
    }
}

/// Athena's price per terabyte scanned, in whole micro-dollars. It differs by Region, so
/// it is configured; the default is the US price of 5 USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub micros_per_tb: i64,
}

impl Default for Price {
    fn default() -> Self {
        Self {
            micros_per_tb: 5_000_000,
        }
    }
}

/// The bytes Athena bills a query for: what it scanned rounded up to the next whole MB, at
/// least [`MIN_BILLED_BYTES`], for a query that ran; nothing for a failed query, for a
/// queued one, or for one cancelled before it scanned anything.
///
/// A RUNNING query counts as if it had succeeded with what it has scanned so far: it will be
/// billed at least that much unless it fails. Athena's DDL and utility statements
/// (`StatementType` DDL or UTILITY) are free; the caller counts those as 0 itself.
pub fn billed_bytes(state: QueryState, bytes_scanned: i64) -> i64 {
    let bytes = bytes_scanned.max(0);
    let ran = match state {
        QueryState::Queued | QueryState::Failed => false,
        QueryState::Cancelled => bytes > 0,
        QueryState::Running | QueryState::Succeeded => true,
    };
    if !ran {
        return 0;
    }
    let mb = i128::from(BYTES_PER_MB);
    let rounded = (i128::from(bytes) + mb - 1) / mb * mb;
    clamp_i64(rounded.max(i128::from(MIN_BILLED_BYTES)))
}

/// What Athena charges for the query: [`billed_bytes`] at `price`, rounded up to a whole
/// micro-dollar.
pub fn estimate_cost(state: QueryState, bytes_scanned: i64, price: Price) -> Micros {
    let product = i128::from(billed_bytes(state, bytes_scanned)) * i128::from(price.micros_per_tb);
    let tb = i128::from(BYTES_PER_TB);
    // Division truncates towards zero, which is already the ceiling for a negative price.
    let mut micros = product / tb;
    if product % tb > 0 {
        micros += 1;
    }
    Micros(clamp_i64(micros))
}

fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// A grant's spend against its scan budget, and the workgroup's cutoff now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetInput {
    /// Bytes counted against the budget so far (the sum of [`billed_bytes`] is what Athena
    /// charges for).
    pub spent_bytes: i64,
    /// The grant's total scan budget.
    pub budget_bytes: i64,
    /// The per-query cutoff the policy configured for the grant.
    pub per_query_cutoff_bytes: i64,
    /// The `BytesScannedCutoffPerQuery` the workgroup has now.
    pub current_cutoff_bytes: i64,
    /// The 80 % warning was already sent.
    pub warned_already: bool,
}

/// What the monitor should do about a grant's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetAssessment {
    /// The spend reached [`WARN_PERCENT`] of the budget and no warning was sent yet. May come
    /// together with `exhausted` when one query went past both.
    pub warn: bool,
    /// Lower the workgroup's per-query cutoff to this: what is left of the budget, when that
    /// is below the current cutoff (and below the configured one). Never raises the cutoff;
    /// `None` when exhausted (the grant is revoked instead).
    pub new_cutoff: Option<i64>,
    /// Less is left than Athena's smallest cutoff ([`MIN_SCAN_CUTOFF_BYTES`], 10 MB): no query
    /// can be held to what remains, so the grant is treated as spent (docs/aws.md §14) rather than
    /// allowed to overshoot.
    pub exhausted: bool,
    /// What is left of the budget, never negative.
    pub remaining_bytes: i64,
    /// The spend in percent of the budget, rounded down, at most 100 (100 for a budget of 0).
    pub percent_used: u8,
}

/// Applies the budget rule (docs/aws.md §14) to one grant's spend.
pub fn assess_budget(input: BudgetInput) -> BudgetAssessment {
    let spent = i128::from(input.spent_bytes.max(0));
    let budget = i128::from(input.budget_bytes.max(0));
    let remaining = clamp_i64((budget - spent).max(0));
    let exhausted = remaining < MIN_SCAN_CUTOFF_BYTES;
    let percent_used = if budget == 0 {
        100
    } else {
        u8::try_from((spent * 100 / budget).min(100)).unwrap_or(100)
    };
    // Compared exactly, not through the rounded percentage.
    let reached_warning = spent * 100 >= budget * i128::from(WARN_PERCENT);
    let new_cutoff = if exhausted {
        None
    } else {
        let target = remaining.min(input.per_query_cutoff_bytes.max(MIN_SCAN_CUTOFF_BYTES));
        (target < input.current_cutoff_bytes).then_some(target)
    };
    BudgetAssessment {
        warn: reached_warning && !input.warned_already,
        new_cutoff,
        exhausted,
        remaining_bytes: remaining,
        percent_used,
    }
}

/// One query of a grant, as the summary needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryUsage {
    pub state: QueryState,
    pub bytes_scanned: i64,
    pub flags: Vec<QueryFlag>,
}

/// The totals of a grant's queries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSummary {
    pub queries: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Queued or running.
    pub in_progress: usize,
    /// What the queries scanned, as Athena reports it.
    pub bytes_scanned: i64,
    /// What Athena bills for: the sum of each query's [`billed_bytes`].
    pub billed_bytes: i64,
    /// The sum of each query's [`estimate_cost`] (Athena bills and rounds per query).
    pub cost: Micros,
    /// Flag code ([`QueryFlagKind::as_str`]) → how many queries carry that flag.
    pub flags: BTreeMap<&'static str, usize>,
}

/// Adds up a grant's queries.
pub fn summarize(queries: &[QueryUsage], price: Price) -> UsageSummary {
    let mut summary = UsageSummary::default();
    for query in queries {
        summary.queries += 1;
        match query.state {
            QueryState::Succeeded => summary.succeeded += 1,
            QueryState::Failed => summary.failed += 1,
            QueryState::Cancelled => summary.cancelled += 1,
            QueryState::Queued | QueryState::Running => summary.in_progress += 1,
        }
        summary.bytes_scanned = summary
            .bytes_scanned
            .saturating_add(query.bytes_scanned.max(0));
        summary.billed_bytes = summary
            .billed_bytes
            .saturating_add(billed_bytes(query.state, query.bytes_scanned));
        summary.cost = summary.cost + estimate_cost(query.state, query.bytes_scanned, price);
        let mut kinds: Vec<&'static str> = query.flags.iter().map(QueryFlag::as_str).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            *summary.flags.entry(kind).or_default() += 1;
        }
    }
    summary
}

/// The running total of bytes over time, for the grant's chart: the points sorted by time
/// (points at the same time keep their order), each with the sum of its own bytes and all
/// those before it. Negative bytes count as 0; the total saturates.
pub fn cumulative_bytes(points: &[(OffsetDateTime, i64)]) -> Vec<(OffsetDateTime, i64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|(at, _)| *at);
    let mut total: i64 = 0;
    sorted
        .into_iter()
        .map(|(at, bytes)| {
            total = total.saturating_add(bytes.max(0));
            (at, total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const MB: i64 = BYTES_PER_MB;

    #[test]
    fn query_states_round_trip_as_athena_names() {
        let mut seen = std::collections::HashSet::new();
        for state in QueryState::ALL {
            assert_eq!(QueryState::parse(state.as_str()), Some(state));
            assert_eq!(state.to_string(), state.as_str());
            assert!(seen.insert(state.as_str()));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert_eq!(QueryState::parse("succeeded"), None);
        assert_eq!(QueryState::parse("CANCELED"), None);
        let finals: Vec<_> = QueryState::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                QueryState::Succeeded,
                QueryState::Failed,
                QueryState::Cancelled
            ]
        );
    }

    #[test]
    fn billed_bytes_follow_athena_rounding() {
        use QueryState::*;
        let cases = [
            (Succeeded, 0, 10 * MB),
            (Succeeded, 1, 10 * MB),
            (Succeeded, 10 * MB, 10 * MB),
            (Succeeded, 10 * MB + 1, 11 * MB),
            (Succeeded, 11 * MB - 1, 11 * MB),
            (Succeeded, 123_456_789_012, 123_457 * MB),
            (Succeeded, -5, 10 * MB),
            (Succeeded, i64::MAX, i64::MAX),
            (Running, 0, 10 * MB),
            (Running, 25 * MB + 1, 26 * MB),
            (Queued, 0, 0),
            (Queued, 5 * MB, 0),
            (Failed, 0, 0),
            (Failed, 500 * MB, 0),
            (Cancelled, 0, 0),
            (Cancelled, 1, 10 * MB),
            (Cancelled, 40 * MB + 1, 41 * MB),
        ];
        for (state, bytes, want) in cases {
            assert_eq!(billed_bytes(state, bytes), want, "{state} {bytes}");
        }
    }

    #[test]
    fn costs_round_up_to_a_micro_dollar() {
        use QueryState::*;
        let five = Price::default();
        let cases = [
            (Succeeded, BYTES_PER_TB, five, 5_000_000),
            (Succeeded, 0, five, 50),
            (Succeeded, 10 * MB + 1, five, 55),
            (Succeeded, 1_000_000_000, five, 5_000),
            (Failed, BYTES_PER_TB, five, 0),
            (Cancelled, 2 * BYTES_PER_TB, five, 10_000_000),
            // 11 MB at 7 micro-dollars per TB: 0.000077 micro-dollars, billed as 1.
            (Succeeded, 11 * MB, Price { micros_per_tb: 7 }, 1),
            (Succeeded, BYTES_PER_TB, Price { micros_per_tb: 0 }, 0),
            (
                Succeeded,
                i64::MAX,
                Price {
                    micros_per_tb: i64::MAX,
                },
                i64::MAX,
            ),
        ];
        for (state, bytes, price, want) in cases {
            assert_eq!(
                estimate_cost(state, bytes, price),
                Micros(want),
                "{state} {bytes} {price:?}"
            );
        }
        assert_eq!(
            estimate_cost(Succeeded, BYTES_PER_TB, five).to_string(),
            "$5.00"
        );
    }

    #[test]
    fn micros_show_cents_or_the_digits_below_a_cent() {
        let cases = [
            (0, "$0.00"),
            (1, "$0.000001"),
            (50, "$0.00005"),
            (500, "$0.0005"),
            (9_999, "$0.009999"),
            (10_000, "$0.01"),
            (14_999, "$0.01"),
            (15_000, "$0.02"),
            (50_000, "$0.05"),
            (5_000_000, "$5.00"),
            (12_340_000, "$12.34"),
            (12_345_678, "$12.35"),
            (999_995_000, "$1000.00"),
            (-50_000, "-$0.05"),
            (-500, "-$0.0005"),
            (i64::MIN, "-$9223372036854.78"),
        ];
        for (micros, want) in cases {
            assert_eq!(Micros(micros).to_string(), want, "{micros}");
        }
        let total: Micros = [Micros(1), Micros(2), Micros(i64::MAX)].into_iter().sum();
        assert_eq!(total, Micros(i64::MAX));
    }

    fn budget(spent: i64, budget: i64, current: i64, warned: bool) -> BudgetAssessment {
        assess_budget(BudgetInput {
            spent_bytes: spent,
            budget_bytes: budget,
            per_query_cutoff_bytes: 1_000 * MB,
            current_cutoff_bytes: current,
            warned_already: warned,
        })
    }

    #[test]
    fn budget_rule() {
        let gb = 1_000 * MB;
        // (spent, budget, current cutoff, warned) → (warn, new cutoff, exhausted, remaining, %)
        let cases = [
            // Below 80 %, plenty left: nothing to do.
            ((0, 10 * gb, gb, false), (false, None, false, 10 * gb, 0)),
            (
                (7 * gb, 10 * gb, gb, false),
                (false, None, false, 3 * gb, 70),
            ),
            // 79.99 % is not 80 %.
            (
                (8 * gb - 1, 10 * gb, gb, false),
                (false, None, false, 2 * gb + 1, 79),
            ),
            // Crossing 80 %: warn once.
            (
                (8 * gb, 10 * gb, gb, false),
                (true, None, false, 2 * gb, 80),
            ),
            (
                (8 * gb, 10 * gb, gb, true),
                (false, None, false, 2 * gb, 80),
            ),
            // Less left than the cutoff: lowered to what is left.
            (
                (9_400 * MB, 10 * gb, gb, true),
                (false, Some(600 * MB), false, 600 * MB, 94),
            ),
            // Already lowered that far: no change; never raised.
            (
                (9_400 * MB, 10 * gb, 600 * MB, true),
                (false, None, false, 600 * MB, 94),
            ),
            (
                (9_400 * MB, 10 * gb, 300 * MB, true),
                (false, None, false, 600 * MB, 94),
            ),
            // Exactly Athena's minimum left: the cutoff goes down to it.
            (
                (10 * gb - 10 * MB, 10 * gb, gb, true),
                (false, Some(10 * MB), false, 10 * MB, 99),
            ),
            // Less than 10 MB left: no query can be held to it, so the budget is spent.
            (
                (10 * gb - 3 * MB, 10 * gb, gb, true),
                (false, None, true, 3 * MB, 99),
            ),
            (
                (10 * gb - 1, 10 * gb, 10 * MB, true),
                (false, None, true, 1, 99),
            ),
            // A jump from below 80 % to exhausted warns and exhausts at once.
            ((10 * gb, 10 * gb, gb, false), (true, None, true, 0, 100)),
            ((12 * gb, 10 * gb, gb, true), (false, None, true, 0, 100)),
            // A budget of nothing is exhausted from the start.
            ((0, 0, gb, false), (true, None, true, 0, 100)),
        ];
        for ((spent, total, current, warned), (warn, cutoff, exhausted, remaining, pct)) in cases {
            let got = budget(spent, total, current, warned);
            let want = BudgetAssessment {
                warn,
                new_cutoff: cutoff,
                exhausted,
                remaining_bytes: remaining,
                percent_used: pct,
            };
            assert_eq!(got, want, "spent {spent} of {total}, cutoff {current}");
        }
    }

    #[test]
    fn budget_cutoff_never_exceeds_the_configured_one() {
        // The workgroup somehow has more than the policy allows: brought back down.
        let got = assess_budget(BudgetInput {
            spent_bytes: 0,
            budget_bytes: 100_000 * MB,
            per_query_cutoff_bytes: 500 * MB,
            current_cutoff_bytes: 2_000 * MB,
            warned_already: false,
        });
        assert_eq!(got.new_cutoff, Some(500 * MB));
        // Extreme values neither overflow nor go out of range.
        let got = assess_budget(BudgetInput {
            spent_bytes: i64::MIN,
            budget_bytes: i64::MAX,
            per_query_cutoff_bytes: i64::MAX,
            current_cutoff_bytes: i64::MAX,
            warned_already: false,
        });
        assert_eq!(got.remaining_bytes, i64::MAX);
        assert_eq!(got.percent_used, 0);
        assert_eq!(got.new_cutoff, None);
    }

    #[test]
    fn summary_counts_states_bytes_cost_and_flags() {
        use QueryState::*;
        let large = QueryFlag::LargeScan {
            bytes: 200_000 * MB,
            threshold: 100_000 * MB,
        };
        let scan = |db: &str| QueryFlag::UnfilteredPartitionScan {
            table: (db.into(), "t".into()),
            keys: vec!["dt".into()],
        };
        let queries = [
            QueryUsage {
                state: Succeeded,
                bytes_scanned: 0,
                flags: vec![],
            },
            QueryUsage {
                state: Succeeded,
                bytes_scanned: 200_000 * MB,
                flags: vec![large.clone(), scan("a"), scan("b")],
            },
            QueryUsage {
                state: Failed,
                bytes_scanned: 50 * MB,
                flags: vec![scan("a")],
            },
            QueryUsage {
                state: Cancelled,
                bytes_scanned: 15 * MB + 1,
                flags: vec![QueryFlag::CancelledByCutoff],
            },
            QueryUsage {
                state: Running,
                bytes_scanned: 0,
                flags: vec![],
            },
            QueryUsage {
                state: Queued,
                bytes_scanned: 0,
                flags: vec![],
            },
        ];
        let summary = summarize(&queries, Price::default());
        let want = UsageSummary {
            queries: 6,
            succeeded: 2,
            failed: 1,
            cancelled: 1,
            in_progress: 2,
            bytes_scanned: 200_065 * MB + 1,
            billed_bytes: (10 + 200_000 + 16 + 10) * MB,
            // 50 + 1_000_000 + 80 + 50 micro-dollars.
            cost: Micros(1_000_180),
            flags: BTreeMap::from([
                ("cancelled_by_cutoff", 1),
                ("large_scan", 1),
                ("unfiltered_partition_scan", 2),
            ]),
        };
        assert_eq!(summary, want);
        assert_eq!(summary.cost.to_string(), "$1.00");
        assert_eq!(summarize(&[], Price::default()), UsageSummary::default());
    }

    #[test]
    fn cumulative_series_is_sorted_and_running() {
        let t1 = datetime!(2025-03-01 10:00 UTC);
        let t2 = datetime!(2025-03-01 10:05 UTC);
        let t3 = datetime!(2025-03-01 11:00 UTC);
        type Series = Vec<(OffsetDateTime, i64)>;
        let cases: [(Series, Series); 4] = [
            (vec![], vec![]),
            (vec![(t1, 5)], vec![(t1, 5)]),
            (
                vec![(t3, 100), (t1, 10), (t2, 1)],
                vec![(t1, 10), (t2, 11), (t3, 111)],
            ),
            (
                vec![(t2, 7), (t1, -3), (t2, i64::MAX)],
                vec![(t1, 0), (t2, 7), (t2, i64::MAX)],
            ),
        ];
        for (points, want) in cases {
            assert_eq!(cumulative_bytes(&points), want, "{points:?}");
        }
    }
}
