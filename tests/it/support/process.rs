//! hookd as a child process: `hookd serve` for crash tests, `hookd
//! check-config` for config tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The hookd binary cargo built for these tests.
pub fn hookd_binary() -> &'static str {
    env!("CARGO_BIN_EXE_hookd")
}

/// `hookd check-config --config PATH` with the given environment added.
pub fn check_config(path: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(hookd_binary());
    command.arg("check-config").arg("--config").arg(path);
    clean_env(&mut command);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("running hookd check-config")
}

/// `hookd serve --config PATH` when it is expected to refuse to start:
/// waits up to `patience` for it to exit and returns its output.
pub fn serve_refused(config: &Path, patience: Duration) -> Output {
    let mut command = Command::new(hookd_binary());
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clean_env(&mut command);
    let mut child = command.spawn().expect("starting hookd serve");
    let deadline = std::time::Instant::now() + patience;
    while child.try_wait().expect("polling hookd").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "hookd serve started when it should have refused: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("hookd output")
}

/// Keeps the developer's own HOOKD_ variables out of a test.
fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars() {
        if name.starts_with("HOOKD_") {
            command.env_remove(name);
        }
    }
}

/// A running `hookd serve`.
pub struct HookdProcess {
    child: Child,
    pub ingest: String,
    pub admin: String,
}

impl HookdProcess {
    /// Starts `hookd serve --config PATH` and waits until both listeners
    /// are up (it logs their addresses).
    pub fn spawn(config: &Path) -> HookdProcess {
        HookdProcess::spawn_with_env(config, &[])
    }

    /// Like [`HookdProcess::spawn`], with these environment variables.
    pub fn spawn_with_env(config: &Path, env: &[(&str, &str)]) -> HookdProcess {
        let mut command = Command::new(hookd_binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        clean_env(&mut command);
        command.env("RUST_LOG", "info");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting hookd serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines, addresses) = mpsc::channel();
        // Reads stderr for the whole life of the child, so it never blocks
        // on a full pipe; the addresses go back to the test.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for api in ["ingest", "admin"] {
                    let marker = format!("{api} API listening on http://");
                    if let Some(at) = line.find(&marker) {
                        let address: String = line[at + marker.len()..]
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != '"')
                            .collect();
                        let _ = lines.send((api, address));
                    }
                }
                if std::env::var_os("VERBOSE_HOOKD_LOGS").is_some() {
                    eprintln!("[hookd] {line}");
                }
            }
        });
        let (mut ingest, mut admin) = (None, None);
        while ingest.is_none() || admin.is_none() {
            match addresses.recv_timeout(Duration::from_secs(60)) {
                Ok(("ingest", address)) => ingest = Some(address),
                Ok((_, address)) => admin = Some(address),
                Err(_) => {
                    let _ = child.kill();
                    panic!("hookd serve did not start listening: {:?}", child.wait());
                }
            }
        }
        HookdProcess {
            child,
            ingest: format!("http://{}", ingest.unwrap()),
            admin: format!("http://{}", admin.unwrap()),
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping hookd");
    }

    /// SIGHUP: reload the config.
    pub fn hangup(&self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-HUP", &pid]).status().expect("kill -HUP");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        self.child.wait().expect("waiting for hookd")
    }
}

impl Drop for HookdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
