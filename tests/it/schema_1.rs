//! A store written by a hookd of schema 1 (attempts apart from their
//! delivery, a `recent` entry per delivery) opens as it is: every delivery
//! lists, counts and changes as before, its attempts move into its record
//! at its first change, retention removes all of it, and the store is
//! marked schema 2 so the older hookd refuses it rather than misread it.

use hookd::store::{AttemptRecord, Change, EventMeta, EventRecord, Expect, NextStep, Store};

use crate::support::{raw_store, stored_event};

const HOUR_MS: u64 = 3_600_000;
const START: u64 = 1_750_000_000_000;
const RETRY_AT: u64 = START + 60_000;
const FAILED_AT: u64 = START + 1_000;

fn timed(at: u64, id: &str) -> Vec<u8> {
    [&at.to_be_bytes()[..], id.as_bytes()].concat()
}

fn endpoint_timed(endpoint: &str, at: u64, id: &str) -> Vec<u8> {
    [endpoint.as_bytes(), &[0], &at.to_be_bytes(), id.as_bytes()].concat()
}

fn attempt(n: u32, at: u64, status_code: u16) -> AttemptRecord {
    AttemptRecord {
        n,
        at,
        status_code: Some(status_code),
        error_kind: (status_code >= 300).then(|| "status".to_owned()),
        latency_ms: 2,
        response_snippet: format!("answered {status_code}"),
    }
}

/// A format-1 delivery record of `evt_old`, as schema 1 wrote it.
fn delivery_v1(endpoint: &str, status: &str, next_attempt_at: u64, finished_at: Option<u64>) -> Vec<u8> {
    let mut json = serde_json::json!({
        "event_id": "evt_old", "endpoint": endpoint, "event": "payment.completed",
        "status": status, "attempt_count": 1, "next_attempt_at": next_attempt_at,
        "created_at": START, "updated_at": START + 1_000,
    });
    if let Some(at) = finished_at {
        json["finished_at"] = at.into();
    }
    [&[1u8][..], &serde_json::to_vec(&json).unwrap()].concat()
}

/// Writes `evt_old` as schema 1 did: delivered to `a` once (pending, due
/// again at `RETRY_AT`) and to `b` once (failed at `FAILED_AT`), each
/// attempt and each `recent` entry apart; and marks the store schema 1.
fn write_schema_1_event(db: &rocksdb::DB) {
    let family = |name: &str| db.cf_handle(name).unwrap();
    let (body, data) = hookd::event::wire_body("evt_old", "payment.completed", "2025-03-20T10:30:00Z", "{}");
    let event = EventRecord {
        meta: EventMeta {
            event: "payment.completed".into(),
            created_at: "2025-03-20T10:30:00Z".into(),
            received_at: START,
            deliveries: 2,
            data_start: data.start,
            data_end: data.end,
            traceparent: None,
            tenant: None,
            ordering_key: None,
        },
        body,
    };
    db.put_cf(family("events"), "evt_old", event.encode()).unwrap();
    let deliveries = family("deliveries");
    db.put_cf(deliveries, "evt_old.a", delivery_v1("a", "pending", RETRY_AT, None))
        .unwrap();
    db.put_cf(
        deliveries,
        "evt_old.b",
        delivery_v1("b", "failed", START, Some(FAILED_AT)),
    )
    .unwrap();
    for (id, status_code) in [("evt_old.a", 500), ("evt_old.b", 410)] {
        let key = [id.as_bytes(), &[0], &1u32.to_be_bytes()].concat();
        let value = [
            &[1u8][..],
            &serde_json::to_vec(&attempt(1, START, status_code)).unwrap(),
        ]
        .concat();
        db.put_cf(family("attempts"), key, value).unwrap();
        db.put_cf(family("recent"), timed(START, id), []).unwrap();
    }
    db.put_cf(family("due"), endpoint_timed("a", RETRY_AT, "evt_old.a"), [])
        .unwrap();
    db.put_cf(family("failed"), endpoint_timed("b", FAILED_AT, "evt_old.b"), [])
        .unwrap();
    let finished = [&FAILED_AT.to_be_bytes()[..], b"d", b"evt_old.b"].concat();
    db.put_cf(family("finished"), finished, []).unwrap();
    db.put(b"schema_version", b"1").unwrap();
}

