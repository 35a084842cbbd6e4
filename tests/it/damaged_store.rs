//! A damaged store: a torn write at the log's tail is dropped and hookd
//! starts with everything acknowledged; damage anywhere else (a corrupt
//! record inside the log, a missing table file) makes hookd refuse to
//! start, with a message that says what to do, rather than silently lose
//! what the damage hides.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::StatusCode;

use crate::support::http::HttpClient;
use crate::support::process::{HookdProcess, serve_refused};
use crate::support::test_config;

const EVENTS: usize = 200;

/// A config with no endpoints (events are stored, nothing is delivered),
/// its data directory, and the path of the config.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    let config = dir.join("hookd.toml");
    std::fs::write(&config, test_config(&data, "")).unwrap();
    (config, data)
}

/// Starts hookd, stores `EVENTS` events with ids `evt_{n}`, and leaves it
/// running for the caller to stop.
async fn store_events(config: &Path) -> HookdProcess {
    let hookd = HookdProcess::spawn(config);
    let http = HttpClient::default();
    for n in 0..EVENTS {
        let answer = http
            .post_json(
                &format!("{}/v1/events", hookd.ingest),
                format!(r#"{{"id":"evt_{n}","event":"payment.completed","data":{{"n":{n}}}}}"#),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    hookd
}

/// The files in `data` whose names end with `extension`, largest first.
fn files_ending(data: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(extension))
        .collect();
    files.sort_by_key(|path| std::cmp::Reverse(std::fs::metadata(path).unwrap().len()));
    files
}

/// A resubmission of every event answers 200 (stored, unchanged).
async fn assert_all_stored(hookd: &HookdProcess) {
    let http = HttpClient::default();
    for n in 0..EVENTS {
        let answer = http
            .post_json(
                &format!("{}/v1/events", hookd.ingest),
                format!(r#"{{"id":"evt_{n}","event":"payment.completed","data":{{"n":{n}}}}}"#),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "evt_{n} was lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_write_at_the_log_tail_is_dropped_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = setup(dir.path());
    store_events(&config).await.kill();
    // What a crash in the middle of the next write leaves: half a record.
    let log = files_ending(&data, ".log").remove(0);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&[0x5a, 0x13, 0x00, 0x00, 0x10, 0x27, 0x01, 0xde, 0xad])
        .unwrap();
    drop(file);

    let hookd = HookdProcess::spawn(&config);
    assert_all_stored(&hookd).await;
    let answer = HttpClient::default()
        .post_json(
            &format!("{}/v1/events", hookd.ingest),
            r#"{"event":"payment.completed","data":{}}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "it takes new events");
    assert!(hookd.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_inside_the_log_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = setup(dir.path());
    store_events(&config).await.kill();
    let log = files_ending(&data, ".log").remove(0);
    let length = std::fs::metadata(&log).unwrap().len();
    let mut file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.seek(SeekFrom::Start(length / 3)).unwrap();
    file.write_all(&[0xff; 32]).unwrap();
    drop(file);

    let output = serve_refused(&config, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the store is damaged"), "{stderr}");
    assert!(stderr.contains("Restore storage.path from a backup"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_file_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = setup(dir.path());
    // A clean stop flushes the events into table files.
    assert!(store_events(&config).await.terminate().success());
    let table = files_ending(&data, ".sst").remove(0);
    std::fs::remove_file(&table).unwrap();

    let output = serve_refused(&config, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the store is damaged"), "{stderr}");
    let name = table.file_name().unwrap().to_string_lossy();
    assert!(stderr.contains(name.as_ref()), "the message names {name}: {stderr}");
}
