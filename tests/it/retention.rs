//! Retention: finished deliveries older than `storage.retention` go, their
//! events with them; pending work stays whatever its age.

use hookd::store::{AttemptRecord, Change, DeliveryStatus, Expect, NextStep, Store};

use crate::support::stored_event as event;

const HOUR_MS: u64 = 3_600_000;
const START: u64 = 1_750_000_000_000;

/// Records one attempt of delivery `id`, received at `START`, that
/// finishes it as `status` at `at`.
fn finish(store: &Store, id: &str, status: DeliveryStatus, at: u64) {
    let (next, error_kind) = match status {
        DeliveryStatus::Succeeded => (NextStep::Succeeded, None),
        _ => (NextStep::Failed, Some("status".to_owned())),
    };
    let attempt = AttemptRecord {
        n: 1,
        at,
        status_code: Some(if error_kind.is_none() { 200 } else { 500 }),
        error_kind,
        latency_ms: 1,
        response_snippet: String::new(),
    };
    let applied = store
        .transition(id, Expect::PendingDueAt(START), Change::Attempted { attempt, next }, at)
        .unwrap();
    assert!(applied.is_done(), "{id}");
}

#[tokio::test]
async fn the_sweep_removes_only_what_finished_before_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .ingest(vec![
            event("evt_done", &["a", "b"], START),
            event("evt_half", &["a", "b"], START),
            event("evt_quiet", &[], START),
            event("evt_recent", &["a"], START),
            event("evt_waiting", &["a"], START),
        ])
        .await
        .unwrap();
    finish(&store, "evt_done.a", DeliveryStatus::Succeeded, START + HOUR_MS);
    finish(&store, "evt_done.b", DeliveryStatus::Failed, START + 2 * HOUR_MS);
    finish(&store, "evt_half.a", DeliveryStatus::Succeeded, START + HOUR_MS);
    finish(&store, "evt_recent.a", DeliveryStatus::Succeeded, START + 30 * HOUR_MS);

    assert_eq!(store.counts().unwrap().failed, 1, "the failed delivery is indexed");
    // 24 h retention, 26 h after the start: the cutoff is START + 2 h.
    let stats = store.sweep(START + 26 * HOUR_MS + 1, 24 * HOUR_MS).unwrap();
    assert_eq!((stats.deliveries, stats.events), (3, 2), "{stats:?}");
    assert!(
        store.event("evt_done").unwrap().is_none(),
        "all its deliveries finished long ago"
    );
    assert!(
        store.event("evt_quiet").unwrap().is_none(),
        "an event with no deliveries goes too"
    );
    assert!(store.event("evt_half").unwrap().is_some(), "one delivery still pending");
    assert!(store.delivery("evt_half.a").unwrap().is_none());
    assert_eq!(
        store.delivery("evt_half.b").unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    assert!(
        store.event("evt_recent").unwrap().is_some(),
        "finished within the retention"
    );
    assert!(
        store.event("evt_waiting").unwrap().is_some(),
        "pending work is never swept"
    );

    let counts = store.counts().unwrap();
    assert_eq!(counts.events, 3);
    assert_eq!(counts.deliveries, 3);
    assert_eq!(counts.recent, 3, "index entries go with their deliveries");
    assert_eq!(counts.due, 2);
    assert_eq!(counts.finished, 1);
    assert_eq!(counts.failed, 0, "the failed index entry went with its delivery");

    // A second sweep at the same time finds nothing more.
    assert_eq!(
        store.sweep(START + 26 * HOUR_MS + 1, 24 * HOUR_MS).unwrap(),
        Default::default()
    );
    store.close();
}

#[tokio::test]
async fn the_due_index_only_holds_pending_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.ingest(vec![event("evt_1", &["a", "b"], START)]).await.unwrap();
    store.ingest(vec![event("evt_2", &["a"], START + 1)]).await.unwrap();
    assert_eq!(
        store.due("a", START - 1, 10).unwrap(),
        vec![],
        "nothing due before it was received"
    );
    assert_eq!(store.due("a", START, 10).unwrap(), vec![(START, "evt_1.a".to_owned())]);
    assert_eq!(
        store.due("a", START + 1, 10).unwrap(),
        vec![(START, "evt_1.a".to_owned()), (START + 1, "evt_2.a".to_owned())]
    );
    assert_eq!(
        store.due("b", START + 1, 10).unwrap(),
        vec![(START, "evt_1.b".to_owned())]
    );
    finish(&store, "evt_1.a", DeliveryStatus::Succeeded, START + 5);
    assert_eq!(
        store.due("a", u64::MAX - 1, 10).unwrap(),
        vec![(START + 1, "evt_2.a".to_owned())]
    );
    store.close();
}

#[tokio::test]
async fn one_scan_of_the_queue_gives_what_is_due_and_when_the_next_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (n, at) in [START, START + 10, START + 20, START + 30].into_iter().enumerate() {
        store
            .ingest(vec![event(&format!("evt_{n}"), &["a"], at)])
            .await
            .unwrap();
    }
    let scan = store.due_scan("a", START + 10, START + 25, 10).unwrap();
    assert_eq!(
        scan.due,
        vec![(START + 10, "evt_1.a".to_owned()), (START + 20, "evt_2.a".to_owned())],
        "from the cursor, up to now"
    );
    assert_eq!(scan.next_at, Some(START + 30));
    let scan = store.due_scan("a", START, START + 25, 1).unwrap();
    assert_eq!(scan.due, vec![(START, "evt_0.a".to_owned())]);
    assert_eq!(scan.next_at, None, "the limit stops the read before the future");
    let scan = store.due_scan("a", START, START + 40, 10).unwrap();
    assert_eq!((scan.due.len(), scan.next_at), (4, None), "nothing due later");
    store.close();
}

#[tokio::test]
async fn deliveries_waiting_too_long_on_an_inactive_endpoint_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .ingest(vec![
            event("evt_old", &["gone", "live"], START),
            event("evt_new", &["gone"], START + 20 * HOUR_MS),
        ])
        .await
        .unwrap();
    let active = |endpoint: &str| endpoint == "live";
    // 24 h retention, 26 h after the start: evt_old has waited too long on
    // `gone`; evt_new only 6 h; `live` is worked, so never expired here.
    let now = START + 26 * HOUR_MS;
    assert_eq!(
        hookd::sweeper::expire_waiting(&store, &active, now, 24 * HOUR_MS).unwrap(),
        ["evt_old.gone"]
    );
    let expired = store.delivery("evt_old.gone").unwrap().unwrap();
    assert_eq!(
        (expired.status, expired.finished_at),
        (DeliveryStatus::Failed, Some(now))
    );
    let attempt = store.attempts("evt_old.gone").unwrap().remove(0);
    assert_eq!(
        (attempt.error_kind.as_deref(), attempt.status_code),
        (Some("expired"), None)
    );
    assert_eq!(
        store.delivery("evt_old.live").unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    assert_eq!(
        store.delivery("evt_new.gone").unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    assert_eq!(store.failed_since("gone", 0).unwrap(), vec!["evt_old.gone".to_owned()]);
    assert_eq!(
        hookd::sweeper::expire_waiting(&store, &active, now, 24 * HOUR_MS)
            .unwrap()
            .len(),
        0,
        "done once"
    );
    store.close();
}
