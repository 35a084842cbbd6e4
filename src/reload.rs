//! Live config reload: hookd notices a changed config file, or a SIGHUP,
//! and swaps to the new config without a restart and without dropping work.
//!
//! The watcher reads the config file, and every secret or CA file it names,
//! once a second and compares a hash of their bytes; every five seconds it
//! also matches the `include` globs again and compares what they match and
//! each file's identity, size and times (a fleet's thousands of included
//! files are looked at, not read). Going through the path follows the
//! symlink swaps Kubernetes makes when it updates a ConfigMap or Secret
//! volume, which event-based watches on the file itself lose track of. A new config that does not load is refused whole: hookd
//! keeps running on the old one and reports the error in its log and in
//! `GET /v1/config`. So is one that would leave a listener bound beyond
//! loopback without its token (the file's `listen` may say loopback, but
//! the socket stays where it is until a restart).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::Bound;
use crate::api::ConfigStatus;
use crate::config::{self, Settings};
use crate::dispatch::Dispatcher;
use crate::metrics::Metrics;

/// How often the files are read for changes.
const POLL: Duration = Duration::from_secs(1);
/// How often the `include` globs are matched again and the included files
/// looked at: a fleet's thousands of files cost a `stat` each, so less
/// often than the main file.
const INCLUDE_POLL: Duration = Duration::from_secs(5);

/// Watches the config's files and applies each valid change.
pub struct Reloader {
    path: PathBuf,
    fingerprint: Fingerprint,
    /// When the included files were last looked at.
    includes_looked_at: Instant,
    hangup: Option<Signal>,
    settings: watch::Sender<Arc<Settings>>,
    status: Arc<ConfigStatus>,
    metrics: Arc<Metrics>,
    /// Where the listeners are bound: a new config must be safe there.
    bound: Bound,
}

impl Reloader {
    /// A reloader for settings loaded from a file; `None` otherwise.
    pub fn new(
        settings: watch::Sender<Arc<Settings>>,
        status: Arc<ConfigStatus>,
        metrics: Arc<Metrics>,
        bound: Bound,
    ) -> Option<Reloader> {
        let current = settings.borrow().clone();
        let path = current.source.clone()?;
        let hangup = signal(SignalKind::hangup())
            .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGHUP; file changes still reload"))
            .ok();
        Some(Reloader {
            fingerprint: Fingerprint::of(&path, &current),
            includes_looked_at: Instant::now(),
            path,
            hangup,
            settings,
            status,
            metrics,
            bound,
        })
    }

    /// Waits for a change (or SIGHUP) and applies it; returns after each
    /// attempt, applied or refused.
    pub async fn next(&mut self, dispatcher: &mut Dispatcher) {
        loop {
            let hangup = async {
                match &mut self.hangup {
                    Some(hangup) => {
                        hangup.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = hangup => {
                    tracing::info!(path = %self.path.display(), "SIGHUP: reloading the config");
                    break;
                }
                () = tokio::time::sleep(POLL) => {
                    let (path, current) = (self.path.clone(), self.settings.borrow().clone());
                    let includes_too = self.includes_looked_at.elapsed() >= INCLUDE_POLL;
                    let known = self.fingerprint;
                    // Thousands of included files are thousands of stats:
                    // off the async threads.
                    let now = tokio::task::spawn_blocking(move || Fingerprint {
                        files: files_fingerprint(&path, &current),
                        includes: if includes_too { includes_fingerprint(&path, &current) } else { known.includes },
                    })
                    .await;
                    if includes_too {
                        self.includes_looked_at = Instant::now();
                    }
                    if now.is_ok_and(|now| now != self.fingerprint) {
                        tracing::info!(path = %self.path.display(), "the config changed: reloading");
                        break;
                    }
                }
            }
        }
        self.reload(dispatcher).await;
    }

    async fn reload(&mut self, dispatcher: &mut Dispatcher) {
        let current = self.settings.borrow().clone();
        // Whatever the outcome, this content has been looked at.
        self.fingerprint = Fingerprint::of(&self.path, &current);
        let loaded = config::load(&self.path).map_err(|errors| errors.to_string());
        let new = match loaded {
            Ok(new) => new,
            Err(error) => return self.refuse(error),
        };
        // The file's listen addresses apply only after a restart; the
        // tokens apply now, to the listeners as they are bound.
        let exposed = new.exposure(self.bound.ingest, self.bound.admin);
        if !exposed.is_empty() {
            let reasons: Vec<String> = exposed
                .iter()
                .map(|reason| {
                    format!(
                        "{}: {reason} (the listener is bound there until a restart)",
                        self.path.display()
                    )
                })
                .collect();
            return self.refuse(reasons.join("\n"));
        }
        if let Err(error) = dispatcher.apply(&new).await {
            return self.refuse(error.to_string());
        }
        let restart = new.restart_needed_for(&current);
        if !restart.is_empty() {
            tracing::warn!(keys = ?restart, "the new config changes settings that apply only after a restart");
        }
        crate::telemetry::set_log_level(&new.telemetry.log_level);
        self.fingerprint = Fingerprint::of(&self.path, &new);
        let _ = self.settings.send(Arc::new(new));
        self.status.reloaded(!restart.is_empty());
        self.metrics.config_reload(true);
        tracing::info!(path = %self.path.display(), "the new config is in force");
    }

    fn refuse(&self, error: String) {
        tracing::error!(path = %self.path.display(), "the new config is refused; hookd keeps the old one:\n{error}");
        self.status.refused(error);
        self.metrics.config_reload(false);
    }
}

/// What the config's files looked like when last looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    files: u64,
    includes: u64,
}

impl Fingerprint {
    fn of(path: &Path, settings: &Settings) -> Fingerprint {
        Fingerprint {
            files: files_fingerprint(path, settings),
            includes: includes_fingerprint(path, settings),
        }
    }
}

/// A hash of the config file and the files it names (a missing file
/// hashes as its error, so its disappearance is a change too).
fn files_fingerprint(path: &Path, settings: &Settings) -> u64 {
    let mut hasher = DefaultHasher::new();
    for file in std::iter::once(path.to_owned()).chain(settings.referenced_files.iter().cloned()) {
        file.hash(&mut hasher);
        match std::fs::read(&file) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(error) => error.kind().to_string().hash(&mut hasher),
        }
    }
    hasher.finish()
}

/// A hash of the files the `include` globs match now, each by identity.
fn includes_fingerprint(path: &Path, settings: &Settings) -> u64 {
    let mut hasher = DefaultHasher::new();
    let base = path.parent().unwrap_or(Path::new("."));
    match config::included_files(base, &settings.file.include) {
        Ok(files) => {
            for file in files {
                file.hash(&mut hasher);
                match std::fs::metadata(&file) {
                    Ok(metadata) => identity(&metadata).hash(&mut hasher),
                    Err(error) => error.kind().to_string().hash(&mut hasher),
                }
            }
        }
        Err(error) => error.hash(&mut hasher),
    }
    hasher.finish()
}

/// What changes when a file is rewritten or replaced: its inode (a
/// symlink swap), size and modification and change times.
fn identity(metadata: &std::fs::Metadata) -> (u64, u64, u64, i64, i64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (
        metadata.dev(),
        metadata.ino(),
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec(),
    )
}
