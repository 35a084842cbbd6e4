//! Each endpoint's adaptive concurrency limit.
//!
//! The limit starts at `endpoint_concurrency`, halves (down to 1) when an
//! attempt times out, cannot connect, or gets a `429` or `5xx`, and grows by
//! one after each success, up to `endpoint_concurrency` again (additive
//! increase, multiplicative decrease). A hanging endpoint therefore soon
//! holds one or two permits, not sixteen.
//!
//! The permits are a [`ResizableSemaphore`] whose size is the limit. An
//! attempt holds one ([`AdaptiveLimit::acquire`]) from before its request
//! is sent until its response snippet is read, then reports what the
//! outcome says about the endpoint ([`AdaptiveLimit::record`]).

use std::sync::{Arc, Mutex, PoisonError};

use http::StatusCode;
use tower::BoxError;

use super::resizable_semaphore::{Permit, ResizableSemaphore};

/// The shared state of one endpoint's limit.
#[derive(Debug)]
pub struct AdaptiveLimit {
    permits: Arc<ResizableSemaphore>,
    /// The upper bound, `endpoint_concurrency`.
    max: Mutex<usize>,
}

/// What an attempt's outcome says about the endpoint's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Success,
    Overloaded,
    Neutral,
}

impl AdaptiveLimit {
    pub fn new(max: usize) -> Arc<AdaptiveLimit> {
        let max = max.max(1);
        Arc::new(AdaptiveLimit {
            permits: ResizableSemaphore::new(max),
            max: Mutex::new(max),
        })
    }

    /// The current limit.
    pub fn current(&self) -> usize {
        self.permits.size()
    }

    /// Waits for one of the endpoint's permits.
    pub async fn acquire(&self) -> Permit {
        self.permits.acquire().await
    }

    pub fn record(&self, signal: Signal) {
        let max = self.max.lock().unwrap_or_else(PoisonError::into_inner);
        let limit = self.permits.size();
        match signal {
            Signal::Success if limit < *max => self.permits.resize(limit + 1),
            Signal::Overloaded if limit > 1 => self.permits.resize((limit / 2).max(1)),
            _ => {}
        }
    }

    /// Changes the upper bound (a config reload); the limit follows at once
    /// if it was above it.
    pub fn set_max(&self, max: usize) {
        let max = max.max(1);
        let mut bound = self.max.lock().unwrap_or_else(PoisonError::into_inner);
        *bound = max;
        if self.permits.size() > max {
            self.permits.resize(max);
        }
    }
}

/// How a response or error moves the limit: overload on `429` and `5xx`, on
/// timeouts and on failures to connect; growth on `2xx`.
pub fn signal_of<B>(result: &Result<http::Response<B>, BoxError>) -> Signal {
    match result {
        Ok(response) if response.status().is_success() => Signal::Success,
        Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS || response.status().is_server_error() => {
            Signal::Overloaded
        }
        Ok(_) => Signal::Neutral,
        Err(error) if super::outcome::is_overload_error(error.as_ref()) => Signal::Overloaded,
        Err(_) => Signal::Neutral,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_overload_and_grows_by_one() {
        let limit = AdaptiveLimit::new(16);
        limit.record(Signal::Overloaded);
        assert_eq!(limit.current(), 8);
        for expected in [4, 2, 1, 1] {
            limit.record(Signal::Overloaded);
            assert_eq!(limit.current(), expected);
        }
        limit.record(Signal::Neutral);
        assert_eq!(limit.current(), 1);
        limit.record(Signal::Success);
        assert_eq!(limit.current(), 2);
        for _ in 0..100 {
            limit.record(Signal::Success);
        }
        assert_eq!(limit.current(), 16, "never above the configured bound");
        assert_eq!(limit.permits.available(), 16);
    }

    #[tokio::test]
    async fn permits_in_use_are_forgotten_when_the_limit_shrinks() {
        let limit = AdaptiveLimit::new(4);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(limit.acquire().await);
        }
        limit.record(Signal::Overloaded);
        assert_eq!(limit.current(), 2);
        drop(held);
        assert_eq!(limit.permits.available(), 2, "two owed permits were forgotten");
        limit.set_max(1);
        assert_eq!((limit.current(), limit.permits.available()), (1, 1));
    }
}
