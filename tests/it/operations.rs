//! Operational events (SPEC 4): hookd's own events reach the alert
//! endpoint, signed, with the endpoint and its tenant but never an event's
//! data or a secret; the alert endpoint's own failures raise none; a
//! backlog raises one, at most once an hour.

use std::time::Duration;

use serde_json::Value;

use crate::support::receiver::{Received, Receiver, Reply};
use crate::support::sidecar::Sidecar;
use crate::support::signature;

const PATIENCE: Duration = Duration::from_secs(30);

fn config(crm: &Receiver, ops: &Receiver, extra: &str) -> String {
    format!(
        r#"
[delivery]
retry_schedule = []
endpoint_concurrency = 1
[operations]
alert_endpoint = "ops"
{extra}
[[endpoints]]
id = "crm"
tenant = "acme"
url = "{}"
events = ["payment.*"]
secret = "crm secret"
[[endpoints]]
id = "ops"
tenant = "platform"
url = "{}"
events = []
secret = "ops secret"
"#,
        crm.url("/crm"),
        ops.url("/ops")
    )
}

/// The operational events `ops` got, by name, each checked for its
/// signature and for holding neither the events' data nor a secret.
fn events(ops: &Receiver, name: &str) -> Vec<Value> {
    ops.received()
        .iter()
        .filter(|request| request.header("x-webhook-event") == name)
        .map(|request: &Received| {
            assert_eq!(
                request.header("x-webhook-signature"),
                signature("ops secret", &request.body)
            );
            let text = String::from_utf8_lossy(&request.body);
            assert!(!text.contains("card_ending_4242") && !text.contains("secret"), "{text}");
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            body["data"].clone()
        })
        .collect()
}

async fn wait_for_events(ops: &Receiver, name: &str, count: usize) -> Vec<Value> {
    crate::support::eventually(PATIENCE, || {
        let found = events(ops, name);
        (found.len() >= count).then_some(found)
    })
    .await
}

const PAYMENT: &str = r#"{"event":"payment.completed","tenant":"acme","data":{"card_ending_4242":true}}"#;

#[tokio::test]
async fn failures_and_circuit_changes_reach_the_alert_endpoint_without_data_or_secrets() {
    let (crm, ops) = (Receiver::start().await, Receiver::start().await);
    crm.answer_by_default(Reply::status(500));
    let sidecar = Sidecar::start(&config(
        &crm,
        &ops,
        "[delivery.breaker]\nfailures = 2\ncooldown = \"500ms\"\nmax_cooldown = \"500ms\"",
    ))
    .await;
    let first = sidecar.post_event(PAYMENT).await;
    wait_for_events(&ops, "hookd.delivery.failed", 1).await;
    sidecar.post_event(PAYMENT).await;

    let failed = wait_for_events(&ops, "hookd.delivery.failed", 2).await;
    let first_failed = failed.iter().find(|data| data["event_id"] == first.as_str()).unwrap();
    assert_eq!(
        *first_failed,
        serde_json::json!({
            "endpoint": "crm", "tenant": "acme", "delivery_id": format!("{first}.crm"), "event_id": first,
            "event": "payment.completed", "attempts": 1, "error_kind": "status", "status_code": 500,
        })
    );
    let opened = wait_for_events(&ops, "hookd.endpoint.circuit_opened", 1).await;
    assert_eq!(
        opened[0],
        serde_json::json!({"endpoint": "crm", "tenant": "acme", "failures": 2, "cooldown_ms": 500})
    );

    // Back up: after the cooldown the next delivery probes and closes it.
    crm.answer_by_default(Reply::ok());
    tokio::time::sleep(Duration::from_millis(600)).await;
    sidecar.post_event(PAYMENT).await;
    let closed = wait_for_events(&ops, "hookd.endpoint.circuit_closed", 1).await;
    assert_eq!(closed[0]["endpoint"], "crm");
    // Operational events have no tenant, and the ops endpoint's own tenant
    // did not stop them.
    let stored = sidecar.store.delivery(&format!("{first}.crm")).unwrap().unwrap();
    assert_eq!(stored.tenant.as_deref(), Some("acme"));
    assert!(ops.received().iter().all(|request| request.answered == 200));
}

