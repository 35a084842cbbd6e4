//! A subscriber endpoint, checked: where to send, what, and how to sign.

use std::collections::HashMap;

use http::{HeaderName, HeaderValue, Uri};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::file::EndpointFile;
use super::http_url::parse_http_url;
use super::problems::Problems;
use super::rate_limit::RateLimit;
use super::secret::{self, Secret};
use crate::catalog::{Catalog, EventPattern};
use crate::sign::StandardSigner;
use crate::telemetry::trace_context::TRACEPARENT;
use crate::tenant::Audience;

/// One subscriber, ready to deliver to.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `[A-Za-z0-9_-]`, unique within the config.
    pub id: String,
    /// Absolute http or https URL.
    pub url: Uri,
    pub events: Vec<EventPattern>,
    /// Whose events it may receive.
    pub audience: Audience,
    pub secret: Secret,
    /// A disabled endpoint gets no new deliveries; its pending ones pause.
    pub enabled: bool,
    /// How often this hookd may send to it; none: as fast as it answers.
    pub rate_limit: Option<RateLimit>,
    /// `ordering = "key"`: its deliveries of events with the same
    /// `ordering_key` go one at a time, in stored order.
    pub ordered: bool,
    /// Static headers added to every request, none of them reserved.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Also send the Standard Webhooks headers.
    pub standard_webhooks: bool,
    /// Secrets being rotated out, each signing until its time.
    pub previous_secrets: Vec<(Secret, OffsetDateTime)>,
}

impl Endpoint {
    /// Whether this endpoint gets a delivery of `event` of `tenant`.
    pub fn subscribes_to(&self, event: &str, tenant: Option<&str>) -> bool {
        self.enabled && self.audience.admits(tenant) && self.events.iter().any(|pattern| pattern.matches(event))
    }

    /// Checks one `[[endpoints]]` entry, recording each problem under
    /// `endpoints[index]`. The `alert_endpoint` (of `[operations]`) may
    /// subscribe to nothing: hookd's own events reach it all the same.
    pub fn from_file(
        file: &EndpointFile,
        index: usize,
        catalog: &Catalog,
        alert_endpoint: Option<&str>,
        problems: &mut Problems<'_>,
    ) -> Option<Endpoint> {
        let key = |field: &str| format!("endpoints[{index}].{field}");
        let id = problems.check(key("id"), check_endpoint_id(&file.id));
        let url = problems.check(key("url"), parse_endpoint_url(&file.url));
        let mut events = Vec::new();
        if file.events.is_empty() && alert_endpoint != Some(file.id.as_str()) {
            problems.add(key("events"), "subscribe to at least one event");
        }
        for (n, text) in file.events.iter().enumerate() {
            events.extend(problems.check(format!("{}[{n}]", key("events")), EventPattern::parse(text, catalog)));
        }
        let audience = problems.check(key("tenant"), Audience::parse(file.tenant.as_deref()));
        let secret = problems.check(key("secret"), secret::resolve(file.secret_source()));
        let ordered = match file.ordering.as_str() {
            "key" => true,
            "none" => false,
            other => {
                problems.add(
                    key("ordering"),
                    format!("unknown ordering `{other}` (use \"key\" or \"none\")"),
                );
                false
            }
        };
        let rate_limit = file
            .rate_limit
            .as_deref()
            .and_then(|text| problems.check(key("rate_limit"), RateLimit::parse(text)));
        let mut headers = Vec::new();
        for (name, value) in &file.headers {
            headers.extend(problems.check(format!("{}.{name}", key("headers")), parse_header(name, value)));
        }
        let mut standard_webhooks = false;
        for (n, scheme) in file.signatures.iter().enumerate() {
            match scheme.as_str() {
                // The hex signature is always sent; listing it changes nothing.
                "hex" => {}
                "standard-webhooks" => standard_webhooks = true,
                other => problems.add(
                    format!("{}[{n}]", key("signatures")),
                    format!("unknown signature scheme `{other}` (use \"hex\" or \"standard-webhooks\")"),
                ),
            }
        }
        if standard_webhooks && let Some(secret) = &secret {
            problems.check(key("secret"), check_standard_webhooks_secret(secret));
        }
        let mut previous_secrets = Vec::new();
        for (n, previous) in file.previous_secrets.iter().enumerate() {
            let prefix = format!("{}[{n}]", key("previous_secrets"));
            let secret = problems.check(format!("{prefix}.secret"), secret::resolve(previous.secret_source()));
            if standard_webhooks && let Some(secret) = &secret {
                problems.check(format!("{prefix}.secret"), check_standard_webhooks_secret(secret));
            }
            let until = problems.check(
                format!("{prefix}.until"),
                OffsetDateTime::parse(&previous.until, &Rfc3339)
                    .map_err(|error| format!("`{}` is not an RFC 3339 time: {error}", previous.until)),
            );
            if let (Some(secret), Some(until)) = (secret, until) {
                previous_secrets.push((secret, until));
            }
        }
        Some(Endpoint {
            id: id?,
            url: url?,
            events,
            audience: audience?,
            secret: secret?,
            enabled: file.enabled,
            rate_limit,
            ordered,
            headers,
            standard_webhooks,
            previous_secrets,
        })
    }
}

