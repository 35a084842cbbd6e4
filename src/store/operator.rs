//! Operator actions on the store: pausing endpoints, retrying failed
//! deliveries by hand (a [`super::lifecycle`] change). Each is one atomic
//! write.

use rocksdb::WriteBatch;

use super::lifecycle::{Applied, Change, Expect, Transition};
use super::{Durability, Error, Store, cf, with_prefix};

/// Keys in the default column family that mark an operator's pause.
const PAUSED_PREFIX: &str = "paused/";

/// Why a manual retry was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no delivery {0}")]
    NotFound(String),
    #[error("delivery {0} is not failed")]
    NotFailed(String),
    #[error(transparent)]
    Store(#[from] Error),
}

impl Store {
    /// Records an operator's pause (or its end); it survives restarts.
    pub fn set_endpoint_paused(&self, endpoint: &str, paused: bool) -> Result<(), Error> {
        let db = self.db()?;
        let key = format!("{PAUSED_PREFIX}{endpoint}");
        let mut batch = WriteBatch::default();
        if paused {
            batch.put(key, []);
        } else {
            batch.delete(key);
        }
        self.write(&db, batch, Durability::Synced)
    }

    /// The endpoints an operator has paused.
    pub fn paused_endpoints(&self) -> Result<Vec<String>, Error> {
        let db = self.db()?;
        let mut paused = Vec::new();
        for entry in with_prefix(&db, rocksdb::DEFAULT_COLUMN_FAMILY_NAME, PAUSED_PREFIX.as_bytes()) {
            let (key, _) = entry?;
            let key = String::from_utf8_lossy(&key);
            paused.extend(key.strip_prefix(PAUSED_PREFIX).map(str::to_owned));
        }
        Ok(paused)
    }

    /// The failed deliveries of `endpoint` that failed at or after
    /// `since_ms`, oldest first.
    pub fn failed_since(&self, endpoint: &str, since_ms: u64) -> Result<Vec<String>, Error> {
        let db = self.db()?;
        let mut failed = Vec::new();
        for entry in with_prefix(&db, cf::FAILED, &super::keys::endpoint_prefix(endpoint)) {
            let (key, _) = entry?;
            if let Some((at, id)) = super::keys::split_endpoint_timed(&key)
                && at >= since_ms
            {
                failed.push(id.to_owned());
            }
        }
        Ok(failed)
    }

    /// Makes a failed delivery pending again, due at `now_ms`: one extra
    /// attempt, numbered after the last.
    pub fn retry_delivery(&self, id: &str, now_ms: u64) -> Result<(), RetryError> {
        match self.transition(id, Expect::Failed, Change::ManualRetry, now_ms)? {
            Applied::Done { .. } => Ok(()),
            Applied::Stale => Err(RetryError::NotFailed(id.to_owned())),
            Applied::Missing => Err(RetryError::NotFound(id.to_owned())),
        }
    }

    /// Makes each of `ids` that is failed pending again, due at `now_ms`,
    /// in synced writes of many at a time; returns how many were. One that
    /// is not failed (retried meanwhile) or gone is passed over.
    pub fn retry_deliveries(&self, ids: Vec<String>, now_ms: u64) -> Result<usize, Error> {
        let transitions = ids.into_iter().map(|id| Transition {
            id,
            expect: Expect::Failed,
            change: Change::ManualRetry,
            now_ms,
        });
        let mut retried = 0;
        for applied in self.transition_all(transitions.collect()) {
            retried += usize::from(applied?.is_done());
        }
        Ok(retried)
    }
}
