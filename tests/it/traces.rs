//! Traces, checked at a real OTLP endpoint: hookd runs as a child process
//! (the trace export is process-wide), exports to the test collector, and
//! delivers to a real receiver.

use std::time::Duration;

use http::StatusCode;

use crate::support::collector::{Collector, ExportedSpan};
use crate::support::http::HttpClient;
use crate::support::process::HookdProcess;
use crate::support::receiver::{Receiver, Reply};
use crate::support::test_config;

const PATIENCE: Duration = Duration::from_secs(30);
/// The app's trace and span, as it would send them.
const APP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN: &str = "00f067aa0ba902b7";

/// A config exporting to `collector` with `protocol`, one endpoint `hook`
/// at `receiver`, and `extra` TOML.
fn traced_config(
    dir: &std::path::Path,
    collector: &str,
    protocol: &str,
    receiver: &Receiver,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("hookd.toml");
    let text = format!(
        r#"{extra}
[telemetry]
otlp_endpoint = "{collector}"
otlp_protocol = "{protocol}"
service_name = "hookd-under-test"

[[endpoints]]
id = "hook"
url = "{}"
events = ["*"]
secret = "hook secret"
"#,
        receiver.url("/hook")
    );
    std::fs::write(&path, test_config(&dir.join("data"), &text)).unwrap();
    path
}

/// Posts one event as the app would, in the app's trace.
async fn post_traced_event(hookd: &HookdProcess, id: &str) {
    let answer = HttpClient::default()
        .send(
            http::Method::POST,
            &format!("{}/v1/events", hookd.ingest),
            &[
                ("content-type", "application/json"),
                ("traceparent", &format!("00-{APP_TRACE}-{APP_SPAN}-01")),
            ],
            format!(r#"{{"id":"{id}","event":"payment.completed","data":{{"amount":1}}}}"#).into(),
        )
        .await
        .expect("hookd answers");
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
}

/// The span named `name` (and, for attempts, numbered `attempt`).
fn find<'a>(spans: &'a [ExportedSpan], name: &str, attempt: Option<u32>) -> Option<&'a ExportedSpan> {
    spans.iter().find(|span| {
        span.name == name && attempt.is_none_or(|attempt| span.attribute("attempt") == attempt.to_string())
    })
}

/// The `traceparent` the subscriber got, split into trace and span id.
fn received_trace(request: &crate::support::receiver::Received) -> (String, String) {
    let parts: Vec<&str> = request.header("traceparent").split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[3]), (4, "00", "01"), "{parts:?}");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// One event, one trace: the app's span → ingest → store write and
