//! The admin API through real HTTP against a running hookd: endpoint
//! health, pause, manual and bulk retry, test pings, listings, the config,
//! and who may call it.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::support::http::Answer;
use crate::support::receiver::{Receiver, Reply};
use crate::support::script_subscriber::ScriptSubscriber;
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);
const SECRET: &str = "admin-test-secret-value";

fn endpoint(id: &str, url: &str, extra: &str) -> String {
    format!("[[endpoints]]\nid = \"{id}\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"{SECRET}\"\n{extra}\n")
}

async fn admin_post(sidecar: &Sidecar, path: &str, body: &str) -> Answer {
    sidecar
        .http
        .send(
            Method::POST,
            &format!("{}{path}", sidecar.admin),
            &[("content-type", "application/json")],
            Bytes::from(body.to_owned()),
        )
        .await
        .unwrap()
}

async fn admin_get(sidecar: &Sidecar, path: &str) -> Answer {
    sidecar.http.get(&format!("{}{path}", sidecar.admin)).await
}

#[tokio::test]
async fn manual_retry_of_a_failed_delivery_is_one_extra_attempt() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::status(500));
    let config = format!(
        "[delivery]\nretry_schedule = [\"100ms\"]\nretry_jitter = 0.0\n{}",
        endpoint("crm", &receiver.url("/hook"), "")
    );
    let sidecar = Sidecar::start(&config).await;
    let event = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let id = format!("{event}.crm");
    assert_eq!(sidecar.finished(&id, PATIENCE).await.attempt_count, 2);

    let shown = admin_get(&sidecar, &format!("/v1/deliveries/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json["status"], "failed");
    assert_eq!(shown.json["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(shown.json["attempts"][0]["status_code"], 500);
    assert_eq!(shown.json["attempts"][0]["error_kind"], "status");
    assert!(
        shown.json["payload"]
            .as_str()
            .unwrap()
            .starts_with(&format!(r#"{{"id":"{event}""#))
    );

    // A retry that fails again leaves it failed: no new schedule.
    let answer = admin_post(&sidecar, &format!("/v1/deliveries/{id}/retry"), "").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.json, serde_json::json!({"id": id, "status": "pending"}));
    receiver.wait_for(3, PATIENCE).await;
    let delivery = crate::support::eventually(PATIENCE, || {
        sidecar
            .store
            .delivery(&id)
            .unwrap()
            .filter(|d| d.attempt_count == 3 && d.status == hookd::store::DeliveryStatus::Failed)
    })
    .await;
    assert_eq!(delivery.attempt_count, 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 3, "no scheduled retry after a manual one");

    // Now the subscriber is back: the next retry succeeds as attempt 4.
    receiver.answer_by_default(Reply::ok());
    assert_eq!(
        admin_post(&sidecar, &format!("/v1/deliveries/{id}/retry"), "")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let delivery = sidecar.finished(&id, PATIENCE).await;
    assert_eq!(
        (delivery.status, delivery.attempt_count),
        (hookd::store::DeliveryStatus::Succeeded, 4)
    );
    assert_eq!(receiver.received()[3].header("x-webhook-attempt"), "4");

    let again = admin_post(&sidecar, &format!("/v1/deliveries/{id}/retry"), "").await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "not_failed"));
    let missing = admin_post(&sidecar, "/v1/deliveries/evt_nope.crm/retry", "").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn retry_failed_retries_an_endpoints_failures_since_a_time() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::status(503));
    let config = format!(
        "[delivery]\nretry_schedule = []\n{}",
        endpoint("crm", &receiver.url("/hook"), "")
    );
    let sidecar = Sidecar::start(&config).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let event = sidecar
            .post_event(&format!(r#"{{"event":"payment.completed","data":{{"n":{n}}}}}"#))
            .await;
        ids.push(format!("{event}.crm"));
    }
    for id in &ids {
        sidecar.finished(id, PATIENCE).await;
    }
    let endpoints = admin_get(&sidecar, "/v1/endpoints").await;
    assert_eq!(endpoints.json["data"][0]["failed"], 3);

    let future = admin_post(
        &sidecar,
        "/v1/endpoints/crm/retry-failed",
        r#"{"since":"2999-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(future.json, serde_json::json!({"retried": 0}));
    receiver.answer_by_default(Reply::ok());
    let all = admin_post(&sidecar, "/v1/endpoints/crm/retry-failed", "").await;
    assert_eq!(
        (all.status, all.json.clone()),
        (StatusCode::ACCEPTED, serde_json::json!({"retried": 3}))
    );
    for id in &ids {
        assert_eq!(
            sidecar.finished(id, PATIENCE).await.status,
            hookd::store::DeliveryStatus::Succeeded
        );
    }
    let endpoints = admin_get(&sidecar, "/v1/endpoints").await;
    assert_eq!(endpoints.json["data"][0]["failed"], 0);
    let bad = admin_post(&sidecar, "/v1/endpoints/crm/retry-failed", r#"{"since":"yesterday"}"#).await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    let unknown = admin_post(&sidecar, "/v1/endpoints/nope/retry-failed", "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_test_ping_arrives_signed() {
    let subscriber = ScriptSubscriber::node(SECRET, &[]);
    let sidecar = Sidecar::start(&endpoint("node", &subscriber.url(), "")).await;
    let answer = admin_post(&sidecar, "/v1/endpoints/node/test", "").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let id = answer.json["id"].as_str().unwrap().to_owned();
    let check = subscriber.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(check["snippet"], true, "{check}");
    assert_eq!(check["id"], id.as_str());
    let body: Value = serde_json::from_str(check["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["event"], "webhook.test");
}

#[tokio::test]
async fn a_paused_endpoint_keeps_its_deliveries_waiting_across_restarts() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&endpoint("crm", &receiver.url("/hook"), "")).await;
    let paused = admin_post(&sidecar, "/v1/endpoints/crm/pause", "").await;
    assert_eq!(
        (paused.status, paused.json["paused"].clone()),
        (StatusCode::OK, Value::Bool(true))
    );
    let event = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let id = format!("{event}.crm");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty(), "a paused endpoint gets nothing");
    let shown = admin_get(&sidecar, &format!("/v1/deliveries/{id}")).await;
    assert_eq!(shown.json["status"], "paused");
    let listed = admin_get(&sidecar, "/v1/deliveries?status=paused").await;
    assert_eq!(listed.json["data"][0]["id"], id.as_str());

    let sidecar = sidecar.restart().await;
    let endpoints = admin_get(&sidecar, "/v1/endpoints").await;
    assert_eq!(
        endpoints.json["data"][0]["paused"], true,
        "the pause is kept in the store"
    );
    assert_eq!(endpoints.json["data"][0]["pending"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());

    let resumed = admin_post(&sidecar, "/v1/endpoints/crm/resume", "").await;
    assert_eq!(resumed.json["paused"], false);
    receiver.wait_for(1, PATIENCE).await;
    assert_eq!(
        sidecar.finished(&id, PATIENCE).await.status,
        hookd::store::DeliveryStatus::Succeeded
    );
    let endpoints = admin_get(&sidecar, "/v1/endpoints").await;
    let crm = &endpoints.json["data"][0];
    assert_eq!(
        (crm["pending"].clone(), crm["success_rate_1h"].clone()),
        (Value::from(0), Value::from(1.0))
    );
    assert_eq!(crm["last_attempt"]["status_code"], 200);
    assert_eq!(crm["concurrency"], 16);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_filters_and_a_cursor() {
    let receiver = Receiver::start().await;
    let config = format!(
        "{}{}",
        endpoint("a", &receiver.url("/a"), ""),
        endpoint("b", &receiver.url("/b"), "enabled = false")
    );
    let sidecar = Sidecar::start(&config).await;
    let mut events = Vec::new();
    for n in 0..5 {
        let kind = if n % 2 == 0 {
            "payment.completed"
        } else {
            "enrollment.created"
        };
        events.push(
            sidecar
                .post_event(&format!(r#"{{"event":"{kind}","data":{{"n":{n}}}}}"#))
                .await,
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let all = admin_get(&sidecar, "/v1/deliveries").await;
    let ids: Vec<&str> = all.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = events.iter().rev().map(|event| format!("{event}.a")).collect();
    assert_eq!(ids, expected, "newest first; the disabled endpoint got none");
    assert_eq!(all.json["next_cursor"], Value::Null);

    let payments = admin_get(&sidecar, "/v1/deliveries?event=payment.completed&endpoint=a").await;
    assert_eq!(payments.json["data"].as_array().unwrap().len(), 3);
    let one = admin_get(&sidecar, &format!("/v1/deliveries?event_id={}", events[2])).await;
    let found: Vec<&str> = one.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, [format!("{}.a", events[2])], "found by its event id");
    assert_eq!(one.json["next_cursor"], Value::Null);
    let none = admin_get(
        &sidecar,
        &format!("/v1/deliveries?event_id={}&status=failed", events[2]),
    )
    .await;
    assert_eq!(
        none.json["data"],
        serde_json::json!([]),
        "and the other filters still apply"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/deliveries?limit=2&cursor={cursor}"),
            None => "/v1/deliveries?limit=2".to_owned(),
        };
        let page = admin_get(&sidecar, &path).await;
        seen.extend(
            page.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected, "pages cover everything once, in order");

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "status=done",
        "cursor=zz",
        "colour=blue",
    ] {
        let answer = admin_get(&sidecar, &format!("/v1/deliveries?{bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let missing = admin_get(&sidecar, "/v1/deliveries/evt_missing.a").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn the_token_guards_everything_but_the_probes() {
    let sidecar = Sidecar::start("[admin]\ntoken = \"t0ken-value\"\n").await;
    for path in ["/v1/endpoints", "/v1/deliveries", "/v1/config"] {
        let answer = admin_get(&sidecar, path).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
        let wrong = sidecar
            .http
            .send(
                Method::GET,
                &format!("{}{path}", sidecar.admin),
                &[("authorization", "Bearer nope")],
                Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        let right = sidecar
            .http
            .send(
                Method::GET,
                &format!("{}{path}", sidecar.admin),
                &[("authorization", "Bearer t0ken-value")],
                Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(right.status, StatusCode::OK, "{path}");
    }
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(admin_get(&sidecar, probe).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn posts_must_be_json_and_from_this_site() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&endpoint("crm", &receiver.url("/hook"), "")).await;
    let url = format!("{}/v1/endpoints/crm/pause", sidecar.admin);
    let form = sidecar
        .http
        .send(
            Method::POST,
            &url,
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let cross_site = sidecar
        .http
        .send(
            Method::POST,
            &url,
            &[("content-type", "application/json"), ("origin", "http://evil.example")],
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        (cross_site.status, cross_site.error_code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let host = sidecar.admin.trim_start_matches("http://").to_owned();
    let same_site = sidecar
        .http
        .send(
            Method::POST,
            &url,
            &[
                ("content-type", "application/json"),
                ("origin", &format!("http://{host}")),
            ],
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(same_site.status, StatusCode::OK);
    assert_eq!(
        admin_get(&sidecar, "/v1/endpoints").await.json["data"][0]["paused"],
        true
    );
}

#[tokio::test]
async fn no_admin_answer_holds_a_secret() {
    let receiver = Receiver::start().await;
    let config = format!(
        "[admin]\ntoken = \"the-admin-token\"\n{}",
        endpoint(
            "crm",
            &receiver.url("/hook"),
            "previous_secrets = [{ secret = \"old-secret-value\", until = \"2999-01-01T00:00:00Z\" }]"
        )
    );
    let sidecar = Sidecar::start(&config).await;
    let event = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    sidecar.finished(&format!("{event}.crm"), PATIENCE).await;
    let auth = [("authorization", "Bearer the-admin-token")];
    let mut everything = String::new();
    for path in [
        "/v1/endpoints".to_owned(),
        "/v1/deliveries".to_owned(),
        format!("/v1/deliveries/{event}.crm"),
        "/v1/config".to_owned(),
    ] {
        let answer = sidecar
            .http
            .send(Method::GET, &format!("{}{path}", sidecar.admin), &auth, Bytes::new())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        everything.push_str(&answer.json.to_string());
    }
    for secret in [SECRET, "old-secret-value", "the-admin-token"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    let config = sidecar
        .http
        .send(
            Method::GET,
            &format!("{}/v1/config", sidecar.admin),
            &auth,
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(config.json["config"]["endpoints"][0]["secret"], "<redacted>");
    assert_eq!(config.json["last_reload_error"], Value::Null);
    assert_eq!(config.json["restart_needed"], false);
    assert!(config.json["loaded_at"].as_str().unwrap().ends_with('Z'));
}
