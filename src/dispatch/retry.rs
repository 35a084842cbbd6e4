//! The retry decision: after a failed attempt, when is the next one, or is
//! the delivery failed for good. Pure functions, so the schedule is tested
//! without a clock; the scheduler applies the answer.
//!
//! After failed attempt `n`, attempt `n + 1` is due `retry_schedule[n - 1]`
//! later, spread by up to `±retry_jitter` of itself. A `429` or `503` with
//! `Retry-After` waits the longer of the two delays, but never more than
//! twice the scheduled one. With a schedule of five delays, the sixth
//! failure is final. A manual retry is numbered after the last attempt, so
//! its failure is final too.

use std::time::{Duration, SystemTime};

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterFailure {
    /// Try again this long after the failure.
    RetryIn(Duration),
    /// No attempts left: the delivery is `failed`.
    GiveUp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    /// A fraction in `[0, 1)`.
    pub jitter: f64,
}

impl RetryPolicy {
    /// Decides after failed attempt `attempt` (1-based). `spread` is a
    /// random number in `[-1, 1]` choosing where in the jitter window the
    /// delay lands; `retry_after` is the server's wish, already limited to
    /// `429` and `503` answers by the caller.
    pub fn after_failure(&self, attempt: u32, retry_after: Option<Duration>, spread: f64) -> AfterFailure {
        let Some(&scheduled) = usize::try_from(attempt)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|index| self.schedule.get(index))
        else {
            return AfterFailure::GiveUp;
        };
        let factor = 1.0 + self.jitter * spread.clamp(-1.0, 1.0);
        let jittered = scheduled.mul_f64(factor.max(0.0));
        let delay = match retry_after {
            Some(wish) => jittered.max(wish).min(scheduled.saturating_mul(2)),
            None => jittered,
        };
        AfterFailure::RetryIn(delay)
    }

    /// Attempts a delivery gets before it fails: the first and one per
    /// scheduled delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.schedule.len()).unwrap_or(u32::MAX).saturating_add(1)
    }
}

/// Parses `Retry-After`: delay seconds, or an HTTP date (a past date means
/// no wait). Anything else is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(60 * m)
    }

    fn default_policy(jitter: f64) -> RetryPolicy {
        RetryPolicy {
            schedule: vec![minutes(1), minutes(5), minutes(30), minutes(120), minutes(1440)],
            jitter,
        }
    }

    #[test]
    fn the_default_schedule_gives_six_attempts() {
        let policy = default_policy(0.0);
        let delays: Vec<_> = (1..=6).map(|n| policy.after_failure(n, None, 0.7)).collect();
        assert_eq!(
            delays,
            vec![
                AfterFailure::RetryIn(minutes(1)),
                AfterFailure::RetryIn(minutes(5)),
                AfterFailure::RetryIn(minutes(30)),
                AfterFailure::RetryIn(minutes(120)),
                AfterFailure::RetryIn(minutes(1440)),
                AfterFailure::GiveUp,
            ]
        );
        assert_eq!(policy.max_attempts(), 6);
        assert_eq!(
            policy.after_failure(7, None, 0.0),
            AfterFailure::GiveUp,
            "a failed manual retry"
        );
        assert_eq!(policy.after_failure(0, None, 0.0), AfterFailure::GiveUp);
    }

    #[test]
    fn jitter_spreads_both_ways() {
        let policy = default_policy(0.1);
        assert_eq!(
            policy.after_failure(1, None, -1.0),
            AfterFailure::RetryIn(Duration::from_secs(54))
        );
        assert_eq!(
            policy.after_failure(1, None, 1.0),
            AfterFailure::RetryIn(Duration::from_secs(66))
        );
    }

    #[test]
    fn retry_after_waits_longer_but_at_most_twice_the_schedule() {
        let policy = default_policy(0.0);
        let wait = |seconds| policy.after_failure(1, Some(Duration::from_secs(seconds)), 0.0);
        assert_eq!(
            wait(30),
            AfterFailure::RetryIn(minutes(1)),
            "shorter wish: the schedule wins"
        );
        assert_eq!(wait(90), AfterFailure::RetryIn(Duration::from_secs(90)));
        assert_eq!(
            wait(3600),
            AfterFailure::RetryIn(minutes(2)),
            "capped at twice the schedule"
        );
        assert_eq!(
            policy.after_failure(6, Some(Duration::from_secs(1)), 0.0),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for junk in ["", "-5", "1.5", "soon", "99999999999999999999999"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk}");
        }
    }

    proptest! {
        #[test]
        fn delays_stay_within_jitter_and_cap(attempt in 1u32..10, spread in -1.0f64..=1.0, wish in proptest::option::of(0u64..100_000)) {
            let policy = default_policy(0.1);
            let wish = wish.map(Duration::from_secs);
            match policy.after_failure(attempt, wish, spread) {
                AfterFailure::GiveUp => prop_assert!(attempt > 5),
                AfterFailure::RetryIn(delay) => {
                    let scheduled = policy.schedule[attempt as usize - 1];
                    prop_assert!(delay >= scheduled.mul_f64(0.9) - Duration::from_millis(1));
                    prop_assert!(delay <= scheduled * 2);
                    if wish.is_none() {
                        prop_assert!(delay <= scheduled.mul_f64(1.1) + Duration::from_millis(1));
                    }
                }
            }
        }

        #[test]
        fn retry_after_never_panics(text in ".*") {
            let _ = parse_retry_after(&text, SystemTime::now());
        }
    }
}
