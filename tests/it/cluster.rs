//! Cluster mode (SPEC 11) with real processes: a three-node `nats-server`
//! JetStream cluster on loopback ports and several `hookd serve`
//! processes sharing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::StatusCode;

use crate::support::http::HttpClient;
use crate::support::nats::NatsCluster;
use crate::support::process::{HookdProcess, serve_refused};
use crate::support::receiver::{Receiver, Reply};
use crate::support::test_config;

/// One endpoint, retried every 2 s: with a `park_after` of 1 s, a
/// subscriber that is down makes every delivery a long wait that is
/// parked; with an hour, nothing is parked before SIGTERM. No circuit
/// breaker: these tests are about where deliveries live, and each expects
/// a subscriber back up to get them at their next retry, not at the next
/// probe (`tests/it/breaker.rs` is about that).
fn cluster_config(data: &Path, nats_url: &str, park_after: &str, subscriber: &Receiver) -> String {
    test_config(
        data,
        &format!(
            r#"
[delivery]
retry_schedule = ["2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s", "2s"]
retry_jitter = 0.0
shutdown_grace = "2s"
[delivery.breaker]
failures = 0
[cluster]
nats_url = "{nats_url}"
park_after = "{park_after}"
park_grace = "20s"
replicas = 3
[[endpoints]]
id = "crm"
url = "{}"
events = ["enrollment.*"]
secret = "crm secret"
"#,
            subscriber.url("/crm")
        ),
    )
}

/// A config edit: `schedule` (TOML) in place of the retry schedule.
fn retry_schedule(schedule: &'static str) -> impl FnOnce(String) -> String {
    move |config| {
        let start = config.find("retry_schedule").unwrap();
        let end = start + config[start..].find('\n').unwrap();
        format!("{}retry_schedule = {schedule}{}", &config[..start], &config[end..])
    }
}

struct Replica {
    dir: tempfile::TempDir,
    process: Option<HookdProcess>,
}

impl Replica {
    fn start(nats_url: &str, park_after: &str, subscriber: &Receiver) -> Replica {
        Replica::start_edited(nats_url, park_after, subscriber, |config| config)
    }

