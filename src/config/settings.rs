//! The checked configuration hookd runs on.
//!
//! [`Settings::from_file`] turns the file's shape into typed values and
//! refuses the whole config on any problem, listing all of them. Nothing
//! downstream re-checks: a zero timeout or a bad URL never gets this far.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use ipnet::IpNet;

use super::access::{Access, access};
use super::breaker::{BreakerSettings, breaker_settings};
use super::cluster::{ClusterSettings, cluster_settings};
use super::duration::{parse_duration, positive_duration};
use super::endpoint::{Endpoint, EndpointIds};
use super::file::{ConfigFile, EndpointFile};
use super::fleet::Fleet;
use super::http_url::parse_http_url;
use super::include::IncludedFile;
use super::operations::{OperationsSettings, operations_settings};
use super::problems::{ConfigErrors, Locate, Problems};
use crate::catalog::Catalog;

/// The largest count a setting takes (`concurrency`, `max_batch_events`).
const MAX_COUNT: u64 = 1_000_000;
/// The largest size a setting takes (`max_body_bytes`): 1 GiB.
const MAX_SIZE: u64 = 1 << 30;

/// Everything hookd needs to run, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub catalog: Catalog,
    pub ingest: IngestSettings,
    pub admin: AdminSettings,
    pub storage: StorageSettings,
    pub delivery: DeliverySettings,
    pub operations: OperationsSettings,
    pub telemetry: TelemetrySettings,
    /// Cluster mode's settings; `None`: standalone.
    pub cluster: Option<ClusterSettings>,
    /// The endpoints, indexed for routing.
    pub endpoints: Fleet,
    /// The configuration as written, for `check-config` and the admin API.
    pub file: ConfigFile,
    /// Every file the config reads besides itself (secret files and the
    /// CA file, included files excepted): a change to one of them is a
    /// change to the config.
    pub referenced_files: Vec<PathBuf>,
    /// The file it was loaded from, watched for changes; `None` when it
    /// came from elsewhere (a test's string).
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub max_batch_events: usize,
    /// Its token and the `Host` names it answers without one.
    pub access: Access,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// Its token and the `Host` names it answers without one.
    pub access: Access,
}

#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub path: PathBuf,
    /// Finished deliveries older than this are removed, events with them.
    pub retention: Duration,
}

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub timeout: Duration,
    pub concurrency: usize,
    pub endpoint_concurrency: usize,
    pub retry_schedule: Vec<Duration>,
    pub retry_jitter: f64,
    pub allow_private_networks: bool,
    pub allowed_networks: Vec<IpNet>,
    pub ca_file: Option<PathBuf>,
    pub shutdown_grace: Duration,
    pub breaker: BreakerSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Http,
    Grpc,
}

#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// A `tracing` filter: `info`, or `hookd=debug,tower=warn`.
    pub log_level: String,
    pub otlp_endpoint: Option<Uri>,
    pub otlp_protocol: OtlpProtocol,
    pub service_name: String,
    /// Whether metrics carry an `endpoint` label.
    pub per_endpoint_metrics: bool,
}

