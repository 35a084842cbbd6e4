//! A subscriber script as a child process, checking every webhook with the
//! verification code users copy: `tests/node/subscriber.js` (the SPEC's
//! snippet under Node, and the official Standard Webhooks library) or
//! `tests/python/subscriber.py` (the README's Python snippet).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The running subscriber and what it has checked so far.
pub struct ScriptSubscriber {
    child: Child,
    pub port: u16,
    checks: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl ScriptSubscriber {
    /// The Node subscriber, with the hex `secret` and the Standard Webhooks
    /// secrets to verify with (none: that check is skipped).
    pub fn node(secret: &str, standard_secrets: &[&str]) -> ScriptSubscriber {
        let mut command = Command::new("node");
        command
            .arg(repo_path("tests/node/subscriber.js"))
            .env("STANDARD_SECRETS", serde_json::to_string(standard_secrets).unwrap());
        ScriptSubscriber::start(command, secret)
    }

    /// The Python subscriber, with the hex `secret`.
    pub fn python(secret: &str) -> ScriptSubscriber {
        let mut command = Command::new("python3");
        command.arg(repo_path("tests/python/subscriber.py"));
        ScriptSubscriber::start(command, secret)
    }

    fn start(mut command: Command, secret: &str) -> ScriptSubscriber {
        let mut child = command
            .env("SUBSCRIBER_SECRET", secret)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the subscriber (scripts/test.sh installs node; python3 is on the machine)");
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
        ScriptSubscriber { child, port, checks }
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

fn repo_path(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

impl Drop for ScriptSubscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