/// attempt, and the subscriber's `traceparent` names the attempt span.
async fn one_event_is_one_trace(protocol: &str) -> Collector {
    let collector = Collector::start().await;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hookd = HookdProcess::spawn(&traced_config(dir.path(), collector.url(), protocol, &receiver, ""));
    post_traced_event(&hookd, "evt_traced").await;

    let request = receiver.wait_for(1, PATIENCE).await.remove(0);
    let (trace_id, sent_span) = received_trace(&request);
    assert_eq!(trace_id, APP_TRACE, "the subscriber is in the app's trace");

    let (ingest, write, attempt) = collector
        .wait_for(PATIENCE, |spans| {
            Some((
                find(spans, "POST /v1/events", None)?.clone(),
                find(spans, "store.write", None)?.clone(),
                find(spans, "attempt", Some(1))?.clone(),
            ))
        })
        .await;
    for span in [&ingest, &write, &attempt] {
        assert_eq!(span.trace_id, APP_TRACE, "{span:#?}");
        assert_eq!(span.resource["service.name"], "hookd-under-test");
        assert_eq!(span.resource["service.version"], env!("CARGO_PKG_VERSION"));
        assert!(!span.resource["service.instance.id"].is_empty());
    }
    assert_eq!(ingest.parent_span_id, APP_SPAN, "ingest is a child of the app's span");
    assert_eq!(ingest.attribute("http.response.status_code"), "202");
    assert_eq!(
        write.parent_span_id, ingest.span_id,
        "the store write is part of ingest"
    );
    assert_eq!(write.attribute("events"), "1");
    assert_eq!(
        attempt.parent_span_id, ingest.span_id,
        "the attempt follows from ingest"
    );
    assert_eq!(
        attempt.span_id, sent_span,
        "the subscriber got the attempt's own context"
    );
    assert_eq!(attempt.attribute("endpoint"), "hook");
    assert_eq!(attempt.attribute("event"), "payment.completed");
    assert_eq!(attempt.attribute("event_id"), "evt_traced");
    assert_eq!(attempt.attribute("http.response.status_code"), "200");
    hookd.terminate();
    collector
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_one_trace_over_otlp_http() {
    let collector = one_event_is_one_trace("http").await;
    let requests = collector.requests();
    assert!(
        !requests.is_empty()
            && requests
                .iter()
                .all(|request| request.path == "/v1/traces" && request.content_type == "application/x-protobuf"),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_one_trace_over_otlp_grpc() {
    let collector = one_event_is_one_trace("grpc").await;
    let requests = collector.requests();
    assert!(
        !requests.is_empty()
            && requests.iter().all(|request| request.version == http::Version::HTTP_2
                && request.path == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                && request.content_type == "application/grpc"),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_restart_is_still_in_the_trace() {
    let collector = Collector::start().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);
    let dir = tempfile::tempdir().unwrap();
    // The retry is due 3 s later: long enough to restart hookd before it.
    let config = traced_config(
        dir.path(),
        collector.url(),
        "http",
        &receiver,
        "[delivery]\nretry_schedule = [\"3s\"]\nretry_jitter = 0.0\n",
    );
    let hookd = HookdProcess::spawn(&config);
    post_traced_event(&hookd, "evt_retried").await;
    receiver.wait_for(1, PATIENCE).await;
    hookd.terminate();

    let hookd = HookdProcess::spawn(&config);
    let requests = receiver.wait_for(2, PATIENCE).await;
    let (first_trace, first_span) = received_trace(&requests[0]);
    let (second_trace, second_span) = received_trace(&requests[1]);
    assert_eq!((first_trace.as_str(), second_trace.as_str()), (APP_TRACE, APP_TRACE));
    assert_ne!(first_span, second_span, "each attempt has a span of its own");

    let (ingest, first, second) = collector
        .wait_for(PATIENCE, |spans| {
            Some((
                find(spans, "POST /v1/events", None)?.clone(),
                find(spans, "attempt", Some(1))?.clone(),
                find(spans, "attempt", Some(2))?.clone(),
            ))
        })
        .await;
    assert_eq!(first.attribute("http.response.status_code"), "500");
    assert_eq!(first.attribute("error_kind"), "status");
    assert_eq!(second.attribute("http.response.status_code"), "200");
    for (attempt, sent_span) in [(&first, &first_span), (&second, &second_span)] {
        assert_eq!(attempt.trace_id, APP_TRACE);
        assert_eq!(attempt.parent_span_id, ingest.span_id, "{attempt:#?}");
        assert_eq!(&attempt.span_id, sent_span);
    }
    hookd.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_traceparent_hookd_starts_the_trace() {
    let collector = Collector::start().await;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hookd = HookdProcess::spawn(&traced_config(dir.path(), collector.url(), "http", &receiver, ""));
    let answer = HttpClient::default()
        .post_json(
            &format!("{}/v1/events", hookd.ingest),
            r#"{"event":"payment.completed","data":{}}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let (trace_id, sent_span) = received_trace(&receiver.wait_for(1, PATIENCE).await[0]);
    let (ingest, attempt) = collector
        .wait_for(PATIENCE, |spans| {
            Some((
                find(spans, "POST /v1/events", None)?.clone(),
                find(spans, "attempt", Some(1))?.clone(),
            ))
        })
        .await;
    assert_eq!(ingest.parent_span_id, "", "ingest is the root");
    assert_eq!(
        (ingest.trace_id.as_str(), attempt.trace_id.as_str()),
        (trace_id.as_str(), trace_id.as_str())
    );
    assert_eq!(attempt.span_id, sent_span);
    hookd.terminate();
}

/// A collector that takes connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_costs_spans_not_deliveries() {
    const EVENTS: usize = 6000;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hookd = HookdProcess::spawn(&traced_config(dir.path(), &black_hole().await, "http", &receiver, ""));
    let http = HttpClient::default();
    for batch in 0..EVENTS / 500 {
        let events: Vec<String> = (0..500)
            .map(|n| format!(r#"{{"id":"evt_{batch}_{n}","event":"payment.completed","data":{{}}}}"#))
            .collect();
        let answer = http
            .post_json(
                &format!("{}/v1/events/batch", hookd.ingest),
                format!(r#"{{"events":[{}]}}"#, events.join(",")),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    // Every delivery goes out while the export is stuck; more spans end
    // than the queue holds, so some are dropped at once.
    receiver.wait_for(EVENTS, Duration::from_secs(120)).await;
    let dropped = |metrics: &str, reason: &str| -> u64 {
        let series = format!("hookd_trace_spans_dropped_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |value| value.parse().unwrap())
    };
    let metrics = http.get_text(&format!("{}/metrics", hookd.admin)).await;
    assert!(dropped(&metrics, "queue_full") > 0, "{metrics}");
    // The stuck export gives up after its timeout and counts its batch.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let metrics = http.get_text(&format!("{}/metrics", hookd.admin)).await;
        if dropped(&metrics, "export_failed") > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    hookd.terminate();
}
