//! Every endpoint's limits (its adaptive concurrency, how responsive it
//! is, its rate limit, and its circuit), kept across config reloads: a reload that
//! keeps an endpoint keeps what its limit has learned, and its place in
//! its rate limit while that is unchanged.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::adaptive_limit::AdaptiveLimit;
use super::breaker::Breakers;
use super::pacer::Pacer;
use super::permits::Responsiveness;
use crate::config::{BreakerSettings, RateLimit};
use crate::store::OpenCircuit;

/// What limits one endpoint's attempts.
#[derive(Debug, Clone)]
pub struct EndpointLimits {
    pub adaptive: Arc<AdaptiveLimit>,
    pub responsiveness: Arc<Responsiveness>,
    /// Its `rate_limit`, if it has one.
    pub pacer: Option<Arc<Pacer>>,
}

#[derive(Debug)]
pub struct Limits {
    endpoints: RwLock<HashMap<String, EndpointLimits>>,
    breakers: Arc<Breakers>,
}

impl Limits {
    /// Starts with the open circuits the store kept.
    pub fn restore(open: impl IntoIterator<Item = (String, OpenCircuit)>, settings: BreakerSettings) -> Limits {
        Limits {
            endpoints: RwLock::default(),
            breakers: Arc::new(Breakers::restore(open, settings)),
        }
    }

    /// Every endpoint's circuit.
    pub fn breakers(&self) -> &Arc<Breakers> {
        &self.breakers
    }

    /// The endpoint's limits, with the adaptive limit's upper bound set to
    /// `max` and its rate limit to `rate_limit`.
    pub(super) fn of(&self, endpoint: &str, max: usize, rate_limit: Option<RateLimit>) -> EndpointLimits {
        let mut endpoints = self.endpoints.write().unwrap_or_else(PoisonError::into_inner);
        let limits = endpoints.entry(endpoint.to_owned()).or_insert_with(|| EndpointLimits {
            adaptive: AdaptiveLimit::new(max),
            responsiveness: Arc::default(),
            pacer: None,
        });
        limits.adaptive.set_max(max);
        if limits.pacer.as_ref().map(|pacer| pacer.limit()) != rate_limit {
            limits.pacer = rate_limit.map(|limit| Arc::new(Pacer::new(limit)));
        }
        limits.clone()
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
