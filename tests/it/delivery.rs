//! Delivery end to end: real receivers on 127.0.0.1, the request exactly as
//! SPEC section 4 says, retries, and failures of every kind.

use std::time::Duration;

use hmac::{Hmac, Mac};
use hookd::store::DeliveryStatus;
use sha2::Sha256;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);

/// One endpoint `hook` at `url` for every event, plus `extra` TOML.
fn one_endpoint(url: &str, extra: &str) -> String {
    format!(
        r#"{extra}
[[endpoints]]
id = "hook"
url = "{url}"
events = ["*"]
secret = "hook secret"
headers = {{ "X-Tenant" = "euron" }}
"#
    )
}

/// A short schedule so retries happen within a test.
const FAST_RETRIES: &str = "[delivery]\nretry_schedule = [\"300ms\", \"600ms\"]\nretry_jitter = 0.0\n";

fn hex_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_delivery_carries_the_body_and_headers_of_the_spec() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&one_endpoint(&receiver.url("/hook"), "")).await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let id = sidecar
        .post_event(r#"{"event":"payment.completed","id":"evt_spec","created_at":"2025-03-20T10:30:00Z","data":{"amount": 1.0}}"#)
        .await;
    let request = receiver.wait_for(1, PATIENCE).await.remove(0);
    let body =
        r#"{"id":"evt_spec","event":"payment.completed","created_at":"2025-03-20T10:30:00Z","data":{"amount": 1.0}}"#;
    assert_eq!(request.path, "/hook");
    assert_eq!(std::str::from_utf8(&request.body).unwrap(), body);
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("hookd/"));
    assert_eq!(
        request.header("x-webhook-signature"),
        hex_hmac("hook secret", body.as_bytes())
    );
    assert_eq!(request.header("x-webhook-id"), id);
    assert_eq!(request.header("x-webhook-event"), "payment.completed");
    assert_eq!(request.header("x-webhook-attempt"), "1");
    assert_eq!(request.header("x-tenant"), "euron");
    let timestamp: i64 = request.header("x-webhook-timestamp").parse().unwrap();
    assert!(timestamp >= before && timestamp <= before + 60, "{timestamp}");
    let traceparent: Vec<&str> = request.header("traceparent").split('-').collect();
    assert_eq!((traceparent.len(), traceparent[0], traceparent[1].len()), (4, "00", 32));
    assert!(
        request.headers.get("webhook-signature").is_none(),
        "Standard Webhooks only when asked"
    );

    let delivery = sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    assert_eq!(
        (delivery.status, delivery.attempt_count),
        (DeliveryStatus::Succeeded, 1)
    );
    let attempts = sidecar.store.attempts(&format!("{id}.hook")).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].n, attempts[0].status_code, attempts[0].error_kind.clone()),
        (1, Some(200), None)
    );
}

#[tokio::test]
async fn the_trace_context_of_the_app_reaches_the_subscriber() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&one_endpoint(&receiver.url("/hook"), "")).await;
    let answer = sidecar
        .http
        .send(
            http::Method::POST,
            &format!("{}/v1/events", sidecar.ingest),
            &[
                ("content-type", "application/json"),
                ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ],
            bytes::Bytes::from_static(br#"{"event":"payment.completed","data":{}}"#),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, http::StatusCode::ACCEPTED);
    let request = receiver.wait_for(1, PATIENCE).await.remove(0);
    let traceparent: Vec<&str> = request.header("traceparent").split('-').collect();
    assert_eq!(traceparent[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(traceparent[2], "00f067aa0ba902b7", "a span of its own");
}

#[tokio::test]
async fn failures_are_retried_on_schedule_then_the_delivery_fails() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::status(500).with_body("boom"));
    let sidecar = Sidecar::start(&one_endpoint(&receiver.url("/hook"), FAST_RETRIES)).await;
    let id = sidecar
        .post_event(r#"{"event":"enrollment.created","data":{"x":1}}"#)
        .await;
    let delivery = sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    assert_eq!(
        (delivery.status, delivery.attempt_count),
        (DeliveryStatus::Failed, 3),
        "len(schedule) + 1 attempts"
    );

    let requests = receiver.received();
    assert_eq!(requests.len(), 3);
    let numbers: Vec<&str> = requests.iter().map(|r| r.header("x-webhook-attempt")).collect();
    assert_eq!(numbers, ["1", "2", "3"]);
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "the same bytes every time"
    );
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(300));
    assert!(requests[2].at - requests[1].at >= Duration::from_millis(600));

    let attempts = sidecar.store.attempts(&format!("{id}.hook")).unwrap();
    assert_eq!(attempts.len(), 3);
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt.n as usize, n + 1);
        assert_eq!(attempt.status_code, Some(500));
        assert_eq!(attempt.error_kind.as_deref(), Some("status"));
        assert_eq!(attempt.response_snippet, "boom");
    }
    // Nothing more comes once the delivery has failed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn retry_after_stretches_the_wait_up_to_twice_the_schedule() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(503).with_header("retry-after", "5")]);
    let config = one_endpoint(
        &receiver.url("/hook"),
        "[delivery]\nretry_schedule = [\"400ms\"]\nretry_jitter = 0.0\n",
    );
    let sidecar = Sidecar::start(&config).await;
    let id = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    let delivery = sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    let requests = receiver.received();
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(800),
        "waited the longer delay, capped at 2 x 400ms: {gap:?}"
    );
    assert!(gap < Duration::from_secs(5), "not the full Retry-After: {gap:?}");
}

