//! Every endpoint's limits (its adaptive concurrency and how responsive it
//! is), kept across config reloads: a reload that keeps an endpoint keeps
//! what its limit has learned.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::adaptive_limit::AdaptiveLimit;
use super::permits::Responsiveness;

/// What limits one endpoint's attempts.
#[derive(Debug, Clone)]
pub struct EndpointLimits {
    pub adaptive: Arc<AdaptiveLimit>,
    pub responsiveness: Arc<Responsiveness>,
}

#[derive(Debug, Default)]
pub struct Limits {
    endpoints: RwLock<HashMap<String, EndpointLimits>>,
}

impl Limits {
    /// The endpoint's limits, with the adaptive limit's upper bound set to
    /// `max`.
    pub(super) fn of(&self, endpoint: &str, max: usize) -> EndpointLimits {
        let mut endpoints = self.endpoints.write().unwrap_or_else(PoisonError::into_inner);
        let limits = endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| EndpointLimits {
                adaptive: AdaptiveLimit::new(max),
                responsiveness: Arc::default(),
            })
            .clone();
        limits.adaptive.set_max(max);
        limits
    }

    /// The endpoint's current adaptive concurrency, if it has had a worker.
    pub fn concurrency(&self, endpoint: &str) -> Option<usize> {
        self.endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(endpoint)
            .map(|limits| limits.adaptive.current())
    }
}
