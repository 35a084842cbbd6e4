//! `GET /v1/endpoints/{id}/stats` (SPEC 6): an endpoint's attempts per
//! minute, by result, with deliveries finished and latency, through the
//! real sidecar.

use std::time::Duration;

use serde_json::Value;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(30);

/// The sum of `field` (a path into each entry) over `entries`.
fn sum(entries: &[Value], field: impl Fn(&Value) -> &Value) -> u64 {
    entries.iter().map(|entry| field(entry).as_u64().unwrap_or(0)).sum()
}

async fn stats(sidecar: &Sidecar, query: &str) -> crate::support::http::Answer {
    sidecar
        .http
        .get(&format!("{}/v1/endpoints/crm/stats{query}", sidecar.admin))
        .await
}

#[tokio::test]
async fn attempts_per_minute_by_result_with_latency() {
    let subscriber = Receiver::start().await;
    subscriber.script([Reply::status(500), Reply::status(503)]);
    let sidecar = Sidecar::start(&format!(
        "[delivery]\nretry_schedule = []\nendpoint_concurrency = 1\n[[endpoints]]\nid = \"crm\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret = \"s\"\n",
        subscriber.url("/hook")
    ))
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await);
    }
    for id in &ids {
        sidecar.finished(&format!("{id}.crm"), PATIENCE).await;
    }
    let hour = stats(&sidecar, "").await;
    assert_eq!(hour.status, 200, "{:?}", hour.json);
    assert_eq!(
        (hour.json["endpoint"].as_str(), hour.json["window"].as_str()),
        (Some("crm"), Some("1h"))
    );
    let minutes = hour.json["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60, "one entry per minute of the last hour");
    assert_eq!(sum(minutes, |entry| &entry["attempts"]["success"]), 3);
    assert_eq!(sum(minutes, |entry| &entry["attempts"]["status"]), 2);
    assert_eq!(sum(minutes, |entry| &entry["succeeded"]), 3);
    assert_eq!(sum(minutes, |entry| &entry["failed"]), 2);
    let with_attempts: Vec<&Value> = minutes.iter().filter(|entry| !entry["latency_ms"].is_null()).collect();
    assert!(!with_attempts.is_empty() && with_attempts.len() <= 2, "{minutes:?}");
    assert!(with_attempts[0]["latency_ms"]["p99"].as_u64().is_some());
    let times: Vec<&str> = minutes.iter().map(|entry| entry["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "oldest first");

    let day = stats(&sidecar, "?window=24h").await;
    // 138 ten-minute entries, then a minute each from the ten minutes that
    // hold the start of the last hour.
    let entries = day.json["minutes"].as_array().unwrap().len();
    assert!((138 + 60..=138 + 69).contains(&entries), "{entries}");
    for bad in ["?window=0s", "?window=25h", "?window=soon", "?colour=blue"] {
        assert_eq!(stats(&sidecar, bad).await.status, 400, "{bad}");
    }
    let missing = sidecar
        .http
        .get(&format!("{}/v1/endpoints/nope/stats", sidecar.admin))
        .await;
    assert_eq!(missing.status, 404);
}
