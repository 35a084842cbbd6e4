//! The permits one attempt holds (SPEC 4, "Guarantees"): one of its
//! endpoint's adaptive limit, then one of the global limit
//! (`delivery.concurrency`).
//!
//! They are taken in that order, before the request is sent, so an
//! endpoint at its limit waits without holding a global permit that a
//! healthy endpoint could use. They are held until the attempt is over:
//! its response snippet read (2 s at most) or its request failed. So a
//! subscriber that answers quickly but trickles its body cannot raise
//! hookd's concurrency past either limit.
//!
//! The global limit is one semaphore for the dispatcher's life, resized
//! when a reload changes `delivery.concurrency`: attempts of the old and
//! the new config share it.

use std::sync::Arc;

use super::adaptive_limit::{AdaptiveLimit, Signal};
use super::resizable_semaphore::{Permit, ResizableSemaphore};

/// An attempt's permits; [`Permits::finish`] gives them back.
#[derive(Debug)]
pub struct Permits {
    limit: Arc<AdaptiveLimit>,
    endpoint: Permit,
    global: Permit,
}

impl Permits {
    /// Waits for the endpoint's permit, then a global one.
    pub async fn acquire(limit: &Arc<AdaptiveLimit>, global: &Arc<ResizableSemaphore>) -> Permits {
        let endpoint = limit.acquire().await;
        let global = global.acquire().await;
        Permits {
            limit: limit.clone(),
            endpoint,
            global,
        }
    }

    /// Ends the attempt: tells the endpoint's limit what the outcome says
    /// about its capacity, then gives both permits back. (Dropped without
    /// this, as when an attempt is cut off at shutdown, they go back with
    /// nothing learned.)
    pub fn finish(self, signal: Signal) {
        self.limit.record(signal);
        drop(self.global);
        drop(self.endpoint);
    }
}
