//! `tests/node/subscriber.js` as a child process: a subscriber that checks
//! every webhook with the SPEC's snippet under Node, and with the official
//! Standard Webhooks library.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The running subscriber and what it has checked so far.
pub struct NodeSubscriber {
    child: Child,
    pub port: u16,
    checks: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl NodeSubscriber {
    /// Starts it with the hex `secret` and the Standard Webhooks secrets to
    /// verify with (none: that check is skipped).
    pub fn start(secret: &str, standard_secrets: &[&str]) -> NodeSubscriber {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/subscriber.js");
        let mut child = Command::new("node")
            .arg(&script)
            .env("SUBSCRIBER_SECRET", secret)
            .env("STANDARD_SECRETS", serde_json::to_string(standard_secrets).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting node (scripts/test.sh installs it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the subscriber starts").unwrap();
        let port = first
            .strip_prefix("listening ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        let checks: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let sink = checks.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).expect("a JSON line"));
            }
        });
        NodeSubscriber { child, port, checks }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks", self.port)
    }

    /// Waits for `count` checked requests.
    pub async fn wait_for(&self, count: usize, patience: Duration) -> Vec<serde_json::Value> {
        super::eventually(patience, || {
            let checks = self.checks.lock().unwrap();
            (checks.len() >= count).then(|| checks.clone())
        })
        .await
    }
}

impl Drop for NodeSubscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
