//! Tenants: whose event an event is, and which endpoints may receive it
//! (SPEC section 4, "Tenants").
//!
//! An event may name the platform customer it belongs to. An endpoint
//! names the customer it belongs to, or `"*"` for the platform's own
//! systems, or nothing. The rule, checked when ingest routes an event and
//! again before every attempt (the endpoint's tenant may have changed by
//! reload since):
//!
//! | endpoint's `tenant` | events it gets |
//! |---|---|
//! | `"acme"` | only events of tenant `acme` |
//! | `"*"` | every event, with a tenant or without |
//! | none | only events without a tenant |
//!
//! So one customer's event never reaches another customer's endpoint,
//! whatever the endpoint's `events` patterns say.

use std::fmt;

/// What an endpoint's `tenant` key says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// No `tenant`: events without a tenant only.
    Untenanted,
    /// `tenant = "*"`: every event.
    Everyone,
    /// `tenant = "acme"`: that tenant's events only.
    Tenant(String),
}

impl Audience {
    /// The endpoint's `tenant` as written: `None`, `"*"`, or a tenant id.
    pub fn parse(written: Option<&str>) -> Result<Audience, String> {
        match written {
            None => Ok(Audience::Untenanted),
            Some("*") => Ok(Audience::Everyone),
            Some(id) => check_tenant_id(id).map(|()| Audience::Tenant(id.to_owned())),
        }
    }

    /// Whether an endpoint of this audience may receive an event of
    /// `tenant`.
    pub fn admits(&self, tenant: Option<&str>) -> bool {
        match self {
            Audience::Untenanted => tenant.is_none(),
            Audience::Everyone => true,
            Audience::Tenant(id) => tenant == Some(id.as_str()),
        }
    }

    /// The `tenant` key as written: `None`, `"*"` or the id.
    pub fn as_written(&self) -> Option<&str> {
        match self {
            Audience::Untenanted => None,
            Audience::Everyone => Some("*"),
            Audience::Tenant(id) => Some(id),
        }
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_written().unwrap_or("(none)"))
    }
}

/// A tenant id: 1 to 64 characters of `[A-Za-z0-9_.-]`.
pub fn check_tenant_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a tenant id (1 to 64 letters, digits, `_`, `.` or `-`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_of_the_table() {
        let acme = Audience::parse(Some("acme")).unwrap();
        let everyone = Audience::parse(Some("*")).unwrap();
        let untenanted = Audience::parse(None).unwrap();
        assert!(acme.admits(Some("acme")));
        assert!(!acme.admits(Some("globex")));
        assert!(!acme.admits(None));
        assert!(everyone.admits(Some("acme")) && everyone.admits(None));
        assert!(untenanted.admits(None));
        assert!(!untenanted.admits(Some("acme")));
    }

    #[test]
    fn tenant_ids_are_checked() {
        assert!(check_tenant_id("acme-eu.2").is_ok());
        assert!(check_tenant_id(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "acme/eu", "*", &"a".repeat(65), "ümlaut"] {
            assert!(check_tenant_id(bad).is_err(), "{bad:?}");
        }
        assert!(Audience::parse(Some("")).is_err());
    }
}
