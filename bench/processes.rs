//! Child processes the harness runs: hookd itself and the baselines (this
//! binary again, with a baseline subcommand), plus their scratch space.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// A directory for configs and data, removed when dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new() -> anyhow::Result<ScratchDir> {
        ScratchDir::new_named("run")
    }

    /// A directory of its own for one part of a run.
    pub fn new_named(name: &str) -> anyhow::Result<ScratchDir> {
        let path = std::env::temp_dir().join(format!("hookd-bench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(ScratchDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills its child when dropped.
pub struct ChildGuard(Child);

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// CPU seconds (user and system) the process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // The fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|field| field.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime, in clock ticks of 1/100 s.
        (ticks(11) + ticks(12)) / 100.0
    }

    /// The process's resident memory now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.pid())
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        Ok(self.0.wait()?)
    }

    /// The most resident memory the process has had, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        status_mib(self.pid(), "VmHWM:")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The resident memory of process `pid` now, in MiB (0 if it is gone).
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// A figure of `/proc/PID/status` given in kB, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts connections on `port`.
pub async fn wait_until_up(port: u16) -> anyhow::Result<()> {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing came up on port {port}")
}

/// Runs this binary with a baseline subcommand; returns it once listening.
pub async fn start_baseline(args: &[&str], port: u16) -> anyhow::Result<ChildGuard> {
    let child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::null())
        .spawn()?;
    let guard = ChildGuard(child);
    wait_until_up(port).await?;
    Ok(guard)
}

/// Starts `hookd serve` on a fresh data directory with one endpoint for
/// every event at `endpoint_url`; returns it once listening, and its
/// ingest URL.
pub async fn start_hookd(binary: &str, dir: &Path, endpoint_url: &str) -> anyhow::Result<(ChildGuard, String)> {
    let endpoints = format!(
        "[[endpoints]]\nid = \"bench\"\nurl = \"{endpoint_url}\"\nevents = [\"*\"]\nsecret = \"bench-secret\"\n"
    );
    let hookd = start_hookd_with(binary, dir, &endpoints).await?;
    Ok((hookd.child, format!("{}/v1/events", hookd.ingest)))
}

/// A running hookd and its two base URLs.
pub struct Hookd {
    pub child: ChildGuard,
    pub ingest: String,
    pub admin: String,
    pub data: PathBuf,
}

/// Starts `hookd serve` on a fresh data directory with `endpoints` (TOML
/// `[[endpoints]]` tables); returns it once listening.
pub async fn start_hookd_with(binary: &str, dir: &Path, endpoints: &str) -> anyhow::Result<Hookd> {
    start_hookd_extended(binary, dir, endpoints, &Extra::default()).await
}

/// More than endpoints for a hookd the harness starts.
#[derive(Default)]
pub struct Extra<'a> {
    /// Top-level keys, such as `include`.
    pub top: &'a str,
    /// `HOOKD_` variables, for keys of the tables the harness writes.
    pub env: &'a [(&'a str, &'a str)],
}

/// [`start_hookd_with`], with `extra` config.
pub async fn start_hookd_extended(
    binary: &str,
    dir: &Path,
    endpoints: &str,
    extra: &Extra<'_>,
) -> anyhow::Result<Hookd> {
    let ingest_port = free_port()?;
    let admin_port = free_port()?;
    let config = dir.join(format!("hookd-{ingest_port}.toml"));
    let data = dir.join(format!("data-{ingest_port}"));
    std::fs::write(
        &config,
        format!(
            r#"{top}
[ingest]
listen = "127.0.0.1:{ingest_port}"
[admin]
listen = "127.0.0.1:{admin_port}"
[storage]
path = "{}"
[delivery]
allow_private_networks = true
[telemetry]
log_level = "warn"
{endpoints}"#,
            data.display(),
            top = extra.top,
        ),
    )?;
    let child = Command::new(binary)
        .args(["serve", "--config"])
        .arg(&config)
        .envs(extra.env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {binary}"))?;
    let child = ChildGuard(child);
    wait_until_up(ingest_port).await?;
    Ok(Hookd {
        child,
        ingest: format!("http://127.0.0.1:{ingest_port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
        data,
    })
}

/// The `hookd` binary built beside this one.
pub fn sibling_hookd() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("hookd")))
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "hookd".to_owned())
}
