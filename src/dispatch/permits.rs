//! The permits one attempt holds (SPEC 4, "Guarantees"): one of its
//! endpoint's adaptive limit, then (with a `rate_limit`) its turn
//! ([`super::pacer`]), then one of the global limit
//! (`delivery.concurrency`).
//!
//! They are taken in that order, before the request is sent, so an
//! endpoint at its limit, or waiting for its turn, waits without holding a
//! global permit that a healthy endpoint could use. They are held until the attempt is over:
//! its response snippet read (2 s at most) or its request failed. So a
//! subscriber that answers quickly but trickles its body cannot raise
//! hookd's concurrency past either limit.
//!
//! Endpoints that are not answering cannot fill the global limit, however
//! many there are:
//!
//! - an attempt that has waited [`GRACE`] for its response headers gives
//!   its global permit back (it keeps its endpoint's permit, and its
//!   timeout runs on);
//! - while an endpoint has such an attempt in flight, or its last attempt
//!   got no answer (a timeout, a connection, TLS or DNS failure), it is
//!   *not answering*, and each of its attempts must first take a permit of
//!   a pool a quarter the size of the global limit ([`GlobalLimit`]).
//!
//! So after its first second, a hanging endpoint's attempts hold global
//! permits only for their own first second, and all not-answering
//! endpoints together hold at most a quarter of the global limit: the rest
//! is always there for endpoints that answer.
//!
//! The global limit is one pair of semaphores for the dispatcher's life,
//! resized when a reload changes `delivery.concurrency`: attempts of the
//! old and the new config share it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tower::BoxError;

use super::adaptive_limit::{AdaptiveLimit, Signal};
use super::limits::EndpointLimits;
use super::outcome::is_overload_error;
use super::resizable_semaphore::{Permit, ResizableSemaphore};

/// How long an attempt may wait for its response headers while holding a
/// global permit.
pub const GRACE: Duration = Duration::from_secs(1);

/// `delivery.concurrency`, and the share of it endpoints that are not
/// answering may hold.
#[derive(Debug)]
pub struct GlobalLimit {
    all: Arc<ResizableSemaphore>,
    not_answering: Arc<ResizableSemaphore>,
}

impl GlobalLimit {
    pub fn new(concurrency: usize) -> GlobalLimit {
        GlobalLimit {
            all: ResizableSemaphore::new(concurrency),
            not_answering: ResizableSemaphore::new(not_answering_share(concurrency)),
        }
    }

    /// A reload changed `delivery.concurrency`.
    pub fn resize(&self, concurrency: usize) {
        self.all.resize(concurrency);
        self.not_answering.resize(not_answering_share(concurrency));
    }
}

fn not_answering_share(concurrency: usize) -> usize {
    (concurrency / 4).max(1)
}

/// Whether an endpoint answers, as its recent attempts tell; kept with
/// its adaptive limit across reloads ([`super::limits`]).
#[derive(Debug, Default)]
pub struct Responsiveness {
    /// Attempts in flight past [`GRACE`] without response headers.
    waiting_long: AtomicUsize,
    /// The last attempt to end got no answer at all.
    last_unanswered: AtomicBool,
}

impl Responsiveness {
    pub fn is_answering(&self) -> bool {
        self.waiting_long.load(Ordering::Relaxed) == 0 && !self.last_unanswered.load(Ordering::Relaxed)
    }
}

/// An attempt's permits; [`Permits::finish`] gives them back.
#[derive(Debug)]
pub struct Permits {
    limit: Arc<AdaptiveLimit>,
    responsiveness: Arc<Responsiveness>,
    endpoint: Permit,
    not_answering: Option<Permit>,
    global: Option<Permit>,
}

impl Permits {
    /// Waits for the endpoint's permit, then its turn under its rate
    /// limit, then (if it is not answering) one of the not-answering
    /// share, then a global one.
    pub async fn acquire(limits: &EndpointLimits, global: &GlobalLimit) -> Permits {
        let EndpointLimits {
            adaptive: limit,
            responsiveness,
            pacer,
            ..
        } = limits;
        let endpoint = limit.acquire().await;
        if let Some(pacer) = pacer {
            pacer.wait_turn().await;
        }
        let not_answering = if responsiveness.is_answering() {
            None
        } else {
            Some(global.not_answering.acquire().await)
        };
        let global = Some(global.all.acquire().await);
        Permits {
            limit: limit.clone(),
            responsiveness: responsiveness.clone(),
            endpoint,
            not_answering,
            global,
        }
    }

    /// Waits for `response` (the request's headers), giving the global
    /// permit back if that takes longer than [`GRACE`], and notes whether
    /// the endpoint answered.
    pub async fn await_response<B>(
        &mut self,
        response: impl Future<Output = Result<http::Response<B>, BoxError>>,
    ) -> Result<http::Response<B>, BoxError> {
        let mut response = std::pin::pin!(response);
        let result = tokio::select! {
            result = &mut response => result,
            () = tokio::time::sleep(GRACE) => {
                self.global = None;
                let _waiting = WaitingLong::start(&self.responsiveness);
                response.await
            }
        };
        let unanswered = matches!(&result, Err(error) if is_overload_error(error.as_ref()));
        self.responsiveness.last_unanswered.store(unanswered, Ordering::Relaxed);
        result
    }

    /// Ends the attempt: tells the endpoint's limit what the outcome says
    /// about its capacity, then gives every permit back. (Dropped without
    /// this, as when an attempt is cut off at shutdown, they go back with
    /// nothing learned.)
    pub fn finish(self, signal: Signal) {
        self.limit.record(signal);
        drop(self.global);
        drop(self.not_answering);
        drop(self.endpoint);
    }
}

/// Counts an attempt among those waiting long while it lives, however it
/// ends (an attempt cut off at shutdown included).
struct WaitingLong<'a>(&'a Responsiveness);

impl<'a> WaitingLong<'a> {
    fn start(responsiveness: &'a Responsiveness) -> WaitingLong<'a> {
        responsiveness.waiting_long.fetch_add(1, Ordering::Relaxed);
        WaitingLong(responsiveness)
    }
}

impl Drop for WaitingLong<'_> {
    fn drop(&mut self) {
        self.0.waiting_long.fetch_sub(1, Ordering::Relaxed);
    }
}
