//! The signed request one attempt sends (SPEC section 4).
//!
//! The body is the stored wire body, the same bytes on every attempt.
//! Signatures and timestamps are computed at send time, on every attempt.

use std::sync::Arc;

use bytes::Bytes;
use http::header::InvalidHeaderValue;
use http::{HeaderValue, Method, Request, header};
use time::OffsetDateTime;

use super::client::{AttemptLabels, OutboundBody};
use crate::config::Endpoint;
use crate::sign::{HexSigner, StandardSigner};

/// Wire header names, written once.
pub mod headers {
    pub const SIGNATURE: &str = "x-webhook-signature";
    pub const ID: &str = "x-webhook-id";
    pub const EVENT: &str = "x-webhook-event";
    pub const TIMESTAMP: &str = "x-webhook-timestamp";
    pub const ATTEMPT: &str = "x-webhook-attempt";
    pub use crate::telemetry::trace_context::TRACEPARENT;
    pub const STANDARD_ID: &str = "webhook-id";
    pub const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
    pub const STANDARD_SIGNATURE: &str = "webhook-signature";
}

/// `hookd/<version>`.
pub const USER_AGENT: &str = concat!("hookd/", env!("CARGO_PKG_VERSION"));

/// An endpoint with its signing keys prepared once.
pub struct Target {
    pub endpoint: Arc<Endpoint>,
    hex: HexSigner,
    /// The current key and the previous ones, each with the end of its
    /// rotation window (`None` for the current one).
    standard: Vec<(StandardSigner, Option<OffsetDateTime>)>,
}

impl Target {
    pub fn new(endpoint: Arc<Endpoint>) -> Target {
        let hex = HexSigner::new(endpoint.secret.expose());
        let mut standard = Vec::new();
        if endpoint.standard_webhooks {
            // The config check made sure these are whsec_ secrets.
            standard.extend(
                StandardSigner::new(endpoint.secret.expose())
                    .ok()
                    .map(|signer| (signer, None)),
            );
            for (secret, until) in &endpoint.previous_secrets {
                standard.extend(
                    StandardSigner::new(secret.expose())
                        .ok()
                        .map(|signer| (signer, Some(*until))),
                );
            }
        }
        Target {
            endpoint,
            hex,
            standard,
        }
    }
}

/// What one attempt sends, apart from the endpoint.
pub struct Message<'a> {
    pub event_id: &'a str,
    pub event: &'a str,
    pub body: Bytes,
    pub attempt: u32,
    /// The trace context stored with the event: the attempt's parent.
    pub traceparent: Option<&'a str>,
}

/// Builds the request for one attempt at time `now`. Fails only when the
/// stored event id or type cannot be a header value: a record damaged in
/// the store (ingest checks both).
pub fn build(
    target: &Target,
    message: &Message<'_>,
    now: OffsetDateTime,
) -> Result<Request<OutboundBody>, InvalidHeaderValue> {
    let timestamp = now.unix_timestamp();
    let mut request = Request::new(OutboundBody::new(message.body.clone()));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = target.endpoint.url.clone();
    let headers = request.headers_mut();
    // The operator's static headers first: none of them can collide with
    // the ones hookd sets (the config refuses reserved names).
    for (name, value) in &target.endpoint.headers {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert(
        headers::SIGNATURE,
        HeaderValue::try_from(target.hex.sign(&message.body))?,
    );
    headers.insert(headers::ID, HeaderValue::from_str(message.event_id)?);
    headers.insert(headers::EVENT, HeaderValue::from_str(message.event)?);
    headers.insert(headers::TIMESTAMP, HeaderValue::from(timestamp));
    headers.insert(headers::ATTEMPT, HeaderValue::from(message.attempt));
    if !target.standard.is_empty() {
        let signatures: Vec<String> = target
            .standard
            .iter()
            .filter(|(_, until)| until.is_none_or(|until| now < until))
            .map(|(signer, _)| signer.sign(message.event_id, timestamp, &message.body))
            .collect();
        headers.insert(headers::STANDARD_ID, HeaderValue::from_str(message.event_id)?);
        headers.insert(headers::STANDARD_TIMESTAMP, HeaderValue::from(timestamp));
        headers.insert(
            headers::STANDARD_SIGNATURE,
            HeaderValue::try_from(signatures.join(" "))?,
        );
    }
    request.extensions_mut().insert(AttemptLabels {
        endpoint: target.endpoint.id.clone(),
        event: message.event.to_owned(),
        event_id: message.event_id.to_owned(),
        attempt: message.attempt,
        parent: message.traceparent.map(str::to_owned),
    });
    Ok(request)
}
