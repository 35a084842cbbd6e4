//! Brings the store back after a failed write, without a restart.
//!
//! RocksDB refuses every write after one fails (a full disk, an I/O
//! error) until the database is reopened. Meanwhile ingest answers 503
//! `storage_unavailable` and `/readyz` is not ready. This task notices the
//! failure and reopens the store each second until it takes writes again:
//! once space returns, hookd accepts events again by itself.

use std::time::Duration;

use crate::store::Store;

/// How often the store's state is checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Runs until aborted.
pub async fn recover_forever(store: Store) {
    let mut failing = false;
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if !store.needs_recovery() {
            continue;
        }
        let reopening = store.clone();
        match tokio::task::spawn_blocking(move || reopening.recover()).await {
            Ok(Ok(())) => {
                tracing::info!("reopened the store after a failed write; it takes writes again");
                failing = false;
            }
            Ok(Err(error)) => {
                // Once per outage, not every second.
                if !failing {
                    tracing::warn!(%error, "cannot reopen the store yet; trying again every second");
                }
                failing = true;
            }
            Err(error) => tracing::error!(%error, "the store recovery task failed"),
        }
    }
}
