//! The event catalog and the patterns endpoints subscribe with.
//!
//! The catalog is the list of event names the platform app may post. An
//! endpoint's `events` entries are exact names, `prefix.*` (every name that
//! starts with `prefix.`) or `*`. Patterns match names, not groups:
//! `payment.*` does not include `subscription.renewed`.

use std::collections::HashSet;
use std::fmt;

/// Reserved for the admin API's test pings; never in the catalog, never
/// accepted by the ingest API.
pub const TEST_EVENT: &str = "webhook.test";
/// What the names of hookd's own events start with (operational events):
/// never in the catalog.
pub const HOOKD_EVENT_PREFIX: &str = "hookd.";

/// The events the platform app may post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    names: Vec<String>,
    lookup: HashSet<String>,
}

impl Catalog {
    /// Checks each name and builds the catalog; errors name the offending
    /// entry by index.
    pub fn new(names: &[String]) -> Result<Catalog, Vec<(usize, String)>> {
        let mut errors = Vec::new();
        let mut lookup = HashSet::new();
        for (index, name) in names.iter().enumerate() {
            if let Err(reason) = check_event_name(name) {
                errors.push((index, reason));
            } else if name == TEST_EVENT {
                errors.push((index, format!("`{TEST_EVENT}` is reserved for test pings")));
            } else if name.starts_with(HOOKD_EVENT_PREFIX) {
                errors.push((
                    index,
                    format!("names starting with `{HOOKD_EVENT_PREFIX}` are hookd's own events"),
                ));
            } else if !lookup.insert(name.clone()) {
                errors.push((index, format!("`{name}` is listed twice")));
            }
        }
        if errors.is_empty() {
            Ok(Catalog {
                names: names.to_vec(),
                lookup,
            })
        } else {
            Err(errors)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.lookup.contains(name)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Event names are dot-separated words of `[A-Za-z0-9_-]`, like
/// `enrollment.created`.
fn check_event_name(name: &str) -> Result<(), String> {
    let valid_word = |word: &str| {
        !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if name.len() > 128 || !name.split('.').all(valid_word) {
        return Err(format!(
            "`{name}` is not an event name (dot-separated words of letters, digits, `_` or `-`, at most 128 characters)"
        ));
    }
    Ok(())
}

/// One entry of an endpoint's `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPattern {
    /// `*`: every event.
    All,
    /// `prefix.*`: holds `prefix.` with its dot.
    Prefix(String),
    /// One event name.
    Exact(String),
}

impl EventPattern {
    /// Parses a pattern and refuses one that matches nothing in `catalog`.
    pub fn parse(text: &str, catalog: &Catalog) -> Result<EventPattern, String> {
        let pattern = if text == "*" {
            EventPattern::All
        } else if let Some(prefix) = text.strip_suffix(".*") {
            check_event_name(prefix).map_err(|_| format!("`{text}` is not a valid pattern"))?;
            EventPattern::Prefix(format!("{prefix}."))
        } else {
            check_event_name(text)?;
            EventPattern::Exact(text.to_owned())
        };
        if catalog.names().iter().any(|name| pattern.matches(name)) {
            Ok(pattern)
        } else {
            Err(format!("`{text}` matches no event in the catalog"))
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            EventPattern::All => true,
            EventPattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            EventPattern::Exact(exact) => name == exact,
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventPattern::All => f.write_str("*"),
            EventPattern::Prefix(prefix) => write!(f, "{prefix}*"),
            EventPattern::Exact(exact) => f.write_str(exact),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let names: Vec<String> = ["payment.completed", "payment.failed", "subscription.renewed"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Catalog::new(&names).unwrap()
    }

    #[test]
    fn patterns_match_names_not_groups() {
        let catalog = catalog();
        let prefix = EventPattern::parse("payment.*", &catalog).unwrap();
        assert!(prefix.matches("payment.completed"));
        assert!(prefix.matches("payment.failed"));
        assert!(!prefix.matches("subscription.renewed"));
        assert!(!prefix.matches("paymentx.completed"));
        let exact = EventPattern::parse("payment.failed", &catalog).unwrap();
        assert!(exact.matches("payment.failed"));
        assert!(!exact.matches("payment.completed"));
        assert!(EventPattern::parse("*", &catalog).unwrap().matches("anything.at_all"));
        assert_eq!(prefix.to_string(), "payment.*");
    }

    #[test]
    fn a_pattern_must_match_the_catalog() {
        let catalog = catalog();
        assert!(
            EventPattern::parse("enrollment.created", &catalog)
                .unwrap_err()
                .contains("matches no event")
        );
        assert!(
            EventPattern::parse("enrollment.*", &catalog)
                .unwrap_err()
                .contains("matches no event")
        );
        assert!(EventPattern::parse("pay*", &catalog).is_err());
        assert!(EventPattern::parse("payment.**", &catalog).is_err());
    }

    #[test]
    fn the_catalog_refuses_bad_duplicate_and_reserved_names() {
        let names: Vec<String> = ["a.b", "a.b", "webhook.test", "has space", ".x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let errors = Catalog::new(&names).unwrap_err();
        let indexes: Vec<usize> = errors.iter().map(|(index, _)| *index).collect();
        assert_eq!(indexes, vec![1, 2, 3, 4]);
    }
}
