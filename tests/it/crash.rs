//! SIGKILL at any moment loses nothing acknowledged: every event answered
//! 202 survives a restart with its deliveries, and reaches its subscriber
//! even if hookd died while delivering it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;

use crate::support::http::HttpClient;
use crate::support::process::HookdProcess;
use crate::support::receiver::Receiver;
use crate::support::{TWO_ENDPOINTS, test_config};

const CLIENTS: usize = 16;
const ROUNDS: usize = 3;

/// The deliveries each acknowledged id must have.
type Acknowledged = Arc<Mutex<BTreeMap<String, u64>>>;

/// The n-th event of a producer; alternating types, so some events get one
/// delivery and some two.
fn event_body(id: &str, n: u64) -> String {
    let event = if n.is_multiple_of(2) {
        "payment.completed"
    } else {
        "enrollment.created"
    };
    format!(r#"{{"id":"{id}","event":"{event}","data":{{"n":{n}, "price": 1.0}}}}"#)
}

/// Posts events as fast as it can until the connection fails (hookd died).
async fn produce(http: HttpClient, url: String, round: usize, client: usize, acknowledged: Acknowledged) {
    for n in 0.. {
        let id = format!("evt_r{round}_c{client}_n{n}");
        let request = http.send(
            http::Method::POST,
            &url,
            &[("content-type", "application/json")],
            event_body(&id, n).into(),
        );
        match tokio::time::timeout(Duration::from_secs(30), request).await {
            Ok(Ok(answer)) if answer.status == StatusCode::ACCEPTED => {
                let deliveries = answer.json["deliveries"].as_u64().unwrap();
                acknowledged.lock().unwrap().insert(id, deliveries);
            }
            Ok(Ok(answer)) => panic!("unexpected answer {}: {:?}", answer.status, answer.json),
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    std::fs::write(&config, test_config(&dir.path().join("data"), TWO_ENDPOINTS)).unwrap();
    let acknowledged: Acknowledged = Arc::default();
    let http = HttpClient::default();

    for round in 0..ROUNDS {
        let hookd = HookdProcess::spawn(&config);
        let url = format!("{}/v1/events", hookd.ingest);
        let producers: Vec<_> = (0..CLIENTS)
            .map(|client| tokio::spawn(produce(http.clone(), url.clone(), round, client, acknowledged.clone())))
            .collect();
        // Let the producers get going, then kill hookd mid-stream, at a
        // different moment each round.
        let before = acknowledged.lock().unwrap().len();
        while acknowledged.lock().unwrap().len() < before + 200 * (round + 1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hookd.kill();
        for producer in producers {
            producer.await.unwrap();
        }
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 1200,
        "only {} events acknowledged",
        acknowledged.len()
    );

    // Restart on the same data directory: every acknowledged id is known,
    // with its deliveries (a resubmission is a duplicate, not a new event).
    let hookd = HookdProcess::spawn(&config);
    assert_eq!(
        http.get(&format!("{}/readyz", hookd.admin)).await.status,
        StatusCode::OK
    );
    let url = format!("{}/v1/events", hookd.ingest);
    for (id, deliveries) in acknowledged.iter().step_by(7) {
        let parts: Vec<&str> = id.split("_n").collect();
        let n: u64 = parts[1].parse().unwrap();
        let answer = http.post_json(&url, event_body(id, n)).await;
        assert_eq!(answer.status, StatusCode::OK, "{id}: {:?}", answer.json);
        assert_eq!(answer.json["duplicate"], true);
        assert_eq!(answer.json["deliveries"].as_u64(), Some(*deliveries), "{id}");
    }
    assert!(hookd.terminate().success(), "SIGTERM exits 0");

    // And the store itself holds each one whole.
    let store = hookd::store::Store::open(&dir.path().join("data")).unwrap();
    for (id, deliveries) in &acknowledged {
        let record = store
            .event(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} was acknowledged but is lost"));
        assert!(std::str::from_utf8(record.data()).unwrap().contains("\"price\": 1.0"));
        let stored = store.deliveries_of_event(id).unwrap();
        assert_eq!(stored.len() as u64, *deliveries, "{id}");
    }
    let counts = store.counts().unwrap();
    assert_eq!(
        counts.due, counts.deliveries,
        "every stored delivery is due exactly once"
    );
    store.close();
}

/// Rounds of the crash loop; `CRASH_SOAK_ROUNDS` asks for more (a soak).
fn crash_rounds() -> usize {
    std::env::var("CRASH_SOAK_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(4)
}

/// The deliveries an acknowledged event must get, as (id, path): every
/// event goes to `/crm`, payments also to `/billing`.
fn expected_deliveries(acknowledged: &BTreeMap<String, u64>) -> BTreeSet<(String, String)> {
    let mut expected = BTreeSet::new();
    for (id, deliveries) in acknowledged {
        expected.insert((id.clone(), "/crm".to_owned()));
        if *deliveries == 2 {
            expected.insert((id.clone(), "/billing".to_owned()));
        }
    }
    expected
}

/// Producers post, a subscriber fails 30% of its requests, and hookd is
/// killed with SIGKILL at random moments, with ingest, first attempts and
/// retries all under way, then started again. In the end every
/// acknowledged event has reached its subscribers; duplicates are counted
/// and reported, a loss fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_with_a_flaky_subscriber_loses_nothing() {
    let receiver = Receiver::start().await;
    receiver.fail_share(0.3);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    // Twenty quick retries: a delivery fails for good with odds of 0.3^21,
    // 1e-11 (with ten, 0.3^11 over some 15,000 deliveries failed one run
    // in 40).
    let endpoints = TWO_ENDPOINTS
        .replace("http://127.0.0.1:9/crm", &receiver.url("/crm"))
        .replace("http://127.0.0.1:9/billing", &receiver.url("/billing"));
    let retries = format!(
        "[delivery]\nretry_schedule = [\"50ms\", \"100ms\", \"200ms\"{}]\n",
        ", \"300ms\"".repeat(17)
    );
    std::fs::write(
        &config,
        test_config(&dir.path().join("data"), &format!("{retries}{endpoints}")),
    )
    .unwrap();
    let acknowledged: Acknowledged = Arc::default();
    let http = HttpClient::default();

    let rounds = crash_rounds();
    for round in 0..rounds {
        let hookd = HookdProcess::spawn(&config);
        let url = format!("{}/v1/events", hookd.ingest);
        // Every third round only delivers and retries what is stored.
        let producers: Vec<_> = if round % 3 == 2 {
            Vec::new()
        } else {
            (0..8)
                .map(|client| tokio::spawn(produce(http.clone(), url.clone(), round, client, acknowledged.clone())))
                .collect()
        };
        let moment = Duration::from_millis(rand::random_range(200..1500));
        tokio::time::sleep(moment).await;
        hookd.kill();
        for producer in producers {
            producer.await.unwrap();
        }
    }

    let hookd = HookdProcess::spawn(&config);
    let expected = expected_deliveries(&acknowledged.lock().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let delivered = loop {
        let delivered = successful_deliveries(&receiver);
        let missing: Vec<_> = expected.iter().filter(|key| !delivered.contains_key(*key)).collect();
        if missing.is_empty() {
            break delivered;
        }
        if std::time::Instant::now() > deadline {
            panic!("{}", describe_missing(&http, &hookd.admin, &missing).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let requests = receiver.received();
    let refused = requests.iter().filter(|request| request.answered != 200).count();
    let duplicates: usize = delivered.values().map(|count| count - 1).sum();
    eprintln!(
        "crash loop: {rounds} SIGKILLs, {} events acknowledged, {} deliveries expected, all delivered; \
         {} requests ({refused} answered 500), {duplicates} duplicate deliveries",
        acknowledged.lock().unwrap().len(),
        expected.len(),
        requests.len(),
    );
    assert!(!expected.is_empty());
    assert!(hookd.terminate().success());
}

/// How many 200 answers the receiver gave each (event id, path).
fn successful_deliveries(receiver: &Receiver) -> BTreeMap<(String, String), usize> {
    receiver
        .received()
        .iter()
        .filter(|request| request.answered == 200)
        .fold(BTreeMap::new(), |mut delivered, request| {
            let key = (request.header("x-webhook-id").to_owned(), request.path.clone());
            *delivered.entry(key).or_default() += 1;
            delivered
        })
}

/// The failure message for deliveries that never arrived: how many, and
/// what hookd says of the first few, so a failure in CI can be read.
async fn describe_missing(http: &HttpClient, admin: &str, missing: &[&(String, String)]) -> String {
    let mut message = format!("{} expected deliveries never arrived within 180s", missing.len());
    for (id, path) in missing.iter().take(5) {
        let listing = http.get(&format!("{admin}/v1/deliveries?event_id={id}")).await;
        message.push_str(&format!("\n{id} to {path}: hookd lists {}", listing.json));
    }
    message
}

/// Posts `retry-failed` for `endpoint` every 100 ms until hookd goes away,
/// as an operator recovering from an outage would; returns how many
/// deliveries it retried.
async fn retry_failed_until_gone(http: HttpClient, admin: String, endpoint: &'static str) -> u64 {
    let url = format!("{admin}/v1/endpoints/{endpoint}/retry-failed");
    let mut retried = 0;
    loop {
        let request = http.send(
            http::Method::POST,
            &url,
            &[("content-type", "application/json")],
            "{}".into(),
        );
        match tokio::time::timeout(Duration::from_secs(10), request).await {
            Ok(Ok(answer)) if answer.status == StatusCode::ACCEPTED => {
                retried += answer.json["retried"].as_u64().unwrap_or(0);
            }
            _ => return retried,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The crash loop again, through the work that changes finished
/// deliveries: with an 8 s retention, sweeps run every second; a
/// subscriber that fails half its requests leaves deliveries failed, and an
/// operator retries them in bulk ten times a second; a paused endpoint's
/// deliveries expire and are retried too. hookd is killed at random
/// moments through all of it. In the end every acknowledged event has
/// reached the working endpoint, and the store agrees with itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_through_sweeps_expiries_and_bulk_retries_loses_nothing() {
    let receiver = Receiver::start().await;
    receiver.fail_share(0.5);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    let endpoints = TWO_ENDPOINTS
        .replace("http://127.0.0.1:9/crm", &receiver.url("/crm"))
        .replace("http://127.0.0.1:9/billing", &receiver.url("/billing"));
    let settings = "[storage]\nretention = \"8s\"\n[delivery]\nretry_schedule = [\"100ms\"]\n";
    std::fs::write(
        &config,
        test_config(&dir.path().join("data"), &format!("{settings}{endpoints}")),
    )
    .unwrap();
    let acknowledged: Acknowledged = Arc::default();
    let http = HttpClient::default();
    let mut retried = 0;

    let rounds = crash_rounds();
    for round in 0..rounds {
        let hookd = HookdProcess::spawn(&config);
        if round == 0 {
            // `billing` waits, paused, until its deliveries expire.
            let paused = http
                .post_json(&format!("{}/v1/endpoints/billing/pause", hookd.admin), "{}")
                .await;
            assert_eq!(paused.status, StatusCode::OK);
        }
        let url = format!("{}/v1/events", hookd.ingest);
        let producers: Vec<_> = (0..4)
            .map(|client| tokio::spawn(produce(http.clone(), url.clone(), round, client, acknowledged.clone())))
            .collect();
        let operators = [
            tokio::spawn(retry_failed_until_gone(http.clone(), hookd.admin.clone(), "crm")),
            tokio::spawn(retry_failed_until_gone(http.clone(), hookd.admin.clone(), "billing")),
        ];
        let moment = Duration::from_millis(rand::random_range(500..3000));
        tokio::time::sleep(moment).await;
        hookd.kill();
        for producer in producers {
            producer.await.unwrap();
        }
        for operator in operators {
            retried += operator.await.unwrap();
        }
    }

    // The last run: the operator goes on retrying until every acknowledged
    // event has reached `/crm`.
    let hookd = HookdProcess::spawn(&config);
    let operator = tokio::spawn(retry_failed_until_gone(http.clone(), hookd.admin.clone(), "crm"));
    let expected: BTreeSet<String> = acknowledged.lock().unwrap().keys().cloned().collect();
    crate::support::eventually(Duration::from_secs(180), || {
        let reached: BTreeSet<String> = receiver
            .received()
            .iter()
            .filter(|request| request.answered == 200 && request.path == "/crm")
            .map(|request| request.header("x-webhook-id").to_owned())
            .collect();
        expected.is_subset(&reached).then_some(())
    })
    .await;
    assert!(hookd.terminate().success(), "SIGTERM exits 0");
    retried += operator.await.unwrap();
    let store = hookd::store::Store::open(&dir.path().join("data")).unwrap();
    for endpoint in ["crm", "billing"] {
        crate::support::store_checks::assert_queues_consistent(&store, endpoint);
    }
    let counts = store.counts().unwrap();
    eprintln!(
        "crash loop through sweeps: {rounds} SIGKILLs, {} events acknowledged, all reached /crm; \
         {retried} deliveries retried in bulk, {} requests; left in the store: {counts:?}",
        expected.len(),
        receiver.received().len(),
    );
    assert!(!expected.is_empty());
    assert!(retried > 0, "bulk retries ran");
    store.close();
}
