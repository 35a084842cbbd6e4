//! TLS to subscribers: an untrusted certificate fails the attempt as `tls`;
//! the same server trusted through `delivery.ca_file` gets the delivery,
//! over HTTP/2 when the server offers it.

use std::time::Duration;

use hookd::store::DeliveryStatus;

use crate::support::sidecar::Sidecar;
use crate::support::tls::TlsReceiver;

const PATIENCE: Duration = Duration::from_secs(20);

fn config(url: &str, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file.map_or_else(String::new, |path| format!("ca_file = \"{}\"\n", path.display()));
    format!(
        "[delivery]\nretry_schedule = []\n{ca}[[endpoints]]\nid = \"tls\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s\"\n"
    )
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_attempt_as_tls() {
    let receiver = TlsReceiver::start().await;
    let sidecar = Sidecar::start(&config(&receiver.url(), None)).await;
    let id = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let delivery = sidecar.finished(&format!("{id}.tls"), PATIENCE).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    let attempt = sidecar.store.attempts(&format!("{id}.tls")).unwrap().remove(0);
    assert_eq!(attempt.error_kind.as_deref(), Some("tls"));
    assert!(receiver.versions().is_empty(), "no request got through");
}

#[tokio::test]
async fn a_ca_file_makes_the_certificate_trusted_and_http2_is_used() {
    let receiver = TlsReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &receiver.ca_pem).unwrap();
    let sidecar = Sidecar::start(&config(&receiver.url(), Some(&ca_file))).await;
    let id = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    let delivery = sidecar.finished(&format!("{id}.tls"), PATIENCE).await;
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(receiver.versions(), vec![http::Version::HTTP_2]);
}
