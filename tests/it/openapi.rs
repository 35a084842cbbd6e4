//! The OpenAPI description (`src/api/openapi.json`): served at
//! `/openapi.json` as kept in the repo, a valid OpenAPI 3.1 document (by
//! the npm validator in `tests/node/openapi.mjs`), and answered to in its
//! shapes. The test client checks every answer of every test against it
//! ([`crate::support::openapi`]); the tour here calls each operation at
//! least once, its common errors included.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use hookd::store::DeliveryStatus;
use http::{Method, StatusCode};

use crate::support::http::Answer;
use crate::support::node;
use crate::support::openapi;
use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);
const TOKEN: &str = "openapi-admin-token";

#[tokio::test]
async fn the_description_is_served_as_kept_and_is_valid_openapi_3_1() {
    let sidecar = Sidecar::start(&format!("[admin]\ntoken = \"{TOKEN}\"\n")).await;
    let url = format!("{}/openapi.json", sidecar.admin);
    assert_eq!(sidecar.http.get(&url).await.status, StatusCode::UNAUTHORIZED);
    let served = sidecar
        .http
        .send(
            Method::GET,
            &url,
            &[("authorization", &format!("Bearer {TOKEN}"))],
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.json, *openapi::DESCRIPTION);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, served.json.to_string()).unwrap();
    node::check("openapi.mjs", &[file.as_os_str()], "the OpenAPI validator").await;
}

/// Calls the APIs of one sidecar and notes which operations it called.
struct Tour<'a> {
    sidecar: &'a Sidecar,
    called: BTreeSet<String>,
}

impl Tour<'_> {
    async fn call(&mut self, method: Method, url: &str, body: Option<&str>, expected: StatusCode) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let answer = self
            .sidecar
            .http
            .send(
                method.clone(),
                url,
                &headers,
                Bytes::from(body.unwrap_or_default().to_owned()),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, expected, "{method} {url}: {}", answer.json);
        let operation = openapi::operation_of(&method, url).unwrap_or_else(|| panic!("{url} is not described"));
        self.called.insert(format!("{method} {operation}"));
        answer
    }

    async fn admin(&mut self, method: Method, path: &str, body: Option<&str>, expected: StatusCode) -> Answer {
        let url = format!("{}{path}", self.sidecar.admin);
        self.call(method, &url, body, expected).await
    }

    async fn ingest(&mut self, path: &str, body: &str, expected: StatusCode) -> Answer {
        let url = format!("{}{path}", self.sidecar.ingest);
        self.call(Method::POST, &url, Some(body), expected).await
    }
}

