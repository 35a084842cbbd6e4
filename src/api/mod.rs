//! The HTTP APIs: ingest (for the platform app) and admin (for operators),
//! on separate listeners, with errors in one JSON shape ([`error`]).

mod access;
pub mod admin;
mod config_status;
pub mod error;
mod event_request;
mod extract;
mod idle_timeout;
pub mod ingest;
pub(crate) mod json_body;
pub mod server;

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Settings;
use crate::dispatch::health::Health;
use crate::dispatch::inbox::Inboxes;
use crate::dispatch::limits::Limits;
use crate::dispatch::pauses::Pauses;
use crate::dispatch::stats::Stats;
use crate::metrics::Metrics;
use crate::store::Store;

pub use config_status::{ConfigState, ConfigStatus};

/// What the handlers share: one `Arc`, since axum clones the state for
/// every request and every layer that takes it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds.
pub struct Shared {
    pub store: Store,
    /// Cluster mode's link: pauses shared with every replica, parked
    /// counts, the link's state.
    pub cluster: Option<Arc<crate::cluster::Link>>,
    /// The current config; a reload publishes a new one.
    pub settings: watch::Receiver<Arc<Settings>>,
    /// Where new deliveries are handed to their workers once stored, and
    /// where workers are woken for work in the store.
    pub inboxes: Arc<Inboxes>,
    /// Operators' pauses, as the workers see them.
    pub pauses: Arc<Pauses>,
    /// Each endpoint's adaptive concurrency and circuit.
    pub limits: Arc<Limits>,
    /// Each endpoint's recent attempts.
    pub health: Arc<Health>,
    /// Each endpoint's attempts per minute over the last day.
    pub stats: Arc<Stats>,
    /// When the config was loaded and how the last reload went.
    pub config_status: Arc<ConfigStatus>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// The config in force now; a request keeps using the one it started with.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.borrow().clone()
    }
}
