//! What the benchmarks and the load and chaos tests measure with: their settings from the
//! environment, percentiles, a process's memory, the histograms of `/metrics`. Included with
//! `#[path]`.
#![allow(
    dead_code,
    reason = "helpers shared by several test binaries; each uses some"
)]

/// A whole-number setting from the environment, or `default`.
pub fn setting(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The value at quantile `p` (0 to 1, nearest rank) of `xs`, in any order; `None` if empty.
pub fn percentile<T: Copy + PartialOrd>(xs: &[T], p: f64) -> Option<T> {
    let mut sorted = xs.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into the list"
    )]
    let i = ((sorted.len().checked_sub(1)?) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted.get(i).copied()
}

/// A process's resident memory, in MiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub now: f64,
    pub peak: f64,
}

/// The resident memory of process `pid` now and at its peak (`/proc/<pid>/status`).
pub fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        kib / 1024.0
    };
    Memory {
        now: field("VmRSS:"),
        peak: field("VmHWM:"),
    }
}

/// A Prometheus histogram as `/metrics` shows it, without labels.
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    /// Upper bound → how many observations are at most that (cumulative), in order.
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// Reads `name` from a `/metrics` page.
    pub fn parse(page: &str, name: &str) -> Self {
        let mut h = Self::default();
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if let Some(rest) = key.strip_prefix(&format!("{name}_bucket{{le=\"")) {
                let bound = rest.trim_end_matches("\"}");
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().unwrap_or(f64::INFINITY)
                };
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a count"
                )]
                h.buckets.push((bound, value as u64));
            } else if key == format!("{name}_sum") {
                h.sum = value;
            } else if key == format!("{name}_count") {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a count"
                )]
                {
                    h.count = value as u64;
                }
            }
        }
        h
    }

    pub fn mean(&self) -> f64 {
        #[allow(clippy::cast_precision_loss, reason = "a count")]
        let n = self.count as f64;
        self.sum / n
    }

    /// The smallest bucket bound that holds at least the fraction `p` of the observations.
    pub fn at_most(&self, p: f64) -> f64 {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a count"
        )]
        let wanted = (self.count as f64 * p).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= wanted)
            .map_or(f64::INFINITY, |(bound, _)| *bound)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_and_histograms_read_as_expected() {
        use super::{Histogram, percentile};
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile::<f64>(&[], 0.5), None);
        let page = "# TYPE x histogram\nx_bucket{le=\"0.001\"} 2\nx_bucket{le=\"0.01\"} 9\n\
                    x_bucket{le=\"+Inf\"} 10\nx_sum 0.05\nx_count 10\n";
        let h = Histogram::parse(page, "x");
        assert_eq!(h.count, 10);
        assert!((h.mean() - 0.005).abs() < 1e-9);
        assert!((h.at_most(0.5) - 0.01).abs() < 1e-9);
        assert!(h.at_most(0.99).is_infinite());
    }
}
