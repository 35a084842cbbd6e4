//! The dashboard in a real headless Chromium (`tests/node/dashboard.js`):
//! log in with the token, see a failed delivery and its attempts, page and
//! search 32 endpoints, read an endpoint's charts from their SVG, find the
//! delivery by its id and its event id, read its payload, retry it from
//! there and see it succeed. The screenshot it takes is
//! `docs/dashboard.png` when `UPDATE_DASHBOARD_SCREENSHOT=1`.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use hookd::store::DeliveryStatus;

use crate::support::node;
use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_failed_delivery_is_retried_from_the_dashboard() {
    let crm = Receiver::start().await;
    crm.answer_by_default(Reply::status(500).with_body(r#"{"error":"subscriber is down for maintenance"}"#));
    let billing = Receiver::start().await;
    // 30 more endpoints, of three tenants, for the pages and the search.
    let fleet: String = (0..30)
        .map(|n| {
            let tenant = ["globex", "acme", "initech"][n % 3];
            format!(
                "[[endpoints]]\nid = \"fleet-{n:02}\"\ntenant = \"{tenant}\"\nurl = \"{}\"\nevents = [\"course.*\"]\nsecret = \"fleet secret\"\n",
                billing.url("/fleet")
            )
        })
        .collect();
    let config = format!(
        r#"
[admin]
token = "dashboard-token"
[delivery]
retry_schedule = []
[delivery.breaker]
failures = 2
cooldown = "1h"
max_cooldown = "1h"
[[endpoints]]
id = "crm"
url = "{}"
events = ["enrollment.*", "payment.completed"]
secret = "crm secret"
rate_limit = "50/s"
[[endpoints]]
id = "billing"
url = "{}"
events = ["payment.*"]
secret = "billing secret"
{fleet}"#,
        crm.url("/webhooks"),
        billing.url("/hooks")
    );
    let sidecar = Sidecar::start(&config).await;
    for body in [
        r#"{"event":"payment.completed","data":{"amount":49.0}}"#,
        r#"{"event":"payment.refunded","data":{"amount":12.5}}"#,
        // To the ten fleet endpoints of acme.
        r#"{"event":"course.published","data":{"course_id":"course_1"},"tenant":"acme"}"#,
    ] {
        sidecar.post_event(body).await;
    }
    let event = sidecar
        .post_event(r#"{"event":"enrollment.created","data":{"student_id":"student_xyz789","note":"<b>not bold</b>"}}"#)
        .await;
    let id = format!("{event}.crm");
    assert_eq!(sidecar.finished(&id, PATIENCE).await.status, DeliveryStatus::Failed);
    crm.answer_by_default(Reply::ok());

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let screenshot = if std::env::var_os("UPDATE_DASHBOARD_SCREENSHOT").is_some() {
        root.join("docs/dashboard.png")
    } else {
        dir.path().join("dashboard.png")
    };
    let args = [sidecar.admin.as_str(), id.as_str(), "dashboard-token"].map(OsStr::new);
    node::check(
        "dashboard.js",
        &[&args[..], &[screenshot.as_os_str()]].concat(),
        "the browser test",
    )
    .await;
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "a real screenshot"
    );
    let delivery = sidecar.store.delivery(&id).unwrap().unwrap();
    assert_eq!(
        (delivery.status, delivery.attempt_count),
        (DeliveryStatus::Succeeded, 2)
    );
}