/// The endpoint ids seen so far, across the main file and every included
/// one, with the file each came from: a second one is refused.
#[derive(Default)]
pub struct EndpointIds {
    seen: HashMap<String, String>,
}

impl EndpointIds {
    /// Checks the ids of `endpoints`, from `source`, against those seen.
    pub fn check(&mut self, source: &str, endpoints: &[EndpointFile], problems: &mut Problems<'_>) {
        for (index, endpoint) in endpoints.iter().enumerate() {
            match self.seen.get(&endpoint.id) {
                Some(first) => problems.add(
                    format!("endpoints[{index}].id"),
                    if first == source {
                        format!("duplicate endpoint id `{}`", endpoint.id)
                    } else {
                        format!("duplicate endpoint id `{}` (also in {first})", endpoint.id)
                    },
                ),
                None => {
                    self.seen.insert(endpoint.id.clone(), source.to_owned());
                }
            }
        }
    }
}

fn check_endpoint_id(id: &str) -> Result<String, String> {
    let valid =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "`{id}` is not a valid id (1 to 64 letters, digits, `_` or `-`)"
        ))
    }
}

fn parse_endpoint_url(text: &str) -> Result<Uri, String> {
    parse_http_url(text, "use headers")
}

/// Headers hookd sets itself; an endpoint may not override them.
fn is_reserved_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "content-type" | "user-agent" | "content-length" | "host")
        || name == TRACEPARENT
        || name.starts_with("x-webhook-")
        || name.starts_with("webhook-")
}

fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    if is_reserved_header(name) {
        return Err(format!("`{name}` is reserved: hookd sets it"));
    }
    let header_name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a valid header name"))?;
    let header_value =
        HeaderValue::from_str(value).map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
    Ok((header_name, header_value))
}

fn check_standard_webhooks_secret(secret: &Secret) -> Result<(), String> {
    StandardSigner::new(secret.expose())
        .map(|_| ())
        .map_err(|reason| format!("with standard-webhooks, {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(parse_endpoint_url("https://crm.example.com/webhooks").is_ok());
        assert!(parse_endpoint_url("http://127.0.0.1:9000/x?y=1").is_ok());
        for bad in [
            "ftp://x.example/",
            "/webhooks",
            "crm.example.com",
            "https://",
            "https://u:p@x.example/",
            "not a url",
        ] {
            assert!(parse_endpoint_url(bad).is_err(), "{bad}");
        }
        for leaky in [
            "https://u:hunter2@x.example/",
            "https://u:hunter2@/",
            "htps://u:hunter2@x",
        ] {
            let reason = parse_endpoint_url(leaky).unwrap_err();
            assert!(!reason.contains("hunter2"), "{reason}");
        }
    }

    #[test]
    fn reserved_headers_are_refused_in_any_case() {
        for name in [
            "Content-Type",
            "user-agent",
            "TRACEPARENT",
            "X-Webhook-Signature",
            "x-webhook-anything",
            "webhook-id",
        ] {
            assert!(parse_header(name, "v").unwrap_err().contains("reserved"), "{name}");
        }
        assert!(parse_header("X-Tenant", "euron").is_ok());
        assert!(parse_header("bad name", "v").is_err());
        assert!(parse_header("X-Ok", "line\nbreak").is_err());
    }

    #[test]
    fn standard_webhooks_secrets_are_whsec_base64() {
        assert!(check_standard_webhooks_secret(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_ok());
        assert!(check_standard_webhooks_secret(&Secret::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_err());
        assert!(check_standard_webhooks_secret(&Secret::new("whsec_not base64!")).is_err());
        assert!(check_standard_webhooks_secret(&Secret::new("whsec_")).is_err());
    }
}
