//! Included endpoint files (SPEC section 2, `include`): more
//! `[[endpoints]]` in files of their own, typically one per tenant or team
//! in a directory that a sync job or several ConfigMaps fill.
//!
//! Each glob is resolved relative to the main file's directory and may
//! match nothing (an empty directory of tenants is normal). Names starting
//! with a dot are never matched, so the `..data` and timestamped
//! directories of a Kubernetes volume are not read twice. An included file
//! holds only `[[endpoints]]` (TOML, or YAML for `.yaml`/`.yml`), and its
//! problems name that file.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use super::file::EndpointFile;
use super::problems::ConfigError;
use super::yaml::Yaml;

/// One included file and the endpoints it holds.
#[derive(Debug, Clone)]
pub struct IncludedFile {
    pub path: PathBuf,
    pub endpoints: Vec<EndpointFile>,
}

/// What an included file may hold.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludedShape {
    #[serde(default)]
    endpoints: Vec<EndpointFile>,
}

/// The paths `globs` match, relative to `base`, sorted, each once
/// (directories too: [`read_all`] skips them, and a watcher need not look
/// twice). `source` names where the globs were written, for their errors.
pub fn matching_files(base: &Path, globs: &[String], source: &str) -> Result<Vec<PathBuf>, Vec<ConfigError>> {
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for (n, pattern) in globs.iter().enumerate() {
        let error = |reason: String| ConfigError {
            source: source.to_owned(),
            key: format!("include[{n}]"),
            reason,
        };
        let full = base.join(pattern);
        let Some(text) = full.to_str() else {
            errors.push(error(format!("`{pattern}` is not valid UTF-8")));
            continue;
        };
        match glob::glob_with(text, options) {
            Err(problem) => errors.push(error(format!("`{pattern}` is not a glob: {problem}"))),
            Ok(matches) => {
                for found in matches {
                    match found {
                        Ok(path) => paths.push(path),
                        Err(problem) => errors.push(error(format!("cannot read {}", problem.path().display()))),
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// Reads each file of `paths` (directories are skipped); every problem
/// names its file.
pub fn read_all(paths: Vec<PathBuf>) -> Result<Vec<IncludedFile>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths.into_iter().filter(|path| !path.is_dir()) {
        let is_yaml = path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        let figment = if is_yaml {
            Figment::from(Yaml::file_exact(&path))
        } else {
            Figment::from(Toml::file_exact(&path))
        };
        match figment.extract::<IncludedShape>() {
            Ok(shape) => files.push(IncludedFile {
                path,
                endpoints: shape.endpoints,
            }),
            Err(error) => errors.extend(error.into_iter().map(|error| {
                let mut problem = super::extraction_error(&figment, error);
                // A file that cannot be read has no metadata of its own.
                problem.source = path.display().to_string();
                problem
            })),
        }
    }
    if errors.is_empty() { Ok(files) } else { Err(errors) }
}
