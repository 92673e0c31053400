//! Durations as the scenario file writes them: `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`.

use core::fmt;
use core::time::Duration;

/// A text that is not a duration: the text and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {} (write a number and a unit: ns, us, ms, s, m, h; e.g. \"250ms\", \"10s\")",
            self.text, self.why
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration: a decimal number and a unit, one of `ns`, `us`, `ms`, `s`, `m`, `h`
/// (`"0"` alone is also accepted). Fractions are allowed as long as the result is a whole
/// number of nanoseconds.
///
/// ```
/// use core::time::Duration;
/// use failover_buffer_sim::parse_duration;
///
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("10").is_err()); // a unit is required
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = |why: &'static str| {
        Err(DurationError {
            text: text.to_string(),
            why,
        })
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return bad("no number");
    }
    if frac.contains('.') {
        return bad("more than one decimal point");
    }
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" if number.chars().all(|c| c == '0' || c == '.') => 1,
        "" => return bad("no unit"),
        _ => return bad("unknown unit"),
    };
    if int.len() > 20 || frac.len() > 18 {
        return bad("too many digits");
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        match int.parse() {
            Ok(n) => n,
            Err(_) => return bad("not a number"),
        }
    };
    let mut nanos = int * unit_nanos;
    if !frac.is_empty() {
        let Ok(digits) = frac.parse::<u128>() else {
            return bad("not a number");
        };
        let scaled = digits * unit_nanos;
        let denominator = 10u128.pow(frac.len() as u32);
        if scaled % denominator != 0 {
            return bad("finer than a nanosecond");
        }
        nanos += scaled / denominator;
    }
    match u64::try_from(nanos) {
        Ok(n) => Ok(Duration::from_nanos(n)),
        Err(_) => bad("longer than 584 years"),
    }
}

/// Formats a duration the way [`parse_duration`] reads it, in the largest unit that keeps it
/// exact: `"10s"`, `"1.5s"`, `"250ms"`, `"0s"`.
///
/// ```
/// use core::time::Duration;
/// use failover_buffer_sim::format_duration;
///
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
/// assert_eq!(format_duration(Duration::from_micros(250)), "250us");
/// ```
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos >= 1_000_000_000 && nanos % 1_000_000 == 0 {
        let text = format!(
            "{}.{:03}",
            nanos / 1_000_000_000,
            (nanos / 1_000_000) % 1000
        );
        return format!("{}s", text.trim_end_matches('0').trim_end_matches('.'));
    }
    for (unit, scale) in [("ms", 1_000_000), ("us", 1_000)] {
        if nanos % scale == 0 {
            return format!("{}{unit}", nanos / scale);
        }
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for text in [
            "0s", "1ns", "250us", "3ms", "999ms", "1s", "1.5s", "2.125s", "600s",
        ] {
            let d = parse_duration(text).expect("valid");
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in ["", "s", "10", "1.5.0s", "10 s", "1.5ns", "3 parsecs", "-1s"] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
    }
}
