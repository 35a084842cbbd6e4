//! Attempts as the store keeps them: inside their delivery's record
//! (schema 2), listed in order for the admin API. They are written by
//! [`super::lifecycle`], with the delivery's new state and the move of its
//! index entry in one write; until that write, the delivery's `due` entry
//! stays where it was, so an attempt cut short by a crash is simply due
//! again, under the same number.
//!
//! A store of schema 1 kept each attempt as an entry of its own in the
//! `attempts` column family; [`apart`] reads those until the delivery's
//! next change moves them into its record.

use rocksdb::DB;
use serde::{Deserialize, Serialize};

use super::keys;
use super::{Error, Store, cf, with_prefix};

/// One attempt as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based.
    pub n: u32,
    /// When it was sent, ms since the epoch.
    pub at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// `None` on success; otherwise one of the SPEC's error kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    pub latency_ms: u64,
    /// The first 1 KiB of the response body, lossily as UTF-8.
    #[serde(default)]
    pub response_snippet: String,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Pending, due again at this time (ms).
    RetryAt(u64),
    Succeeded,
    Failed,
}

impl Store {
    /// Every recorded attempt of a delivery, in order (none if there is no
    /// such delivery).
    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, Error> {
        match self.delivery(id)? {
            Some(record) if record.attempts_apart => apart(&*self.db()?, id),
            Some(record) => Ok(record.attempts),
            None => Ok(Vec::new()),
        }
    }
}

/// The attempts of delivery `id` kept apart from its record, as schema 1
/// stored them: a format version byte (1), then JSON, per attempt.
pub(super) fn apart(db: &DB, id: &str) -> Result<Vec<AttemptRecord>, Error> {
    let mut attempts = Vec::new();
    for entry in with_prefix(db, cf::ATTEMPTS, &keys::attempts_prefix(id)) {
        let (_, value) = entry?;
        let json = value
            .split_first()
            .filter(|(version, _)| **version == 1)
            .map(|(_, json)| json)
            .ok_or_else(|| Error::Corrupt("attempt record version".into()))?;
        attempts.push(serde_json::from_slice(json).map_err(|error| Error::Corrupt(error.to_string()))?);
    }
    Ok(attempts)
}
