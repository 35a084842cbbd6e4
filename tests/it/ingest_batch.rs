//! `POST /v1/events/batch`: all or nothing, answers in request order.

use http::StatusCode;
use serde_json::json;

use crate::support::TWO_ENDPOINTS;
use crate::support::sidecar::{Sidecar, ingested};

async fn sidecar() -> Sidecar {
    Sidecar::start(&format!("[ingest]\nmax_batch_events = 5\n{TWO_ENDPOINTS}")).await
}

fn batch_url(sidecar: &Sidecar) -> String {
    format!("{}/v1/events/batch", sidecar.ingest)
}

#[tokio::test]
async fn a_batch_is_stored_whole_and_answered_in_order() {
    let sidecar = sidecar().await;
    let batch = json!({"events": [
        {"event": "payment.completed", "data": {"n": 1}, "id": "evt_b1"},
        {"event": "enrollment.created", "data": {"n": 2}},
        {"event": "course.published", "data": {"n": 3}, "id": "evt_b3"},
    ]});
    let answer = sidecar.http.post_json(&batch_url(&sidecar), batch.to_string()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
    let events = answer.json["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], json!({"id": "evt_b1", "deliveries": 2}));
    assert!(events[1]["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(events[1]["deliveries"], 1);
    assert_eq!(events[2], json!({"id": "evt_b3", "deliveries": 0}));
    let counts = ingested(&sidecar.store);
    assert_eq!((counts.events, counts.deliveries), (3, 3));

    // Resubmitting marks each stored item as a duplicate and stores nothing.
    let again = json!({"events": [
        {"event": "payment.completed", "data": {"n": 1}, "id": "evt_b1"},
        {"event": "payment.failed", "data": {}, "id": "evt_b4"},
    ]});
    let answer = sidecar.http.post_json(&batch_url(&sidecar), again.to_string()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(
        answer.json["events"],
        json!([{"id": "evt_b1", "deliveries": 2, "duplicate": true}, {"id": "evt_b4", "deliveries": 1}])
    );
    assert_eq!(ingested(&sidecar.store).events, 4);
}

#[tokio::test]
async fn one_bad_item_refuses_the_whole_batch_naming_its_index() {
    let sidecar = sidecar().await;
    sidecar
        .http
        .post_json(
            &format!("{}/v1/events", sidecar.ingest),
            r#"{"id":"evt_taken","event":"payment.completed","data":{"v":1}}"#,
        )
        .await;
    let before = ingested(&sidecar.store);
    let cases = [
        (
            json!([{"event": "payment.completed", "data": {}, "id": "evt_x1"}, {"event": "payment.completed"}]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            1,
        ),
        (
            json!([{"event": "payment.completed", "data": {}}, {"event": "nope.nope", "data": {}}]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event",
            1,
        ),
        (
            json!([{"event": "payment.completed", "data": {}, "id": "evt_d"}, {"event": "payment.completed", "data": {}, "id": "evt_d"}]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            1,
        ),
        (
            json!([{"event": "payment.completed", "data": {}, "id": "evt_new"}, {"event": "payment.completed", "data": {"v": 2}, "id": "evt_taken"}]),
            StatusCode::CONFLICT,
            "id_conflict",
            1,
        ),
        (
            json!([7, {"event": "payment.completed", "data": {}}]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            0,
        ),
    ];
    for (events, status, code, index) in cases {
        let body = json!({ "events": events }).to_string();
        let answer = sidecar.http.post_json(&batch_url(&sidecar), body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {:?}", answer.json);
        assert_eq!(answer.error_code(), code, "{body}");
        assert_eq!(answer.json["error"]["index"], index, "{body}");
        assert_eq!(ingested(&sidecar.store), before, "{body}: nothing stored");
    }
    assert!(sidecar.store.event("evt_x1").unwrap().is_none());
    assert!(sidecar.store.event("evt_new").unwrap().is_none());
}

#[tokio::test]
async fn batch_shape_and_size_errors() {
    let sidecar = sidecar().await;
    let six: Vec<_> = (0..6)
        .map(|_| json!({"event": "payment.completed", "data": {}}))
        .collect();
    let cases = [
        (
            json!({ "events": six }).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            json!({ "events": [] }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            json!({ "items": [] }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            json!([{"event": "payment.completed", "data": {}}]).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        ("{\"events\": [".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
    ];
    for (body, status, code) in cases {
        let answer = sidecar.http.post_json(&batch_url(&sidecar), body.clone()).await;
        assert_eq!((answer.status, answer.error_code()), (status, code), "{body}");
    }
    assert_eq!(ingested(&sidecar.store).events, 0);
}
