//! Races between the actors that change a delivery (workers, the sweeper,
//! operators), run many times over on a real store: whatever the
//! interleaving, no change is lost or undone, nothing is left half
//! removed, and the kept counts match what the store holds.

use std::collections::HashSet;

use hookd::store::{AttemptRecord, Change, DeliveryStatus, Expect, NewEvent, NextStep, Store};

use crate::support::sidecar::Sidecar;
use crate::support::store_checks::assert_queues_consistent;
use crate::support::stored_event;

const HOUR_MS: u64 = 3_600_000;
const START: u64 = 1_750_000_000_000;
const DELIVERIES: usize = 200;
const ROUNDS: usize = 8;

fn attempt(at: u64, error_kind: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        n: 1,
        at,
        status_code: Some(if error_kind.is_none() { 200 } else { 500 }),
        error_kind: error_kind.map(str::to_owned),
        latency_ms: 1,
        response_snippet: String::new(),
    }
}

/// A store with `DELIVERIES` events of one delivery each to `endpoint`.
async fn store_with_deliveries(endpoint: &str) -> (tempfile::TempDir, Store, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let events: Vec<NewEvent> = (0..DELIVERIES)
        .map(|n| stored_event(&format!("evt_{n}"), &[endpoint], START))
        .collect();
    store.ingest(events).await.unwrap();
    let ids = (0..DELIVERIES).map(|n| format!("evt_{n}.{endpoint}")).collect();
    (dir, store, ids)
}

/// The store agrees with itself (its queues, and here one delivery per
/// event and no event left behind).
fn assert_consistent(store: &Store, endpoint: &str) {
    assert_queues_consistent(store, endpoint);
    let counts = store.counts().unwrap();
    assert_eq!(counts.due, store.pending_count(endpoint));
    assert_eq!(counts.failed, store.failed_count(endpoint));
    assert_eq!(counts.events, counts.recent, "a recent entry per event");
    assert_eq!(
        counts.events, counts.deliveries,
        "one delivery per event, no event left behind"
    );
}

#[tokio::test]
async fn a_retry_at_the_retention_cutoff_is_never_swept_away() {
    for _ in 0..ROUNDS {
        let (_dir, store, ids) = store_with_deliveries("a").await;
        for id in &ids {
            let change = Change::Attempted {
                attempt: attempt(START + HOUR_MS, Some("status")),
                next: NextStep::Failed,
            };
            let failed = store.transition(id, Expect::PendingDueAt(START), change, START + HOUR_MS);
            assert!(failed.unwrap().is_done());
        }
        // 24 h retention, a moment after the cutoff: everything may go,
        // while an operator's "retry all failed" brings it back.
        let now = START + 25 * HOUR_MS + 1;
        let sweeper = {
            let store = store.clone();
            std::thread::spawn(move || store.sweep(now, 24 * HOUR_MS).unwrap())
        };
        let operator = {
            let (store, ids) = (store.clone(), ids.clone());
            std::thread::spawn(move || {
                ids.iter()
                    .rev()
                    .filter(|id| store.retry_delivery(id, now).is_ok())
                    .cloned()
                    .collect::<Vec<_>>()
            })
        };
        let stats = sweeper.join().unwrap();
        let retried = operator.join().unwrap();
        for id in &retried {
            let record = store
                .delivery(id)
                .unwrap()
                .unwrap_or_else(|| panic!("{id}: retried, then swept"));
            assert_eq!(record.status, DeliveryStatus::Pending, "{id}");
            assert!(
                store.event(&record.event_id).unwrap().is_some(),
                "{id}: its event stays"
            );
        }
        assert_eq!(
            stats.deliveries + retried.len(),
            DELIVERIES,
            "each one swept or retried"
        );
        assert_consistent(&store, "a");
        store.close();
    }
}

#[tokio::test]
async fn an_attempt_recorded_while_the_sweeper_expires_is_never_overwritten() {
    for _ in 0..ROUNDS {
        // Waiting since START on an endpoint that is not worked; 26 h on,
        // with a 24 h retention, the sweeper expires them, while a worker
        // that had them in flight records their success.
        let (_dir, store, ids) = store_with_deliveries("gone").await;
        let now = START + 26 * HOUR_MS;
        let sweeper = {
            let store = store.clone();
            std::thread::spawn(move || {
                hookd::sweeper::expire_waiting(&store, &|_| false, now, 24 * HOUR_MS)
                    .unwrap()
                    .len()
            })
        };
        let worker = {
            let (store, ids) = (store.clone(), ids.clone());
            std::thread::spawn(move || {
                let mut succeeded = HashSet::new();
                for id in &ids {
                    let change = Change::Attempted {
                        attempt: attempt(now, None),
                        next: NextStep::Succeeded,
                    };
                    if store
                        .transition(id, Expect::PendingDueAt(START), change, now)
                        .unwrap()
                        .is_done()
                    {
                        succeeded.insert(id.clone());
                    }
                }
                succeeded
            })
        };
        let expired = sweeper.join().unwrap();
        let succeeded = worker.join().unwrap();
        assert_eq!(
            expired + succeeded.len(),
            DELIVERIES,
            "each one expired or delivered, never both"
        );
        for id in &ids {
            let record = store.delivery(id).unwrap().unwrap();
            let attempts = store.attempts(id).unwrap();
            assert_eq!(attempts.len(), 1, "{id}: one outcome recorded");
            if succeeded.contains(id) {
                assert_eq!(record.status, DeliveryStatus::Succeeded, "{id}: its success stands");
            } else {
                assert_eq!(record.status, DeliveryStatus::Failed, "{id}");
                assert_eq!(attempts[0].error_kind.as_deref(), Some("expired"), "{id}");
            }
        }
        assert_consistent(&store, "gone");
        store.close();
    }
}

#[tokio::test]
async fn concurrent_pauses_and_resumes_leave_the_store_and_the_workers_agreeing() {
    let mut sidecar = Sidecar::start(
        "[[endpoints]]\nid = \"crm\"\nurl = \"http://127.0.0.1:9/hook\"\nevents = [\"*\"]\nsecret = \"s\"\n",
    )
    .await;
    for round in 0..ROUNDS {
        let calls: Vec<_> = (0..24)
            .map(|n| {
                let (http, admin) = (sidecar.http.clone(), sidecar.admin.clone());
                let action = if (n + round) % 2 == 0 { "pause" } else { "resume" };
                tokio::spawn(async move {
                    http.post_json(&format!("{admin}/v1/endpoints/crm/{action}"), "{}")
                        .await
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().status, http::StatusCode::OK);
        }
        let shown = sidecar.http.get(&format!("{}/v1/endpoints", sidecar.admin)).await.json["data"][0]["paused"]
            .as_bool()
            .unwrap();
        sidecar = sidecar.restart().await;
        let stored = sidecar.http.get(&format!("{}/v1/endpoints", sidecar.admin)).await.json["data"][0]["paused"]
            .as_bool()
            .unwrap();
        assert_eq!(
            shown, stored,
            "round {round}: what the workers saw is what the store kept"
        );
    }
    sidecar.shutdown().await;
}