impl Settings {
    /// What differs from `other` that only a restart applies: listen
    /// addresses, the store's path, `[cluster]`, and the telemetry export.
    pub fn restart_needed_for(&self, other: &Settings) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.ingest.listen != other.ingest.listen {
            keys.push("ingest.listen");
        }
        if self.admin.listen != other.admin.listen {
            keys.push("admin.listen");
        }
        if self.storage.path != other.storage.path {
            keys.push("storage.path");
        }
        if self.cluster != other.cluster {
            keys.push("cluster");
        }
        let (mine, theirs) = (&self.telemetry, &other.telemetry);
        if mine.per_endpoint_metrics != theirs.per_endpoint_metrics {
            keys.push("telemetry.per_endpoint_metrics");
        }
        if mine.otlp_endpoint != theirs.otlp_endpoint
            || mine.otlp_protocol != theirs.otlp_protocol
            || mine.service_name != theirs.service_name
            || mine.log_format != theirs.log_format
        {
            keys.push("telemetry");
        }
        keys
    }

    /// Why these settings must not run on listeners bound at `ingest` and
    /// `admin` (the addresses actually bound, which a reload cannot move):
    /// one that is beyond loopback without its token.
    pub fn exposure(&self, ingest: SocketAddr, admin: SocketAddr) -> Vec<String> {
        let ingest = self.ingest.access.exposure("ingest", ingest);
        let admin = self.admin.access.exposure("admin", admin);
        ingest.into_iter().chain(admin).collect()
    }

    /// Checks `file` and the endpoints of the files it includes; `locate`
    /// names the source of a key of `file` for error messages.
    pub fn from_file(
        file: ConfigFile,
        included: Vec<IncludedFile>,
        locate: Locate<'_>,
    ) -> Result<Settings, ConfigErrors> {
        let mut problems = Problems::new(locate);
        let catalog = match Catalog::new(&file.events) {
            Ok(catalog) => Some(catalog),
            Err(errors) => {
                for (index, reason) in errors {
                    problems.add(format!("events[{index}]"), reason);
                }
                None
            }
        };
        let ingest = ingest_settings(&file, &mut problems);
        let admin = admin_settings(&file, &mut problems);
        let storage = storage_settings(&file, &mut problems);
        let delivery = delivery_settings(&file, &mut problems);
        let telemetry = telemetry_settings(&file, &mut problems);
        let cluster = cluster_settings(&file.cluster, &mut problems);
        let mut ids = EndpointIds::default();
        let mut endpoints = Vec::new();
        let main_source = locate("endpoints");
        ids.check(&main_source, &file.endpoints, &mut problems);
        let alert_endpoint = file.operations.alert_endpoint.as_deref();
        if let Some(catalog) = &catalog {
            for (index, endpoint) in file.endpoints.iter().enumerate() {
                endpoints.extend(Endpoint::from_file(
                    endpoint,
                    index,
                    catalog,
                    alert_endpoint,
                    &mut problems,
                ));
            }
        }
        for included_file in &included {
            let source = included_file.path.display().to_string();
            let locate_here = |_: &str| source.clone();
            let mut here = Problems::new(&locate_here);
            ids.check(&source, &included_file.endpoints, &mut here);
            if let Some(catalog) = &catalog {
                for (index, endpoint) in included_file.endpoints.iter().enumerate() {
                    endpoints.extend(Endpoint::from_file(endpoint, index, catalog, alert_endpoint, &mut here));
                }
            }
            problems.merge(here);
        }
        let every_id = file
            .endpoints
            .iter()
            .chain(included.iter().flat_map(|file| &file.endpoints))
            .map(|endpoint| endpoint.id.as_str());
        let operations = operations_settings(&file.operations, every_id, &mut problems);
        problems.finish()?;
        let included_endpoints = included.iter().flat_map(|file| &file.endpoints);
        let mut referenced_files = secret_files(file.endpoints.iter().chain(included_endpoints));
        referenced_files.extend(file.delivery.ca_file.as_deref().map(PathBuf::from));
        let unchecked = "every part was checked above";
        let catalog = catalog.expect(unchecked);
        Ok(Settings {
            endpoints: Fleet::new(endpoints, &catalog),
            catalog,
            ingest: ingest.expect(unchecked),
            admin: admin.expect(unchecked),
            storage: storage.expect(unchecked),
            delivery: delivery.expect(unchecked),
            operations: operations.expect(unchecked),
            telemetry: telemetry.expect(unchecked),
            cluster: cluster.expect(unchecked),
            file,
            referenced_files,
            source: None,
        })
    }
}

/// The secret files `endpoints` read, current and previous.
fn secret_files<'a>(endpoints: impl Iterator<Item = &'a EndpointFile>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for endpoint in endpoints {
        files.extend(endpoint.secret_file.as_deref().map(PathBuf::from));
        for previous in &endpoint.previous_secrets {
            files.extend(previous.secret_file.as_deref().map(PathBuf::from));
        }
    }
    files
}

fn ingest_settings(file: &ConfigFile, problems: &mut Problems<'_>) -> Option<IngestSettings> {
    let ingest = &file.ingest;
    let max_body_bytes = problems.check("ingest.max_body_bytes", size(ingest.max_body_bytes));
    let max_batch_events = problems.check("ingest.max_batch_events", count(ingest.max_batch_events));
    let (listen, access) = listener(
        "ingest",
        &ingest.listen,
        ingest.token.as_deref(),
        &ingest.allowed_hosts,
        problems,
    )?;
    Some(IngestSettings {
        listen,
        max_body_bytes: max_body_bytes?,
        max_batch_events: max_batch_events?,
        access,
    })
}

fn admin_settings(file: &ConfigFile, problems: &mut Problems<'_>) -> Option<AdminSettings> {
    let admin = &file.admin;
    let (listen, access) = listener(
        "admin",
        &admin.listen,
        admin.token.as_deref(),
        &admin.allowed_hosts,
        problems,
    )?;
    Some(AdminSettings { listen, access })
}

/// A listener's address and access rules; beyond loopback it needs its
/// token.
fn listener(
    section: &str,
    listen: &str,
    token: Option<&str>,
    allowed_hosts: &[String],
    problems: &mut Problems<'_>,
) -> Option<(SocketAddr, Access)> {
    let listen_key = format!("{section}.listen");
    let address = problems.check(listen_key.as_str(), parse_listen(listen));
    let access = access(section, token, allowed_hosts, problems)?;
    let address = address?;
    if let Some(reason) = access.exposure(section, address) {
        problems.add(listen_key, reason);
        return None;
    }
    Some((address, access))
}

fn storage_settings(file: &ConfigFile, problems: &mut Problems<'_>) -> Option<StorageSettings> {
    if file.storage.path.is_empty() {
        problems.add("storage.path", "must not be empty");
    }
    let retention = problems.check("storage.retention", positive_duration(&file.storage.retention));
    if file.storage.path.is_empty() {
        return None;
    }
    Some(StorageSettings {
        path: PathBuf::from(&file.storage.path),
        retention: retention?,
    })
}

