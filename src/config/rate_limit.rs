//! An endpoint's `rate_limit`, as written: `"N/s"` or `"N/m"` (SPEC 2, 4).

use std::fmt;
use std::time::Duration;

/// The most requests per second or minute a rate limit may allow: past a
/// million a second, the limit is no limit.
const MAX_COUNT: u32 = 1_000_000;

/// At most `count` requests per `per`, evenly spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Per,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
}

impl RateLimit {
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let malformed = || format!("`{text}` is not a rate limit (write \"50/s\" or \"600/m\")");
        let (count, unit) = text.trim().split_once('/').ok_or_else(malformed)?;
        let per = match unit.trim() {
            "s" => Per::Second,
            "m" => Per::Minute,
            _ => return Err(malformed()),
        };
        let count: u64 = count.trim().parse().map_err(|_| malformed())?;
        if count == 0 {
            return Err(format!(
                "`{text}` allows no request (to stop sending, set `enabled = false` or pause the endpoint)"
            ));
        }
        let count = u32::try_from(count)
            .ok()
            .filter(|count| *count <= MAX_COUNT)
            .ok_or_else(|| format!("`{text}` is over {MAX_COUNT} requests per unit"))?;
        Ok(RateLimit { count, per })
    }

    /// The least time between two requests.
    pub fn interval(&self) -> Duration {
        let unit = match self.per {
            Per::Second => Duration::from_secs(1),
            Per::Minute => Duration::from_secs(60),
        };
        unit / self.count
    }
}

/// As written in the config: `50/s`.
impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per {
            Per::Second => "s",
            Per::Minute => "m",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_and_per_minute() {
        let limit = RateLimit::parse("50/s").unwrap();
        assert_eq!(limit.interval(), Duration::from_millis(20));
        assert_eq!(limit.to_string(), "50/s");
        let limit = RateLimit::parse(" 600 / m ").unwrap();
        assert_eq!(limit.interval(), Duration::from_millis(100));
        assert_eq!(limit.to_string(), "600/m");
        assert_eq!(
            RateLimit::parse("1000000/s").unwrap().interval(),
            Duration::from_micros(1)
        );
    }

    #[test]
    fn malformed_zero_and_huge_limits_are_refused() {
        for bad in ["50", "50/h", "/s", "x/s", "-1/s", "1.5/s", "50/", ""] {
            assert!(RateLimit::parse(bad).unwrap_err().contains("not a rate limit"), "{bad}");
        }
        assert!(RateLimit::parse("0/s").unwrap_err().contains("allows no request"));
        assert!(RateLimit::parse("1000001/s").unwrap_err().contains("over 1000000"));
        assert!(RateLimit::parse("99999999999/m").unwrap_err().contains("over 1000000"));
    }
}
