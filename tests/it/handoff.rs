//! The in-memory hand-over of fresh deliveries from ingest to their workers
//! (`dispatch::inbox`): what does not fit is sent from the store, a
//! resubmission or a reload never sends one twice, and nothing handed over
//! is lost.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;
use crate::support::store_checks::assert_queues_consistent;

const PATIENCE: Duration = Duration::from_secs(60);

/// More events than an inbox holds (1,024), to a subscriber slower than
/// ingest, so most of them overflow to the store.
const EVENTS: usize = 3_000;

fn config(url: &str, extra_endpoint: &str) -> String {
    format!(
        r#"
[ingest]
max_batch_events = 1000
[delivery]
endpoint_concurrency = 8
[[endpoints]]
id = "slow"
url = "{url}"
events = ["*"]
secret = "slow secret"
{extra_endpoint}
"#
    )
}

fn batch(from: usize, to: usize) -> String {
    let events: Vec<_> = (from..to)
        .map(|n| json!({ "event": "payment.completed", "id": format!("evt_{n}"), "data": { "n": n } }))
        .collect();
    json!({ "events": events }).to_string()
}

/// Every one of the [`EVENTS`] event ids arrived, none of them twice.
async fn assert_each_arrived_once(receiver: &Receiver) {
    receiver.wait_for(EVENTS, PATIENCE).await;
    // Anything sent twice would arrive within this.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *seen.entry(request.header("x-webhook-id").to_owned()).or_default() += 1;
    }
    assert_eq!(seen.len(), EVENTS, "every event arrived");
    let twice: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

async fn post_batches(sidecar: &Sidecar, from: usize, to: usize) {
    for start in (from..to).step_by(1000) {
        let answer = sidecar
            .http
            .post_json(
                &format!("{}/v1/events/batch", sidecar.ingest),
                batch(start, (start + 1000).min(to)),
            )
            .await;
        assert_eq!(answer.status, http::StatusCode::ACCEPTED, "{:?}", answer.json);
    }
}

#[tokio::test]
async fn deliveries_that_overflow_the_hand_over_and_resubmissions_are_each_sent_once() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::ok().after(Duration::from_millis(2)));
    let sidecar = Sidecar::start(&config(&receiver.url("/slow"), "")).await;
    post_batches(&sidecar, 0, EVENTS).await;
    // The app resubmits everything while it is being sent: each answer is a
    // duplicate, and no delivery goes out twice.
    post_batches(&sidecar, 0, EVENTS).await;
    assert_each_arrived_once(&receiver).await;
    assert_eq!(sidecar.store.pending_count("slow"), 0);
    assert_queues_consistent(&sidecar.store, "slow");
}

#[tokio::test]
async fn a_reload_while_deliveries_wait_in_the_inbox_sends_each_once() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::ok().after(Duration::from_millis(2)));
    let sidecar = Sidecar::start(&config(&receiver.url("/slow"), "")).await;
    post_batches(&sidecar, 0, EVENTS / 2).await;
    // A new endpoint: every worker is replaced while the first batch waits
    // in the old worker's inbox and in the store.
    let other = format!(
        "[[endpoints]]\nid = \"other\"\nurl = \"{}\"\nevents = [\"student.*\"]\nsecret = \"other secret\"",
        receiver.url("/other")
    );
    let loaded = sidecar.http.get(&format!("{}/v1/config", sidecar.admin)).await.json["loaded_at"].clone();
    sidecar.rewrite_config(&config(&receiver.url("/slow"), &other));
    let reloaded = sidecar.config_after(loaded.as_str().unwrap()).await;
    assert!(reloaded["last_reload_error"].is_null(), "{reloaded}");
    post_batches(&sidecar, EVENTS / 2, EVENTS).await;
    assert_each_arrived_once(&receiver).await;
    assert_queues_consistent(&sidecar.store, "slow");
}

/// Ten endpoints and many concurrent posts, so inboxes overflow while
/// their workers read the queue: every delivery arrives well before the
/// workers' once-a-minute full read of their queue. (A wake that came
/// during a read used to be overridden by that read's jobs, leaving the
/// overflowed deliveries behind the cursor until that full read.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowed_deliveries_of_many_endpoints_never_wait_for_the_safety_net() {
    const ENDPOINTS: usize = 10;
    const CLIENTS: usize = 32;
    const PER_CLIENT: usize = 100;
    let receiver = Receiver::start().await;
    let endpoints: String = (0..ENDPOINTS)
        .map(|n| {
            format!(
                "[[endpoints]]\nid = \"e{n}\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret = \"s{n}\"\n",
                receiver.url(&format!("/{n}"))
            )
        })
        .collect();
    let sidecar = Sidecar::start(&endpoints).await;
    let started = std::time::Instant::now();
    let posts: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, url) = (sidecar.http.clone(), format!("{}/v1/events", sidecar.ingest));
            tokio::spawn(async move {
                for n in 0..PER_CLIENT {
                    let body = json!({ "event": "payment.completed", "id": format!("evt_{client}_{n}"), "data": {} });
                    let answer = http.post_json(&url, body.to_string()).await;
                    assert_eq!(answer.status, http::StatusCode::ACCEPTED);
                }
            })
        })
        .collect();
    for post in posts {
        post.await.unwrap();
    }
    // The safety net is a minute; everything must be there long before.
    receiver
        .wait_for(CLIENTS * PER_CLIENT * ENDPOINTS, Duration::from_secs(40))
        .await;
    assert!(started.elapsed() < Duration::from_secs(45));
    for n in 0..ENDPOINTS {
        assert_queues_consistent(&sidecar.store, &format!("e{n}"));
    }
}
