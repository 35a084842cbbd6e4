//! Logs and traces through `tracing`.
//!
//! Logs are human-readable or JSON lines on stderr, filtered by
//! `telemetry.log_level` (or `RUST_LOG`, which overrides it). With
//! `telemetry.otlp_endpoint` set, hookd's spans (`ingest`, `store.write`,
//! `attempt`) are also exported to an OpenTelemetry collector
//! ([`export`]), whatever the log level: the two outputs are filtered
//! apart. Nothing logged or exported may hold a secret, a signature, the
//! admin token or event `data`.

pub mod export;
mod otlp_client;
pub mod trace_context;

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter as _};
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use self::export::QueuedExport;
use self::otlp_client::OtlpClient;
use crate::config::{LogFormat, TelemetrySettings};

/// Changes the filter of the installed subscriber (a config reload).
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// How long shutdown waits for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Holds the trace export open; [`Telemetry::shutdown`] sends what is left.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued, waiting at most a few seconds.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
        {
            tracing::warn!(%error, "the last spans may not have reached the collector");
        }
    }
}

/// Installs the global subscriber: logs, and the trace export when an
/// OTLP endpoint is set. Call once, from `main`.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    let provider = settings
        .otlp_endpoint
        .as_ref()
        .map(|endpoint| tracer_provider(settings, &endpoint.to_string()))
        .transpose()?;
    let (filter, handle) = reload::Layer::new(initial_filter(&settings.log_level));
    let _ = FILTER.set(handle);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match settings.log_format {
        LogFormat::Pretty => {
            let registry = tracing_subscriber::registry().with(fmt.with_filter(filter));
            registry.with(trace_layer(provider.as_ref())).init();
        }
        LogFormat::Json => {
            let registry = tracing_subscriber::registry().with(fmt.json().flatten_event(true).with_filter(filter));
            registry.with(trace_layer(provider.as_ref())).init();
        }
    }
    if let Some(endpoint) = &settings.otlp_endpoint {
        tracing::info!(%endpoint, protocol = ?settings.otlp_protocol, "exporting traces");
    }
    Ok(Telemetry { provider })
}

/// The tracer provider: hookd's resource, parent-based sampling (the app's
/// decision in its `traceparent` holds), and the queued export.
fn tracer_provider(settings: &TelemetrySettings, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance_id()),
        ])
        .build();
    let client = OtlpClient::new(settings.otlp_protocol).context("cannot set up TLS for the trace export")?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(OtlpClient::export_url(settings.otlp_protocol, endpoint))
        .with_timeout(export::EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .with_context(|| format!("cannot export traces to telemetry.otlp_endpoint {endpoint}"))?;
    exporter.set_resource(&resource);
    let processor = QueuedExport::start(exporter).context("cannot start the trace export thread")?;
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(processor)
        .build())
}

/// The layer that turns hookd's spans into OpenTelemetry spans: hookd's
/// own, at info and above, whatever the log level.
fn trace_layer<S>(provider: Option<&SdkTracerProvider>) -> Option<impl Layer<S>>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("hookd"))
            .with_filter(Targets::new().with_target("hookd", tracing::Level::INFO))
    })
}

/// Names this process among the sidecars: the pod name in Kubernetes (its
/// `HOSTNAME`), the host name elsewhere.
fn instance_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// Applies a reloaded `log_level`, unless `RUST_LOG` rules (or logging was
/// never installed, as in tests).
pub fn set_log_level(level: &str) {
    if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
        return;
    }
    if let Some(handle) = FILTER.get()
        && let Err(error) = handle.reload(EnvFilter::new(level))
    {
        tracing::warn!(%error, "cannot apply the new log level");
    }
}

fn initial_filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level))
}
