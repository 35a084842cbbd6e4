//! A real OpenTelemetry collector endpoint for tests: takes OTLP trace
//! exports over HTTP/protobuf (`/v1/traces`) and over gRPC (the unary
//! `TraceService/Export` call on HTTP/2), decodes them with
//! `opentelemetry-proto`, and keeps every span.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// One exported span, with ids in hex as a `traceparent` writes them.
#[derive(Debug, Clone)]
pub struct ExportedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: HashMap<String, String>,
    pub resource: HashMap<String, String>,
}

impl ExportedSpan {
    pub fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// How one export request came.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub path: String,
    pub version: Version,
    pub content_type: String,
}

#[derive(Default)]
struct Inner {
    spans: Vec<ExportedSpan>,
    requests: Vec<ExportRequest>,
}

pub struct Collector {
    base: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Listens on 127.0.0.1 port 0 (HTTP/1.1 and HTTP/2 with prior
    /// knowledge).
    pub async fn start() -> Collector {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let router = Router::new()
            .route("/v1/traces", post(export_http))
            .route(GRPC_EXPORT, post(export_grpc))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Collector { base, inner, task }
    }

    /// The base URL, as `telemetry.otlp_endpoint` takes it.
    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn spans(&self) -> Vec<ExportedSpan> {
        self.inner.lock().unwrap().spans.clone()
    }

    pub fn requests(&self) -> Vec<ExportRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Waits until `found` picks what it needs out of the spans; panics
    /// with the spans seen after `patience`.
    pub async fn wait_for<T>(&self, patience: Duration, mut found: impl FnMut(&[ExportedSpan]) -> Option<T>) -> T {
        let deadline = Instant::now() + patience;
        loop {
            let spans = self.spans();
            if let Some(value) = found(&spans) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the collector did not get the spans within {patience:?}; it has {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn export_http(State(inner): State<Arc<Mutex<Inner>>>, request: Request) -> Response {
    let bytes = record(&inner, request).await;
    let Ok(export) = ExportTraceServiceRequest::decode(bytes) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    keep(&inner, export);
    (
        [("content-type", "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// A unary gRPC call: one length-prefixed message each way, and the
/// status in the trailers.
async fn export_grpc(State(inner): State<Arc<Mutex<Inner>>>, request: Request) -> Response {
    let bytes = record(&inner, request).await;
    let message = bytes.get(5..).unwrap_or_default();
    let status = match ExportTraceServiceRequest::decode(message) {
        Ok(export) => {
            keep(&inner, export);
            "0"
        }
        // INVALID_ARGUMENT
        Err(_) => "3",
    };
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(answer.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&answer);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static(status));
    Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(WithTrailers {
            data: Some(Bytes::from(framed)),
            trailers: Some(trailers),
        }))
        .unwrap()
}

async fn record(inner: &Mutex<Inner>, request: Request) -> Bytes {
    let (parts, body) = request.into_parts();
    inner.lock().unwrap().requests.push(ExportRequest {
        path: parts.uri.path().to_owned(),
        version: parts.version,
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    });
    body.collect().await.map(|body| body.to_bytes()).unwrap_or_default()
}

fn keep(inner: &Mutex<Inner>, export: ExportTraceServiceRequest) {
    let mut inner = inner.lock().unwrap();
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                inner.spans.push(ExportedSpan {
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    parent_span_id: hex::encode(span.parent_span_id),
                    attributes: attributes(&span.attributes),
                    resource: resource.clone(),
                });
            }
        }
    }
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), pair.value.as_ref().map(text).unwrap_or_default()))
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

/// A body of one data frame and then trailers, as gRPC answers.
struct WithTrailers {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl hyper::body::Body for WithTrailers {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|trailers| Ok(Frame::trailers(trailers))))
    }
}
