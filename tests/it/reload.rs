//! Live config reload: edit the file and hookd follows, without a restart
//! and without losing work; a broken file is refused whole.

use std::time::Duration;

use hookd::store::DeliveryStatus;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;
use crate::support::signature;

const PATIENCE: Duration = Duration::from_secs(20);

fn endpoint(id: &str, url: &str, secret: &str) -> String {
    format!("[[endpoints]]\nid = \"{id}\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"{secret}\"\n")
}

#[tokio::test]
async fn an_endpoint_added_to_the_file_receives_without_a_restart() {
    let a = Receiver::start().await;
    let b = Receiver::start().await;
    let sidecar = Sidecar::start(&endpoint("a", &a.url("/a"), "sa")).await;
    let before = sidecar.loaded_at().await;
    // Make sure the new file's load time differs from the first one's.
    tokio::time::sleep(Duration::from_millis(5)).await;
    sidecar.rewrite_config(&format!(
        "{}{}",
        endpoint("a", &a.url("/a"), "sa"),
        endpoint("b", &b.url("/b"), "sb")
    ));
    let config = sidecar.config_after(&before).await;
    assert_eq!(config["last_reload_error"], serde_json::Value::Null);
    assert_eq!(config["config"]["endpoints"].as_array().unwrap().len(), 2);

    let event = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let request = b.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(request.header("x-webhook-id"), event);
    assert_eq!(request.header("x-webhook-signature"), signature("sb", &request.body));
    a.wait_for(1, PATIENCE).await;
}

#[tokio::test]
async fn a_broken_file_is_refused_and_the_old_config_keeps_working() {
    let a = Receiver::start().await;
    let sidecar = Sidecar::start(&endpoint("a", &a.url("/a"), "sa")).await;
    let before = sidecar.loaded_at().await;
    sidecar.write_config_text("[delivery\ntimeout = \"oops\"\n");
    let config = sidecar.config_after(&before).await;
    let error = config["last_reload_error"].as_str().expect("the error is shown");
    assert!(error.contains("hookd.toml"), "{error}");
    assert_eq!(config["loaded_at"], before.as_str(), "still the old config");
    assert_eq!(config["config"]["endpoints"][0]["id"], "a");

    let event = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let request = a.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(request.header("x-webhook-id"), event);

    // A config that parses but does not validate is refused the same way.
    sidecar.rewrite_config(&format!(
        "{}{}",
        endpoint("a", &a.url("/a"), "sa"),
        endpoint("a", &a.url("/x"), "sb")
    ));
    sidecar
        .config_where(|config| {
            config["last_reload_error"]
                .as_str()
                .is_some_and(|error| error.contains("duplicate endpoint id"))
        })
        .await;
}

#[tokio::test]
async fn a_new_secret_applies_from_the_next_attempt() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);
    // Long enough for the reload to land before the retry on a slow machine.
    let schedule = "[delivery]\nretry_schedule = [\"5s\"]\nretry_jitter = 0.0\n";
    let sidecar = Sidecar::start(&format!(
        "{schedule}{}",
        endpoint("a", &receiver.url("/a"), "old secret")
    ))
    .await;
    let event = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let first = receiver.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(
        first.header("x-webhook-signature"),
        signature("old secret", &first.body)
    );

    let before = sidecar.loaded_at().await;
    sidecar.rewrite_config(&format!(
        "{schedule}{}",
        endpoint("a", &receiver.url("/a"), "new secret")
    ));
    sidecar.config_after(&before).await;
    let delivery = sidecar.finished(&format!("{event}.a"), PATIENCE).await;
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    let second = receiver.received().remove(1);
    assert_eq!(second.header("x-webhook-attempt"), "2");
    assert_eq!(
        second.header("x-webhook-signature"),
        signature("new secret", &second.body)
    );
}

#[tokio::test]
async fn a_removed_endpoints_deliveries_wait_until_it_returns() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(503)]);
    let schedule = "[delivery]\nretry_schedule = [\"5s\"]\nretry_jitter = 0.0\n";
    let with_a = format!("{schedule}{}", endpoint("a", &receiver.url("/a"), "sa"));
    let sidecar = Sidecar::start(&with_a).await;
    let event = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let id = format!("{event}.a");
    receiver.wait_for(1, PATIENCE).await;

    let before = sidecar.loaded_at().await;
    sidecar.rewrite_config(schedule);
    sidecar.config_after(&before).await;
    let shown = sidecar.http.get(&format!("{}/v1/deliveries/{id}", sidecar.admin)).await;
    assert_eq!(shown.json["status"], "paused");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "no attempt while the endpoint is gone");

    let before = sidecar.loaded_at().await;
    sidecar.rewrite_config(&with_a);
    sidecar.config_after(&before).await;
    let delivery = sidecar.finished(&id, PATIENCE).await;
    assert_eq!(
        (delivery.status, delivery.attempt_count),
        (DeliveryStatus::Succeeded, 2)
    );
}

#[tokio::test]
async fn a_rotated_secret_file_is_read_again() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "first\n").unwrap();
    let config = format!(
        "[[endpoints]]\nid = \"a\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret_file = \"{}\"\n",
        receiver.url("/a"),
        secret_file.display()
    );
    let sidecar = Sidecar::start(&config).await;
    let before = sidecar.loaded_at().await;
    std::fs::write(&secret_file, "second\n").unwrap();
    sidecar.config_after(&before).await;
    sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let request = receiver.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(
        request.header("x-webhook-signature"),
        signature("second", &request.body)
    );
}

#[tokio::test]
async fn a_changed_listen_address_needs_a_restart() {
    let sidecar = Sidecar::start("").await;
    let before = sidecar.loaded_at().await;
    sidecar.rewrite_config("[ingest]\nlisten = \"127.0.0.1:1\"\n");
    let config = sidecar.config_after(&before).await;
    assert_eq!(config["restart_needed"], true);
    let answer = sidecar
        .http
        .post_json(
            &format!("{}/v1/events", sidecar.ingest),
            r#"{"event":"payment.completed","data":{}}"#,
        )
        .await;
    assert_eq!(
        answer.status,
        http::StatusCode::ACCEPTED,
        "still listening where it was"
    );
}

#[tokio::test]
async fn sighup_reloads_even_an_unchanged_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    std::fs::write(&config, crate::support::test_config(&dir.path().join("data"), "")).unwrap();
    let hookd = crate::support::process::HookdProcess::spawn(&config);
    let http = crate::support::http::HttpClient::default();
    let url = format!("{}/v1/config", hookd.admin);
    let before = http.get(&url).await.json["loaded_at"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    hookd.hangup();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let answer = http.get(&url).await.json;
        if answer["loaded_at"].as_str() != Some(before.as_str()) {
            assert_eq!(answer["last_reload_error"], serde_json::Value::Null);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hookd.terminate().success());
}
