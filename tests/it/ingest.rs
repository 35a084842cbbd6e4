//! `POST /v1/events`: what is stored, idempotent resubmission, and every
//! error code, each time checking that nothing was stored.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::support::TWO_ENDPOINTS;
use crate::support::sidecar::{Sidecar, ingested};

async fn sidecar() -> Sidecar {
    Sidecar::start(&format!("[ingest]\nmax_body_bytes = 4096\n{TWO_ENDPOINTS}")).await
}

fn events_url(sidecar: &Sidecar) -> String {
    format!("{}/v1/events", sidecar.ingest)
}

#[tokio::test]
async fn an_accepted_event_is_stored_with_one_delivery_per_subscribed_endpoint() {
    let sidecar = sidecar().await;
    let body =
        r#"{"event": "payment.completed", "data": {"amount": 1.0, "currency":"EUR" , "student_id": "student_xyz789"}}"#;
    let answer = sidecar.http.post_json(&events_url(&sidecar), body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
    let id = answer.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("evt_"), "{id}");
    assert_eq!(answer.json["deliveries"], 2);
    assert!(answer.json.get("duplicate").is_none());

    let record = sidecar.store.event(&id).unwrap().expect("the event is stored");
    assert_eq!(
        record.data(),
        br#"{"amount": 1.0, "currency":"EUR" , "student_id": "student_xyz789"}"#,
        "data bytes exactly as sent"
    );
    let raw = std::str::from_utf8(&record.body).unwrap();
    let positions: Vec<usize> = ["\"id\":", "\"event\":", "\"created_at\":", "\"data\":"]
        .iter()
        .map(|key| raw.find(key).unwrap_or_else(|| panic!("{key} missing from {raw}")))
        .collect();
    assert!(positions.is_sorted() && positions[0] == 1, "four keys in order: {raw}");
    let body: serde_json::Value = serde_json::from_slice(&record.body).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 4);
    assert_eq!(body["id"], id.as_str());
    let created_at = body["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == "2025-03-20T10:30:00.000Z".len(),
        "{created_at}"
    );

    let deliveries = sidecar.store.deliveries_of_event(&id).unwrap();
    let endpoints: Vec<&str> = deliveries.iter().map(|(_, d)| d.endpoint.as_str()).collect();
    assert_eq!(endpoints.len(), 2);
    assert!(endpoints.contains(&"crm") && endpoints.contains(&"billing"));
    for (_, delivery) in &deliveries {
        assert_eq!(
            (delivery.event_id.as_str(), delivery.event.as_str()),
            (id.as_str(), "payment.completed")
        );
    }
    let counts = ingested(&sidecar.store);
    assert_eq!((counts.events, counts.deliveries, counts.recent), (1, 2, 1));
}

#[tokio::test]
async fn the_app_may_give_the_id_and_created_at() {
    let sidecar = sidecar().await;
    let body = json!({"event": "enrollment.created", "data": {"student_id": "s1"}, "id": "evt_abc123",
        "created_at": "2025-03-20T12:30:00.25+02:00"});
    let answer = sidecar.http.post_json(&events_url(&sidecar), body.to_string()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
    assert_eq!(answer.json, json!({"id": "evt_abc123", "deliveries": 1}));
    let record = sidecar.store.event("evt_abc123").unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&record.body).unwrap(),
        r#"{"id":"evt_abc123","event":"enrollment.created","created_at":"2025-03-20T10:30:00.25Z","data":{"student_id":"s1"}}"#
    );
}

#[tokio::test]
async fn an_event_no_endpoint_wants_is_stored_with_no_deliveries() {
    let sidecar = sidecar().await;
    let answer = sidecar
        .http
        .post_json(&events_url(&sidecar), r#"{"event":"course.published","data":{}}"#)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.json["deliveries"], 0);
    let counts = sidecar.store.counts().unwrap();
    assert_eq!((counts.events, counts.deliveries, counts.finished), (1, 0, 1));
}

#[tokio::test]
async fn a_faithful_resubmission_answers_200_and_stores_nothing_twice() {
    let sidecar = sidecar().await;
    let first = r#"{"id":"evt_same","event":"payment.completed","data":{"n": 1.50}}"#;
    let answer = sidecar.http.post_json(&events_url(&sidecar), first).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let before = ingested(&sidecar.store);

    // Same content, other key order and spacing outside `data`.
    let again = r#"{ "data":{"n": 1.50}, "event" : "payment.completed", "id":"evt_same" }"#;
    let answer = sidecar.http.post_json(&events_url(&sidecar), again).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json,
        json!({"id": "evt_same", "deliveries": 2, "duplicate": true})
    );
    assert_eq!(ingested(&sidecar.store), before);
}

