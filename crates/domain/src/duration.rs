//! Durations as people type them (`30m`, `2h`, `1h30m`, `1d`) and as lakegate shows them.

use time::Duration;

use crate::error::ValidationError;

/// Parses `90s`, `30m`, `2h`, `1h30m`, `1d`; the units must be in decreasing order and appear once.
pub fn parse_duration(input: &str) -> Result<Duration, ValidationError> {
    let text = input.trim().to_ascii_lowercase();
    let invalid = || {
        ValidationError::new(format!(
            "`{}` is not a duration: use a number with a unit, like 30m, 2h or 1h30m",
            input.trim()
        ))
    };
    if text.is_empty() {
        return Err(ValidationError::new(
            "a duration is required, like 30m, 2h or 1h30m",
        ));
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut last_rank = usize::MAX;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, seconds) = match c {
            'd' => (3, 86_400),
            'h' => (2, 3_600),
            'm' => (1, 60),
            's' => (0, 1),
            _ => return Err(invalid()),
        };
        if digits.is_empty() || digits.len() > 6 || rank >= last_rank {
            return Err(invalid());
        }
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        total += n * seconds;
        digits.clear();
        last_rank = rank;
    }
    if !digits.is_empty() || total == 0 {
        return Err(invalid());
    }
    Ok(Duration::seconds(total))
}

/// Formats a duration compactly: `1h 30m`, `15m`, `45s`, `2d 4h`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.whole_seconds().max(0);
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = secs / size;
        if n > 0 {
            parts.push(format!("{n}{unit}"));
            secs -= n * size;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_type() {
        let cases = [
            ("30m", 1_800),
            ("2h", 7_200),
            ("1h30m", 5_400),
            (" 90S ", 90),
            ("1d", 86_400),
            ("1h0m", 3_600),
            ("8h", 28_800),
        ];
        for (input, secs) in cases {
            assert_eq!(
                parse_duration(input).unwrap().whole_seconds(),
                secs,
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_nonsense() {
        for input in [
            "", "30", "m", "2x", "1m2h", "1h1h", "0m", "-5m", "1.5h", "9999999h", "h30",
        ] {
            let err = parse_duration(input).unwrap_err();
            assert!(err.0.contains("duration"), "{input}: {err}");
        }
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::seconds(5_400)), "1h 30m");
        assert_eq!(format_duration(Duration::minutes(15)), "15m");
        assert_eq!(format_duration(Duration::seconds(0)), "0s");
        assert_eq!(format_duration(Duration::hours(28)), "1d 4h");
    }
}
