//! Checks that a store agrees with itself, for tests that raced or
//! crashed it.

use hookd::store::{DeliveryStatus, Store};

/// Every `due` entry of `endpoint` has a pending record due then, every
/// `failed` entry a failed record, and the kept counts are what a scan of
/// those indexes finds.
pub fn assert_queues_consistent(store: &Store, endpoint: &str) {
    let due = store.due(endpoint, u64::MAX - 1, usize::MAX).unwrap();
    for (at, id) in &due {
        let record = store
            .delivery(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} is due but gone"));
        assert_eq!(
            (record.status, record.next_attempt_at),
            (DeliveryStatus::Pending, *at),
            "{id}"
        );
    }
    let failed = store.failed_since(endpoint, 0).unwrap();
    for id in &failed {
        let record = store
            .delivery(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} is failed but gone"));
        assert_eq!(record.status, DeliveryStatus::Failed, "{id}");
    }
    assert_eq!(
        store.pending_count(endpoint),
        due.len(),
        "{endpoint}: the kept pending count"
    );
    assert_eq!(
        store.failed_count(endpoint),
        failed.len(),
        "{endpoint}: the kept failed count"
    );
}
