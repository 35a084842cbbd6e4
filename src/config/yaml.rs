//! YAML config files for figment, read with `serde-saphyr`.
//!
//! figment's own YAML provider is built on `serde_yaml`, which its author
//! deprecated in 2024 (no more fixes). `serde-saphyr` is maintained, pure
//! Rust, refuses rather than panics on malformed input, and bounds what a
//! document may expand to (aliases, depth, size), so a hostile file cannot
//! make hookd allocate without limit. Errors carry a line and column but
//! no snippet of the file: the line could hold a secret.

use serde::de::DeserializeOwned;

/// The YAML format, for `figment::providers::Data`.
pub struct Yaml;

impl figment::providers::Format for Yaml {
    type Error = serde_saphyr::Error;

    const NAME: &'static str = "YAML";

    fn from_str<T: DeserializeOwned>(string: &str) -> Result<T, serde_saphyr::Error> {
        serde_saphyr::from_str_with_options(string, serde_saphyr::options! { with_snippet: false })
    }
}
