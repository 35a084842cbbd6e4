//! Ordering keys (SPEC 3, 4): on an endpoint with `ordering = "key"`, the
//! deliveries of one key go one at a time, in stored order, through
//! failures, retries and `kill -9`; other keys and unkeyed events flow.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::http::HttpClient;
use crate::support::process::HookdProcess;
use crate::support::receiver::{Received, Receiver, Reply};
use crate::support::sidecar::Sidecar;
use crate::support::test_config;

const PATIENCE: Duration = Duration::from_secs(120);

fn endpoint(url: &str) -> String {
    format!("[[endpoints]]\nid = \"ordered\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s\"\nordering = \"key\"\n")
}

/// `count` events for each of `keys`, interleaved (k0 0, k1 0, ..., k0 1,
/// ...), each with its key and number in `data`, and one unkeyed event
/// after each round.
fn interleaved(keys: usize, count: usize, tag: &str) -> Vec<String> {
    let mut events = Vec::new();
    for n in 0..count {
        for key in 0..keys {
            events.push(format!(
                r#"{{"id":"{tag}_k{key}_{n}","event":"payment.completed","ordering_key":"k{key}","data":{{"key":"k{key}","n":{n}}}}}"#
            ));
        }
        events.push(format!(
            r#"{{"id":"{tag}_free_{n}","event":"payment.completed","data":{{"key":null,"n":{n}}}}}"#
        ));
    }
    events
}

