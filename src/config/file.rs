//! The configuration as written: the serde shape of `hookd.toml`.
//!
//! These structs mirror the file key for key and refuse unknown keys, so a
//! typo is an error rather than a silent default. Values stay as the operator
//! wrote them (durations as strings, URLs as text); [`super::settings`] turns
//! them into checked, typed values. `check-config` and `GET /v1/config` print
//! this shape back, with [`ConfigFile::redacted`] hiding every secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What `check-config` prints in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// `Debug` shows the redacted config, so a stray `{:?}` leaks no secret.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub events: Vec<String>,
    /// Globs of files with more `[[endpoints]]`, relative to this file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    pub ingest: IngestFile,
    pub admin: AdminFile,
    pub storage: StorageFile,
    pub delivery: DeliveryFile,
    pub operations: OperationsFile,
    pub telemetry: TelemetryFile,
    pub cluster: ClusterFile,
    pub endpoints: Vec<EndpointFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestFile {
    pub listen: String,
    pub max_body_bytes: u64,
    pub max_batch_events: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    pub path: String,
    pub retention: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFile {
    pub timeout: String,
    pub concurrency: u64,
    pub endpoint_concurrency: u64,
    pub retry_schedule: Vec<String>,
    pub retry_jitter: f64,
    pub allow_private_networks: bool,
    pub allowed_networks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    pub shutdown_grace: String,
    pub breaker: BreakerFile,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerFile {
    pub failures: u64,
    pub cooldown: String,
    pub max_cooldown: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperationsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_endpoint: Option<String>,
    pub backlog_alert: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    pub log_format: String,
    pub log_level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: String,
    pub service_name: String,
    pub per_endpoint_metrics: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    pub ack: String,
    pub park_after: String,
    pub park_grace: String,
    pub lease: String,
    pub replicas: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFile {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// A tenant id, or `"*"`; none: events without a tenant only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `"N/s"` or `"N/m"`; none: as fast as the endpoint answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// `"key"`: one delivery at a time per `ordering_key`; `"none"`.
    #[serde(default = "default_ordering")]
    pub ordering: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_signatures")]
    pub signatures: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_secrets: Vec<PreviousSecretFile>,
}

/// A secret being rotated out: still signed with until `until`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousSecretFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    pub until: String,
}

/// Where one secret comes from, as written: inline, by environment variable
/// or by file. Validation insists on exactly one.
#[derive(Debug, Clone, Copy)]
pub struct SecretSource<'a> {
    pub inline: Option<&'a str>,
    pub env: Option<&'a str>,
    pub file: Option<&'a str>,
}

impl EndpointFile {
    pub fn secret_source(&self) -> SecretSource<'_> {
        SecretSource {
            inline: self.secret.as_deref(),
            env: self.secret_env.as_deref(),
            file: self.secret_file.as_deref(),
        }
    }
}

impl PreviousSecretFile {
    pub fn secret_source(&self) -> SecretSource<'_> {
        SecretSource {
            inline: self.secret.as_deref(),
            env: self.secret_env.as_deref(),
            file: self.secret_file.as_deref(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_ordering() -> String {
    "none".to_owned()
}

fn default_signatures() -> Vec<String> {
    vec!["hex".to_owned()]
}

impl ConfigFile {
    /// The same configuration with every secret value replaced by
    /// [`REDACTED`]: the tokens, endpoint secrets and the values of endpoint
    /// `headers` (where credentials go), and a user and password in
    /// `cluster.nats_url`. Variable names, file paths and header names
    /// stay: they are not secret.
    pub fn redacted(&self) -> ConfigFile {
        let mut copy = self.clone();
        redact(&mut copy.ingest.token);
        redact(&mut copy.admin.token);
        if let Some(servers) = &mut copy.cluster.nats_url {
            *servers = redact_user_info(servers);
        }
        for endpoint in &mut copy.endpoints {
            redact(&mut endpoint.secret);
            for value in endpoint.headers.values_mut() {
                REDACTED.clone_into(value);
            }
            for previous in &mut endpoint.previous_secrets {
                redact(&mut previous.secret);
            }
        }
        copy
    }
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match toml::to_string(&self.redacted()) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("ConfigFile { <unprintable> }"),
        }
    }
}

/// `servers` (comma-separated URLs) with what stands before each `@`
/// after the scheme replaced by [`REDACTED`].
fn redact_user_info(servers: &str) -> String {
    let redacted: Vec<String> = servers
        .split(',')
        .map(|server| match server.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                let host = rest.rsplit('@').next().unwrap_or(rest);
                format!("{scheme}://{REDACTED}@{host}")
            }
            _ => server.to_owned(),
        })
        .collect();
    redacted.join(",")
}

fn redact(secret: &mut Option<String>) {
    if secret.is_some() {
        *secret = Some(REDACTED.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_and_password_in_the_nats_urls_are_redacted() {
        assert_eq!(
            redact_user_info("nats://hookd:s3cret@nats-0:4222, nats://nats-1:4222"),
            format!("nats://{REDACTED}@nats-0:4222, nats://nats-1:4222")
        );
    }
}
