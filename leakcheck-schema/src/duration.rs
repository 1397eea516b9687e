//! Durations as people write them in `grace = "300ms"`, `LEAKCHECK_GRACE=2s` or
//! `timeout = "1m 30s"`, and as reports print them: a number and a unit, repeated
//! (`1h 30m`, `1h30m`); units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`, `w` and their
//! long forms (`sec`, `seconds`, `min`, `minutes`, `hours`, `days`, `weeks`, ...).
//!
//! The same words humantime reads and prints, written here because humantime adds
//! `From<humantime::Duration> for std::time::Duration`, which makes
//! `Duration::from(Default::default())` ambiguous in the code of a user who links leakcheck.
//!
//! ```
//! use std::time::Duration;
//! use leakcheck_schema::duration;
//!
//! assert_eq!(duration::parse("300ms"), Ok(Duration::from_millis(300)));
//! assert_eq!(duration::parse("1m 30s"), Ok(Duration::from_secs(90)));
//! assert_eq!(duration::format(Duration::from_millis(1002)), "1s 2ms");
//! assert!(duration::parse("soon").is_err());
//! ```

use std::fmt;
use std::time::Duration;

/// Units by the words that name them, in nanoseconds.
const UNITS: &[(&[&str], u64)] = &[
    (&["ns", "nsec", "nanos", "nanosecond", "nanoseconds"], 1),
    (
        &["us", "µs", "usec", "micros", "microsecond", "microseconds"],
        1_000,
    ),
    (
        &["ms", "msec", "millis", "millisecond", "milliseconds"],
        1_000_000,
    ),
    (&["s", "sec", "secs", "second", "seconds"], 1_000_000_000),
    (&["m", "min", "mins", "minute", "minutes"], 60_000_000_000),
    (&["h", "hr", "hrs", "hour", "hours"], 3_600_000_000_000),
    (&["d", "day", "days"], 86_400_000_000_000),
    (&["w", "week", "weeks"], 604_800_000_000_000),
];

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    problem: String,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

impl std::error::Error for DurationError {}

/// Reads a duration: one or more `<number><unit>`, spaces allowed between them.
///
/// # Errors
///
/// A text that is empty, has a part without a number or a unit, names a unit this does
/// not know, or is too long to hold.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let error = |problem: String| DurationError { problem };
    let text = text.trim();
    if text.is_empty() {
        return Err(error("empty: expected a number and a unit".into()));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(error(format!("expected a number at `{rest}`")));
        }
        let number: u128 = rest[..digits]
            .parse()
            .map_err(|_| error(format!("`{}` is too large", &rest[..digits])))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len() - rest.trim_start_matches(char::is_alphabetic).len();
        let unit = &rest[..unit_len];
        if rest.starts_with(['.', ',']) {
            return Err(error(format!(
                "`{text}`: whole numbers only, in a smaller unit for a fraction (1500ms, not 1.5s)"
            )));
        }
        if unit.is_empty() {
            return Err(error(format!(
                "`{number}` has no unit: expected ns, us, ms, s, m, h, d or w"
            )));
        }
        let Some((_, nanos)) = UNITS.iter().find(|(words, _)| words.contains(&unit)) else {
            return Err(error(format!(
                "unknown unit `{unit}`: expected ns, us, ms, s, m, h, d or w"
            )));
        };
        total = number
            .checked_mul(u128::from(*nanos))
            .and_then(|nanos| total.checked_add(nanos))
            .ok_or_else(|| error("too long a duration".into()))?;
        rest = rest[unit_len..].trim_start();
    }
    let secs =
        u64::try_from(total / 1_000_000_000).map_err(|_| error("too long a duration".into()))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// A duration as reports print it: its non-zero parts, largest first (`1s 2ms`, `500ms`,
/// `2m 3s`); `0s` for zero.
pub fn format(duration: Duration) -> String {
    const PARTS: &[(u128, &str)] = &[
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let mut nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for &(size, unit) in PARTS {
        if nanos >= size {
            parts.push(format!("{}{unit}", nanos / size));
            nanos %= size;
        }
    }
    parts.join(" ")
}

/// `duration` to whole milliseconds, as reports show waits and grace periods.
pub fn round_to_ms(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis().try_into().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_people_write() {
        let ms = Duration::from_millis;
        for (text, expected) in [
            ("500ms", ms(500)),
            (" 2s ", ms(2000)),
            ("1500ms", ms(1500)),
            ("1m", ms(60_000)),
            ("1h 30m", ms(5_400_000)),
            ("1h30m", ms(5_400_000)),
            ("2 seconds", ms(2000)),
            ("10us", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("1d", ms(86_400_000)),
        ] {
            assert_eq!(parse(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn refuses_with_what_was_expected() {
        for (text, problem) in [
            ("soon", "expected a number at `soon`"),
            ("", "empty"),
            ("5", "`5` has no unit"),
            ("5 parsecs", "unknown unit `parsecs`"),
            ("1.5s", "whole numbers only"),
            ("-1s", "expected a number at `-1s`"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(problem), "{text:?}: {error}");
        }
    }

    #[test]
    fn prints_as_it_reads() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1002), "1s 2ms"),
            (Duration::from_secs(123), "2m 3s"),
            (Duration::from_micros(1500), "1ms 500us"),
        ] {
            assert_eq!(format(duration), text);
            assert_eq!(parse(text), Ok(duration));
        }
    }
}
