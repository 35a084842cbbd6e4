//! Each endpoint's adaptive concurrency limit, as a tower layer.
//!
//! The limit starts at `endpoint_concurrency`, halves (down to 1) when an
//! attempt times out, cannot connect, or gets a `429` or `5xx`, and grows by
//! one after each success, up to `endpoint_concurrency` again (additive
//! increase, multiplicative decrease). A hanging endpoint therefore holds
//! one or two of the global permits, not sixteen, and many hanging
//! endpoints cannot fill the global limit.
//!
//! Permits come from a semaphore. Shrinking forgets free permits at once;
//! permits in use when the limit shrinks are owed, and are forgotten
//! instead of returned when their attempts end.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;
use tower::{BoxError, Layer, Service};

/// The shared state of one endpoint's limit.
#[derive(Debug)]
pub struct AdaptiveLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<LimitState>,
}

#[derive(Debug)]
struct LimitState {
    limit: usize,
    max: usize,
    /// Permits in use that must be forgotten when they come back.
    owed: usize,
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
            semaphore: Arc::new(Semaphore::new(max)),
            state: Mutex::new(LimitState {
                limit: max,
                max,
                owed: 0,
            }),
        })
    }

    /// The current limit.
    pub fn current(&self) -> usize {
        self.state.lock().expect("limit lock").limit
    }

    pub fn record(&self, signal: Signal) {
        let mut state = self.state.lock().expect("limit lock");
        match signal {
            Signal::Success if state.limit < state.max => {
                state.limit += 1;
                if state.owed > 0 {
                    state.owed -= 1;
                } else {
                    self.semaphore.add_permits(1);
                }
            }
            Signal::Overloaded if state.limit > 1 => {
                let target = (state.limit / 2).max(1);
                let surplus = state.limit - target;
                state.limit = target;
                let forgotten = self.semaphore.forget_permits(surplus);
                state.owed += surplus - forgotten;
            }
            _ => {}
        }
    }

    /// Changes the upper bound (a config reload); the limit follows at once.
    pub fn set_max(&self, max: usize) {
        let max = max.max(1);
        let mut state = self.state.lock().expect("limit lock");
        state.max = max;
        if state.limit > max {
            let surplus = state.limit - max;
            state.limit = max;
            let forgotten = self.semaphore.forget_permits(surplus);
            state.owed += surplus - forgotten;
        }
    }

    /// Returns a permit, or forgets it if the limit shrank meanwhile.
    fn release(&self, permit: OwnedSemaphorePermit) {
        let mut state = self.state.lock().expect("limit lock");
        if state.owed > 0 {
            state.owed -= 1;
            permit.forget();
        } else {
            drop(permit);
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

#[derive(Clone)]
pub struct AdaptiveLimitLayer {
    limit: Arc<AdaptiveLimit>,
}

impl AdaptiveLimitLayer {
    pub fn new(limit: Arc<AdaptiveLimit>) -> AdaptiveLimitLayer {
        AdaptiveLimitLayer { limit }
    }
}

impl<S> Layer<S> for AdaptiveLimitLayer {
    type Service = AdaptiveLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdaptiveLimitService {
            inner,
            semaphore: PollSemaphore::new(self.limit.semaphore.clone()),
            limit: self.limit.clone(),
            permit: None,
        }
    }
}

/// Waits for a permit in `poll_ready`, holds it until the response (or
/// error) arrives, and feeds the outcome back into the limit.
pub struct AdaptiveLimitService<S> {
    inner: S,
    semaphore: PollSemaphore,
    limit: Arc<AdaptiveLimit>,
    permit: Option<OwnedSemaphorePermit>,
}

impl<S: Clone> Clone for AdaptiveLimitService<S> {
    fn clone(&self) -> Self {
        // A clone waits for its own permit.
        AdaptiveLimitService {
            inner: self.inner.clone(),
            semaphore: self.semaphore.clone(),
            limit: self.limit.clone(),
            permit: None,
        }
    }
}

impl<S, Request, B> Service<Request> for AdaptiveLimitService<S>
where
    S: Service<Request, Response = http::Response<B>, Error = BoxError>,
    S::Future: Send + 'static,
    B: 'static,
{
    type Response = http::Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.permit.is_none() {
            let permit = ready!(self.semaphore.poll_acquire(cx)).expect("the limit's semaphore is never closed");
            self.permit = Some(permit);
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let permit = self.permit.take().expect("poll_ready before call");
        let limit = self.limit.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            limit.record(signal_of(&result));
            limit.release(permit);
            result
        })
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
        assert_eq!(limit.semaphore.available_permits(), 16);
    }

    #[test]
    fn permits_in_use_are_forgotten_when_the_limit_shrinks() {
        let limit = AdaptiveLimit::new(4);
        let held: Vec<_> = (0..4)
            .map(|_| limit.semaphore.clone().try_acquire_owned().unwrap())
            .collect();
        limit.record(Signal::Overloaded);
        assert_eq!(limit.current(), 2);
        for permit in held {
            limit.release(permit);
        }
        assert_eq!(
            limit.semaphore.available_permits(),
            2,
            "two owed permits were forgotten"
        );
        limit.set_max(1);
        assert_eq!((limit.current(), limit.semaphore.available_permits()), (1, 1));
    }
}
