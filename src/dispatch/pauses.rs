//! Operators' pauses of endpoints, as the workers see them.
//!
//! A pause is kept in the store by the admin API and mirrored here, where
//! workers watch it. The two steps of one change happen in one turn
//! ([`Pauses::turn`]), so concurrent pauses and resumes never leave the
//! workers' view different from what the store keeps.

use std::collections::HashSet;

use tokio::sync::{Mutex, MutexGuard, watch};

#[derive(Debug)]
pub struct Pauses {
    paused: watch::Sender<HashSet<String>>,
    /// Held across a change, from the store's write to the workers' view.
    changes: Mutex<()>,
}

impl Pauses {
    /// Starts with the pauses the store remembers.
    pub fn new(paused: impl IntoIterator<Item = String>) -> Pauses {
        Pauses {
            paused: watch::Sender::new(paused.into_iter().collect()),
            changes: Mutex::new(()),
        }
    }

    pub fn is_paused(&self, endpoint: &str) -> bool {
        self.paused.borrow().contains(endpoint)
    }

    /// The turn to change a pause: store it, then [`Pauses::set`], while
    /// holding this.
    pub async fn turn(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// Pauses or resumes an endpoint's worker (the caller stores it first,
    /// in its [`Pauses::turn`]).
    pub fn set(&self, endpoint: &str, paused: bool) {
        self.paused.send_modify(|set| {
            if paused {
                set.insert(endpoint.to_owned());
            } else {
                set.remove(endpoint);
            }
        });
    }

    pub(super) fn watch(&self) -> watch::Receiver<HashSet<String>> {
        self.paused.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_watched() {
        let pauses = Pauses::new(["crm".to_owned()]);
        let watcher = pauses.watch();
        assert!(pauses.is_paused("crm"));
        pauses.set("crm", false);
        assert!(!watcher.borrow().contains("crm"));
    }
}
