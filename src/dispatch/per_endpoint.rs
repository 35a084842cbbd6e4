//! A map of something kept per endpoint, shared by the endpoint's attempts:
//! looked up under a read lock, created under the write lock only the first
//! time, so the attempts of different endpoints never wait for each other.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// `endpoint`'s entry of `map`, made with `Default` the first time.
pub fn entry_of<T: Default>(map: &RwLock<HashMap<String, Arc<T>>>, endpoint: &str) -> Arc<T> {
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(endpoint) {
        return found.clone();
    }
    map.write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(endpoint.to_owned())
        .or_default()
        .clone()
}
