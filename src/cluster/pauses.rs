//! Operators' pauses, shared by every replica (SPEC 11): a key-value
//! bucket `HOOKD_PAUSES` holds one key per endpoint ever paused, valued
//! `paused` or `resumed` (a resume is written, never a deletion, so a
//! replica that was away can tell a resume from a pause it never heard
//! of). A pause or resume asked of any replica is written there first,
//! then applied locally; every replica follows the bucket and applies what
//! others wrote within a moment, to its store (so it survives restarts)
//! and its workers. A replica starting in cluster mode for the first time
//! hands the bucket the pauses its store has and the bucket does not.

use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::dispatch::inbox::Inboxes;
use crate::dispatch::pauses::Pauses;
use crate::store::Store;

pub const BUCKET: &str = "HOOKD_PAUSES";
pub const PAUSED: &[u8] = b"paused";
pub const RESUMED: &[u8] = b"resumed";

/// The bucket, created if missing.
pub async fn ensure_bucket(jetstream: &jetstream::Context, replicas: usize) -> Result<kv::Store, String> {
    match jetstream.get_key_value(BUCKET).await {
        Ok(bucket) => Ok(bucket),
        Err(_) => jetstream
            .create_key_value(kv::Config {
                bucket: BUCKET.to_owned(),
                description: "hookd: operators' pauses of endpoints (SPEC 11)".to_owned(),
                history: 1,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|error| error.to_string()),
    }
}

/// What following the bucket changes locally.
pub struct Follower {
    pub store: Store,
    pub pauses: Arc<Pauses>,
    pub inboxes: Arc<Inboxes>,
}

impl Follower {
    /// Brings this replica in line with `bucket`, and applies every change
    /// after, until `stopped`.
    pub async fn follow(self, bucket: kv::Store, mut stopped: watch::Receiver<bool>) {
        let mut changes = match bucket.watch_all().await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::error!(%error, "cannot follow the shared pauses; pauses stay this replica's own");
                return;
            }
        };
        if let Err(error) = self.catch_up(&bucket).await {
            tracing::warn!(%error, "reading the shared pauses failed; following changes from now");
        }
        loop {
            let change = tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return,
                change = changes.next() => change,
            };
            match change {
                Some(Ok(entry)) if entry.operation == kv::Operation::Put => {
                    self.apply(&entry.key, entry.value.as_ref() == PAUSED).await;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => tracing::debug!(%error, "following the shared pauses"),
                None => return,
            }
        }
    }

    /// Applies every pause the bucket holds; hands it the store's pauses
    /// it does not know.
    async fn catch_up(&self, bucket: &kv::Store) -> Result<(), String> {
        let mut keys = bucket.keys().await.map_err(|error| error.to_string())?;
        let mut known = Vec::new();
        while let Some(key) = keys.next().await {
            known.push(key.map_err(|error| error.to_string())?);
        }
        for key in &known {
            if let Some(value) = bucket.get(key).await.map_err(|error| error.to_string())? {
                self.apply(key, value.as_ref() == PAUSED).await;
            }
        }
        let store = self.store.clone();
        let local = tokio::task::spawn_blocking(move || store.paused_endpoints())
            .await
            .expect("the read does not panic")
            .map_err(|error| error.to_string())?;
        for endpoint in local.iter().filter(|endpoint| !known.contains(endpoint)) {
            bucket
                .put(endpoint, Bytes::from_static(PAUSED))
                .await
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// Pauses or resumes `endpoint` here, as the bucket says.
    async fn apply(&self, endpoint: &str, paused: bool) {
        let turn = self.pauses.turn().await;
        if self.pauses.is_paused(endpoint) == paused {
            return;
        }
        let store = self.store.clone();
        let id = endpoint.to_owned();
        let stored = tokio::task::spawn_blocking(move || store.set_endpoint_paused(&id, paused))
            .await
            .expect("the write does not panic");
        if let Err(error) = stored {
            tracing::warn!(endpoint, %error, "cannot store a shared pause; it holds until restart");
        }
        self.pauses.set(endpoint, paused);
        drop(turn);
        if !paused {
            self.inboxes.wake(endpoint, 0);
        }
        tracing::info!(endpoint, paused, "applied a shared pause");
    }
}
