//! Tenants through the real listeners (SPEC sections 3, 4 and 6): one
//! customer's event never reaches another customer's endpoint; `"*"` gets
//! every event; an endpoint without a tenant gets only events without one;
//! the tenant is part of the event for resubmission, is shown and filters
//! the listings; and it is checked again before every attempt.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);

fn endpoint(id: &str, tenant: Option<&str>, url: &str) -> String {
    let tenant = tenant
        .map(|tenant| format!("tenant = \"{tenant}\"\n"))
        .unwrap_or_default();
    format!("[[endpoints]]\nid = \"{id}\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s-{id}\"\n{tenant}")
}

/// `acme` and `globex` (one customer each), `platform` (`"*"`) and
/// `plain` (no tenant), all subscribed to every event, each at its own
/// path of `receiver`.
fn four_endpoints(receiver: &Receiver) -> String {
    [
        endpoint("acme", Some("acme"), &receiver.url("/acme")),
        endpoint("globex", Some("globex"), &receiver.url("/globex")),
        endpoint("platform", Some("*"), &receiver.url("/platform")),
        endpoint("plain", None, &receiver.url("/plain")),
    ]
    .concat()
}

fn event(id: &str, tenant: Option<&str>) -> String {
    match tenant {
        Some(tenant) => format!(r#"{{"event":"enrollment.created","data":{{}},"id":"{id}","tenant":"{tenant}"}}"#),
        None => format!(r#"{{"event":"enrollment.created","data":{{}},"id":"{id}"}}"#),
    }
}

#[tokio::test]
async fn each_event_reaches_only_the_endpoints_its_tenant_admits() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&four_endpoints(&receiver)).await;
    let cases = [
        ("evt_acme", Some("acme"), &["acme", "platform"][..]),
        ("evt_globex", Some("globex"), &["globex", "platform"][..]),
        ("evt_nobody", Some("umbrella"), &["platform"][..]),
        ("evt_untenanted", None, &["platform", "plain"][..]),
    ];
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for (id, tenant, endpoints) in cases {
        let answer = sidecar
            .http
            .post_json(&format!("{}/v1/events", sidecar.ingest), event(id, tenant))
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
        assert_eq!(answer.json["deliveries"], endpoints.len(), "{id}");
        for endpoint in endpoints {
            expected.insert((format!("/{endpoint}"), id.to_owned()));
        }
    }
    receiver.wait_for(expected.len(), PATIENCE).await;
    // Nothing more comes: give a stray delivery time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received: BTreeSet<(String, String)> = receiver
        .received()
        .iter()
        .map(|request| (request.path.clone(), request.header("x-webhook-id").to_owned()))
        .collect();
    assert_eq!(received, expected);
    assert!(received.len() >= 7 && receiver.received().len() == received.len());
}

#[tokio::test]
async fn the_tenant_is_part_of_the_event_for_resubmission() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&four_endpoints(&receiver)).await;
    let url = format!("{}/v1/events", sidecar.ingest);
    assert_eq!(
        sidecar.http.post_json(&url, event("evt_1", Some("acme"))).await.status,
        StatusCode::ACCEPTED
    );
    let again = sidecar.http.post_json(&url, event("evt_1", Some("acme"))).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json["duplicate"], true);
    for other in [Some("globex"), None] {
        let conflict = sidecar.http.post_json(&url, event("evt_1", other)).await;
        assert_eq!(conflict.status, StatusCode::CONFLICT, "{other:?}");
        assert_eq!(conflict.error_code(), "id_conflict");
    }
    // And the other way round: stored without a tenant, resubmitted with one.
    assert_eq!(
        sidecar.http.post_json(&url, event("evt_2", None)).await.status,
        StatusCode::ACCEPTED
    );
    let conflict = sidecar.http.post_json(&url, event("evt_2", Some("acme"))).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    // Ids are global: the same id for another tenant is a conflict, not a
    // second event.
    assert_eq!(sidecar.store.counts().unwrap().events, 2);
}

