//! `HOOKD_` variables whose values are text exactly as written.
//!
//! figment's `Env` reads values as TOML-like literals: `0042` becomes the
//! number 42, `true` a boolean. For a token that is wrong twice over: the
//! value changes, and the type error that follows would print it. The
//! variables this provider serves are handed over as strings, untouched.

use figment::providers::Env;
use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// Wraps an `Env` (already filtered to the verbatim keys) and emits its
/// values as strings.
pub struct VerbatimEnv(Env);

impl VerbatimEnv {
    pub fn new(env: Env) -> VerbatimEnv {
        VerbatimEnv(env)
    }
}

impl Provider for VerbatimEnv {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    /// The keys are `table.key` (as [`super::VERBATIM_KEYS`] are).
    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut tables: Map<String, Dict> = Map::new();
        for (key, value) in self.0.iter() {
            if let Some((table, field)) = key.as_str().split_once('.') {
                tables
                    .entry(table.to_owned())
                    .or_default()
                    .insert(field.to_owned(), Value::from(value));
            }
        }
        let dict = tables
            .into_iter()
            .map(|(table, fields)| (table, Value::from(fields)))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}
