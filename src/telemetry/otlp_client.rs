//! The HTTP client the OTLP exporter sends through, for both protocols.
//!
//! `http` posts the protobuf request as it is to `/v1/traces`. `grpc`
//! sends the same protobuf message as a unary gRPC call
//! (`opentelemetry.proto.collector.trace.v1.TraceService/Export`) over
//! HTTP/2: a five-byte frame header before the message, `grpc-status` in
//! the trailers. That is all gRPC needs for one unary call, so hookd gets
//! it without a gRPC stack.
//!
//! Plain `http://` collectors get HTTP/2 with prior knowledge for gRPC;
//! `https://` ones are checked against the Web PKI roots.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError};

use crate::config::OtlpProtocol;

/// The path of the OTLP/HTTP trace endpoint.
pub const HTTP_TRACES_PATH: &str = "/v1/traces";
/// The path of the OTLP/gRPC trace method.
pub const GRPC_TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// A collector's answer is a small protobuf message; more is refused.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The gRPC frame header: a compression flag and a big-endian length.
const GRPC_FRAME_HEADER: usize = 5;

#[derive(Debug, Clone)]
pub struct OtlpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    protocol: OtlpProtocol,
}

impl OtlpClient {
    pub fn new(protocol: OtlpProtocol) -> Result<OtlpClient, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(protocol == OtlpProtocol::Grpc)
            .build(connector);
        Ok(OtlpClient { client, protocol })
    }

    /// The full URL to export to, from the configured collector base URL.
    pub fn export_url(protocol: OtlpProtocol, base: &str) -> String {
        let path = match protocol {
            OtlpProtocol::Http => HTTP_TRACES_PATH,
            OtlpProtocol::Grpc => GRPC_TRACES_PATH,
        };
        format!("{}{path}", base.trim_end_matches('/'))
    }
}

#[async_trait]
impl HttpClient for OtlpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = match self.protocol {
            OtlpProtocol::Http => request.map(Full::new),
            OtlpProtocol::Grpc => grpc_request(request).map(Full::new),
        };
        let response = self.client.request(request).await?;
        let (parts, body) = response.into_parts();
        let collected = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let body = collected.to_bytes();
        Ok(match self.protocol {
            OtlpProtocol::Http => Response::from_parts(parts, body),
            OtlpProtocol::Grpc => grpc_response(Response::from_parts(parts, body), &trailers),
        })
    }
}

/// The exporter's protobuf request as a unary gRPC call.
fn grpc_request(request: Request<Bytes>) -> Request<Bytes> {
    let (mut parts, message) = request.into_parts();
    let mut framed = BytesMut::with_capacity(GRPC_FRAME_HEADER + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(&message);
    parts
        .headers
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    parts
        .headers
        .insert(http::header::TE, HeaderValue::from_static("trailers"));
    Request::from_parts(parts, framed.freeze())
}

/// A gRPC answer as the HTTP answer the exporter understands: 200 with the
/// unframed message when `grpc-status` is 0; otherwise 503 for the codes
/// worth retrying (unavailable, resource exhausted) and 400 for the rest.
fn grpc_response(response: Response<Bytes>, trailers: &HeaderMap) -> Response<Bytes> {
    let (mut parts, body) = response.into_parts();
    if parts.status != StatusCode::OK {
        return Response::from_parts(parts, body);
    }
    // A call that fails at once sends its status in the headers alone.
    let status = trailers
        .get("grpc-status")
        .or_else(|| parts.headers.get("grpc-status"))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u32>().ok());
    let (status, body) = match status {
        Some(0) => (StatusCode::OK, body.slice(GRPC_FRAME_HEADER.min(body.len())..)),
        Some(8 | 14) => (StatusCode::SERVICE_UNAVAILABLE, Bytes::new()),
        Some(_) => (StatusCode::BAD_REQUEST, Bytes::new()),
        None => (StatusCode::BAD_GATEWAY, Bytes::new()),
    };
    parts.status = status;
    Response::from_parts(parts, body)
}