#[tokio::test]
async fn the_same_id_with_other_content_is_a_conflict() {
    let sidecar = sidecar().await;
    let original = r#"{"id":"evt_c","event":"payment.completed","data":{"n":1},"created_at":"2025-03-20T10:30:00Z"}"#;
    assert_eq!(
        sidecar.http.post_json(&events_url(&sidecar), original).await.status,
        StatusCode::ACCEPTED
    );
    let before = ingested(&sidecar.store);
    let stored = sidecar.store.event("evt_c").unwrap();

    let conflicts = [
        r#"{"id":"evt_c","event":"payment.completed","data":{"n":1.0}}"#,
        r#"{"id":"evt_c","event":"payment.completed","data":{"n": 1}}"#,
        r#"{"id":"evt_c","event":"payment.failed","data":{"n":1}}"#,
        r#"{"id":"evt_c","event":"payment.completed","data":{"n":1},"created_at":"2025-03-20T10:30:01Z"}"#,
    ];
    for body in conflicts {
        let answer = sidecar.http.post_json(&events_url(&sidecar), body).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{body}");
        assert_eq!(answer.error_code(), "id_conflict");
    }
    // The same instant written in another zone is the same created_at.
    let same_instant =
        r#"{"id":"evt_c","event":"payment.completed","data":{"n":1},"created_at":"2025-03-20T11:30:00+01:00"}"#;
    assert_eq!(
        sidecar.http.post_json(&events_url(&sidecar), same_instant).await.status,
        StatusCode::OK
    );
    assert_eq!(ingested(&sidecar.store), before);
    assert_eq!(sidecar.store.event("evt_c").unwrap(), stored);
}

