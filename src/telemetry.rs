//! Logging through `tracing`: human-readable or JSON lines on stderr.
//!
//! `RUST_LOG`, when set, overrides `telemetry.log_level`. Nothing logged
//! may hold a secret, a signature, the admin token or event `data`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{LogFormat, TelemetrySettings};

/// Changes the filter of the installed subscriber (a config reload).
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber. Call once, from `main`.
pub fn init_logging(settings: &TelemetrySettings) {
    let (filter, handle) = reload::Layer::new(initial_filter(&settings.log_level));
    let _ = FILTER.set(handle);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter);
    match settings.log_format {
        LogFormat::Pretty => registry.with(fmt).init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).init(),
    }
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
