//! What hookd logs: never a secret, a signature, the admin token or event
//! data, even at debug level, in either format.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::process::hookd_binary;
use crate::support::receiver::{Receiver, Reply};

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn logs_never_hold_secrets_signatures_tokens_or_data() {
    let receiver = Receiver::start().await;
    // One failure, so warn lines for a failed attempt are written too.
    receiver.script([Reply::status(500).with_body("nope")]);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "file-secret-7f3a\n").unwrap();
    let config = dir.path().join("hookd.toml");
    let extra = format!(
        r#"
[admin]
token = "admin-token-5c1d"
[delivery]
retry_schedule = ["200ms"]
[telemetry]
log_level = "debug"
log_format = "json"
[[endpoints]]
id = "inline"
url = "{url}"
events = ["*"]
secret = "inline-secret-9b2e"
[[endpoints]]
id = "file"
url = "{url}"
events = ["*"]
secret_file = "{file}"
"#,
        url = receiver.url("/hook"),
        file = secret_file.display()
    );
    std::fs::write(&config, crate::support::test_config(&dir.path().join("data"), &extra)).unwrap();
    let mut child = Command::new(hookd_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_sender, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_sender.send(line);
        }
    });
    let mut log = Vec::new();
    let mut ingest = None;
    while ingest.is_none() {
        let line = lines.recv_timeout(PATIENCE).expect("hookd logs its listeners");
        if let Some(at) = line.find("ingest API listening on http://") {
            let address: String = line[at + 31..].chars().take_while(|c| *c != '"').collect();
            ingest = Some(address);
        }
        log.push(line);
    }
    let http = crate::support::http::HttpClient::default();
    let answer = http
        .post_json(
            &format!("http://{}/v1/events", ingest.unwrap()),
            r#"{"event":"payment.completed","data":{"student_email":"ada@example.com","card":"4242-personal"}}"#,
        )
        .await;
    assert_eq!(answer.status, http::StatusCode::ACCEPTED);
    receiver.wait_for(3, PATIENCE).await;
    let signatures: Vec<String> = receiver
        .received()
        .iter()
        .map(|request| request.header("x-webhook-signature").to_owned())
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.kill();
    let _ = child.wait();
    log.extend(lines.try_iter());
    let text = log.join("\n");
    assert!(
        text.contains("attempt failed"),
        "the failure was logged at warn:\n{text}"
    );
    assert!(text.contains(r#""level":"DEBUG""#), "debug lines were written");
    for forbidden in [
        "inline-secret-9b2e",
        "file-secret-7f3a",
        "admin-token-5c1d",
        "ada@example.com",
        "4242-personal",
    ] {
        assert!(!text.contains(forbidden), "`{forbidden}` reached the log");
    }
    for signature in signatures {
        assert!(!text.contains(&signature), "a signature reached the log");
    }
}

#[test]
fn secrets_stay_out_of_debug_formatting() {
    // A stray `{:?}` of the settings in a log line must not leak them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.toml");
    std::fs::write(
        &path,
        "[admin]\ntoken = \"debug-token-1\"\n[[endpoints]]\nid = \"a\"\nurl = \"https://a.example.com/\"\n\
         events = [\"*\"]\nsecret = \"debug-secret-2\"\n",
    )
    .unwrap();
    let settings = hookd::config::load(&path).unwrap();
    let shown = format!("{settings:?}");
    assert!(shown.contains("https://a.example.com/"), "{shown}");
    for secret in ["debug-token-1", "debug-secret-2"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
