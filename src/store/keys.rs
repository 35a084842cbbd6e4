//! Key encodings for the store's column families.
//!
//! Times are milliseconds since the Unix epoch as 8 big-endian bytes, so
//! RocksDB's byte order is time order. Ids are ASCII from `[A-Za-z0-9_-.]`,
//! never holding a NUL, so a NUL can end an id inside a longer key.

/// The id of the delivery of event `event_id` to endpoint `endpoint_id`.
/// Neither id may hold a `.`, so the pair is unambiguous and all deliveries
/// of one event share the prefix [`deliveries_prefix`].
pub fn delivery_id(event_id: &str, endpoint_id: &str) -> String {
    format!("{event_id}.{endpoint_id}")
}

/// The prefix shared by the delivery ids of one event.
pub fn deliveries_prefix(event_id: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(event_id.len() + 1);
    prefix.extend_from_slice(event_id.as_bytes());
    prefix.push(b'.');
    prefix
}

/// `due` and `failed` keys: the endpoint id, a NUL, a time (next attempt,
/// or failure), then the delivery id. Grouping by endpoint lets each
/// endpoint's queue be read on its own, so a backlog for one endpoint never
/// has to be scanned past to find work for another.
pub fn endpoint_timed(endpoint_id: &str, at_ms: u64, delivery_id: &str) -> Vec<u8> {
    let mut key = endpoint_prefix(endpoint_id);
    key.extend_from_slice(&at_ms.to_be_bytes());
    key.extend_from_slice(delivery_id.as_bytes());
    key
}

/// The prefix of one endpoint's [`endpoint_timed`] keys.
pub fn endpoint_prefix(endpoint_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(endpoint_id.len() + 9 + 40);
    key.extend_from_slice(endpoint_id.as_bytes());
    key.push(0);
    key
}

/// The time and delivery id of an [`endpoint_timed`] key.
pub fn split_endpoint_timed(key: &[u8]) -> Option<(u64, &str)> {
    let nul = key.iter().position(|&b| b == 0)?;
    split_timed(&key[nul + 1..])
}

/// `recent` keys: a time, then an id.
pub fn timed(at_ms: u64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(&at_ms.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The time and id of a [`timed`] key.
pub fn split_timed(key: &[u8]) -> Option<(u64, &str)> {
    let (time, id) = key.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*time), std::str::from_utf8(id).ok()?))
}

/// The first key at or after time `at_ms`, for iterator bounds.
pub fn time_bound(at_ms: u64) -> Vec<u8> {
    at_ms.to_be_bytes().to_vec()
}

/// What a `finished` entry retires: one delivery, or an event that had none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Delivery,
    Event,
}

/// `finished` keys: the time it finished, a kind byte, then the id.
pub fn finished(at_ms: u64, kind: Finished, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + id.len());
    key.extend_from_slice(&at_ms.to_be_bytes());
    key.push(match kind {
        Finished::Delivery => b'd',
        Finished::Event => b'e',
    });
    key.extend_from_slice(id.as_bytes());
    key
}

/// The parts of a [`finished`] key.
pub fn split_finished(key: &[u8]) -> Option<(u64, Finished, &str)> {
    let (time, rest) = key.split_first_chunk::<8>()?;
    let (kind, id) = rest.split_first()?;
    let kind = match kind {
        b'd' => Finished::Delivery,
        b'e' => Finished::Event,
        _ => return None,
    };
    Some((u64::from_be_bytes(*time), kind, std::str::from_utf8(id).ok()?))
}

/// The prefix shared by the `attempts` keys of one delivery (schema 1:
/// the delivery id, a NUL, then the attempt number, u32 BE).
pub fn attempts_prefix(delivery_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(delivery_id.len() + 5);
    key.extend_from_slice(delivery_id.as_bytes());
    key.push(0);
    key
}

/// The smallest key greater than every key starting with `prefix`, as an
/// exclusive iterator or range-delete bound.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xFF (never the case for our ASCII ids): no finite bound.
    vec![u8::MAX; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn delivery_ids_of_one_event_share_a_prefix_no_other_event_has() {
        let prefix = deliveries_prefix("evt_a");
        assert!(delivery_id("evt_a", "crm").as_bytes().starts_with(&prefix));
        assert!(!delivery_id("evt_ab", "crm").as_bytes().starts_with(&prefix));
        assert!(!delivery_id("evt_", "a").as_bytes().starts_with(&prefix));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xFF]), b"b".to_vec());
    }

    #[test]
    fn due_keys_group_by_endpoint_then_sort_by_time() {
        let key = endpoint_timed("crm", 42, "evt_1.crm");
        assert!(key.starts_with(&endpoint_prefix("crm")));
        assert!(!key.starts_with(&endpoint_prefix("cr")));
        assert_eq!(split_endpoint_timed(&key), Some((42, "evt_1.crm")));
        assert!(endpoint_timed("crm", 41, "evt_9.crm") < key);
        assert!(endpoint_timed("crm", u64::MAX, "x") < prefix_end(&endpoint_prefix("crm")));
    }

    proptest! {
        #[test]
        fn timed_keys_sort_by_time_then_id(a in any::<u64>(), b in any::<u64>(), x in "[a-z0-9_.-]{1,20}", y in "[a-z0-9_.-]{1,20}") {
            let (ka, kb) = (timed(a, &x), timed(b, &y));
            prop_assert_eq!(ka.cmp(&kb), (a, x.as_bytes()).cmp(&(b, y.as_bytes())));
            prop_assert_eq!(split_timed(&ka), Some((a, x.as_str())));
        }

        #[test]
        fn finished_keys_round_trip(at in any::<u64>(), id in "[A-Za-z0-9_.-]{1,40}", event in any::<bool>()) {
            let kind = if event { Finished::Event } else { Finished::Delivery };
            let key = finished(at, kind, &id);
            prop_assert_eq!(split_finished(&key), Some((at, kind, id.as_str())));
        }

        #[test]
        fn schema_1_attempt_keys_fall_within_their_delivery_prefix(id in "[A-Za-z0-9_.-]{1,40}", other in "[A-Za-z0-9_.-]{1,40}", n in any::<u32>()) {
            let prefix = attempts_prefix(&id);
            let key = [&prefix[..], &n.to_be_bytes()].concat();
            prop_assert!(key.starts_with(&prefix) && key < prefix_end(&prefix));
            let others = [&attempts_prefix(&other)[..], &n.to_be_bytes()].concat();
            prop_assert_eq!(others.starts_with(&prefix), id == other);
        }
    }
}
