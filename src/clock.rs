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

/// A stored millisecond time as a date, for answers and logs.
pub fn from_millis(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A stored millisecond time as RFC 3339 in UTC, with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    crate::event::format_received_at(from_millis(ms))
}
