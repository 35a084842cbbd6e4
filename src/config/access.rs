//! Who may use a listener (SPEC section 8): its bearer token, and the
//! `Host` names it answers when it has none.
//!
//! A listener beyond loopback must have its token: without one, anyone who
//! reaches the address could post events that hookd signs, or read and
//! drive the admin API. The rule holds for the address actually bound, at
//! start and on every reload ([`Access::exposure`]).

use std::net::SocketAddr;

use super::problems::Problems;
use super::secret::Secret;

/// The access rules of one listener.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// When set, every request wants `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// `Host` names answered without a token besides loopback addresses
    /// and `localhost`; lowercase.
    pub allowed_hosts: Vec<String>,
}

impl Access {
    /// Why a listener of `section` bound at `address` with these rules is
    /// unsafe: beyond loopback without a token. `None` when it is fine.
    pub fn exposure(&self, section: &str, address: SocketAddr) -> Option<String> {
        (self.token.is_none() && !address.ip().is_loopback()).then(|| {
            format!(
                "{address} is not a loopback address: set {section}.token, or listen on 127.0.0.1 \
                 and share the network namespace with the app"
            )
        })
    }
}

/// Checks `{section}.token` and `{section}.allowed_hosts`.
pub(super) fn access(
    section: &str,
    token: Option<&str>,
    allowed_hosts: &[String],
    problems: &mut Problems<'_>,
) -> Option<Access> {
    let token = match token {
        Some("") => {
            problems.add(
                format!("{section}.token"),
                "must not be empty; leave it out to run without a token",
            );
            return None;
        }
        token => token.map(Secret::new),
    };
    let mut hosts = Vec::with_capacity(allowed_hosts.len());
    for (n, host) in allowed_hosts.iter().enumerate() {
        hosts.extend(problems.check(format!("{section}.allowed_hosts[{n}]"), check_host_name(host)));
    }
    (hosts.len() == allowed_hosts.len()).then_some(Access {
        token,
        allowed_hosts: hosts,
    })
}

/// A name as a `Host` header carries it, without the port: letters,
/// digits, dots and hyphens, or a bracketed IPv6 address.
fn check_host_name(host: &str) -> Result<String, String> {
    let bracketed_ip = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
    let name = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if bracketed_ip || name {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{host}` is not a host name (letters, digits, `.` and `-`, without a port)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_names_without_ports() {
        assert_eq!(check_host_name("Hookd.Internal"), Ok("hookd.internal".to_owned()));
        assert!(check_host_name("[::1]").is_ok());
        for bad in ["", "hookd:8787", "a b", "*.example.com", "[::1]:80", "évil"] {
            assert!(check_host_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn beyond_loopback_needs_a_token() {
        let open = Access::default();
        assert!(open.exposure("ingest", "127.0.0.1:8787".parse().unwrap()).is_none());
        assert!(open.exposure("ingest", "[::1]:8787".parse().unwrap()).is_none());
        let reason = open.exposure("ingest", "0.0.0.0:8787".parse().unwrap()).unwrap();
        assert!(reason.contains("ingest.token"), "{reason}");
        let guarded = Access {
            token: Some(Secret::new("t")),
            allowed_hosts: Vec::new(),
        };
        assert!(guarded.exposure("admin", "0.0.0.0:8788".parse().unwrap()).is_none());
    }
}
