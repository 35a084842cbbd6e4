//! A full disk: ingest answers 503 `storage_unavailable` with
//! `Retry-After`, hookd stays up, nothing acknowledged is lost, and once
//! space returns it takes events again without a restart.
//!
//! The data directory is a small tmpfs mounted for the test, so mounting
//! needs root (CI runs as root); without it the test fails, it does not
//! skip.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use http::StatusCode;

use crate::support::receiver::Receiver;
use crate::support::sidecar::Sidecar;

/// A tmpfs of `megabytes` at `path`, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: &Path, megabytes: u32) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(path)
            .output()
            .expect("running mount");
        assert!(
            output.status.success(),
            "mounting a small tmpfs needs root: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        SmallDisk(path.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_events_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 24);
    // Taken now, given back later: the space that "returns".
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 8 << 20]).unwrap();
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start(&format!(
        r#"
[storage]
path = "{}"
[[endpoints]]
id = "hook"
url = "{}"
events = ["*"]
secret = "hook secret"
"#,
        disk.0.join("data").display(),
        receiver.url("/hook")
    ))
    .await;
    let events_url = format!("{}/v1/events", sidecar.ingest);
    let padding = "x".repeat(4000);

    let mut acknowledged = HashSet::new();
    let refused = loop {
        assert!(acknowledged.len() < 20_000, "the disk never filled up");
        let id = format!("evt_disk_{}", acknowledged.len());
        let answer = sidecar
            .http
            .post_json(
                &events_url,
                format!(r#"{{"id":"{id}","event":"payment.completed","data":{{"pad":"{padding}"}}}}"#),
            )
            .await;
        match answer.status {
            StatusCode::ACCEPTED => {
                acknowledged.insert(id);
            }
            StatusCode::SERVICE_UNAVAILABLE => break answer,
            other => panic!("unexpected {other}: {:?}", answer.json),
        }
    };
    assert_eq!(refused.error_code(), "storage_unavailable");
    assert!(refused.headers.contains_key("retry-after"), "{:?}", refused.headers);
    assert!(acknowledged.len() > 100, "only {} events fit", acknowledged.len());
    let health = sidecar.http.get(&format!("{}/healthz", sidecar.admin)).await;
    assert_eq!(health.status, StatusCode::OK, "hookd stays up");
    let readiness = sidecar.http.get(&format!("{}/readyz", sidecar.admin)).await;
    assert_eq!(
        readiness.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready while it cannot write"
    );

    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = sidecar
            .http
            .post_json(
                &events_url,
                r#"{"id":"evt_after","event":"payment.completed","data":{}}"#,
            )
            .await;
        if answer.status == StatusCode::ACCEPTED {
            acknowledged.insert("evt_after".to_owned());
            break;
        }
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", answer.json);
        assert!(
            std::time::Instant::now() < deadline,
            "no event accepted after space returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let readiness = sidecar.http.get(&format!("{}/readyz", sidecar.admin)).await;
    assert_eq!(readiness.status, StatusCode::OK);

    // Every acknowledged event reaches the subscriber.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let delivered: HashSet<String> = receiver
            .received()
            .iter()
            .map(|request| request.header("x-webhook-id").to_owned())
            .collect();
        let missing = acknowledged.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} of {} acknowledged events never arrived",
            acknowledged.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
