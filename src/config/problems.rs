//! Collecting configuration errors, each as `SOURCE: KEY: REASON`.
//!
//! Validation reports every problem it finds, not just the first, and each
//! names where the value came from: the file path, `env HOOKD_...`, or
//! `defaults`.

use std::fmt;

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file path, `env HOOKD_...`, or `defaults`.
    pub source: String,
    /// The key, dotted, with `[n]` for list items: `endpoints[0].url`.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.key, self.reason)
    }
}

/// Every problem found in one configuration; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Finds the source of a key (a dotted path without list indexes).
pub type Locate<'a> = &'a dyn Fn(&str) -> String;

/// Gathers problems during validation.
pub struct Problems<'a> {
    locate: Locate<'a>,
    errors: Vec<ConfigError>,
}

impl<'a> Problems<'a> {
    pub fn new(locate: Locate<'a>) -> Problems<'a> {
        Problems {
            locate,
            errors: Vec::new(),
        }
    }

    /// Records that `key` is wrong because of `reason`.
    pub fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        let key = key.into();
        // Sources are tracked per table key; a list item's source is its
        // list's: `endpoints[1].url` comes from wherever `endpoints` did.
        let lookup = key.split('[').next().unwrap_or(&key);
        self.errors.push(ConfigError {
            source: (self.locate)(lookup),
            key,
            reason: reason.into(),
        });
    }

    /// Runs a check and keeps its value, or records its error under `key`.
    pub fn check<T>(&mut self, key: impl Into<String>, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(reason) => {
                self.add(key, reason);
                None
            }
        }
    }

    /// Takes the problems found in another source.
    pub fn merge(&mut self, other: Problems<'_>) {
        self.errors.extend(other.errors);
    }

    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}
