//! Attempts as the store keeps them: one record per attempt, listed in
//! order for the admin API. They are written by [`super::lifecycle`], in
//! the same batch as the delivery's new state and the move of its index
//! entry; until that write, the delivery's `due` entry stays where it was,
//! so an attempt cut short by a crash is simply due again, under the same
//! number.

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

impl AttemptRecord {
    /// The stored value: a format version byte, then JSON.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut value = vec![1u8];
        serde_json::to_writer(&mut value, self).expect("attempt records serialize");
        value
    }
}

impl Store {
    /// Every recorded attempt of a delivery, in order.
    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, Error> {
        let db = self.db()?;
        let mut attempts = Vec::new();
        for entry in with_prefix(&db, cf::ATTEMPTS, &keys::attempts_prefix(id)) {
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
}
