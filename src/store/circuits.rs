//! Open circuits (SPEC 4, "Circuit breaker"), kept so that a restart does
//! not close them: one key per endpoint whose circuit is open, written
//! when it opens, reopens or is made half-open, deleted when it closes.

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::{Durability, Error, Store, with_prefix};

/// Keys in the default column family, followed by the endpoint id.
const CIRCUIT_PREFIX: &str = "circuit/";

/// An endpoint's open circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCircuit {
    pub opened_at_ms: u64,
    /// When it becomes half-open.
    pub until_ms: u64,
    /// The length of this open period: the next one is twice as long.
    pub cooldown_ms: u64,
    /// The consecutive failed attempts that opened it.
    pub failures: u32,
}

impl Store {
    /// Keeps `endpoint`'s open circuit, or forgets it (`None`: closed).
    pub fn set_circuit(&self, endpoint: &str, open: Option<&OpenCircuit>) -> Result<(), Error> {
        let db = self.db()?;
        let key = format!("{CIRCUIT_PREFIX}{endpoint}");
        let mut batch = WriteBatch::default();
        match open {
            Some(open) => batch.put(key, serde_json::to_vec(open).expect("serializable")),
            None => batch.delete(key),
        }
        self.write(&db, batch, Durability::Synced)
    }

    /// The open circuits kept; a damaged one is skipped (it closes), with
    /// a warning.
    pub fn open_circuits(&self) -> Result<Vec<(String, OpenCircuit)>, Error> {
        let db = self.db()?;
        let mut open = Vec::new();
        for entry in with_prefix(&db, rocksdb::DEFAULT_COLUMN_FAMILY_NAME, CIRCUIT_PREFIX.as_bytes()) {
            let (key, value) = entry?;
            let endpoint = String::from_utf8_lossy(&key[CIRCUIT_PREFIX.len()..]).into_owned();
            match serde_json::from_slice(&value) {
                Ok(circuit) => open.push((endpoint, circuit)),
                Err(error) => tracing::warn!(%endpoint, %error, "a kept circuit cannot be read; it starts closed"),
            }
        }
        Ok(open)
    }
}