    /// Like [`Replica::start`], with the config text passed through `edit`.
    fn start_edited(
        nats_url: &str,
        park_after: &str,
        subscriber: &Receiver,
        edit: impl FnOnce(String) -> String,
    ) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hookd.toml");
        let text = cluster_config(&dir.path().join("data"), nats_url, park_after, subscriber);
        std::fs::write(&config, edit(text)).unwrap();
        let process = HookdProcess::spawn(&config);
        Replica {
            dir,
            process: Some(process),
        }
    }

    fn process(&self) -> &HookdProcess {
        self.process.as_ref().expect("running")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// Posts `count` enrollment events to `replica`; the ids acknowledged. A
/// `503 cluster_unavailable` (JetStream slow to confirm on a loaded
/// machine) is resubmitted with the same id, as SPEC 3 tells apps to; the
/// resubmission answers 202, or 200 as a duplicate.
async fn post_events(http: &HttpClient, replica: &Replica, prefix: &str, count: usize) -> Vec<String> {
    let url = format!("{}/v1/events", replica.process().ingest);
    let mut acknowledged = Vec::new();
    for n in 0..count {
        let id = format!("evt_{prefix}_{n}");
        let body = format!(r#"{{"id":"{id}","event":"enrollment.created","data":{{"n":{n}}}}}"#);
        let mut answer = http.post_json(&url, body.clone()).await;
        for _ in 0..5 {
            if answer.status != StatusCode::SERVICE_UNAVAILABLE || answer.error_code() != "cluster_unavailable" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            answer = http.post_json(&url, body.clone()).await;
        }
        assert!(
            answer.status == StatusCode::ACCEPTED || answer.status == StatusCode::OK,
            "{}: {:?}",
            answer.status,
            answer.json
        );
        acknowledged.push(id);
    }
    acknowledged
}

/// How often each event id reached the subscriber with a 2xx answer.
fn delivered(subscriber: &Receiver) -> BTreeMap<String, usize> {
    let mut delivered = BTreeMap::new();
    for received in subscriber.received() {
        if (200..300).contains(&received.answered) {
            let body: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
            *delivered.entry(body["id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    delivered
}

/// Waits until every id in `expected` was delivered; panics with the
/// missing ones after `patience`.
async fn wait_for_all(subscriber: &Receiver, expected: &[String], patience: Duration) -> BTreeMap<String, usize> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let delivered = delivered(subscriber);
        let missing: Vec<&String> = expected.iter().filter(|id| !delivered.contains_key(*id)).collect();
        if missing.is_empty() {
            return delivered;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} acknowledged events never delivered, e.g. {:?}",
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A metric's value on a replica's `/metrics`, summed over its series.
async fn metric(http: &HttpClient, replica: &Replica, name: &str) -> f64 {
    let page = http.get_text(&format!("{}/metrics", replica.process().admin)).await;
    page.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with([' ', '{']))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_scaled_away_with_sigterm_strands_nothing() {
    scale_down(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_killed_during_parking_and_adoption_loses_nothing() {
    scale_down(true).await;
}

/// Three replicas, a subscriber that is down, events posted to all three;
/// one replica gets SIGTERM and loses its volume; the subscriber comes
/// back: every acknowledged event reaches it. Nothing is parked before
/// the SIGTERM (`park_after` is an hour), so the leaving replica's 100
/// deliveries go through its shutdown's parking. With `kill_nats_node`,
/// one of the three NATS nodes is killed with SIGKILL just before, and
/// stays down through that parking and the adoptions.
async fn scale_down(kill_nats_node: bool) {
    let mut nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(503));
    let http = HttpClient::default();
    let mut replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&nats.url(), "1h", &subscriber)).collect();

    let mut acknowledged = Vec::new();
    for (n, replica) in replicas.iter().enumerate() {
        acknowledged.extend(post_events(&http, replica, &format!("r{n}"), 100).await);
    }
    // Every first attempt failed; the retries wait 2 s, past park_after.
    subscriber.wait_for(300, Duration::from_secs(30)).await;
    if kill_nats_node {
        nats.kill(0);
    }

    // The third replica is scaled away: SIGTERM, then its volume is gone.
    let mut leaving = replicas.pop().unwrap();
    let status = leaving.process.take().unwrap().terminate();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    std::fs::remove_dir_all(leaving.data()).unwrap();
    drop(leaving.dir);

    // The subscriber comes back: the other two deliver everything.
    subscriber.answer_by_default(Reply::ok());
    let delivered = wait_for_all(&subscriber, &acknowledged, Duration::from_secs(90)).await;
    let duplicates: usize = delivered.values().map(|n| n - 1).sum();
    let mut adopted = 0.0;
    for replica in &replicas {
        adopted += metric(&http, replica, "hookd_adopted_total").await;
        assert_eq!(metric(&http, replica, "hookd_cluster_connected").await, 1.0);
    }
    let nats_node = if kill_nats_node {
        ", one NATS node of three killed -9"
    } else {
        ""
    };
    println!(
        "cluster scale-down{nats_node}: {} events acknowledged on 3 replicas, one gone with SIGTERM and its volume; all delivered by the other two, {adopted} adopted, {duplicates} duplicate deliveries",
        acknowledged.len()
    );
    assert_eq!(
        adopted, 100.0,
        "the leaving replica's deliveries, and only those, were adopted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_ingest_and_delivery_go_on_and_parking_catches_up() {
    let mut nats = NatsCluster::start(3);
    let url = nats.url();
    nats.kill_all();
    let subscriber = Receiver::start().await;
    let http = HttpClient::default();
    let replica = Replica::start(&url, "1s", &subscriber);
    assert_eq!(
        http.get(&format!("{}/readyz", replica.process().admin)).await.status,
        StatusCode::OK,
        "ready without NATS"
    );
    assert_eq!(metric(&http, &replica, "hookd_cluster_connected").await, 0.0);
    // A pause must reach every replica: without NATS it is refused, and
    // nothing changes.
    let pause = http
        .post_json(&format!("{}/v1/endpoints/crm/pause", replica.process().admin), "")
        .await;
    assert_eq!(pause.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(pause.error_code(), "cluster_unavailable");
    let endpoints = http.get(&format!("{}/v1/endpoints", replica.process().admin)).await;
    assert_eq!(endpoints.json["data"][0]["paused"], false);

    // First attempts go on.
    let first = post_events(&http, &replica, "up", 20).await;
    wait_for_all(&subscriber, &first, Duration::from_secs(30)).await;

    // Long waits pile up, counted, while parking cannot happen.
    subscriber.answer_by_default(Reply::status(503));
    let waiting = post_events(&http, &replica, "down", 20).await;
    subscriber.wait_for(40, Duration::from_secs(30)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(&http, &replica, "hookd_park_pending").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "what waits to be parked is counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(metric(&http, &replica, "hookd_parked_total").await, 0.0);

    // NATS returns: the link comes back by itself and parking catches up.
    nats.restart_stopped();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while metric(&http, &replica, "hookd_parked_total").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "parking caught up once NATS returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(metric(&http, &replica, "hookd_cluster_connected").await, 1.0);
    subscriber.answer_by_default(Reply::ok());
    wait_for_all(&subscriber, &waiting, Duration::from_secs(60)).await;
    assert!(
        metric(&http, &replica, "hookd_adopted_total").await >= 1.0,
        "parked ones came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_stream_that_would_drop_deliveries_refuses_the_start_naming_its_setting() {
    let nats = NatsCluster::start(1);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "HOOKD_PARKED".into(),
            subjects: vec!["hookd.parked.>".into()],
            max_age: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .unwrap();
    let subscriber = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    let text = cluster_config(&dir.path().join("data"), &nats.url(), "1s", &subscriber)
        .replace("replicas = 3", "replicas = 1");
    std::fs::write(&config, text).unwrap();
    let output = serve_refused(&config, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("HOOKD_PARKED has retention Limits"),
        "names the setting: {stderr}"
    );
}

/// Waits until `replica` shows endpoint `crm` as `paused` (or not).
async fn wait_until_paused(http: &HttpClient, replica: &Replica, paused: bool) {
    let url = format!("{}/v1/endpoints", replica.process().admin);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while http.get(&url).await.json["data"][0]["paused"] != paused {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pause ({paused}) reached the other replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_on_one_replica_holds_the_endpoint_on_every_replica_and_survives_a_restart() {
    let nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    let http = HttpClient::default();
    let a = Replica::start(&nats.url(), "1h", &subscriber);
    let mut b = Replica::start(&nats.url(), "1h", &subscriber);

    let paused = http
        .post_json(&format!("{}/v1/endpoints/crm/pause", a.process().admin), "")
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{:?}", paused.json);
    wait_until_paused(&http, &b, true).await;
    let held = post_events(&http, &b, "held", 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(delivered(&subscriber).is_empty(), "nothing is sent while paused");

    // B restarts on its volume: the pause holds.
    let config = b.dir.path().join("hookd.toml");
    assert!(b.process.take().unwrap().terminate().success());
    b.process = Some(HookdProcess::spawn(&config));
    wait_until_paused(&http, &b, true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        delivered(&subscriber).is_empty(),
        "nothing is sent after the restart either"
    );

    // A resume on A lets B deliver.
    let resumed = http
        .post_json(&format!("{}/v1/endpoints/crm/resume", a.process().admin), "")
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    wait_until_paused(&http, &b, false).await;
    wait_for_all(&subscriber, &held, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_shows_the_deliveries_parked_across_the_cluster_and_its_link() {
    let nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(503));
    let http = HttpClient::default();
    // A retries in an hour: each failed first attempt is a long wait, parked.
    let a = Replica::start_edited(&nats.url(), "1s", &subscriber, retry_schedule(r#"["1h"]"#));
    let b = Replica::start(&nats.url(), "1h", &subscriber);
    post_events(&http, &a, "a", 7).await;
    subscriber.wait_for(7, Duration::from_secs(30)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let endpoints = http.get(&format!("{}/v1/endpoints", b.process().admin)).await;
        let crm = &endpoints.json["data"][0];
        if crm["parked"] == 7 {
            assert_eq!(crm["pending"], 0, "B holds none of them");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B shows A's parked deliveries: {crm}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config = http.get(&format!("{}/v1/config", b.process().admin)).await;
    assert_eq!(config.json["cluster"]["connected"], true);
    assert_eq!(config.json["cluster"]["ready"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_delivery_whose_endpoint_no_replica_has_fails_as_expired_after_the_retention() {
    let nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(503));
    let http = HttpClient::default();
    let short_retention = |config: String| config.replace("[storage]\n", "[storage]\nretention = \"4s\"\n");
    // A has an endpoint `gone` that B's config does not.
    let gone = format!(
        "\n[[endpoints]]\nid = \"gone\"\nurl = \"{}\"\nevents = [\"payment.*\"]\nsecret = \"s\"\n",
        subscriber.url("/gone")
    );
    let mut a = Replica::start_edited(&nats.url(), "1h", &subscriber, |config| short_retention(config) + &gone);
    let b = Replica::start_edited(&nats.url(), "1h", &subscriber, short_retention);
    let answer = http
        .post_json(
            &format!("{}/v1/events", a.process().ingest),
            r#"{"id":"evt_orphan","event":"payment.completed","data":{}}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    subscriber.wait_for(1, Duration::from_secs(30)).await;
    assert!(a.process.take().unwrap().terminate().success());

    // B takes it only once it waited past the retention and fails it;
    // failed, it goes to HOOKD_FAILED, where it is read back.
    let client = async_nats::connect(nats.url().split(',').collect::<Vec<_>>())
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(client);
    // About 10 s on an idle machine (5 s handed back, the sweep, a parking
    // pass); generous for a loaded one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let parcel = loop {
        let mut failed = jetstream.get_stream("HOOKD_FAILED").await.unwrap();
        if failed.info().await.unwrap().state.messages > 0 {
            let message = failed
                .get_last_raw_message_by_subject("hookd.failed.gone")
                .await
                .unwrap();
            break serde_json::from_slice::<serde_json::Value>(&message.payload).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the orphan was expired and kept as failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(parcel["id"], "evt_orphan.gone");
    assert_eq!(parcel["delivery"]["status"], "failed");
    let attempts = parcel["delivery"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.last().unwrap()["error_kind"], "expired", "{parcel}");
    assert!(metric(&http, &b, "hookd_adopted_total").await >= 1.0, "B adopted it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failed_on_one_replica_is_counted_and_retried_from_another() {
    let nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(503));
    let http = HttpClient::default();
    // One attempt, then failed.
    let a = Replica::start_edited(&nats.url(), "1h", &subscriber, retry_schedule("[]"));
    let b = Replica::start(&nats.url(), "1h", &subscriber);
    let failed = post_events(&http, &a, "failed", 3).await;
    subscriber.wait_for(3, Duration::from_secs(30)).await;
    let crm = |replica: &Replica| {
        let url = format!("{}/v1/endpoints", replica.process().admin);
        let http = http.clone();
        async move { http.get(&url).await.json["data"][0].clone() }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while crm(&b).await["failed"] != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B counts A's failed deliveries: {}",
            crm(&b).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(crm(&a).await["failed"], 3, "A counts them once, parked or not");

    // B retries them: B adopts and delivers them.
    subscriber.answer_by_default(Reply::ok());
    let retried = http
        .post_json(&format!("{}/v1/endpoints/crm/retry-failed", b.process().admin), "")
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{:?}", retried.json);
    assert_eq!(retried.json["retried"], 3);
    wait_for_all(&subscriber, &failed, Duration::from_secs(30)).await;
    assert_eq!(crm(&b).await["failed"], 0);

    // One by its id, from B.
    subscriber.answer_by_default(Reply::status(503));
    // Counted before the post: its one attempt may arrive before the 202.
    let seen = subscriber.received().len();
    let one = post_events(&http, &a, "one", 1).await;
    subscriber.wait_for(seen + 1, Duration::from_secs(30)).await;
    subscriber.answer_by_default(Reply::ok());
    let url = format!("{}/v1/deliveries/{}.crm/retry", b.process().admin, one[0]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = http.post_json(&url, "").await;
        if answer.status == StatusCode::ACCEPTED {
            break;
        }
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "until it is parked: {:?}",
            answer.json
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failed delivery was found in JetStream"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_all(&subscriber, &one, Duration::from_secs(30)).await;
}

/// A config edit: `ack = "cluster"` with a lease of one second.
fn ack_cluster(config: String) -> String {
    config.replace("[cluster]\n", "[cluster]\nack = \"cluster\"\nlease = \"1s\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_cluster_a_replica_killed_with_its_volume_lost_strands_nothing() {
    let nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(503));
    let http = HttpClient::default();
    let mut a = Replica::start_edited(&nats.url(), "1h", &subscriber, ack_cluster);
    let b = Replica::start_edited(&nats.url(), "1h", &subscriber, ack_cluster);
    let acknowledged = post_events(&http, &a, "lost", 50).await;
    subscriber.wait_for(50, Duration::from_secs(30)).await;

    // A dies without a word, and its volume with it.
    a.process.take().unwrap().kill();
    std::fs::remove_dir_all(a.data()).unwrap();

    // B adopts each once its lease ran out, and delivers it.
    subscriber.answer_by_default(Reply::ok());
    let delivered = wait_for_all(&subscriber, &acknowledged, Duration::from_secs(60)).await;
    let duplicates: usize = delivered.values().map(|n| n - 1).sum();
    let adopted = metric(&http, &b, "hookd_adopted_total").await;
    println!(
        "ack = cluster, kill -9 and volume lost: {} events acknowledged by the lost replica, all delivered by the other, {adopted} adopted, {duplicates} duplicate deliveries",
        acknowledged.len()
    );
    assert_eq!(adopted, 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_cluster_and_nats_down_ingest_answers_503_and_stores_nothing() {
    let mut nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    let http = HttpClient::default();
    let replica = Replica::start_edited(&nats.url(), "1h", &subscriber, ack_cluster);
    let url = format!("{}/v1/events", replica.process().ingest);
    let body = r#"{"id":"evt_while_down","event":"enrollment.created","data":{}}"#;
    nats.kill_all();
    // Once hookd knows the link is gone, ingest refuses before it stores.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(&http, &replica, "hookd_cluster_connected").await != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "hookd noticed NATS is gone");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = http.post_json(&url, body).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.json);
    assert_eq!(refused.error_code(), "cluster_unavailable");
    assert!(subscriber.received().is_empty(), "nothing refused was sent");

    // NATS back: the same event is taken anew, not as a duplicate.
    nats.restart_stopped();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let answer = http.post_json(&url, body).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ingest takes events again once NATS is back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
    assert!(
        answer.json.get("duplicate").is_none(),
        "nothing was stored before: {:?}",
        answer.json
    );
    wait_for_all(&subscriber, &["evt_while_down".to_owned()], Duration::from_secs(30)).await;
}

/// An ordered endpoint's deliveries, the one of each key that failed and
/// the ones waiting behind it, are parked at SIGTERM like the rest, so a
/// replica scaled away strands none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_scaled_away_strands_no_delivery_that_waits_for_its_key() {
    let nats = NatsCluster::start(3);
    let subscriber = Receiver::start().await;
    subscriber.answer_by_default(Reply::status(503));
    let http = HttpClient::default();
    let ordered =
        |config: String| config.replace("secret = \"crm secret\"", "secret = \"crm secret\"\nordering = \"key\"");
    let staying = Replica::start_edited(&nats.url(), "1h", &subscriber, ordered);
    let mut leaving = Replica::start_edited(&nats.url(), "1h", &subscriber, ordered);
    let url = format!("{}/v1/events", leaving.process().ingest);
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        for key in 0..4 {
            let id = format!("evt_keyed_{key}_{n}");
            let body = format!(r#"{{"id":"{id}","event":"enrollment.created","ordering_key":"k{key}","data":{{}}}}"#);
            let answer = http.post_json(&url, body).await;
            assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.json);
            acknowledged.push(id);
        }
    }
    // The first of each key failed; the other 16 wait behind them.
    subscriber.wait_for(4, Duration::from_secs(30)).await;
    let status = leaving.process.take().unwrap().terminate();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    std::fs::remove_dir_all(leaving.data()).unwrap();

    subscriber.answer_by_default(Reply::ok());
    wait_for_all(&subscriber, &acknowledged, Duration::from_secs(90)).await;
    assert_eq!(metric(&http, &staying, "hookd_adopted_total").await, 20.0);
}
