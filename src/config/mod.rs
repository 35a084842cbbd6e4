//! Configuration: built-in defaults, then the operator's file, then `HOOKD_`
//! environment variables, merged with figment and checked into [`Settings`].
//!
//! Loading ([`load`], [`layers`]) is kept apart from checking
//! ([`Settings::from_file`]), so tests can check a config without files or
//! environment. Every problem is reported as `SOURCE: KEY: REASON`, where
//! SOURCE is the file path, `env HOOKD_...` or `defaults`.

mod access;
mod breaker;
mod cluster;
mod duration;
mod endpoint;
mod file;
mod fleet;
mod http_url;
mod include;
mod operations;
mod problems;
mod rate_limit;
mod secret;
mod settings;
mod verbatim_env;
mod yaml;

use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::{Figment, Metadata, Source};

use self::verbatim_env::VerbatimEnv;
use self::yaml::Yaml;

pub use access::Access;
pub use breaker::BreakerSettings;
pub use cluster::{ClusterAck, ClusterSettings};
pub use duration::parse_duration;
pub use endpoint::Endpoint;
pub use file::{ConfigFile, REDACTED};
pub use fleet::Fleet;
pub use include::IncludedFile;
pub use operations::OperationsSettings;
pub use problems::{ConfigError, ConfigErrors};
pub use rate_limit::RateLimit;
pub use secret::Secret;
pub use settings::{
    AdminSettings, DeliverySettings, IngestSettings, LogFormat, OtlpProtocol, Settings, StorageSettings,
    TelemetrySettings,
};

/// The commented defaults, merged under everything else.
pub const DEFAULTS: &str = include_str!("defaults.toml");
/// Environment variables with this prefix override config keys, with `__`
/// between nested keys: `HOOKD_DELIVERY__TIMEOUT=5s`.
pub const ENV_PREFIX: &str = "HOOKD_";
/// The config file when neither `--config` nor `HOOKD_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "config/hookd.toml";
/// `HOOKD_` variables the CLI reads itself; they are not config keys.
const CLI_VARIABLES: [&str; 3] = ["CONFIG", "ADMIN_URL", "ADMIN_TOKEN"];
/// Keys whose `HOOKD_` variables are taken exactly as written, never
/// parsed: a token of digits stays text, leading zeros and all.
const VERBATIM_KEYS: [&str; 2] = ["ingest.token", "admin.token"];
/// Where an error about a whole file (not one key) is filed.
const WHOLE_FILE: &str = "(file)";

/// Loads `path` over the defaults, then the environment, and checks it.
pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    if let Err(error) = std::fs::metadata(path) {
        return Err(ConfigErrors(vec![ConfigError {
            source: path.display().to_string(),
            key: WHOLE_FILE.to_owned(),
            reason: format!("cannot read: {error}"),
        }]));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut settings = from_figment_in(&layers(Some(path)), base)?;
    settings.source = Some(path.to_owned());
    Ok(settings)
}

/// Defaults < `file` (TOML, or YAML for `.yaml`/`.yml`) < `HOOKD_` env.
pub fn layers(file: Option<&Path>) -> Figment {
    let mut figment = Figment::from(Toml::string(DEFAULTS));
    if let Some(path) = file {
        let is_yaml = path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        figment = if is_yaml {
            figment.merge(Yaml::file_exact(path))
        } else {
            figment.merge(Toml::file_exact(path))
        };
    }
    let ignored: Vec<&str> = CLI_VARIABLES.iter().chain(&VERBATIM_KEYS).copied().collect();
    figment
        .merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&ignored))
        .merge(VerbatimEnv::new(
            Env::prefixed(ENV_PREFIX).split("__").only(&VERBATIM_KEYS),
        ))
}

/// The files `include` globs match from `base`, or why they cannot be
/// matched.
pub fn included_files(base: &Path, globs: &[String]) -> Result<Vec<std::path::PathBuf>, String> {
    include::matching_files(base, globs, "include").map_err(|errors| ConfigErrors(errors).to_string())
}

/// Extracts and checks the merged configuration; `include` globs are
/// resolved from the current directory.
pub fn from_figment(figment: &Figment) -> Result<Settings, ConfigErrors> {
    from_figment_in(figment, Path::new("."))
}

/// Extracts and checks the merged configuration, with the files its
/// `include` globs match from `base`.
fn from_figment_in(figment: &Figment, base: &Path) -> Result<Settings, ConfigErrors> {
    let locate = |key: &str| source_of(figment, key);
    let file: ConfigFile = figment.extract().map_err(|error| {
        ConfigErrors(
            error
                .into_iter()
                .map(|error| extraction_error(figment, error))
                .collect(),
        )
    })?;
    let included = include::matching_files(base, &file.include, &locate("include"))
        .and_then(include::read_all)
        .map_err(ConfigErrors)?;
    Settings::from_file(file, included, &locate)
}

