//! The holes a hostile web page, a careless config and odd input could
//! use (issue 13), each closed and tried through the real listeners:
//! DNS rebinding, ingest beyond loopback, a reload that would open a
//! listener, requests that panicked, and the JSON shape of every refusal.

use std::time::Duration;

use bytes::Bytes;
use hookd::store::DeliveryStatus;
use http::{Method, StatusCode};

use crate::support::http::{Answer, HttpClient};
use crate::support::process::HookdProcess;
use crate::support::receiver::Receiver;
use crate::support::sidecar::{Sidecar, ingested};

const PATIENCE: Duration = Duration::from_secs(20);
const EVENT: &str = r#"{"event":"payment.completed","data":{"amount":49.0}}"#;

fn endpoint(url: &str) -> String {
    format!("[[endpoints]]\nid = \"crm\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s\"\n")
}

/// `host:port` of a base URL like `http://127.0.0.1:1234`.
fn port_of(base: &str) -> &str {
    base.rsplit(':').next().unwrap()
}

async fn send(http: &HttpClient, method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut all = headers.to_vec();
    if method == Method::POST {
        all.push(("content-type", "application/json"));
    }
    http.send(method, url, &all, Bytes::from(body.to_owned()))
        .await
        .expect("an answer")
}

fn assert_refused(answer: &Answer, status: StatusCode, code: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {:?}", answer.json);
    assert_eq!(answer.error_code(), code, "{what}: {:?}", answer.json);
    assert!(answer.json["error"]["message"].is_string(), "{what}");
}

#[tokio::test]
async fn a_rebound_name_reaches_neither_api() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&endpoint(&receiver.url("/hook"))).await;
    let id = sidecar.post_event(EVENT).await;
    sidecar.finished(&format!("{id}.crm"), PATIENCE).await;
    let http = &sidecar.http;
    // What a page at evil.example sends once its name points at 127.0.0.1.
    let evil_admin = format!("evil.example:{}", port_of(&sidecar.admin));
    let evil_ingest = format!("evil.example:{}", port_of(&sidecar.ingest));
    let origin = format!("http://{evil_admin}");
    let page = [("host", evil_admin.as_str()), ("origin", origin.as_str())];
    for path in [
        "/v1/deliveries",
        "/v1/config",
        "/v1/endpoints",
        "/healthz",
        "/",
        "/dashboard.js",
    ] {
        let answer = send(http, Method::GET, &format!("{}{path}", sidecar.admin), &page, "").await;
        assert_refused(&answer, StatusCode::FORBIDDEN, "forbidden", path);
    }
    for path in [
        "/v1/endpoints/crm/pause",
        "/v1/endpoints/crm/test",
        "/v1/endpoints/crm/retry-failed",
    ] {
        let answer = send(http, Method::POST, &format!("{}{path}", sidecar.admin), &page, "{}").await;
        assert_refused(&answer, StatusCode::FORBIDDEN, "forbidden", path);
    }
    let before = ingested(&sidecar.store);
    let ingest_page = [("host", evil_ingest.as_str()), ("origin", origin.as_str())];
    for path in ["/v1/events", "/v1/events/batch"] {
        let body = if path.ends_with("batch") {
            format!(r#"{{"events":[{EVENT}]}}"#)
        } else {
            EVENT.to_owned()
        };
        let answer = send(
            http,
            Method::POST,
            &format!("{}{path}", sidecar.ingest),
            &ingest_page,
            &body,
        )
        .await;
        assert_refused(&answer, StatusCode::FORBIDDEN, "forbidden", path);
    }
    assert_eq!(ingested(&sidecar.store), before, "nothing stored");
    let endpoints = http.get(&format!("{}/v1/endpoints", sidecar.admin)).await;
    assert_eq!(
        endpoints.json["data"][0]["paused"], false,
        "the refused pause changed nothing"
    );
    assert_eq!(
        receiver.received().len(),
        1,
        "no test ping, nothing signed for the page"
    );
    // The machine's own names still work: loopback addresses and localhost.
    for host in [
        format!("localhost:{}", port_of(&sidecar.admin)),
        format!("127.0.0.2:{}", port_of(&sidecar.admin)),
        format!("[::1]:{}", port_of(&sidecar.admin)),
    ] {
        let answer = send(
            http,
            Method::GET,
            &format!("{}/v1/config", sidecar.admin),
            &[("host", &host)],
            "",
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn allowed_hosts_name_what_else_is_answered() {
    let sidecar =
        Sidecar::start("[ingest]\nallowed_hosts = [\"hookd.internal\"]\n[admin]\nallowed_hosts = [\"Ops.Internal\"]\n")
            .await;
    let ingest_host = format!("hookd.internal:{}", port_of(&sidecar.ingest));
    let answer = send(
        &sidecar.http,
        Method::POST,
        &format!("{}/v1/events", sidecar.ingest),
        &[("host", &ingest_host)],
        EVENT,
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
    let admin_host = format!("ops.internal:{}", port_of(&sidecar.admin));
    let admin = format!("{}/v1/config", sidecar.admin);
    let answer = send(&sidecar.http, Method::GET, &admin, &[("host", &admin_host)], "").await;
    assert_eq!(answer.status, StatusCode::OK);
    // Each listener has its own list.
    let answer = send(&sidecar.http, Method::GET, &admin, &[("host", &ingest_host)], "").await;
    assert_refused(
        &answer,
        StatusCode::FORBIDDEN,
        "forbidden",
        "the ingest listener's name",
    );
}

#[tokio::test]
async fn the_ingest_token_is_wanted_on_every_request() {
    let sidecar = Sidecar::start("[ingest]\ntoken = \"ingest-t0ken\"\n").await;
    let url = format!("{}/v1/events", sidecar.ingest);
    let evil_host = format!("evil.example:{}", port_of(&sidecar.ingest));
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "Bearer ingest-t0ke")],
        vec![("authorization", "Basic ingest-t0ken")],
        vec![("authorization", "ingest-t0ken")],
    ] {
        let answer = send(&sidecar.http, Method::POST, &url, &headers, EVENT).await;
        assert_refused(
            &answer,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &format!("{headers:?}"),
        );
    }
    let unknown = send(
        &sidecar.http,
        Method::GET,
        &format!("{}/nowhere", sidecar.ingest),
        &[],
        "",
    )
    .await;
    assert_refused(&unknown, StatusCode::UNAUTHORIZED, "unauthorized", "an unknown route");
    assert_eq!(ingested(&sidecar.store).events, 0, "nothing stored");
    // The scheme word in any case; with the token, any Host.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let authorization = format!("{scheme} ingest-t0ken");
        let headers = [("authorization", authorization.as_str()), ("host", evil_host.as_str())];
        let answer = send(&sidecar.http, Method::POST, &url, &headers, EVENT).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{scheme}: {:?}", answer.json);
    }
    assert_eq!(ingested(&sidecar.store).events, 3);
}

