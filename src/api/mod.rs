//! The HTTP APIs: ingest (for the platform app) and admin (for operators),
//! on separate listeners, with errors in one JSON shape ([`error`]).

pub mod admin;
pub mod error;
mod event_request;
pub mod ingest;
mod json_body;

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Settings;
use crate::dispatch::wakeup::Wakeups;
use crate::store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The current config; a reload publishes a new one.
    pub settings: watch::Receiver<Arc<Settings>>,
    /// Rung after new deliveries are stored, so they go out at once.
    pub wakeups: Arc<Wakeups>,
}

impl AppState {
    /// The config in force now; a request keeps using the one it started with.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.borrow().clone()
    }
}