/// Turns one figment error into `SOURCE: KEY: REASON`.
fn extraction_error(figment: &Figment, error: figment::Error) -> ConfigError {
    let reason = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
        // A value that may be a secret is never repeated, not even to say
        // its type is wrong.
        figment::error::Kind::InvalidType(_, expected) if holds_secret(&error.path) => {
            format!("invalid type: expected {expected} (the value is not shown: it may be a secret)")
        }
        _ if holds_secret(&error.path) => "invalid value (not shown: it may be a secret)".to_owned(),
        kind => kind.to_string(),
    };
    // figment's path ends with the unknown field itself, and writes list
    // indexes as plain segments.
    let lookup = error.path.join(".");
    let key = display_key(&error.path);
    // The error's own metadata is that of the table holding the key, which
    // may come from another layer; the key's own source is the precise one.
    let source = match figment.find_metadata(&lookup) {
        Some(metadata) if !lookup.is_empty() => describe(metadata, &lookup),
        _ => error
            .metadata
            .as_ref()
            .map_or_else(|| "defaults".to_owned(), |metadata| describe(metadata, &lookup)),
    };
    let key = if key.is_empty() { WHOLE_FILE.to_owned() } else { key };
    ConfigError { source, key, reason }
}

/// Whether the key at `path` holds a secret: a token, a secret, or an
/// endpoint header's value.
fn holds_secret(path: &[String]) -> bool {
    path.iter()
        .any(|segment| matches!(segment.as_str(), "token" | "secret" | "headers"))
}

/// `["endpoints", "0", "url"]` as `endpoints[0].url`.
fn display_key(path: &[String]) -> String {
    let mut key = String::new();
    for segment in path {
        if segment.bytes().all(|b| b.is_ascii_digit()) && !key.is_empty() {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    key
}

/// Names the layer `key` came from.
fn source_of(figment: &Figment, key: &str) -> String {
    figment
        .find_metadata(key)
        .map_or_else(|| "defaults".to_owned(), |metadata| describe(metadata, key))
}

fn describe(metadata: &Metadata, key: &str) -> String {
    match &metadata.source {
        Some(Source::File(path)) => path.display().to_string(),
        Some(Source::Code(_)) => "defaults".to_owned(),
        _ if metadata.name.contains("environment") => {
            format!("env {ENV_PREFIX}{}", key.replace('.', "__").to_ascii_uppercase())
        }
        _ => metadata.name.to_string(),
    }
}

impl Settings {
    /// The effective configuration as TOML, every secret `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(&self.file.redacted()).expect("the config file shape always serializes")
    }
}

/// The embedded defaults alone, for tests of code that needs settings.
#[cfg(test)]
pub(crate) fn default_settings() -> Settings {
    from_figment(&Figment::from(Toml::string(DEFAULTS))).expect("the defaults are valid")
}

#[cfg(test)]
mod fuzz {
    //! Any config text gets settings or a list of `SOURCE: KEY: REASON`
    //! problems, never a panic.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Keys the config knows, written as TOML dotted keys.
    const KEYS: [&str; 25] = [
        "ingest.listen",
        "ingest.max_body_bytes",
        "ingest.max_batch_events",
        "ingest.token",
        "ingest.allowed_hosts",
        "admin.listen",
        "admin.token",
        "admin.allowed_hosts",
        "storage.path",
        "storage.retention",
        "delivery.timeout",
        "delivery.concurrency",
        "delivery.endpoint_concurrency",
        "delivery.retry_schedule",
        "delivery.retry_jitter",
        "delivery.allowed_networks",
        "delivery.shutdown_grace",
        "delivery.breaker.failures",
        "delivery.breaker.cooldown",
        "delivery.breaker.max_cooldown",
        "telemetry.log_level",
        "telemetry.otlp_endpoint",
        "telemetry.otlp_protocol",
        "events",
        "delivery.ca_file",
    ];

    fn toml_string(text: String) -> String {
        toml::Value::String(text).to_string()
    }

    /// A TOML value of any kind, leaning to the awkward ones.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,16}".prop_map(toml_string),
            "(-?[0-9]{1,12}(ms|s|m|h|d)?|[0-9.:]{1,20}|\\[?[0-9a-f:]{0,20}\\]?:[0-9]{0,6})".prop_map(toml_string),
            "(https?|ftp|file)://[a-z0-9.:@%\\[\\]-]{0,24}(/[a-z%]{0,6})?".prop_map(toml_string),
            any::<i64>().prop_map(|number| number.to_string()),
            any::<f64>().prop_map(|number| toml::Value::Float(number).to_string()),
            any::<bool>().prop_map(|flag| flag.to_string()),
            vec(".{0,8}", 0..3).prop_map(|items| {
                toml::Value::Array(items.into_iter().map(toml::Value::String).collect()).to_string()
            }),
            Just("{}".to_owned()),
        ]
    }

    fn check(text: &str) -> Result<(), TestCaseError> {
        let figment = Figment::from(Toml::string(DEFAULTS)).merge(Toml::string(text));
        if let Err(ConfigErrors(errors)) = from_figment(&figment) {
            prop_assert!(!errors.is_empty());
            for error in errors {
                prop_assert!(!error.source.is_empty() && !error.key.is_empty() && !error.reason.is_empty());
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_text_is_settings_or_problems(text in "(?s).{0,300}") {
            check(&text)?;
        }

        #[test]
        fn known_keys_with_any_values(
            settings in vec((0..KEYS.len(), value()), 0..6),
            endpoint in vec(value(), 4),
        ) {
            let mut text: String = settings
                .iter()
                .map(|(key, value)| format!("{} = {value}\n", KEYS[*key]))
                .collect();
            text.push_str(&format!(
                "[[endpoints]]\nid = {}\nurl = {}\nevents = {}\nsecret = {}\n",
                endpoint[0], endpoint[1], endpoint[2], endpoint[3]
            ));
            check(&text)?;
        }
    }
}