#[tokio::test]
async fn the_alert_endpoints_own_failures_raise_nothing() {
    let (crm, ops) = (Receiver::start().await, Receiver::start().await);
    crm.answer_by_default(Reply::status(500));
    ops.answer_by_default(Reply::status(500));
    let sidecar = Sidecar::start(&config(&crm, &ops, "")).await;
    sidecar.post_event(PAYMENT).await;
    // One report of crm's failure; it fails for good at the ops endpoint,
    // without a report of that.
    wait_for_events(&ops, "hookd.delivery.failed", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = ops.received();
    let names: Vec<&str> = received
        .iter()
        .map(|request| request.header("x-webhook-event"))
        .collect();
    assert_eq!(names, ["hookd.delivery.failed"]);
}

#[tokio::test]
async fn a_backlog_raises_one_event_an_hour() {
    let (crm, ops) = (Receiver::start().await, Receiver::start().await);
    let config = config(&crm, &ops, "backlog_alert = \"1s\"").replace(
        "events = [\"payment.*\"]",
        "events = [\"payment.*\"]\nrate_limit = \"1/m\"",
    );
    let sidecar = Sidecar::start(&config).await;
    for _ in 0..3 {
        sidecar.post_event(PAYMENT).await;
    }
    let backlog = wait_for_events(&ops, "hookd.endpoint.backlog", 1).await;
    assert_eq!(backlog[0]["endpoint"], "crm");
    assert_eq!(backlog[0]["tenant"], "acme");
    assert_eq!(backlog[0]["pending"], 2);
    assert!(
        backlog[0]["oldest_pending_ms"].as_u64().unwrap() > 1_000,
        "{}",
        backlog[0]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(events(&ops, "hookd.endpoint.backlog").len(), 1, "at most one an hour");
}

#[tokio::test]
async fn a_delivery_that_expires_on_a_paused_endpoint_is_reported() {
    let (crm, ops) = (Receiver::start().await, Receiver::start().await);
    let sidecar = Sidecar::start(&config(&crm, &ops, "[storage]\nretention = \"1s\"")).await;
    let paused = sidecar
        .http
        .post_json(&format!("{}/v1/endpoints/crm/pause", sidecar.admin), "{}")
        .await;
    assert_eq!(paused.status, 200);
    let id = sidecar.post_event(PAYMENT).await;
    let failed = wait_for_events(&ops, "hookd.delivery.failed", 1).await;
    assert_eq!(failed[0]["event_id"], id.as_str());
    assert_eq!(failed[0]["error_kind"], "expired");
    assert_eq!(failed[0]["status_code"], Value::Null);
    assert!(crm.received().is_empty());
}

/// Past 60 failures of one endpoint in a minute, the rest are told in one
/// summary once the minute is over (about a minute: this test waits it).
#[tokio::test]
async fn past_sixty_failures_a_minute_one_summary_tells_the_rest() {
    let (crm, ops) = (Receiver::start().await, Receiver::start().await);
    crm.answer_by_default(Reply::status(500));
    let sidecar = Sidecar::start(&config(&crm, &ops, "[delivery.breaker]\nfailures = 0")).await;
    let payments = [PAYMENT; 65];
    let answer = sidecar
        .http
        .post_json(
            &format!("{}/v1/events/batch", sidecar.ingest),
            format!(r#"{{"events":[{}]}}"#, payments.join(",")),
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.json);
    wait_for_events(&ops, "hookd.delivery.failed", 60).await;
    let summary = crate::support::eventually(Duration::from_secs(90), || {
        events(&ops, "hookd.delivery.failed_summary").pop()
    })
    .await;
    assert_eq!(summary["endpoint"], "crm");
    assert_eq!(summary["tenant"], "acme");
    assert_eq!(summary["count"], 5);
    assert!(
        summary["since"].as_str().is_some_and(|since| since.ends_with('Z')),
        "{summary}"
    );
    assert_eq!(events(&ops, "hookd.delivery.failed").len(), 60);
}
