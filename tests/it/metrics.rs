//! `/metrics`: the SPEC's series, with values that follow what happened.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);

/// Parses the text format into `name{labels}` → value (comments skipped).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// Scrapes without a token: `/metrics` is open like the probes.
async fn scrape(sidecar: &Sidecar) -> HashMap<String, f64> {
    parse(&sidecar.http.get_text(&format!("{}/metrics", sidecar.admin)).await)
}

#[tokio::test]
async fn the_series_follow_ingest_attempts_and_reloads() {
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.answer_by_default(Reply::status(502));
    let config = format!(
        "[admin]\ntoken = \"metrics-token\"\n[delivery]\nretry_schedule = []\n\
         [[endpoints]]\nid = \"good\"\nurl = \"{}\"\nevents = [\"payment.*\"]\nsecret = \"a\"\n\
         [[endpoints]]\nid = \"bad\"\nurl = \"{}\"\nevents = [\"enrollment.*\"]\nsecret = \"b\"\n\
         [[endpoints]]\nid = \"waiting\"\nurl = \"{}\"\nevents = [\"course.*\"]\nsecret = \"c\"\nenabled = true\n",
        good.url("/g"),
        bad.url("/b"),
        good.url("/w")
    );
    let sidecar = Sidecar::start(&config).await;
    let pause = sidecar
        .http
        .send(
            http::Method::POST,
            &format!("{}/v1/endpoints/waiting/pause", sidecar.admin),
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer metrics-token"),
            ],
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(pause.status, http::StatusCode::OK);
    let mut ids = Vec::new();
    for body in [
        r#"{"event":"payment.completed","data":{}}"#,
        r#"{"event":"payment.completed","data":{}}"#,
        r#"{"event":"payment.refunded","data":{}}"#,
    ] {
        ids.push(format!("{}.good", sidecar.post_event(body).await));
    }
    let failing = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    sidecar.post_event(r#"{"event":"course.published","data":{}}"#).await;
    for id in &ids {
        sidecar.finished(id, PATIENCE).await;
    }
    sidecar.finished(&format!("{failing}.bad"), PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let metrics = scrape(&sidecar).await;
    let value = |series: &str| *metrics.get(series).unwrap_or_else(|| panic!("{series} missing"));
    assert_eq!(value(r#"hookd_events_received_total{event="payment.completed"}"#), 2.0);
    assert_eq!(value(r#"hookd_events_received_total{event="enrollment.created"}"#), 1.0);
    assert_eq!(
        value(r#"hookd_deliveries_total{endpoint="good",outcome="succeeded"}"#),
        3.0
    );
    assert_eq!(value(r#"hookd_deliveries_total{endpoint="bad",outcome="failed"}"#), 1.0);
    assert_eq!(value(r#"hookd_attempts_total{endpoint="good",result="success"}"#), 3.0);
    assert_eq!(value(r#"hookd_attempts_total{endpoint="bad",result="status"}"#), 1.0);
    assert_eq!(value(r#"hookd_attempt_duration_seconds_count{endpoint="good"}"#), 3.0);
    assert_eq!(value(r#"hookd_deliveries_pending{endpoint="good"}"#), 0.0);
    assert_eq!(
        value(r#"hookd_deliveries_pending{endpoint="waiting"}"#),
        1.0,
        "paused, so it waits"
    );
    assert!(
        value("hookd_oldest_pending_seconds") >= 1.0,
        "the paused delivery has waited over a second"
    );
    assert_eq!(value("hookd_attempts_in_flight"), 0.0);
    assert!(value("hookd_store_synced_writes_total") >= 1.0);
    assert_eq!(value("hookd_store_events_written_total"), 5.0);
    assert!(value("hookd_store_write_seconds_count") >= 1.0);
    assert_eq!(value(r#"hookd_config_reloads_total{result="error"}"#), 0.0);
    // No exporter here: the trace series are present and still (the
    // `traces` tests see them move).
    assert_eq!(value("hookd_trace_spans_exported_total"), 0.0);
    assert_eq!(value(r#"hookd_trace_spans_dropped_total{reason="queue_full"}"#), 0.0);
    assert!(
        metrics.keys().all(|series| !series.contains("evt_")),
        "no event ids in labels"
    );
    promtool_accepts(&sidecar.http.get_text(&format!("{}/metrics", sidecar.admin)).await);

    sidecar.write_config_text("not = [valid");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let metrics = scrape(&sidecar).await;
        if metrics.get(r#"hookd_config_reloads_total{result="error"}"#) == Some(&1.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refused reload is not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `promtool check metrics` (Debian package prometheus) accepts the text:
/// names, help, types and units as Prometheus wants them.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running promtool (scripts/test.sh installs the prometheus package)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool refused the metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
