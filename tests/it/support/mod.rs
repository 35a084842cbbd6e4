//! What the tests run hookd with: the real sidecar in this process or as a
//! child process, on 127.0.0.1 port 0, with RocksDB in a temp dir.

pub mod collector;
pub mod http;
pub mod nats;
pub mod node;
pub mod openapi;
pub mod process;
pub mod raw_store;
pub mod receiver;
pub mod script_subscriber;
pub mod sidecar;
pub mod store_checks;
pub mod tls;

/// A config for tests: ephemeral ports and the given data directory, with
/// `extra` TOML (endpoints, overrides) merged over it table by table.
pub fn test_config(data_dir: &std::path::Path, extra: &str) -> String {
    let base = format!(
        r#"
[ingest]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[storage]
path = "{}"
[delivery]
allow_private_networks = true
"#,
        data_dir.display()
    );
    let mut config: toml::Table = base.parse().expect("base test config");
    let extra: toml::Table = extra.parse().expect("extra test config");
    merge(&mut config, extra);
    toml::to_string(&config).expect("serializing the test config")
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(table)) => merge(existing, table),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Two endpoints: `crm` gets enrollments and completed payments, `billing`
/// every payment event.
pub const TWO_ENDPOINTS: &str = r#"
[[endpoints]]
id = "crm"
url = "http://127.0.0.1:9/crm"
events = ["enrollment.*", "payment.completed"]
secret = "crm secret"

[[endpoints]]
id = "billing"
url = "http://127.0.0.1:9/billing"
events = ["payment.*"]
secret = "billing secret"
"#;

/// `X-Webhook-Signature` as a subscriber computes it: HMAC-SHA256 of the
/// body with the secret's bytes, in lowercase hex.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Polls `check` every 20 ms until it gives a value; panics after
/// `patience`.
pub async fn eventually<T>(patience: std::time::Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within {patience:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// An event as ingest would store it: a `payment.completed` with empty
/// `data`, for `endpoints`, received at `received_at` (ms); for tests that
/// drive the store directly.
pub fn stored_event(id: &str, endpoints: &[&str], received_at: u64) -> hookd::store::NewEvent {
    let (body, data) = hookd::event::wire_body(id, "payment.completed", "2025-03-20T10:30:00Z", "{}");
    hookd::store::NewEvent {
        id: id.to_owned(),
        id_generated: false,
        event: "payment.completed".to_owned(),
        created_at: "2025-03-20T10:30:00Z".to_owned(),
        created_at_given: true,
        tenant: None,
        ordering_key: None,
        keyed_endpoints: Vec::new(),
        body: body.into(),
        data,
        traceparent: None,
        endpoints: endpoints.iter().map(|endpoint| (*endpoint).to_owned()).collect(),
        received_at,
    }
}
