//! The circuit breaker (SPEC 4, "Circuit breaker"): a subscriber that is
//! down gets about one request per cooldown, its deliveries keep their
//! schedule with `circuit_open` attempts, the circuit survives a restart,
//! and an operator's resume or test ping probes at once.

use std::time::Duration;

use hookd::store::{AttemptRecord, DeliveryStatus};

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(30);

fn config(url: &str, breaker: &str, schedule: &str) -> String {
    format!(
        r#"
[delivery]
endpoint_concurrency = 1
retry_schedule = {schedule}
retry_jitter = 0.0

[delivery.breaker]
{breaker}

[[endpoints]]
id = "down"
url = "{url}"
events = ["payment.completed"]
secret = "s"
"#
    )
}

async fn circuit(sidecar: &Sidecar) -> String {
    let answer = sidecar
        .http
        .get(&format!("{}/v1/endpoints?q=down", sidecar.admin))
        .await;
    answer.json["data"][0]["circuit"]
        .as_str()
        .expect("a circuit")
        .to_owned()
}

async fn wait_for_circuit(sidecar: &Sidecar, wanted: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while circuit(sidecar).await != wanted {
        assert!(
            std::time::Instant::now() < deadline,
            "the circuit never became {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn circuit_metric(sidecar: &Sidecar) -> String {
    let page = sidecar.http.get_text(&format!("{}/metrics", sidecar.admin)).await;
    page.lines()
        .find(|line| line.starts_with("hookd_circuit_open{endpoint=\"down\"}"))
        .unwrap_or("no hookd_circuit_open series")
        .to_owned()
}

fn attempts(sidecar: &Sidecar, id: &str) -> Vec<AttemptRecord> {
    sidecar.store.attempts(&format!("{id}.down")).expect("reading attempts")
}

#[tokio::test]
async fn a_subscriber_that_is_down_gets_a_request_per_cooldown_and_its_backlog_when_it_returns() {
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(500));
    let schedule = format!("[{}]", vec!["\"400ms\""; 20].join(", "));
    let sidecar = Sidecar::start(&config(
        &subscriber.url("/hook"),
        "failures = 3\ncooldown = \"1s\"\nmax_cooldown = \"2s\"",
        &schedule,
    ))
    .await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await);
    }
    wait_for_circuit(&sidecar, "open").await;
    assert_eq!(
        circuit_metric(&sidecar).await,
        "hookd_circuit_open{endpoint=\"down\"} 1"
    );
    let opened_with = subscriber.received().len();
    assert_eq!(opened_with, 3, "three consecutive failures open the circuit");

    // Down for 3 s: without the breaker, ten deliveries retried every
    // 400 ms would make about 75 requests. With it, a probe after 1 s and
    // (that one failing) another 2 s later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let while_down = subscriber.received().len() - opened_with;
    assert!(while_down <= 3, "{while_down} requests while the circuit was open");
    let held: Vec<AttemptRecord> = ids.iter().flat_map(|id| attempts(&sidecar, id)).collect();
    let refused: Vec<&AttemptRecord> = held
        .iter()
        .filter(|attempt| attempt.error_kind.as_deref() == Some("circuit_open"))
        .collect();
    assert!(refused.len() >= 20, "only {} circuit_open attempts", refused.len());
    assert!(refused.iter().all(|attempt| attempt.status_code.is_none()));
    // Each delivery keeps its schedule: no attempt before its delay.
    for id in &ids {
        for pair in attempts(&sidecar, id).windows(2) {
            assert!(
                pair[1].at >= pair[0].at + 400,
                "{id}: attempts {pair:?} closer than the schedule"
            );
        }
    }

    // Back up: the next probe closes the circuit and the backlog drains.
    subscriber.answer_by_default(Reply::ok());
    for id in &ids {
        let delivery = sidecar.finished(&format!("{id}.down"), PATIENCE).await;
        assert_eq!(delivery.status, DeliveryStatus::Succeeded, "{id}");
    }
    assert_eq!(circuit(&sidecar).await, "closed");
    assert_eq!(
        circuit_metric(&sidecar).await,
        "hookd_circuit_open{endpoint=\"down\"} 0"
    );
    let numbers: Vec<u32> = subscriber
        .received()
        .iter()
        .filter(|request| request.answered == 200)
        .map(|request| request.header("x-webhook-attempt").parse().unwrap())
        .collect();
    assert!(
        numbers.iter().all(|n| *n > 1),
        "after an open period every delivery's first request carries a later attempt number: {numbers:?}"
    );
}

#[tokio::test]
async fn an_open_circuit_survives_a_restart_and_an_operator_probes_it_at_once() {
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(503));
    let sidecar = Sidecar::start(&config(
        &subscriber.url("/hook"),
        "failures = 1\ncooldown = \"1h\"\nmax_cooldown = \"2h\"",
        "[\"1h\"]",
    ))
    .await;
    sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    wait_for_circuit(&sidecar, "open").await;

    let sidecar = sidecar.restart().await;
    subscriber.answer_by_default(Reply::ok());
    assert_eq!(circuit(&sidecar).await, "open");
    assert_eq!(
        circuit_metric(&sidecar).await,
        "hookd_circuit_open{endpoint=\"down\"} 1"
    );
    // The stats, empty after the restart, show it open since it opened.
    let stats_url = format!("{}/v1/endpoints/down/stats", sidecar.admin);
    let periods = sidecar.http.get(&stats_url).await.json["circuit_open"].clone();
    assert_eq!(periods.as_array().map(Vec::len), Some(1), "{periods}");
    assert!(periods[0]["until"].is_null(), "{periods}");
    // Still open: a new delivery is refused without a request.
    let id = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let refused = crate::support::eventually(PATIENCE, || attempts(&sidecar, &id).pop()).await;
    assert_eq!(refused.error_kind.as_deref(), Some("circuit_open"));
    assert_eq!(subscriber.received().len(), 1);

    // A resume makes it half-open; the test ping that follows is the probe.
    let resumed = sidecar
        .http
        .post_json(&format!("{}/v1/endpoints/down/resume", sidecar.admin), "{}")
        .await;
    assert_eq!(resumed.json["circuit"], "half_open", "{:?}", resumed.json);
    let ping = sidecar
        .http
        .post_json(&format!("{}/v1/endpoints/down/test", sidecar.admin), "{}")
        .await;
    assert_eq!(ping.status, 202);
    let received = subscriber.wait_for(2, PATIENCE).await;
    assert_eq!(received[1].header("x-webhook-event"), "webhook.test");
    wait_for_circuit(&sidecar, "closed").await;
    let periods = sidecar.http.get(&stats_url).await.json["circuit_open"].clone();
    assert!(periods[0]["until"].is_string(), "the period is over: {periods}");

    // Closed is kept too.
    let sidecar = sidecar.restart().await;
    assert_eq!(circuit(&sidecar).await, "closed");
}