fn delivery_settings(file: &ConfigFile, problems: &mut Problems<'_>) -> Option<DeliverySettings> {
    let delivery = &file.delivery;
    let timeout = problems.check("delivery.timeout", positive_duration(&delivery.timeout));
    let concurrency = problems.check("delivery.concurrency", count(delivery.concurrency));
    let endpoint_concurrency = problems.check("delivery.endpoint_concurrency", count(delivery.endpoint_concurrency));
    let mut retry_schedule = Vec::new();
    for (n, text) in delivery.retry_schedule.iter().enumerate() {
        retry_schedule.extend(problems.check(format!("delivery.retry_schedule[{n}]"), positive_duration(text)));
    }
    let jitter_ok = (0.0..1.0).contains(&delivery.retry_jitter);
    if !jitter_ok {
        problems.add(
            "delivery.retry_jitter",
            format!(
                "{} is out of range: use a fraction from 0 (exact) up to, not including, 1",
                delivery.retry_jitter
            ),
        );
    }
    let mut allowed_networks = Vec::new();
    for (n, text) in delivery.allowed_networks.iter().enumerate() {
        allowed_networks.extend(
            problems.check(
                format!("delivery.allowed_networks[{n}]"),
                text.parse::<IpNet>()
                    .map_err(|_| format!("`{text}` is not a network in CIDR form like 10.20.0.0/16")),
            ),
        );
    }
    let ca_file = delivery.ca_file.as_deref().map(PathBuf::from);
    if let Some(path) = &ca_file
        && let Err(error) = std::fs::metadata(path)
    {
        problems.add("delivery.ca_file", format!("cannot read {}: {error}", path.display()));
    }
    let shutdown_grace = problems.check("delivery.shutdown_grace", parse_duration(&delivery.shutdown_grace));
    let breaker = breaker_settings(&delivery.breaker, problems);
    if !jitter_ok
        || retry_schedule.len() != delivery.retry_schedule.len()
        || allowed_networks.len() != delivery.allowed_networks.len()
    {
        return None;
    }
    Some(DeliverySettings {
        timeout: timeout?,
        concurrency: concurrency?,
        endpoint_concurrency: endpoint_concurrency?,
        retry_schedule,
        retry_jitter: delivery.retry_jitter,
        allow_private_networks: delivery.allow_private_networks,
        allowed_networks,
        ca_file,
        shutdown_grace: shutdown_grace?,
        breaker: breaker?,
    })
}

fn telemetry_settings(file: &ConfigFile, problems: &mut Problems<'_>) -> Option<TelemetrySettings> {
    let telemetry = &file.telemetry;
    let log_format = match telemetry.log_format.as_str() {
        "pretty" => Some(LogFormat::Pretty),
        "json" => Some(LogFormat::Json),
        other => {
            problems.add(
                "telemetry.log_format",
                format!("unknown format `{other}` (use \"pretty\" or \"json\")"),
            );
            None
        }
    };
    let log_level = problems.check(
        "telemetry.log_level",
        tracing_subscriber::EnvFilter::builder()
            .parse(&telemetry.log_level)
            .map(|_| telemetry.log_level.clone())
            .map_err(|error| format!("`{}` is not a log filter: {error}", telemetry.log_level)),
    );
    let otlp_endpoint = match telemetry.otlp_endpoint.as_deref() {
        None => Some(None),
        Some(text) => problems
            .check("telemetry.otlp_endpoint", parse_otlp_endpoint(text))
            .map(Some),
    };
    let otlp_protocol = match telemetry.otlp_protocol.as_str() {
        "http" => Some(OtlpProtocol::Http),
        "grpc" => Some(OtlpProtocol::Grpc),
        other => {
            problems.add(
                "telemetry.otlp_protocol",
                format!("unknown protocol `{other}` (use \"http\" or \"grpc\")"),
            );
            None
        }
    };
    if telemetry.service_name.is_empty() {
        problems.add("telemetry.service_name", "must not be empty");
        return None;
    }
    Some(TelemetrySettings {
        log_format: log_format?,
        log_level: log_level?,
        otlp_endpoint: otlp_endpoint?,
        otlp_protocol: otlp_protocol?,
        service_name: telemetry.service_name.clone(),
        per_endpoint_metrics: telemetry.per_endpoint_metrics,
    })
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not an address with a port, like 127.0.0.1:8787"))
}

/// A count from 1 to [`MAX_COUNT`].
fn count(value: u64) -> Result<usize, String> {
    within(value, MAX_COUNT, "1000000")
}

/// A size in bytes from 1 to [`MAX_SIZE`].
fn size(value: u64) -> Result<usize, String> {
    within(value, MAX_SIZE, "1 GiB (1073741824)")
}

fn within(value: u64, max: u64, max_text: &str) -> Result<usize, String> {
    match usize::try_from(value) {
        Ok(checked) if (1..=max).contains(&value) => Ok(checked),
        _ => Err(format!("{value} is out of range: must be from 1 to {max_text}")),
    }
}

/// The collector's base URL; a collector's token goes in
/// `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_otlp_endpoint(text: &str) -> Result<Uri, String> {
    parse_http_url(text, "send them with OTEL_EXPORTER_OTLP_HEADERS")
}
