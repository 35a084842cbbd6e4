//! The operator commands against a running hookd: `deliveries list|show|
//! retry`, `endpoints list`, `healthcheck`, `sign` and `receive`.

use std::process::Stdio;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::support::process::hookd_binary;
use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `hookd ARGS` against `admin`; returns (exit code, stdout, stderr).
async fn hookd(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(hookd_binary());
    command
        .args(args)
        .env_remove("HOOKD_ADMIN_URL")
        .env_remove("HOOKD_ADMIN_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.expect("running hookd");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn operators_list_show_and_retry_deliveries() {
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Reply::status(500).with_body("subscriber down"));
    let config = format!(
        "[delivery]\nretry_schedule = []\n[[endpoints]]\nid = \"crm\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret = \"s\"\n",
        receiver.url("/hook")
    );
    let sidecar = Sidecar::start(&config).await;
    let event = sidecar
        .post_event(r#"{"event":"payment.completed","data":{"v":1.0}}"#)
        .await;
    let id = format!("{event}.crm");
    sidecar.finished(&id, PATIENCE).await;
    let admin = ["--admin", sidecar.admin.as_str()];

    let (code, out, err) = hookd(&[&["endpoints", "list"][..], &admin].concat(), &[]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("PENDING") && lines[0].contains("FAILED"));
    assert!(
        lines[1].starts_with("crm") && lines[1].contains("active") && lines[1].contains("500 status"),
        "{out}"
    );

    let (code, out, _) = hookd(
        &[&["deliveries", "list", "--status", "failed"][..], &admin].concat(),
        &[],
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|row| row.starts_with(&id) && row.contains("failed")),
        "{out}"
    );

    let (code, out, _) = hookd(
        &[&["deliveries", "list", "--event-id", &event][..], &admin].concat(),
        &[],
    )
    .await;
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(rows.len() == 1 && rows[0].starts_with(&id), "{out}");

    let (code, out, err) = hookd(&[&["endpoints", "stats", "crm"][..], &admin].concat(), &[]).await;
    assert_eq!(code, 0, "{err}");
    let chart = out.lines().nth(1).unwrap_or_default();
    assert_eq!(chart.chars().count(), 62, "60 minutes between bars: {out}");
    assert!(
        chart.contains('█'),
        "the one minute with an attempt is the busiest: {out}"
    );
    assert!(
        out.contains("attempts 1: status 1; deliveries succeeded 0, failed 1"),
        "{out}"
    );

    let (code, out, _) = hookd(&[&["deliveries", "show", &id][..], &admin].concat(), &[]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("status          failed") && out.contains("subscriber down"),
        "{out}"
    );

    let (code, out, _) = hookd(&[&["deliveries", "show", &id, "--json"][..], &admin].concat(), &[]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["attempts"][0]["status_code"], 500);

    receiver.answer_by_default(Reply::ok());
    let (code, out, _) = hookd(&[&["deliveries", "retry", &id][..], &admin].concat(), &[]).await;
    assert_eq!(
        (code, out.trim()),
        (0, format!("{id} is pending again: one more attempt now").as_str())
    );
    assert_eq!(
        sidecar.finished(&id, PATIENCE).await.status,
        hookd::store::DeliveryStatus::Succeeded
    );

    let (code, _, err) = hookd(&[&["deliveries", "retry", &id][..], &admin].concat(), &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains("not failed"), "{err}");
}

