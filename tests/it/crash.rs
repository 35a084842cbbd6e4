//! SIGKILL at any moment loses nothing acknowledged: every event answered
//! 202 survives a restart with its deliveries, and reaches its subscriber
//! even if hookd died while delivering it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;

use crate::support::http::HttpClient;
use crate::support::process::HookdProcess;
use crate::support::receiver::{Receiver, Reply};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_deliveries_in_flight_loses_none() {
    let receiver = Receiver::start().await;
    // Slow enough that attempts are in flight when hookd dies.
    receiver.answer_by_default(Reply::ok().after(Duration::from_millis(30)));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    let endpoint = format!(
        "[delivery]\nretry_schedule = [\"200ms\"]\n[[endpoints]]\nid = \"sub\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret = \"s\"\n",
        receiver.url("/hook")
    );
    std::fs::write(&config, test_config(&dir.path().join("data"), &endpoint)).unwrap();
    let acknowledged: Acknowledged = Arc::default();
    let http = HttpClient::default();

    for round in 0..2 {
        let hookd = HookdProcess::spawn(&config);
        let url = format!("{}/v1/events", hookd.ingest);
        let producers: Vec<_> = (0..8)
            .map(|client| tokio::spawn(produce(http.clone(), url.clone(), round, client, acknowledged.clone())))
            .collect();
        // Kill once deliveries are flowing and some are in flight.
        let seen = receiver.received().len();
        receiver.wait_for(seen + 100, Duration::from_secs(60)).await;
        hookd.kill();
        for producer in producers {
            producer.await.unwrap();
        }
    }

    let hookd = HookdProcess::spawn(&config);
    let expected: BTreeMap<String, u64> = acknowledged.lock().unwrap().clone();
    let ids = crate::support::eventually(Duration::from_secs(120), || {
        let delivered: std::collections::BTreeSet<String> = receiver
            .received()
            .iter()
            .map(|request| request.header("x-webhook-id").to_owned())
            .collect();
        expected.keys().all(|id| delivered.contains(id)).then_some(delivered)
    })
    .await;
    let requests = receiver.received().len();
    eprintln!(
        "{} acknowledged, {} delivered ids, {} requests ({} duplicates)",
        expected.len(),
        ids.len(),
        requests,
        requests - ids.len()
    );
    assert!(hookd.terminate().success());
}
