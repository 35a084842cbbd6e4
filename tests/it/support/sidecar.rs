//! hookd running inside the test process: the real `run`, real sockets,
//! real RocksDB; the test keeps a handle on the store to look inside.

use hookd::store::{Counts, DeliveryRecord, DeliveryStatus, Store};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::http::HttpClient;
use super::test_config;

pub struct Sidecar {
    pub ingest: String,
    pub admin: String,
    pub store: Store,
    pub http: HttpClient,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

impl Sidecar {
    /// Starts hookd with the test config plus `extra` TOML.
    pub async fn start(extra: &str) -> Sidecar {
        Sidecar::start_with(extra, |_| {}).await
    }

    /// Starts hookd with the test config plus `extra` TOML, after
    /// `prepare` has written what else the config needs into its
    /// directory (included files, say).
    pub async fn start_with(extra: &str, prepare: impl FnOnce(&std::path::Path)) -> Sidecar {
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(dir.path());
        let config_path = dir.path().join("hookd.toml");
        std::fs::write(&config_path, test_config(&dir.path().join("data"), extra)).expect("writing the config");
        Sidecar::start_in(dir).await
    }

    /// Replaces the config file with the test config plus `extra`, as an
    /// operator editing it would; hookd notices within a second or two.
    pub fn rewrite_config(&self, extra: &str) {
        let config = test_config(&self._dir.path().join("data"), extra);
        std::fs::write(self._dir.path().join("hookd.toml"), config).expect("writing the config");
    }

    /// The directory of the config file, where included files go.
    pub fn config_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Writes raw text as the config file.
    pub fn write_config_text(&self, text: &str) {
        std::fs::write(self._dir.path().join("hookd.toml"), text).expect("writing the config");
    }

    /// Waits until `GET /v1/config` shows a reload after `since`
    /// (`loaded_at` moved) or a reload error, and returns the answer.
    pub async fn config_after(&self, since: &str) -> serde_json::Value {
        self.config_where(|answer| {
            answer["loaded_at"].as_str() != Some(since) || !answer["last_reload_error"].is_null()
        })
        .await
    }

    /// When the config in force was loaded, as `GET /v1/config` says.
    pub async fn loaded_at(&self) -> String {
        let answer = self.http.get(&format!("{}/v1/config", self.admin)).await;
        answer.json["loaded_at"].as_str().expect("a load time").to_owned()
    }

    /// Waits until `GET /v1/config` answers what `check` accepts, and
    /// returns the answer.
    pub async fn config_where(&self, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let config = self.http.get(&format!("{}/v1/config", self.admin)).await.json;
            if check(&config) {
                return config;
            }
            assert!(std::time::Instant::now() < deadline, "{config}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Stops hookd and starts it again on the same config and data.
    pub async fn restart(self) -> Sidecar {
        self.restart_with(|_| {}).await
    }

    /// Stops hookd, runs `between` on the closed store's directory (to
    /// damage it, say), and starts hookd again on the same config and data.
    pub async fn restart_with(mut self, between: impl FnOnce(&std::path::Path)) -> Sidecar {
        self.shutdown().await;
        let Sidecar { store, _dir: dir, .. } = self;
        drop(store);
        between(&dir.path().join("data"));
        Sidecar::start_in(dir).await
    }

    /// Starts hookd on `dir/hookd.toml`.
    async fn start_in(dir: TempDir) -> Sidecar {
        let config_path = dir.path().join("hookd.toml");
        let settings = hookd::config::load(&config_path).unwrap_or_else(|errors| panic!("test config: {errors}"));
        let store = Store::open(&settings.storage.path).expect("opening the store");
        let listeners = hookd::Listeners::bind(&settings).await.expect("binding");
        let ingest = format!("http://{}", listeners.ingest.local_addr().unwrap());
        let admin = format!("http://{}", listeners.admin.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hookd::run(settings, store.clone(), listeners, async move {
            let _ = stopped.await;
        }));
        Sidecar {
            ingest,
            admin,
            store,
            http: HttpClient::default(),
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Posts one event and returns its id; the event must be accepted.
    pub async fn post_event(&self, body: &str) -> String {
        let answer = self
            .http
            .post_json(&format!("{}/v1/events", self.ingest), body.to_owned())
            .await;
        assert_eq!(answer.status, http::StatusCode::ACCEPTED, "{body}: {:?}", answer.json);
        answer.json["id"].as_str().expect("an id").to_owned()
    }

    /// Waits until delivery `id` is no longer pending and returns it.
    pub async fn finished(&self, id: &str, patience: std::time::Duration) -> DeliveryRecord {
        super::eventually(patience, || {
            self.store
                .delivery(id)
                .expect("reading the store")
                .filter(|delivery| delivery.status != DeliveryStatus::Pending)
        })
        .await
    }

    /// Stops hookd the way SIGTERM would and waits for it to finish.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("hookd task").expect("hookd run");
        }
    }
}

/// The store's counts with only what ingest writes: events, deliveries and
/// the events' `recent` entries. Attempts and the `due`/`finished` entries change
/// as the dispatcher works, so tests of ingest compare these alone.
pub fn ingested(store: &Store) -> Counts {
    let counts = store.counts().expect("counting the store");
    Counts {
        events: counts.events,
        deliveries: counts.deliveries,
        recent: counts.recent,
        ..Counts::default()
    }
}