#[tokio::test]
async fn the_admin_bearer_scheme_is_case_insensitive() {
    let sidecar = Sidecar::start("[admin]\ntoken = \"admin-t0ken\"\n").await;
    let url = format!("{}/v1/config", sidecar.admin);
    for scheme in ["Bearer", "bearer", "bEaReR"] {
        let authorization = format!("{scheme} admin-t0ken");
        let answer = send(
            &sidecar.http,
            Method::GET,
            &url,
            &[("authorization", &authorization)],
            "",
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{scheme}");
    }
    let answer = send(
        &sidecar.http,
        Method::GET,
        &url,
        &[("authorization", "Bearer admin-t0ke")],
        "",
    )
    .await;
    assert_refused(
        &answer,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a prefix of the token",
    );
}

#[tokio::test]
async fn a_listener_bound_beyond_loopback_without_its_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.toml");
    std::fs::write(&path, crate::support::test_config(&dir.path().join("data"), "")).unwrap();
    // The file says loopback, but the caller bound every interface.
    let settings = hookd::config::load(&path).unwrap();
    let store = hookd::store::Store::open(&settings.storage.path).unwrap();
    for (ingest, admin) in [("0.0.0.0:0", "127.0.0.1:0"), ("127.0.0.1:0", "0.0.0.0:0")] {
        let listeners = hookd::Listeners {
            ingest: tokio::net::TcpListener::bind(ingest).await.unwrap(),
            admin: tokio::net::TcpListener::bind(admin).await.unwrap(),
        };
        let error = hookd::run(settings.clone(), store.clone(), listeners, std::future::ready(()))
            .await
            .expect_err("refused");
        let section = if ingest.starts_with("0.0.0.0") {
            "ingest"
        } else {
            "admin"
        };
        assert!(error.to_string().contains(&format!("set {section}.token")), "{error}");
    }
}