#[tokio::test]
async fn concurrent_resubmissions_store_one_event() {
    let sidecar = sidecar().await;
    let body = r#"{"id":"evt_race","event":"enrollment.created","data":{"k":"v"}}"#;
    let mut posts = Vec::new();
    for _ in 0..32 {
        let http = sidecar.http.clone();
        let url = events_url(&sidecar);
        posts.push(tokio::spawn(async move { http.post_json(&url, body).await.status }));
    }
    let mut statuses = Vec::new();
    for post in posts {
        statuses.push(post.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        31,
        "{statuses:?}"
    );
    let counts = ingested(&sidecar.store);
    assert_eq!((counts.events, counts.deliveries), (1, 1));
}

#[tokio::test]
async fn concurrent_events_share_synced_writes() {
    let sidecar = sidecar().await;
    let before = sidecar.store.write_stats();
    let mut posts = Vec::new();
    for client in 0..64 {
        let http = sidecar.http.clone();
        let url = events_url(&sidecar);
        posts.push(tokio::spawn(async move {
            for n in 0..8 {
                let body = format!(r#"{{"id":"evt_{client}_{n}","event":"payment.completed","data":{{}}}}"#);
                assert_eq!(http.post_json(&url, body).await.status, StatusCode::ACCEPTED);
            }
        }));
    }
    for post in posts {
        post.await.unwrap();
    }
    let after = sidecar.store.write_stats();
    let events = after.events - before.events;
    let writes = after.synced_writes - before.synced_writes;
    assert_eq!(events, 512);
    assert!(
        writes < events,
        "group commit: {writes} synced writes for {events} events"
    );
    assert_eq!(ingested(&sidecar.store).events, 512);
}

/// Posts `body` with `content_type` and checks the error answer and that
/// the store did not change.
async fn assert_refused(
    sidecar: &Sidecar,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    status: StatusCode,
    code: &str,
) {
    let before = ingested(&sidecar.store);
    let headers: Vec<(&str, &str)> = content_type.map(|value| ("content-type", value)).into_iter().collect();
    let answer = sidecar
        .http
        .send(
            Method::POST,
            &format!("{}{path}", sidecar.ingest),
            &headers,
            Bytes::copy_from_slice(body),
        )
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    assert_eq!(answer.status, status, "{shown}: {:?}", answer.json);
    assert_eq!(answer.error_code(), code, "{shown}: {:?}", answer.json);
    assert!(
        !answer.json["error"]["message"].as_str().unwrap_or("").is_empty(),
        "errors explain themselves"
    );
    assert_eq!(ingested(&sidecar.store), before, "{shown}: nothing stored");
}

#[tokio::test]
async fn every_ingest_error_is_json_and_stores_nothing() {
    let sidecar = sidecar().await;
    let json = Some("application/json");
    let bad_json: &[&[u8]] = &[
        b"{",
        b"",
        b"not json",
        br#"{"event":"payment.completed","data":{}} trailing"#,
        b"{\"event\":\"payment.completed\",\"data\":{\"name\":\"\xff\xfe\"}}",
    ];
    for body in bad_json {
        assert_refused(
            &sidecar,
            "/v1/events",
            json,
            body,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        )
        .await;
    }
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        let deep = format!(
            r#"{{"event":"payment.completed","data":{{"x":{}{}}}}}"#,
            open.repeat(500),
            close.repeat(500)
        );
        assert_refused(
            &sidecar,
            "/v1/events",
            json,
            deep.as_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        )
        .await;
    }

    let bad_fields: &[&str] = &[
        r#"{"data":{}}"#,
        r#"{"event":"payment.completed"}"#,
        r#"{"event":"payment.completed","data":[1]}"#,
        r#"{"event":"payment.completed","data":"x"}"#,
        r#"{"event":"payment.completed","data":null}"#,
        r#"{"event":7,"data":{}}"#,
        r#"{"event":"payment.completed","data":{},"id":""}"#,
        r#"{"event":"payment.completed","data":{},"id":"has space"}"#,
        r#"{"event":"payment.completed","data":{},"id":42}"#,
        r#"{"event":"payment.completed","data":{},"created_at":"yesterday"}"#,
        r#"{"event":"payment.completed","data":{},"created_at":"2025-03-20"}"#,
        r#"{"event":"payment.completed","data":{},"colour":"blue"}"#,
        r#"{"event":"payment.completed","event":"payment.failed","data":{}}"#,
        r#"[{"event":"payment.completed","data":{}}]"#,
    ];
    for body in bad_fields {
        assert_refused(
            &sidecar,
            "/v1/events",
            json,
            body.as_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        )
        .await;
    }
    let long_id = format!(
        r#"{{"event":"payment.completed","data":{{}},"id":"{}"}}"#,
        "a".repeat(129)
    );
    assert_refused(
        &sidecar,
        "/v1/events",
        json,
        long_id.as_bytes(),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;

    for body in [
        r#"{"event":"invoice.paid","data":{}}"#,
        r#"{"event":"webhook.test","data":{}}"#,
    ] {
        assert_refused(
            &sidecar,
            "/v1/events",
            json,
            body.as_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event",
        )
        .await;
    }

    let good = br#"{"event":"payment.completed","data":{}}"#;
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        assert_refused(
            &sidecar,
            "/v1/events",
            content_type,
            good,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }

    let big = format!(
        r#"{{"event":"payment.completed","data":{{"pad":"{}"}}}}"#,
        "x".repeat(5000)
    );
    assert_refused(
        &sidecar,
        "/v1/events",
        json,
        big.as_bytes(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn json_with_a_charset_is_json() {
    let sidecar = sidecar().await;
    let answer = sidecar
        .http
        .send(
            Method::POST,
            &events_url(&sidecar),
            &[("content-type", "application/json; charset=utf-8")],
            Bytes::from_static(br#"{"event":"payment.completed","data":{}}"#),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let sidecar = sidecar().await;
    let answer = sidecar.http.get(&format!("{}/v1/nothing", sidecar.ingest)).await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let answer = sidecar.http.get(&events_url(&sidecar)).await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let answer = sidecar.http.get(&format!("{}/v1/events/batch", sidecar.ingest)).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_closed_store_answers_503_with_retry_after() {
    let sidecar = sidecar().await;
    sidecar.store.close();
    let answer = sidecar
        .http
        .post_json(&events_url(&sidecar), r#"{"event":"payment.completed","data":{}}"#)
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.error_code(), "storage_unavailable");
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(ingested(&sidecar.store).events, 0);
}
