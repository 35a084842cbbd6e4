//! The subscriber the end-to-end figures are measured at: answers 200 at
//! once and notes when each event id arrived.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use bytes::Bytes;
use http::StatusCode;

#[derive(Clone, Default)]
pub struct Arrivals {
    /// When each event id first arrived.
    first_at: Arc<Mutex<HashMap<String, Instant>>>,
    /// How many requests arrived in all, every copy counted.
    requests: Arc<AtomicU64>,
}

impl Arrivals {
    /// How many requests have arrived, every copy counted.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// How many distinct ids have arrived.
    pub fn count(&self) -> usize {
        self.first_at.lock().expect("arrivals lock").len()
    }

    /// When `id` arrived, if it did.
    pub fn at(&self, id: &str) -> Option<Instant> {
        self.first_at.lock().expect("arrivals lock").get(id).copied()
    }

    /// Waits until every id in `ids` has arrived, or `patience` is over;
    /// returns the arrival times found.
    pub async fn wait_for(&self, ids: &[&str], patience: Duration) -> Vec<Option<Instant>> {
        let deadline = Instant::now() + patience;
        loop {
            let arrived: Vec<Option<Instant>> = {
                let map = self.first_at.lock().expect("arrivals lock");
                ids.iter().map(|id| map.get(*id).copied()).collect()
            };
            if arrived.iter().all(Option::is_some) || Instant::now() >= deadline {
                return arrived;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the receiver on `port`.
pub async fn start(port: u16) -> anyhow::Result<Arrivals> {
    async fn arrive(State(arrivals): State<Arrivals>, body: Bytes) -> StatusCode {
        let at = Instant::now();
        arrivals.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(id) = value["id"].as_str()
        {
            arrivals
                .first_at
                .lock()
                .expect("arrivals lock")
                .entry(id.to_owned())
                .or_insert(at);
        }
        StatusCode::OK
    }
    let arrivals = Arrivals::default();
    let router = Router::new().fallback(arrive).with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(arrivals)
}
