//! Durations as operators write them: `250ms`, `10s`, `1m`, `2h`, `7d`.
//!
//! One whole number and one unit, nothing else: `1h30m` or `1.5h` are
//! refused rather than guessed at, so the effective value is never a
//! surprise.

use std::time::Duration;

/// The longest duration a setting takes: 100 years (of 365.25 days).
/// Anything longer is a typo, and time arithmetic stays far from overflow.
pub const MAX_DURATION: Duration = Duration::from_millis(36_525 * 86_400_000);

/// A duration longer than zero.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(duration)
}

/// Parses `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`, at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("invalid duration `{text}`: missing unit (ms, s, m, h or d)"))?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "invalid duration `{text}`: expected a whole number then a unit, like `10s`"
        ));
    }
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: number too large"))?;
    let unit_millis: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ));
        }
    };
    count
        .checked_mul(unit_millis)
        .map(Duration::from_millis)
        .filter(|duration| *duration <= MAX_DURATION)
        .ok_or_else(|| format!("invalid duration `{text}`: longer than 100 years"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in ["", "10", "s", "1.5h", "1h30m", " 1s", "1 s", "-1s", "10x", "1S"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains(&format!("`{bad}`")), "{bad}: {error}");
        }
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999d").is_err());
    }

    #[test]
    fn at_most_a_hundred_years() {
        assert_eq!(parse_duration("36525d"), Ok(MAX_DURATION));
        let error = parse_duration("36526d").unwrap_err();
        assert!(error.contains("100 years"), "{error}");
        assert!(parse_duration("18446744073709551615ms").is_err());
    }
}