#[tokio::test]
async fn a_malformed_tenant_is_refused_and_stores_nothing() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&four_endpoints(&receiver)).await;
    for tenant in [
        r#""""#,
        r#""acme/eu""#,
        r#""a b""#,
        "42",
        "[]",
        &format!("\"{}\"", "a".repeat(65)),
    ] {
        let body = format!(r#"{{"event":"enrollment.created","data":{{}},"tenant":{tenant}}}"#);
        let answer = sidecar
            .http
            .post_json(&format!("{}/v1/events", sidecar.ingest), body)
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{tenant}: {:?}", answer.json);
        assert_eq!(answer.error_code(), "invalid_field");
        assert!(answer.json["error"]["message"].as_str().unwrap().contains("tenant"));
    }
    assert_eq!(sidecar.store.counts().unwrap().events, 0);
}

#[tokio::test]
async fn the_listings_show_and_filter_by_tenant() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&four_endpoints(&receiver)).await;
    for (id, tenant) in [("evt_a", Some("acme")), ("evt_g", Some("globex")), ("evt_n", None)] {
        sidecar.post_event(&event(id, tenant)).await;
    }
    let deliveries = |query: &'static str| {
        let http = sidecar.http.clone();
        let url = format!("{}/v1/deliveries{query}", sidecar.admin);
        async move {
            let answer = http.get(&url).await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json);
            let mut found: Vec<(String, Value)> = answer.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|delivery| (delivery["id"].as_str().unwrap().to_owned(), delivery["tenant"].clone()))
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found
        }
    };
    let acme = deliveries("?tenant=acme").await;
    assert_eq!(acme.len(), 2, "{acme:?}");
    assert!(
        acme.iter()
            .all(|(id, tenant)| id.starts_with("evt_a") && tenant == "acme")
    );
    let untenanted = deliveries("?tenant=").await;
    assert_eq!(untenanted.len(), 2, "{untenanted:?}");
    assert!(
        untenanted
            .iter()
            .all(|(id, tenant)| id.starts_with("evt_n") && tenant.is_null())
    );
    assert_eq!(deliveries("").await.len(), 6);

    let endpoints = |query: &'static str| {
        let http = sidecar.http.clone();
        let url = format!("{}/v1/endpoints{query}", sidecar.admin);
        async move {
            let answer = http.get(&url).await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json);
            let tenants: BTreeMap<String, Value> = answer.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|endpoint| (endpoint["id"].as_str().unwrap().to_owned(), endpoint["tenant"].clone()))
                .collect();
            tenants
        }
    };
    let all = endpoints("").await;
    assert_eq!(all["acme"], "acme");
    assert_eq!(all["platform"], "*");
    assert!(all["plain"].is_null());
    assert_eq!(
        endpoints("?tenant=acme").await.into_keys().collect::<Vec<_>>(),
        ["acme"]
    );
    assert_eq!(
        endpoints("?tenant=*").await.into_keys().collect::<Vec<_>>(),
        ["platform"]
    );
    assert_eq!(endpoints("?tenant=").await.into_keys().collect::<Vec<_>>(), ["plain"]);
    let bad = sidecar
        .http
        .get(&format!("{}/v1/endpoints?tenant=a%20b", sidecar.admin))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error_code(), "invalid_field");
}

#[tokio::test]
async fn a_delivery_its_endpoint_no_longer_admits_fails_without_a_request() {
    let receiver = Receiver::start().await;
    // The first attempt fails; the retry comes after the reload.
    receiver.script([Reply::status(500)]);
    let schedule = "[delivery]\nretry_schedule = [\"5s\"]\nretry_jitter = 0.0\n";
    let sidecar = Sidecar::start(&format!(
        "{schedule}{}",
        endpoint("crm", Some("acme"), &receiver.url("/crm"))
    ))
    .await;
    let before = sidecar.loaded_at().await;
    sidecar.post_event(&event("evt_moved", Some("acme"))).await;
    receiver.wait_for(1, PATIENCE).await;
    // The operator gives the endpoint to another customer.
    sidecar.rewrite_config(&format!(
        "{schedule}{}",
        endpoint("crm", Some("globex"), &receiver.url("/crm"))
    ));
    let config = sidecar.config_after(&before).await;
    assert!(config["last_reload_error"].is_null(), "{config}");
    let delivery = sidecar.finished("evt_moved.crm", PATIENCE).await;
    assert_eq!(delivery.status, hookd::store::DeliveryStatus::Failed);
    let attempts = sidecar.store.attempts("evt_moved.crm").unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[1].error_kind.as_deref(), Some("tenant_mismatch"));
    assert_eq!(attempts[1].status_code, None);
    assert_eq!(receiver.received().len(), 1, "no request after the tenant changed");
}