/// Waits for `GET /v1/config` (with the admin token) to report a reload
/// error, and returns it.
async fn reload_error(sidecar: &Sidecar, token: &str) -> String {
    let authorization = format!("Bearer {token}");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let answer = send(
            &sidecar.http,
            Method::GET,
            &format!("{}/v1/config", sidecar.admin),
            &[("authorization", &authorization)],
            "",
        )
        .await;
        if let Some(error) = answer.json["last_reload_error"].as_str() {
            return error.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload error seen: {:?}",
            answer.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reload_cannot_drop_the_token_of_a_public_listener() {
    let public = "[admin]\nlisten = \"0.0.0.0:0\"\ntoken = \"admin-t0ken\"\n[ingest]\nlisten = \"0.0.0.0:0\"\ntoken = \"ingest-t0ken\"\n";
    let sidecar = Sidecar::start(public).await;
    // Serving: the reloader has read the file as it was.
    let config_url = format!("{}/v1/config", sidecar.admin);
    let answer = send(
        &sidecar.http,
        Method::GET,
        &config_url,
        &[("authorization", "Bearer admin-t0ken")],
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    // Moving the listen address back to loopback needs a restart, so the
    // sockets stay public: dropping their tokens must not be applied.
    sidecar.rewrite_config("[admin]\nlisten = \"127.0.0.1:0\"\n[ingest]\nlisten = \"127.0.0.1:0\"\n");
    let error = reload_error(&sidecar, "admin-t0ken").await;
    assert!(
        error.contains("set admin.token") && error.contains("set ingest.token"),
        "{error}"
    );
    let config = send(
        &sidecar.http,
        Method::GET,
        &format!("{}/v1/config", sidecar.admin),
        &[],
        "",
    )
    .await;
    assert_refused(
        &config,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the admin API after the refused reload",
    );
    let event = send(
        &sidecar.http,
        Method::POST,
        &format!("{}/v1/events", sidecar.ingest),
        &[],
        EVENT,
    )
    .await;
    assert_refused(
        &event,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "ingest after the refused reload",
    );
    // A reload that keeps the tokens (and changes them) is applied.
    sidecar.rewrite_config(
        "[admin]\nlisten = \"0.0.0.0:0\"\ntoken = \"new-admin\"\n[ingest]\nlisten = \"0.0.0.0:0\"\ntoken = \"new-ingest\"\n",
    );
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let answer = send(
            &sidecar.http,
            Method::POST,
            &format!("{}/v1/events", sidecar.ingest),
            &[("authorization", "Bearer new-ingest")],
            EVENT,
        )
        .await;
        if answer.status == StatusCode::ACCEPTED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new token never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn created_at_beyond_the_years_rfc_3339_writes_is_a_400() {
    let sidecar = Sidecar::start("").await;
    for created_at in ["9999-12-31T23:30:00-01:00", "0000-01-01T00:00:00+00:01"] {
        let body = format!(r#"{{"event":"payment.completed","data":{{}},"created_at":"{created_at}"}}"#);
        let answer = sidecar
            .http
            .post_json(&format!("{}/v1/events", sidecar.ingest), body.clone())
            .await;
        assert_refused(&answer, StatusCode::BAD_REQUEST, "invalid_field", created_at);
        let batch = format!(r#"{{"events":[{EVENT},{body}]}}"#);
        let answer = sidecar
            .http
            .post_json(&format!("{}/v1/events/batch", sidecar.ingest), batch)
            .await;
        assert_refused(&answer, StatusCode::BAD_REQUEST, "invalid_field", created_at);
        assert_eq!(answer.json["error"]["index"], 1);
    }
    assert_eq!(ingested(&sidecar.store).events, 0, "nothing stored");
    // The listener is still there, answering.
    sidecar.post_event(EVENT).await;
}

#[tokio::test]
async fn bad_query_strings_and_paths_get_the_json_error() {
    let sidecar = Sidecar::start("").await;
    for path in [
        "/v1/deliveries?bogus=1",
        "/v1/deliveries?limit=5&limit=6",
        "/v1/deliveries/%FF%FE",
        "/v1/endpoints/%C3%28/pause",
    ] {
        let method = if path.ends_with("pause") {
            Method::POST
        } else {
            Method::GET
        };
        let answer = send(&sidecar.http, method, &format!("{}{path}", sidecar.admin), &[], "{}").await;
        assert_refused(&answer, StatusCode::BAD_REQUEST, "invalid_field", path);
    }
}

#[tokio::test]
async fn the_dashboard_runs_no_inline_script() {
    let sidecar = Sidecar::start("").await;
    let answer = send(&sidecar.http, Method::GET, &format!("{}/", sidecar.admin), &[], "").await;
    let policy = answer.headers["content-security-policy"].to_str().unwrap();
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let page = sidecar.http.get_text(&format!("{}/", sidecar.admin)).await;
    assert!(
        !page.contains("<script>") && !page.contains("<style>"),
        "nothing inline"
    );
    assert!(page.contains(r#"<script src="/dashboard.js""#));
    let script = send(
        &sidecar.http,
        Method::GET,
        &format!("{}/dashboard.js", sidecar.admin),
        &[],
        "",
    )
    .await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn a_delivery_whose_records_are_damaged_fails_instead_of_looping() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&format!(
        "[delivery]\nretry_schedule = []\n{}",
        endpoint(&receiver.url("/hook"))
    ))
    .await;
    let paused = sidecar
        .http
        .post_json(&format!("{}/v1/endpoints/crm/pause", sidecar.admin), "{}")
        .await;
    assert_eq!(paused.status, StatusCode::OK);
    let missing_event = sidecar.post_event(EVENT).await;
    let bad_event_type = sidecar.post_event(EVENT).await;
    let bad_delivery = sidecar.post_event(EVENT).await;
    let sidecar = sidecar
        .restart_with(|data| {
            let db = crate::support::raw_store::open(data);
            db.delete_cf(db.cf_handle("events").unwrap(), &missing_event).unwrap();
            let id = format!("{bad_event_type}.crm");
            let deliveries = db.cf_handle("deliveries").unwrap();
            let value = db.get_cf(deliveries, &id).unwrap().unwrap();
            let mut record = hookd::store::DeliveryRecord::decode(&value).unwrap();
            record.event = "payment.completed\r\nX-Injected: 1".to_owned();
            db.put_cf(deliveries, &id, record.encode()).unwrap();
            db.put_cf(deliveries, format!("{bad_delivery}.crm"), b"\x01{not json")
                .unwrap();
        })
        .await;
    let resumed = sidecar
        .http
        .post_json(&format!("{}/v1/endpoints/crm/resume", sidecar.admin), "{}")
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    for id in [&missing_event, &bad_event_type] {
        let delivery = sidecar.finished(&format!("{id}.crm"), PATIENCE).await;
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        let attempts = sidecar.store.attempts(&format!("{id}.crm")).unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].error_kind.as_deref(), Some("corrupt_record"));
        assert!(!attempts[0].response_snippet.is_empty(), "the reason is kept");
    }
    // The unreadable delivery left the queue, and delivery goes on.
    crate::support::eventually(PATIENCE, || (sidecar.store.pending_count("crm") == 0).then_some(())).await;
    let fresh = sidecar.post_event(EVENT).await;
    let delivered = sidecar.finished(&format!("{fresh}.crm"), PATIENCE).await;
    assert_eq!(delivered.status, DeliveryStatus::Succeeded);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "nothing was sent for the damaged deliveries");
    assert_eq!(received[0].header("x-webhook-id"), fresh);
}

#[tokio::test]
async fn a_token_of_digits_from_the_environment_is_kept_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.toml");
    std::fs::write(&path, crate::support::test_config(&dir.path().join("data"), "")).unwrap();
    let hookd = HookdProcess::spawn_with_env(&path, &[("HOOKD_ADMIN__TOKEN", "0042")]);
    let http = HttpClient::default();
    let url = format!("{}/v1/config", hookd.admin);
    let answer = send(&http, Method::GET, &url, &[("authorization", "Bearer 0042")], "").await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = send(&http, Method::GET, &url, &[("authorization", "Bearer 42")], "").await;
    assert_refused(
        &answer,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the number the digits make",
    );
    assert_eq!(hookd.terminate().code(), Some(0));
}

#[tokio::test]
async fn a_reload_with_numbers_out_of_range_is_refused_and_delivery_goes_on() {
    let receiver = Receiver::start().await;
    let config = endpoint(&receiver.url("/hook"));
    let sidecar = Sidecar::start(&config).await;
    let since = sidecar.http.get(&format!("{}/v1/config", sidecar.admin)).await.json["loaded_at"]
        .as_str()
        .unwrap()
        .to_owned();
    sidecar.rewrite_config(&format!(
        "[delivery]\nconcurrency = 2305843009213693952\nendpoint_concurrency = 2305843009213693952\ntimeout = \"18446744073709551615ms\"\n{config}"
    ));
    let answer = sidecar.config_after(&since).await;
    let error = answer["last_reload_error"].as_str().expect("refused");
    for key in [
        "delivery.concurrency",
        "delivery.endpoint_concurrency",
        "delivery.timeout",
    ] {
        assert!(error.contains(key), "{key}: {error}");
    }
    let id = sidecar.post_event(EVENT).await;
    let delivery = sidecar.finished(&format!("{id}.crm"), PATIENCE).await;
    assert_eq!(
        delivery.status,
        DeliveryStatus::Succeeded,
        "the old config still delivers"
    );
}