#[tokio::test]
async fn the_token_comes_from_the_environment() {
    let sidecar = Sidecar::start("[admin]\ntoken = \"cli-token\"\n").await;
    let args = ["endpoints", "list", "--json"];
    let (code, _, err) = hookd(&args, &[("HOOKD_ADMIN_URL", &sidecar.admin)]).await;
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let (code, out, err) = hookd(
        &args,
        &[("HOOKD_ADMIN_URL", &sidecar.admin), ("HOOKD_ADMIN_TOKEN", "cli-token")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["data"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn healthcheck_exits_0_only_when_ready_or_with_live_when_answering() {
    let sidecar = Sidecar::start("").await;
    assert_eq!(hookd(&["healthcheck", "--admin", &sidecar.admin], &[]).await.0, 0);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    assert_eq!(hookd(&["healthcheck", "--admin", &url], &[]).await.0, 1);
    assert_eq!(hookd(&["healthcheck", "--live", "--admin", &url], &[]).await.0, 1);
    sidecar.store.close();
    assert_eq!(
        hookd(&["healthcheck", "--admin", &sidecar.admin], &[]).await.0,
        1,
        "store closed: not ready"
    );
    assert_eq!(
        hookd(&["healthcheck", "--live", "--admin", &sidecar.admin], &[])
            .await
            .0,
        0,
        "store closed: not ready, but alive"
    );
}

#[tokio::test]
async fn sign_prints_the_signature_of_stdin() {
    let mut child = Command::new(hookd_binary())
        .args(["sign", "--secret-env", "CLI_SECRET"])
        .env("CLI_SECRET", "sëcret with spaces")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let body = br#"{"id":"evt_1","event":"payment.completed","created_at":"2025-03-20T10:30:00Z","data":{"a":1.0}}"#;
    child.stdin.take().unwrap().write_all(body).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice("sëcret with spaces".as_bytes()).unwrap();
    mac.update(body);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{}\n", hex::encode(mac.finalize().into_bytes()))
    );
    let (code, _, err) = hookd(&["sign", "--secret-env", "CLI_UNSET_SECRET"], &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("CLI_UNSET_SECRET is not set"), "{err}");
}

#[tokio::test]
async fn receive_prints_each_webhook_and_its_verdict() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut receiver = Command::new(hookd_binary())
        .args([
            "receive",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secret-env",
            "RECEIVE_SECRET",
        ])
        .env("RECEIVE_SECRET", "quick-start secret")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert_eq!(first, format!("hookd receive: listening on http://127.0.0.1:{port}"));
    let config = format!(
        "[[endpoints]]\nid = \"good\"\nurl = \"http://127.0.0.1:{port}/webhooks\"\nevents = [\"payment.*\"]\nsecret = \"quick-start secret\"\n\
         [[endpoints]]\nid = \"bad\"\nurl = \"http://127.0.0.1:{port}/webhooks\"\nevents = [\"enrollment.*\"]\nsecret = \"another secret\"\n\
         [delivery]\nretry_schedule = []\n"
    );
    let sidecar = Sidecar::start(&config).await;
    let good = sidecar
        .post_event(r#"{"event":"payment.completed","data":{"n":1}}"#)
        .await;
    let verdict = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(verdict, format!("{good} payment.completed attempt 1: signature ok"));
    let body = lines.next_line().await.unwrap().unwrap();
    assert!(body.starts_with(&format!(r#"{{"id":"{good}""#)), "{body}");
    let bad = sidecar.post_event(r#"{"event":"enrollment.created","data":{}}"#).await;
    let verdict = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        verdict,
        format!("{bad} enrollment.created attempt 1: signature INVALID")
    );
    let delivery = sidecar.finished(&format!("{bad}.bad"), PATIENCE).await;
    assert_eq!(delivery.status, hookd::store::DeliveryStatus::Failed, "answered 401");
    let body = lines.next_line().await.unwrap().unwrap();
    assert!(body.starts_with(&format!(r#"{{"id":"{bad}""#)), "{body}");
    // Anyone on the machine can post to it: a body with terminal escapes
    // and line breaks prints escaped, on one line, and a signature of the
    // wrong length is simply invalid.
    let hostile = b"{\"x\":\"\x1b[2J\x1b]0;pwned\x07\"}\r\nforged: signature ok".to_vec();
    let answer = sidecar
        .http
        .send(
            http::Method::POST,
            &format!("http://127.0.0.1:{port}/webhooks"),
            &[("x-webhook-signature", "00"), ("x-webhook-id", "evt_forged")],
            hostile.into(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, http::StatusCode::UNAUTHORIZED);
    let verdict = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(verdict.ends_with("signature INVALID"), "{verdict}");
    let body = lines.next_line().await.unwrap().unwrap();
    assert!(
        !body.contains('\x1b') && !body.contains('\r') && !body.contains('\x07'),
        "{body:?}"
    );
    assert!(
        body.contains("\\u{1b}[2J") && body.ends_with("\\u{d}\\u{a}forged: signature ok"),
        "{body}"
    );
}
