//! The outbound HTTP client and the tower stack every attempt goes through.
//!
//! [`http_client`] is hyper-util's pooled client (HTTP/1.1, and HTTP/2
//! where TLS negotiates it) over rustls with the Web PKI roots plus
//! `delivery.ca_file`, connecting through the SSRF guard
//! ([`GuardedConnector`]). It never follows redirects: hyper-util's client
//! does not, and hookd files a 3xx as a failed attempt.
//!
//! [`endpoint_stack`] is the one place the layers are put together.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower::timeout::TimeoutLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tracing::Instrument;

use super::connector::GuardedConnector;
use super::destination::DestinationPolicy;
use super::outcome::{ErrorKind, classify};
use super::request::headers::TRACEPARENT;
use crate::telemetry::trace_context;

pub type OutboundBody = Full<Bytes>;
pub type HttpClient = Client<HttpsConnector<GuardedConnector>, OutboundBody>;
/// One endpoint's stack: a request in, the response headers out.
pub type EndpointStack = BoxCloneSyncService<Request<OutboundBody>, Response<Incoming>, BoxError>;

/// How long idle connections to a subscriber are kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Who an attempt is for; put in the request's extensions for the trace
/// layer. Holds nothing secret.
#[derive(Debug, Clone)]
pub struct AttemptLabels {
    pub endpoint: String,
    pub event: String,
    pub event_id: String,
    pub attempt: u32,
    /// The `traceparent` stored with the event: the attempt span's parent.
    pub parent: Option<String>,
}

/// Why the shared client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read delivery.ca_file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Builds the shared client. Fails only on an unreadable `ca_file`.
pub fn http_client(
    policy: Arc<RwLock<DestinationPolicy>>,
    ca_file: Option<&Path>,
    idle_per_host: usize,
) -> Result<HttpClient, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let unreadable = |reason: &dyn std::fmt::Display| ClientError::CaFile {
            path: path.to_owned(),
            reason: reason.to_string(),
        };
        let certificates = CertificateDer::pem_file_iter(path).map_err(|error| unreadable(&error))?;
        for certificate in certificates {
            let certificate = certificate.map_err(|error| unreadable(&error))?;
            roots.add(certificate).map_err(|error| unreadable(&error))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(GuardedConnector::new(policy));
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(idle_per_host)
        .build(https))
}

/// The stack for one endpoint, outermost layer first:
///
/// 1. **trace**: one span per attempt, named by endpoint, event and
///    attempt, recording the status or error kind, whose context the
///    request carries as its `traceparent`.
/// 2. **timeout** (`delivery.timeout`): starts when the request is sent and
///    covers connecting, TLS and waiting for the response headers.
/// 3. **the client**.
///
/// The limits are not layers: an attempt takes its permits
/// ([`super::permits`]) before it enters the stack and holds them until
/// its response snippet is read, which a layer's response future could
/// not (it ends with the headers).
pub fn endpoint_stack(client: HttpClient, timeout: Duration) -> EndpointStack {
    let stack = ServiceBuilder::new()
        .layer_fn(Traced)
        .layer(TimeoutLayer::new(timeout))
        .service(client.map_err(BoxError::from));
    BoxCloneSyncService::new(stack)
}

/// The trace layer: wraps each call in an `attempt` span, a child of the
/// trace context stored with the event, and sends that span's context as
/// the request's `traceparent`.
#[derive(Clone)]
pub struct Traced<S>(S);

impl<S> Service<Request<OutboundBody>> for Traced<S>
where
    S: Service<Request<OutboundBody>, Response = Response<Incoming>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<OutboundBody>) -> Self::Future {
        let labels = request.extensions().get::<AttemptLabels>();
        let span = attempt_span(labels);
        let parent = labels.and_then(|labels| labels.parent.as_deref());
        trace_context::adopt(&span, parent);
        let traceparent = trace_context::outgoing(&span, parent);
        request.headers_mut().insert(
            TRACEPARENT,
            HeaderValue::from_str(&traceparent).expect("a traceparent is ASCII"),
        );
        let response = self.0.call(request);
        let recorder = span.clone();
        Box::pin(
            async move {
                let result = response.await;
                let error_kind = match &result {
                    Ok(response) => {
                        recorder.record("http.response.status_code", response.status().as_u16());
                        ErrorKind::of_status(response.status())
                    }
                    Err(error) => Some(classify(error.as_ref())),
                };
                if let Some(kind) = error_kind {
                    recorder.record("error_kind", kind.as_str());
                    recorder.record("otel.status_code", "ERROR");
                }
                result
            }
            .instrument(span),
        )
    }
}

fn attempt_span(labels: Option<&AttemptLabels>) -> tracing::Span {
    let span = tracing::info_span!(
        "attempt",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        endpoint = tracing::field::Empty,
        event = tracing::field::Empty,
        event_id = tracing::field::Empty,
        attempt = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error_kind = tracing::field::Empty,
    );
    if let Some(labels) = labels {
        span.record("endpoint", labels.endpoint.as_str());
        span.record("event", labels.event.as_str());
        span.record("event_id", labels.event_id.as_str());
        span.record("attempt", labels.attempt);
    }
    span
}