/// Every delivery newest first, one page of one at a time.
fn listed_page_by_page(store: &Store) -> Vec<String> {
    let mut listed = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let mut page = None;
        store
            .scan_recent(cursor.as_deref(), |key, id, _| {
                page = Some((key.to_vec(), id.to_owned()));
                false
            })
            .unwrap();
        let Some((key, id)) = page else { return listed };
        listed.push(id);
        cursor = Some(key);
    }
}

#[tokio::test]
async fn a_store_of_schema_1_is_read_changed_and_swept_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let later = START + HOUR_MS;
    store
        .ingest(vec![stored_event("evt_new", &["a", "b"], later)])
        .await
        .unwrap();
    store.close();
    drop(store);
    {
        let db = raw_store::open(dir.path());
        write_schema_1_event(&db);
    }

    let store = Store::open(dir.path()).unwrap();
    let mut all = Vec::new();
    store
        .scan_recent(None, |_, id, _| {
            all.push(id.to_owned());
            true
        })
        .unwrap();
    let newest_first = ["evt_new.b", "evt_new.a", "evt_old.b", "evt_old.a"];
    assert_eq!(all, newest_first);
    assert_eq!(
        listed_page_by_page(&store),
        newest_first,
        "cursors resume where they stopped"
    );
    assert_eq!((store.pending_count("a"), store.pending_count("b")), (2, 1));
    assert_eq!(store.failed_count("b"), 1);
    assert_eq!(store.attempts("evt_old.a").unwrap(), [attempt(1, START, 500)]);
    assert_eq!(
        store.counts().unwrap().recent,
        3,
        "one entry for the new event, one per old delivery"
    );

    // The first change of each old delivery moves its attempt in.
    let next = Change::Attempted {
        attempt: attempt(0, RETRY_AT, 200),
        next: NextStep::Succeeded,
    };
    let applied = store
        .transition("evt_old.a", Expect::PendingDueAt(RETRY_AT), next, RETRY_AT)
        .unwrap();
    assert!(applied.is_done());
    assert_eq!(
        store.attempts("evt_old.a").unwrap(),
        [attempt(1, START, 500), attempt(2, RETRY_AT, 200)]
    );
    assert_eq!(store.counts().unwrap().attempts, 1, "evt_old.b's is still apart");
    store.retry_delivery("evt_old.b", RETRY_AT).unwrap();
    assert_eq!(store.counts().unwrap().attempts, 0);
    assert_eq!(store.attempts("evt_old.b").unwrap(), [attempt(1, START, 410)]);
    assert_eq!((store.pending_count("a"), store.pending_count("b")), (1, 2));
    assert_eq!(store.failed_count("b"), 0);
    let next = Change::Attempted {
        attempt: attempt(0, RETRY_AT, 200),
        next: NextStep::Succeeded,
    };
    let applied = store
        .transition("evt_old.b", Expect::PendingDueAt(RETRY_AT), next, RETRY_AT)
        .unwrap();
    assert!(applied.is_done());

    // Retention takes the old event with everything it had.
    store.sweep(RETRY_AT + 1, 0).unwrap();
    assert!(store.event("evt_old").unwrap().is_none());
    let counts = store.counts().unwrap();
    assert_eq!((counts.events, counts.deliveries, counts.recent), (1, 2, 1));
    assert_eq!((counts.attempts, counts.finished, counts.failed), (0, 0, 0));
    store.close();
    drop(store);

    let db = raw_store::open(dir.path());
    assert_eq!(db.get(b"schema_version").unwrap().as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn a_store_of_an_unknown_schema_is_refused_with_its_version() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap().close();
    raw_store::open(dir.path()).put(b"schema_version", b"3").unwrap();
    let error = Store::open(dir.path()).err().expect("refused").to_string();
    assert!(error.contains("schema version 3"), "{error}");
}
