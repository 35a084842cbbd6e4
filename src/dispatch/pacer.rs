//! An endpoint's `rate_limit` at work (SPEC 4, "Rate limit"): its requests
//! from this hookd at least 1/N second (or minute) apart.
//!
//! A token bucket that holds one token, from `governor`: a request takes the
//! token, the next one comes an interval later, so an endpoint that was
//! idle gets no burst. A delivery waits for its token after its endpoint's
//! permit and before a global one ([`super::permits`]), so the wait is not
//! an attempt and a rate-limited endpoint with a backlog holds no permit
//! another endpoint could use. Manual retries and test pings are deliveries
//! like the others and wait their turn too.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;

#[derive(Debug)]
pub struct Pacer {
    limit: RateLimit,
    bucket: DefaultDirectRateLimiter,
}

impl Pacer {
    pub fn new(limit: RateLimit) -> Pacer {
        let quota = Quota::with_period(limit.interval())
            .expect("a rate limit's interval is at least a microsecond")
            .allow_burst(NonZeroU32::MIN);
        Pacer {
            limit,
            bucket: RateLimiter::direct(quota),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Waits until the endpoint may get its next request.
    pub async fn wait_turn(&self) {
        self.bucket.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn turns_are_an_interval_apart_without_a_burst() {
        let pacer = Pacer::new(RateLimit::parse("20/s").unwrap());
        let started = Instant::now();
        for _ in 0..5 {
            pacer.wait_turn().await;
        }
        // The first turn is at once, each of the four others 50 ms later.
        assert!(
            started.elapsed() >= Duration::from_millis(195),
            "{:?}",
            started.elapsed()
        );
    }
}
