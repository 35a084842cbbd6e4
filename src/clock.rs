//! Wall-clock time as the store keeps it: milliseconds since the Unix
//! epoch.

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_millis(moment: OffsetDateTime) -> u64 {
    u64::try_from(moment.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    unix_millis(OffsetDateTime::now_utc())
}

/// `delay` after `at_ms`, saturating: never wraps around to the past.
pub fn after(at_ms: u64, delay: std::time::Duration) -> u64 {
    at_ms.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
}

/// A stored millisecond time as a date, for answers and logs.
pub fn from_millis(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A stored millisecond time as RFC 3339 in UTC, with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    crate::event::format_received_at(from_millis(ms))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn adding_time_saturates() {
        assert_eq!(after(1_000, Duration::from_millis(500)), 1_500);
        assert_eq!(after(u64::MAX - 1, Duration::from_secs(10)), u64::MAX);
        assert_eq!(after(1, Duration::MAX), u64::MAX);
    }

    #[test]
    fn far_times_print_without_panicking() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert!(rfc3339(u64::MAX).ends_with('Z'));
    }
}
