//! Endpoint secrets: where they come from and how they are kept out of logs.
//!
//! A secret is given inline (`secret`), by environment variable
//! (`secret_env`) or by file (`secret_file`), exactly one of them. A file
//! loses one trailing newline, as Kubernetes Secret files end with one.
//! [`Secret`] prints as `<redacted>` in `Debug`, so a stray `{:?}` cannot
//! leak it.

use std::fmt;
use std::sync::Arc;

use super::file::{REDACTED, SecretSource};

/// A secret's text. Deliberately not `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(text: impl Into<Arc<str>>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for signing. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Reads the one secret `source` names. The error is the reason only; the
/// caller adds the source and key.
pub fn resolve(source: SecretSource<'_>) -> Result<Secret, String> {
    let given = [source.inline.is_some(), source.env.is_some(), source.file.is_some()];
    match given.iter().filter(|&&set| set).count() {
        0 => return Err("missing secret: set one of secret, secret_env or secret_file".to_owned()),
        1 => {}
        _ => return Err("set only one of secret, secret_env or secret_file".to_owned()),
    }
    let text = if let Some(inline) = source.inline {
        inline.to_owned()
    } else if let Some(variable) = source.env {
        std::env::var(variable).map_err(|error| match error {
            std::env::VarError::NotPresent => format!("environment variable {variable} is not set"),
            std::env::VarError::NotUnicode(_) => format!("environment variable {variable} is not valid UTF-8"),
        })?
    } else {
        let path = source.file.unwrap_or_default();
        let mut text =
            std::fs::read_to_string(path).map_err(|error| format!("cannot read secret file {path}: {error}"))?;
        if text.ends_with('\n') {
            text.pop();
        }
        text
    };
    if text.is_empty() {
        return Err(match (source.env, source.file) {
            (Some(variable), _) => format!("environment variable {variable} is empty"),
            (_, Some(path)) => format!("secret file {path} is empty"),
            _ => "secret is empty".to_owned(),
        });
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(text: &str) -> SecretSource<'_> {
        SecretSource {
            inline: Some(text),
            env: None,
            file: None,
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = resolve(inline("hunter2")).unwrap();
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_file_loses_exactly_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n\n").unwrap();
        let path = path.to_str().unwrap();
        let source = SecretSource {
            inline: None,
            env: None,
            file: Some(path),
        };
        assert_eq!(resolve(source).unwrap().expose(), "s3cret\n");
        std::fs::write(path, "\n").unwrap();
        assert!(resolve(source).unwrap_err().contains("is empty"));
    }

    #[test]
    fn exactly_one_source() {
        let none = SecretSource {
            inline: None,
            env: None,
            file: None,
        };
        assert!(resolve(none).unwrap_err().contains("missing secret"));
        let two = SecretSource {
            inline: Some("a"),
            env: Some("B"),
            file: None,
        };
        assert!(resolve(two).unwrap_err().contains("only one"));
        assert!(resolve(inline("")).unwrap_err().contains("empty"));
    }
}
