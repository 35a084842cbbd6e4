//! What subscribers run: every delivery passes the SPEC's Node snippet and
//! the README's Python snippet, and Standard Webhooks output passes the
//! official verifier, during a secret rotation too.

use std::time::Duration;

use crate::support::script_subscriber::ScriptSubscriber;
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn every_delivery_passes_the_spec_snippet_under_node() {
    // Spaces and non-ASCII in the secret; the key is its UTF-8 bytes.
    let secret = "s3cret with spaces, ümlauts and ✓";
    let subscriber = ScriptSubscriber::node(secret, &[]);
    let config = format!(
        r#"
[[endpoints]]
id = "node"
url = "{}"
events = ["payment.*", "enrollment.created"]
secret = "{secret}"
"#,
        subscriber.url()
    );
    let sidecar = Sidecar::start(&config).await;
    let bodies = [
        r#"{"event":"payment.completed","data":{"amount": 1.0, "currency": "EUR"}}"#,
        r#"{"event":"payment.refunded","data":{"name":"Zoë Ångström","note":"€ ✓ 日本"}}"#,
        r#"{"event":"enrollment.created","data":{"nested":{"list":[1.50, 2e3, -0.0]}}}"#,
        r#"{"event":"payment.failed","id":"evt_node_4","created_at":"2025-03-20T12:30:00.5+02:00","data":{}}"#,
    ];
    for body in bodies {
        sidecar.post_event(body).await;
    }
    let checks = subscriber.wait_for(bodies.len(), PATIENCE).await;
    for check in &checks {
        assert_eq!(check["snippet"], true, "the snippet rejected {check}");
    }
    let received: Vec<&str> = checks.iter().map(|check| check["body"].as_str().unwrap()).collect();
    assert!(
        received
            .iter()
            .any(|body| body.ends_with(r#""data":{"amount": 1.0, "currency": "EUR"}}"#))
    );
    assert!(
        received
            .iter()
            .any(|body| body.contains(r#""created_at":"2025-03-20T10:30:00.5Z""#))
    );
}

#[tokio::test]
async fn every_delivery_passes_the_readme_python_snippet_and_a_wrong_secret_does_not() {
    let secret = "py secret, ünïcode ✓";
    let subscriber = ScriptSubscriber::python(secret);
    let stranger = ScriptSubscriber::python("another secret");
    let config = format!(
        r#"
[delivery]
retry_schedule = ["1h"]
[[endpoints]]
id = "python"
url = "{}"
events = ["*"]
secret = "{secret}"
[[endpoints]]
id = "stranger"
url = "{}"
events = ["*"]
secret = "{secret}"
"#,
        subscriber.url(),
        stranger.url()
    );
    let sidecar = Sidecar::start(&config).await;
    let bodies = [
        r#"{"event":"quiz.submitted","data":{"score": 9.50, "name":"Zoë"}}"#,
        r#"{"event":"course.published","data":{"tags":["€","日本"]}}"#,
    ];
    for body in bodies {
        sidecar.post_event(body).await;
    }
    for check in subscriber.wait_for(bodies.len(), PATIENCE).await {
        assert_eq!(check["snippet"], true, "the snippet rejected {check}");
    }
    // The same snippet with a secret the sender does not use says no.
    for check in stranger.wait_for(bodies.len(), PATIENCE).await {
        assert_eq!(check["snippet"], false, "a wrong secret verified {check}");
    }
}

#[tokio::test]
async fn standard_webhooks_verify_with_the_official_library_during_a_rotation() {
    let current = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let previous = "whsec_dGhlIG9sZCBzZWNyZXQgYmVpbmcgcm90YXRlZA==";
    let retired = "whsec_cmV0aXJlZCBzZWNyZXQgcGFzdCBpdHMgdW50aWw=";
    // The subscriber checks with each secret on its own: the new one, the
    // one being rotated out (still valid), and one past its `until`.
    let subscriber = ScriptSubscriber::node(current, &[current, previous]);
    let config = format!(
        r#"
[[endpoints]]
id = "std"
url = "{}"
events = ["*"]
secret = "{current}"
signatures = ["hex", "standard-webhooks"]
previous_secrets = [
  {{ secret = "{previous}", until = "2999-01-01T00:00:00Z" }},
  {{ secret = "{retired}", until = "2001-01-01T00:00:00Z" }},
]
"#,
        subscriber.url()
    );
    let sidecar = Sidecar::start(&config).await;
    sidecar
        .post_event(r#"{"event":"certificate.issued","data":{"grade": 1.0}}"#)
        .await;
    let check = subscriber.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(check["snippet"], true, "{check}");
    assert_eq!(check["standard"], serde_json::json!([true, true]), "{check}");

    // Exactly two signatures: the current and the one still in its window.
    let retired_check = ScriptSubscriber::node(current, &[retired]);
    let config = config.replace(&subscriber.url(), &retired_check.url());
    let other = Sidecar::start(&config).await;
    other.post_event(r#"{"event":"certificate.issued","data":{}}"#).await;
    let check = retired_check.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(
        check["standard"],
        serde_json::json!([false]),
        "a retired secret no longer signs"
    );
}