/// Posts `events` as one batch to `ingest`; they must be accepted.
async fn post_batch(http: &HttpClient, ingest: &str, events: &[String]) {
    let answer = http
        .post_json(
            &format!("{ingest}/v1/events/batch"),
            format!(r#"{{"events":[{}]}}"#, events.join(",")),
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.json);
}

/// Each key's requests, in arrival order: (number, answered status).
fn by_key(received: &[Received]) -> BTreeMap<String, Vec<(u64, u16)>> {
    let mut keys: BTreeMap<String, Vec<(u64, u16)>> = BTreeMap::new();
    for request in received {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        if let Some(key) = body["data"]["key"].as_str() {
            let n = body["data"]["n"].as_u64().unwrap();
            keys.entry(key.to_owned()).or_default().push((n, request.answered));
        }
    }
    keys
}

/// Every key's requests never go back to an earlier event, and its
/// successes are 0, 1, 2, ... in order, each once at least.
fn assert_in_order(keys: &BTreeMap<String, Vec<(u64, u16)>>, count: u64) {
    for (key, requests) in keys {
        let numbers: Vec<u64> = requests.iter().map(|(n, _)| *n).collect();
        assert!(
            numbers.windows(2).all(|pair| pair[0] <= pair[1]),
            "{key}: requests out of order: {numbers:?}"
        );
        let mut successes: Vec<u64> = requests
            .iter()
            .filter(|(_, status)| *status == 200)
            .map(|(n, _)| *n)
            .collect();
        successes.dedup();
        assert_eq!(successes, (0..count).collect::<Vec<_>>(), "{key}");
    }
}

#[tokio::test]
async fn each_keys_deliveries_go_one_at_a_time_in_order_through_failures() {
    let subscriber = Receiver::start().await;
    subscriber.fail_share(0.3);
    let schedule = format!("[{}]", ["\"100ms\""; 12].join(", "));
    let sidecar = Sidecar::start(&format!(
        "[delivery]\nretry_schedule = {schedule}\nretry_jitter = 0.0\n{}",
        endpoint(&subscriber.url("/hook"))
    ))
    .await;
    let events = interleaved(5, 20, "a");
    for chunk in events.chunks(7) {
        post_batch(&sidecar.http, &sidecar.ingest, chunk).await;
    }
    let keyed = 5 * 20;
    crate::support::eventually(PATIENCE, || {
        let keys = by_key(&subscriber.received());
        let done = keys
            .values()
            .map(|requests| requests.iter().filter(|(_, s)| *s == 200).count())
            .sum::<usize>();
        (done >= keyed).then_some(())
    })
    .await;
    assert_in_order(&by_key(&subscriber.received()), 20);
    let endpoint = sidecar.http.get(&format!("{}/v1/endpoints", sidecar.admin)).await.json;
    assert_eq!(endpoint["data"][0]["ordering"], "key");
}

#[tokio::test]
async fn a_failing_delivery_holds_its_key_only() {
    let subscriber = Receiver::start().await;
    // The first request (k0's first event) fails; everything else works.
    subscriber.script([Reply::status(500)]);
    let sidecar = Sidecar::start(&format!(
        "[delivery]\nretry_schedule = [\"2s\"]\nretry_jitter = 0.0\n{}",
        endpoint(&subscriber.url("/hook"))
    ))
    .await;
    let started = Instant::now();
    sidecar
        .post_event(r#"{"event":"payment.completed","ordering_key":"k0","data":{"key":"k0","n":0}}"#)
        .await;
    subscriber.wait_for(1, PATIENCE).await;
    sidecar
        .post_event(r#"{"event":"payment.completed","ordering_key":"k0","data":{"key":"k0","n":1}}"#)
        .await;
    sidecar
        .post_event(r#"{"event":"payment.completed","ordering_key":"k1","data":{"key":"k1","n":0}}"#)
        .await;
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{"key":null,"n":0}}"#)
        .await;
    // k1 and the unkeyed event go at once; k0's second waits for its first.
    let received = subscriber.wait_for(3, PATIENCE).await;
    let keys = by_key(&received);
    assert_eq!(keys["k1"], [(0, 200)]);
    assert_eq!(keys["k0"], [(0, 500)]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the others waited for k0's retry"
    );
    let received = subscriber.wait_for(5, PATIENCE).await;
    let k0 = &by_key(&received)["k0"];
    assert_eq!(*k0, [(0, 500), (0, 200), (1, 200)]);
    let k0_first: Vec<Instant> = received
        .iter()
        .filter(|request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            body["data"]["key"] == "k0" && body["data"]["n"] == 0
        })
        .map(|request| request.at)
        .collect();
    assert!(
        k0_first[1] >= k0_first[0] + Duration::from_secs(2),
        "the retry kept its schedule"
    );
}

/// hookd as a child process, killed with SIGKILL while keyed deliveries
/// are under way, then started again: each key's successes still arrive
/// in order, and every key gets all of its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_holds_across_kill_9() {
    let subscriber = Receiver::start().await;
    subscriber.fail_share(0.2);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    let schedule = format!("[{}]", ["\"100ms\""; 12].join(", "));
    std::fs::write(
        &config,
        test_config(
            &dir.path().join("data"),
            &format!(
                "[delivery]\nretry_schedule = {schedule}\n{}",
                endpoint(&subscriber.url("/hook"))
            ),
        ),
    )
    .unwrap();
    let http = HttpClient::default();
    let events = interleaved(8, 30, "c");
    let mut posted = 0;
    for round in 0..3 {
        let hookd = HookdProcess::spawn(&config);
        // Post a share of the events, then kill mid-way through delivery.
        let share = events.len() / 3;
        for chunk in events[posted..posted + share].chunks(9) {
            post_batch(&http, &hookd.ingest, chunk).await;
        }
        posted += share;
        tokio::time::sleep(Duration::from_millis(150 + 100 * round)).await;
        hookd.kill();
    }
    let hookd = HookdProcess::spawn(&config);
    for chunk in events[posted..].chunks(9) {
        post_batch(&http, &hookd.ingest, chunk).await;
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let keys = by_key(&subscriber.received());
        let complete = keys.len() == 8
            && keys.values().all(|requests| {
                let mut ok: Vec<u64> = requests.iter().filter(|(_, s)| *s == 200).map(|(n, _)| *n).collect();
                ok.sort_unstable();
                ok.dedup();
                ok.len() == 30
            });
        if complete {
            break;
        }
        if Instant::now() > deadline {
            let pending = http.get(&format!("{}/v1/deliveries?status=pending", hookd.admin)).await;
            panic!("not every key got all its events: {keys:?}; pending: {}", pending.json);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = by_key(&subscriber.received());
    // After a crash an attempt whose outcome was not recorded is sent
    // again (at least once), so a key may see an event twice in a row; it
    // never sees an earlier one after a later one.
    for (key, requests) in &keys {
        let successes: Vec<u64> = requests.iter().filter(|(_, s)| *s == 200).map(|(n, _)| *n).collect();
        assert!(
            successes.windows(2).all(|pair| pair[0] <= pair[1]),
            "{key}: successes out of order: {successes:?}"
        );
    }
    let unkeyed = subscriber
        .received()
        .iter()
        .filter(|request| request.answered == 200 && request.header("x-webhook-id").contains("_free_"))
        .map(|request| request.header("x-webhook-id").to_owned())
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert_eq!(unkeyed, 30, "every unkeyed event arrived");
    drop(hookd);
}

#[tokio::test]
async fn a_delivery_that_fails_for_good_lets_the_next_go_and_turning_ordering_off_releases_every_key() {
    let subscriber = Receiver::start().await;
    // k0's first fails for good (no retries), k1's first hangs past the
    // test: k0's second goes, k1's second waits until ordering is off.
    subscriber.script([Reply::status(500)]);
    let config = |ordering: &str| {
        format!(
            "[delivery]\nretry_schedule = []\ntimeout = \"60s\"\n{}",
            endpoint(&subscriber.url("/hook")).replace("ordering = \"key\"", &format!("ordering = \"{ordering}\""))
        )
    };
    let sidecar = Sidecar::start(&config("key")).await;
    sidecar
        .post_event(r#"{"event":"payment.completed","ordering_key":"k0","data":{"key":"k0","n":0}}"#)
        .await;
    subscriber.wait_for(1, PATIENCE).await;
    subscriber.answer_by_default(Reply::hang());
    sidecar
        .post_event(r#"{"event":"payment.completed","ordering_key":"k1","data":{"key":"k1","n":0}}"#)
        .await;
    subscriber.wait_for(2, PATIENCE).await;
    subscriber.answer_by_default(Reply::ok());
    sidecar
        .post_event(r#"{"event":"payment.completed","ordering_key":"k0","data":{"key":"k0","n":1}}"#)
        .await;
    let held = sidecar
        .post_event(r#"{"event":"payment.completed","ordering_key":"k1","data":{"key":"k1","n":1}}"#)
        .await;
    let received = subscriber.wait_for(3, PATIENCE).await;
    assert_eq!(by_key(&received)["k0"], [(0, 500), (1, 200)]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        by_key(&subscriber.received())["k1"].len(),
        1,
        "k1's second waits for its first"
    );

    let since = sidecar.loaded_at().await;
    sidecar.rewrite_config(&config("none"));
    let reloaded = sidecar.config_after(&since).await;
    assert!(reloaded["last_reload_error"].is_null(), "{reloaded}");
    let delivered = sidecar.finished(&format!("{held}.ordered"), PATIENCE).await;
    assert_eq!(delivered.status, hookd::store::DeliveryStatus::Succeeded);
}

#[tokio::test]
async fn ordering_keys_are_checked_and_part_of_a_resubmission() {
    let subscriber = Receiver::start().await;
    let sidecar = Sidecar::start(&endpoint(&subscriber.url("/hook"))).await;
    let url = format!("{}/v1/events", sidecar.ingest);
    let too_long = "k".repeat(257);
    for (key, reason) in [
        ("\"\"".to_owned(), "1 to 256 bytes"),
        (format!("\"{too_long}\""), "1 to 256 bytes"),
        ("7".to_owned(), "ordering_key"),
    ] {
        let answer = sidecar
            .http
            .post_json(
                &url,
                format!(r#"{{"event":"payment.completed","ordering_key":{key},"data":{{}}}}"#),
            )
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code()),
            (400, "invalid_field"),
            "{key}"
        );
        assert!(answer.json.to_string().contains(reason), "{}", answer.json);
    }
    let first = r#"{"id":"evt_o1","event":"payment.completed","ordering_key":"k0","data":{}}"#;
    assert_eq!(sidecar.http.post_json(&url, first).await.status, 202);
    assert_eq!(
        sidecar.http.post_json(&url, first).await.status,
        200,
        "a faithful resubmission"
    );
    let other_key = first.replace("\"k0\"", "\"k1\"");
    assert_eq!(sidecar.http.post_json(&url, other_key).await.status, 409);
    let no_key = r#"{"id":"evt_o1","event":"payment.completed","data":{}}"#;
    assert_eq!(sidecar.http.post_json(&url, no_key).await.status, 409);
}
