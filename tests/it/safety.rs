//! The SSRF guard end to end: with the default config nothing reaches a
//! receiver on the loopback, by IP or by name; `allowed_networks` opens
//! exactly what it lists.

use std::time::Duration;

use hookd::store::DeliveryStatus;

use crate::support::receiver::Receiver;
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);

fn endpoint(id: &str, url: &str) -> String {
    format!("[[endpoints]]\nid = \"{id}\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s\"\n")
}

#[tokio::test]
async fn the_default_config_reaches_no_private_address() {
    let receiver = Receiver::start().await;
    let port = receiver.port();
    let config = format!(
        "[delivery]\nallow_private_networks = false\nretry_schedule = []\n{}{}{}",
        endpoint("by_ip", &format!("http://127.0.0.1:{port}/hook")),
        endpoint("by_name", &format!("http://localhost:{port}/hook")),
        endpoint("mapped", &format!("http://[::ffff:127.0.0.1]:{port}/hook")),
    );
    let sidecar = Sidecar::start(&config).await;
    let id = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    for endpoint in ["by_ip", "by_name", "mapped"] {
        let delivery = sidecar.finished(&format!("{id}.{endpoint}"), PATIENCE).await;
        assert_eq!(delivery.status, DeliveryStatus::Failed, "{endpoint}");
        let attempt = sidecar.store.attempts(&format!("{id}.{endpoint}")).unwrap().remove(0);
        assert_eq!(attempt.error_kind.as_deref(), Some("blocked_destination"), "{endpoint}");
    }
    assert!(receiver.received().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn allowed_networks_open_only_what_they_list() {
    let receiver = Receiver::start().await;
    let port = receiver.port();
    let config = format!(
        "[delivery]\nallow_private_networks = false\nallowed_networks = [\"127.0.0.1/32\"]\nretry_schedule = []\n{}{}",
        endpoint("listed", &format!("http://127.0.0.1:{port}/hook")),
        endpoint("unlisted", &format!("http://127.0.0.2:{port}/hook")),
    );
    let sidecar = Sidecar::start(&config).await;
    let id = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let listed = sidecar.finished(&format!("{id}.listed"), PATIENCE).await;
    assert_eq!(listed.status, DeliveryStatus::Succeeded);
    sidecar.finished(&format!("{id}.unlisted"), PATIENCE).await;
    let attempt = sidecar.store.attempts(&format!("{id}.unlisted")).unwrap().remove(0);
    assert_eq!(attempt.error_kind.as_deref(), Some("blocked_destination"));
    assert_eq!(receiver.received().len(), 1);
}