#[tokio::test]
async fn gone_is_a_failed_attempt_like_any_other() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(410)]);
    let sidecar = Sidecar::start(&one_endpoint(&receiver.url("/hook"), FAST_RETRIES)).await;
    let id = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    let delivery = sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    assert_eq!(
        (delivery.status, delivery.attempt_count),
        (DeliveryStatus::Succeeded, 2)
    );
    let attempts = sidecar.store.attempts(&format!("{id}.hook")).unwrap();
    assert_eq!(attempts[0].status_code, Some(410));
    assert_eq!(attempts[0].error_kind.as_deref(), Some("status"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::status(302).with_header("location", "/elsewhere"));
    let sidecar = Sidecar::start(&one_endpoint(&receiver.url("/hook"), FAST_RETRIES)).await;
    let id = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    let delivery = sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    let attempts = sidecar.store.attempts(&format!("{id}.hook")).unwrap();
    assert!(
        attempts
            .iter()
            .all(|a| a.error_kind.as_deref() == Some("redirect") && a.status_code == Some(302))
    );
    assert!(
        receiver.received().iter().all(|r| r.path == "/hook"),
        "never went to /elsewhere"
    );
}

#[tokio::test]
async fn an_endpoint_that_hangs_times_out() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::hang());
    let config = one_endpoint(
        &receiver.url("/hook"),
        "[delivery]\ntimeout = \"500ms\"\nretry_schedule = []\n",
    );
    let sidecar = Sidecar::start(&config).await;
    let id = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    let delivery = sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    let attempt = sidecar.store.attempts(&format!("{id}.hook")).unwrap().remove(0);
    assert_eq!(
        (attempt.error_kind.as_deref(), attempt.status_code),
        (Some("timeout"), None)
    );
    assert!(attempt.latency_ms >= 500, "{}", attempt.latency_ms);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let sidecar = Sidecar::start(&one_endpoint(&url, "[delivery]\nretry_schedule = []\n")).await;
    let id = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    let delivery = sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    let attempt = sidecar.store.attempts(&format!("{id}.hook")).unwrap().remove(0);
    assert_eq!(attempt.error_kind.as_deref(), Some("connect"));
}

#[tokio::test]
async fn a_huge_response_body_is_cut_at_one_kibibyte() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::status(500).with_body("x".repeat(100_000)));
    let sidecar = Sidecar::start(&one_endpoint(
        &receiver.url("/hook"),
        "[delivery]\nretry_schedule = []\n",
    ))
    .await;
    let id = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    sidecar.finished(&format!("{id}.hook"), PATIENCE).await;
    let attempt = sidecar.store.attempts(&format!("{id}.hook")).unwrap().remove(0);
    assert_eq!(attempt.response_snippet.len(), 1024);
}

#[tokio::test]
async fn a_hanging_endpoint_never_delays_another() {
    let hanging = Receiver::start().await;
    hanging.answer_by_default(Reply::hang());
    let healthy = Receiver::start().await;
    let config = format!(
        r#"
[delivery]
timeout = "30s"
[[endpoints]]
id = "hanging"
url = "{}"
events = ["*"]
secret = "a"
[[endpoints]]
id = "healthy"
url = "{}"
events = ["*"]
secret = "b"
"#,
        hanging.url("/hook"),
        healthy.url("/hook")
    );
    let sidecar = Sidecar::start(&config).await;
    // Fill the hanging endpoint's limit first, then keep posting.
    for n in 0..60 {
        sidecar
            .post_event(&format!(r#"{{"event":"payment.completed","data":{{"n":{n}}}}}"#))
            .await;
    }
    // Every event reaches the healthy endpoint long before the hanging
    // one's first timeout (30 s), while its attempts hang.
    hanging.wait_for(16, Duration::from_secs(15)).await;
    healthy.wait_for(60, Duration::from_secs(15)).await;
    assert_eq!(
        hanging.received().len(),
        16,
        "the hanging endpoint holds only its own limit"
    );
}

#[tokio::test]
async fn shutdown_lets_attempts_in_flight_finish() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::ok().after(Duration::from_millis(700)));
    let mut sidecar = Sidecar::start(&one_endpoint(&receiver.url("/hook"), "")).await;
    let id = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    receiver.wait_for(1, PATIENCE).await;
    sidecar.shutdown().await;
    let delivery = sidecar.store.delivery(&format!("{id}.hook")).unwrap().unwrap();
    assert_eq!(
        delivery.status,
        DeliveryStatus::Succeeded,
        "the answer came within the grace period"
    );
}
