//! An endpoint's `rate_limit` (SPEC 4, "Rate limit"): evenly spread
//! requests, no burst, and no effect on the endpoints beside it.

use std::time::{Duration, Instant};

use crate::support::receiver::Receiver;
use crate::support::sidecar::Sidecar;

#[tokio::test]
async fn a_rate_limited_endpoint_gets_its_requests_evenly_while_another_gets_them_at_full_speed() {
    let limited = Receiver::start().await;
    let free = Receiver::start().await;
    let sidecar = Sidecar::start(&format!(
        r#"
[[endpoints]]
id = "limited"
url = "{}"
events = ["payment.completed"]
secret = "s"
rate_limit = "50/s"

[[endpoints]]
id = "free"
url = "{}"
events = ["payment.completed"]
secret = "s"
"#,
        limited.url("/limited"),
        free.url("/free")
    ))
    .await;
    let endpoint = sidecar.http.get(&format!("{}/v1/endpoints", sidecar.admin)).await.json;
    let rate_limits: Vec<&serde_json::Value> = endpoint["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|endpoint| &endpoint["rate_limit"])
        .collect();
    assert_eq!(rate_limits, [&serde_json::json!(null), &serde_json::json!("50/s")]);

    // A backlog of 1,000 for both, in batches.
    let started = Instant::now();
    for _ in 0..10 {
        let events: Vec<String> = (0..100)
            .map(|_| r#"{"event":"payment.completed","data":{}}"#.to_owned())
            .collect();
        let answer = sidecar
            .http
            .post_json(
                &format!("{}/v1/events/batch", sidecar.ingest),
                format!(r#"{{"events":[{}]}}"#, events.join(",")),
            )
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.json);
    }
    // The free endpoint gets all of them long before the limited one could
    // have had 250 (5 s at 50/s).
    free.wait_for(1000, Duration::from_secs(30)).await;
    let free_done = started.elapsed();
    let limited_by_then = limited.received().len();
    assert!(
        limited_by_then < 250,
        "the free endpoint took {free_done:?} for 1,000 events, while the limited one got {limited_by_then}"
    );

    tokio::time::sleep(Duration::from_secs(6)).await;
    let received = limited.received();
    let first = received.first().expect("the limited endpoint got requests").at;
    let in_five_seconds = received
        .iter()
        .filter(|request| request.at < first + Duration::from_secs(5))
        .count();
    assert!(
        (240..=252).contains(&in_five_seconds),
        "{in_five_seconds} requests in the first 5 s at 50/s"
    );
    // Evenly: no window of one second holds more than N + 1.
    let times: Vec<Instant> = received.iter().map(|request| request.at).collect();
    let busiest = times
        .iter()
        .enumerate()
        .map(|(n, start)| {
            times[n..]
                .iter()
                .take_while(|at| **at < *start + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    eprintln!(
        "50/s: {in_five_seconds} requests in the first 5 s, at most {busiest} within a second; \
         the free endpoint got 1,000 in {free_done:?} (the limited one {limited_by_then} by then)"
    );
    assert!(busiest <= 51, "{busiest} requests within one second at 50/s");
}

#[tokio::test]
async fn a_test_ping_waits_its_turn_too() {
    let limited = Receiver::start().await;
    let sidecar = Sidecar::start(&format!(
        "[[endpoints]]\nid = \"limited\"\nurl = \"{}\"\nevents = [\"payment.completed\"]\nsecret = \"s\"\nrate_limit = \"2/s\"\n",
        limited.url("/limited")
    ))
    .await;
    for _ in 0..3 {
        sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    }
    let answer = sidecar
        .http
        .post_json(&format!("{}/v1/endpoints/limited/test", sidecar.admin), "{}")
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.json);
    let received = limited.wait_for(4, Duration::from_secs(30)).await;
    for pair in received.windows(2) {
        let apart = pair[1].at - pair[0].at;
        // 500 ms apart, less what the receiver's clock and hookd's may
        // differ by in when they note a request.
        assert!(
            apart >= Duration::from_millis(450),
            "two requests {apart:?} apart at 2/s"
        );
    }
    assert!(
        received
            .iter()
            .any(|request| request.header("x-webhook-event") == "webhook.test")
    );
}
