//! `[cluster]`: whether hookd shares its long-lived work with other
//! replicas through NATS JetStream (SPEC 11), and how.
//!
//! Unset `nats_url` is standalone: the rest of the section is then only
//! checked, never used.

use std::path::PathBuf;
use std::time::Duration;

use super::duration::positive_duration;
use super::file::ClusterFile;
use super::problems::Problems;

/// The most JetStream replicas a stream can have.
const MAX_REPLICAS: u64 = 5;

/// Cluster mode's checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The NATS servers, as the client takes them (`nats://host:4222`).
    pub servers: Vec<String>,
    /// A `.creds` file (JWT and seed) for the NATS account.
    pub credentials_file: Option<PathBuf>,
    pub ack: ClusterAck,
    /// A delivery whose wait before its next attempt is longer is parked.
    pub park_after: Duration,
    /// At SIGTERM, after the shutdown grace: time to park what is left.
    pub park_grace: Duration,
    /// `ack = "cluster"`: how long past its due time a delivery held by a
    /// replica waits before another takes it.
    pub lease: Duration,
    /// Copies JetStream keeps of each stream.
    pub replicas: usize,
}

/// When ingest answers 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterAck {
    /// After the synced RocksDB write.
    Local,
    /// Also once JetStream holds a copy of each delivery.
    Cluster,
}

/// Checks `[cluster]`; `None` inside `Some` is standalone.
pub fn cluster_settings(file: &ClusterFile, problems: &mut Problems<'_>) -> Option<Option<ClusterSettings>> {
    let ack = match file.ack.as_str() {
        "local" => Some(ClusterAck::Local),
        "cluster" => Some(ClusterAck::Cluster),
        other => {
            problems.add(
                "cluster.ack",
                format!("unknown value `{other}` (use \"local\" or \"cluster\")"),
            );
            None
        }
    };
    let park_after = problems.check("cluster.park_after", positive_duration(&file.park_after));
    let park_grace = problems.check("cluster.park_grace", positive_duration(&file.park_grace));
    let lease = problems.check("cluster.lease", positive_duration(&file.lease));
    let replicas = problems.check(
        "cluster.replicas",
        match file.replicas {
            1..=MAX_REPLICAS => Ok(file.replicas as usize),
            other => Err(format!(
                "{other} is out of range: JetStream keeps 1 to {MAX_REPLICAS} copies"
            )),
        },
    );
    let servers = match file.nats_url.as_deref() {
        None => Some(None),
        Some(text) => problems.check("cluster.nats_url", parse_servers(text)).map(Some),
    };
    let credentials_file = file.credentials_file.as_deref().map(PathBuf::from);
    if let Some(path) = &credentials_file
        && let Err(error) = std::fs::metadata(path)
    {
        problems.add(
            "cluster.credentials_file",
            format!("cannot read {}: {error}", path.display()),
        );
    }
    let (ack, park_after, park_grace, lease, replicas) = (ack?, park_after?, park_grace?, lease?, replicas?);
    Some(servers?.map(|servers| ClusterSettings {
        servers,
        credentials_file,
        ack,
        park_after,
        park_grace,
        lease,
        replicas,
    }))
}

/// A comma-separated list of `nats://` (or `tls://`) URLs with a host.
fn parse_servers(text: &str) -> Result<Vec<String>, String> {
    let servers: Vec<String> = text.split(',').map(|server| server.trim().to_string()).collect();
    for server in &servers {
        let Some((scheme, rest)) = server.split_once("://") else {
            return Err(format!("`{server}` is not a NATS URL like nats://nats-0.nats:4222"));
        };
        if !matches!(scheme, "nats" | "tls") {
            return Err(format!("`{server}`: the scheme must be nats:// or tls://"));
        }
        let host = rest
            .rsplit('@')
            .next()
            .unwrap_or(rest)
            .split(['/', '?'])
            .next()
            .unwrap_or("");
        if host.is_empty() {
            return Err(format!("`{server}` has no host"));
        }
        server
            .parse::<async_nats::ServerAddr>()
            .map_err(|error| format!("`{server}`: {error}"))?;
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_a_comma_separated_list_of_nats_urls() {
        assert_eq!(
            parse_servers("nats://a:4222, nats://b:4222").unwrap(),
            vec!["nats://a:4222", "nats://b:4222"]
        );
        assert!(parse_servers("http://a:4222").unwrap_err().contains("nats://"));
        assert!(parse_servers("a:4222").unwrap_err().contains("not a NATS URL"));
        assert!(parse_servers("nats://").unwrap_err().contains("no host"));
        assert!(parse_servers("nats://a:4222,").unwrap_err().contains("not a NATS URL"));
    }
}