#[tokio::test]
async fn every_operation_answers_in_the_shape_the_description_gives() {
    let crm = Receiver::start().await;
    crm.answer_by_default(Reply::status(500).with_body("down"));
    let config = format!(
        r#"
[admin]
token = "{TOKEN}"
[delivery]
retry_schedule = []
[delivery.breaker]
failures = 1
cooldown = "1h"
max_cooldown = "1h"
[[endpoints]]
id = "crm"
tenant = "acme"
url = "{}"
events = ["*"]
secret = "openapi secret"
rate_limit = "100/s"
ordering = "key"
"#,
        crm.url("/hook")
    );
    let sidecar = Sidecar::start(&config).await;
    let mut tour = Tour {
        sidecar: &sidecar,
        called: BTreeSet::new(),
    };
    use Method as M;
    use StatusCode as S;

    let event =
        r#"{"event":"payment.completed","data":{"amount":1.0},"id":"evt_tour","tenant":"acme","ordering_key":"s1"}"#;
    let posted = tour.ingest("/v1/events", event, S::ACCEPTED).await;
    assert_eq!(posted.json["deliveries"], 1);
    let again = tour.ingest("/v1/events", event, S::OK).await;
    assert_eq!(again.json["duplicate"], true);
    tour.ingest("/v1/events", &event.replace("1.0", "2.0"), S::CONFLICT)
        .await;
    tour.ingest(
        "/v1/events",
        r#"{"event":"no.such","data":{}}"#,
        S::UNPROCESSABLE_ENTITY,
    )
    .await;
    tour.ingest("/v1/events", r#"{"event":"payment.completed"}"#, S::BAD_REQUEST)
        .await;
    tour.ingest("/v1/events", "not json", S::BAD_REQUEST).await;
    let batch = r#"{"events":[{"event":"enrollment.created","data":{},"tenant":"acme"},{"event":"course.published","data":{}}]}"#;
    let answers = tour.ingest("/v1/events/batch", batch, S::ACCEPTED).await;
    assert_eq!(answers.json["events"].as_array().unwrap().len(), 2);

    let id = "evt_tour.crm";
    assert_eq!(sidecar.finished(id, PATIENCE).await.status, DeliveryStatus::Failed);

    for path in ["/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/v1/config"] {
        tour.admin(M::GET, path, None, S::OK).await;
    }
    let listed = tour
        .admin(M::GET, "/v1/endpoints?tenant=acme&q=cr&limit=1", None, S::OK)
        .await;
    assert_eq!(listed.json["data"][0]["circuit"], "open");
    tour.admin(M::GET, "/v1/endpoints?limit=0", None, S::BAD_REQUEST).await;
    let stats = tour
        .admin(M::GET, "/v1/endpoints/crm/stats?window=2h", None, S::OK)
        .await;
    assert_eq!(
        stats.json["circuit_open"].as_array().unwrap().len(),
        1,
        "{}",
        stats.json
    );
    tour.admin(M::GET, "/v1/endpoints/crm/stats?window=2d", None, S::BAD_REQUEST)
        .await;
    tour.admin(M::GET, "/v1/endpoints/nope/stats", None, S::NOT_FOUND).await;

    tour.admin(
        M::GET,
        "/v1/deliveries?status=failed&endpoint=crm&tenant=acme&event=payment.completed",
        None,
        S::OK,
    )
    .await;
    tour.admin(M::GET, "/v1/deliveries?event_id=evt_tour", None, S::OK)
        .await;
    tour.admin(M::GET, "/v1/deliveries?status=lost", None, S::BAD_REQUEST)
        .await;
    let shown = tour.admin(M::GET, &format!("/v1/deliveries/{id}"), None, S::OK).await;
    assert_eq!(shown.json["attempts"][0]["error_kind"], "status");
    tour.admin(M::GET, "/v1/deliveries/evt_nope.crm", None, S::NOT_FOUND)
        .await;

    tour.admin(M::POST, "/v1/endpoints/crm/pause", Some("{}"), S::OK).await;
    tour.admin(M::POST, "/v1/endpoints/crm/resume", Some("{}"), S::OK).await;
    tour.admin(M::POST, "/v1/endpoints/nope/pause", Some("{}"), S::NOT_FOUND)
        .await;
    tour.admin(M::POST, "/v1/endpoints/crm/pause", None, S::UNSUPPORTED_MEDIA_TYPE)
        .await;
    tour.admin(M::POST, &format!("/v1/deliveries/{id}/retry"), Some("{}"), S::ACCEPTED)
        .await;
    tour.admin(M::POST, &format!("/v1/deliveries/{id}/retry"), Some("{}"), S::CONFLICT)
        .await;
    assert_eq!(sidecar.finished(id, PATIENCE).await.status, DeliveryStatus::Failed);
    let retried = tour
        .admin(
            M::POST,
            "/v1/endpoints/crm/retry-failed",
            Some(r#"{"since":"2000-01-01T00:00:00Z"}"#),
            S::ACCEPTED,
        )
        .await;
    assert!(retried.json["retried"].as_u64().unwrap() >= 1);
    tour.admin(
        M::POST,
        "/v1/endpoints/crm/retry-failed",
        Some(r#"{"since":"yesterday"}"#),
        S::BAD_REQUEST,
    )
    .await;
    tour.admin(M::POST, "/v1/endpoints/crm/test", Some("{}"), S::ACCEPTED)
        .await;

    // Without the token.
    let refused = sidecar.http.get(&format!("{}/v1/endpoints", sidecar.admin)).await;
    assert_eq!(refused.status, S::UNAUTHORIZED);

    let described: BTreeSet<String> = openapi::operations().into_iter().collect();
    assert_eq!(tour.called, described, "the tour calls every described operation");
}

#[test]
fn an_answer_in_another_shape_is_caught() {
    let check = |status: StatusCode, body: &str| {
        std::panic::catch_unwind(|| {
            openapi::check(
                &Method::GET,
                "http://127.0.0.1:1/v1/endpoints?limit=5",
                status,
                Some("application/json"),
                body.as_bytes(),
            )
        })
        .is_ok()
    };
    assert!(check(StatusCode::OK, r#"{"data": [], "next_cursor": null}"#));
    assert!(
        !check(StatusCode::OK, r#"{"data": 5, "next_cursor": null}"#),
        "a wrong type"
    );
    assert!(
        !check(StatusCode::OK, r#"{"data": [], "next_cursor": null, "extra": 1}"#),
        "an undescribed field"
    );
    assert!(
        !check(StatusCode::OK, r#"{"data": [{"id": "crm"}], "next_cursor": null}"#),
        "a missing field"
    );
    assert!(check(
        StatusCode::BAD_REQUEST,
        r#"{"error": {"code": "invalid_field", "message": "`limit`"}}"#
    ));
    assert!(
        !check(StatusCode::BAD_REQUEST, r#"{"message": "`limit`"}"#),
        "an error in another shape"
    );
}
