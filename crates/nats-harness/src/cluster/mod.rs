//! [`NatsCluster`]: a real nats-server cluster with JetStream on loopback, for tests and for
//! `cargo xtask cluster-start`.
//!
//! Every node listens on 127.0.0.1 with its own client, monitoring and route ports, its own
//! JetStream store and the same route list (a route to itself is ignored by nats-server).
//! With TLS, clients need a certificate from the cluster's CA (`verify: true`) and routes are
//! mutual TLS too: each node presents a node certificate (EKU serverAuth and clientAuth,
//! SANs `localhost`, `127.0.0.1`, `::1`) when it accepts and when it dials a route.
//!
//! Nodes can be killed, stopped and started one by one ([`NatsCluster::kill_node`],
//! [`NatsCluster::start_node`]) for fault tests; a node comes back on the same ports with its
//! store. A cluster is stopped when dropped, unless [`NatsCluster::detach`] handed its
//! processes over to a [`ClusterRecord`] (what `cargo xtask cluster-start` keeps on disk).

mod node_certs;
mod node_config;
mod options;
mod record;

use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::config::{self, ConfigValues, ServerTls};
use crate::process::{self, Signal};
use crate::server::{TlsFiles, STOP_TIMEOUT};
use crate::{locate, logs, monitor};

use node_certs::node_certificates;
pub use node_certs::{NODE_CERT, NODE_KEY};
use node_config::cluster_block;
pub use node_config::CLUSTER_NAME;
pub use options::ClusterOptions;
pub use record::{ClusterRecord, NodeRecord};

/// How long a cluster may take to elect its JetStream meta leader and become healthy.
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(45);
/// Log lines quoted in errors.
const LOG_LINES_IN_ERRORS: usize = 20;

#[derive(Debug)]
struct Node {
    record: NodeRecord,
    child: Option<Child>,
}

#[derive(Debug)]
enum Root {
    Temporary(TempDir),
    Kept(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
        match self {
            Root::Temporary(dir) => dir.path(),
            Root::Kept(path) => path,
        }
    }
}

/// A running cluster of nats-server nodes with JetStream. Stopped when dropped (unless
/// detached).
#[derive(Debug)]
pub struct NatsCluster {
    root: Root,
    binary: PathBuf,
    tls: Option<TlsFiles>,
    nodes: Vec<Node>,
    detached: bool,
}

impl NatsCluster {
    /// `nodes` nodes on free loopback ports, mutual TLS when `tls`, in a temporary directory;
    /// returns once every node is healthy and JetStream has a meta leader.
    pub fn start(nodes: usize, tls: bool) -> anyhow::Result<Self> {
        Self::start_with(ClusterOptions {
            nodes,
            tls,
            ..ClusterOptions::default()
        })
    }

    /// Starts a cluster as described by `options`. On free ports (no `base_port`), a node
    /// that finds one of its ports taken meanwhile (another process bound it between the
    /// pick and the start) makes the whole start again on fresh ports, a few times.
    pub fn start_with(options: ClusterOptions) -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(&options) {
                Err(err)
                    if options.base_port.is_none()
                        && attempt < PORT_ATTEMPTS
                        && format!("{err:#}").contains("address already in use") =>
                {
                    eprintln!(
                        "nats-harness: a cluster port was taken meanwhile; again on fresh ports"
                    );
                    attempt += 1;
                }
                started => return started,
            }
        }
    }

    fn start_once(options: &ClusterOptions) -> anyhow::Result<Self> {
        if !(1..=9).contains(&options.nodes) {
            bail!("a cluster has 1 to 9 nodes, not {}", options.nodes);
        }
        let binary = locate::nats_server()?.path;
        let root = match &options.dir {
            Some(dir) => {
                fs::create_dir_all(dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
                Root::Kept(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))
            }
            None => Root::Temporary(
                tempfile::Builder::new()
                    .prefix("nats-cluster-")
                    .tempdir()
                    .context("could not create a temporary directory for the cluster")?,
            ),
        };
        let tls = if options.tls {
            let certs_dir = options
                .certs_dir
                .clone()
                .unwrap_or_else(|| root.path().join("certs"));
            Some(node_certificates(&certs_dir)?)
        } else {
            None
        };
        let ports = match options.base_port {
            Some(base) => (0..options.nodes as u16)
                .map(|i| Ok((base + i, base + 100 + i, base + 200 + i)))
                .collect::<anyhow::Result<Vec<_>>>()?,
            None => (0..options.nodes)
                .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, _, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let mut nodes = Vec::with_capacity(options.nodes);
        for (i, (client, monitor, route)) in ports.into_iter().enumerate() {
            let name = format!("n{}", i + 1);
            let dir = root.path().join(&name);
            let store = dir.join("store");
            fs::create_dir_all(&store)
                .with_context(|| format!("could not create {}", store.display()))?;
            let values = ConfigValues {
                host: "127.0.0.1".to_owned(),
                port: Some(client),
                monitor_port: Some(monitor),
                jetstream: true,
                store_dir: store,
                tls: tls.as_ref().map(|t| ServerTls {
                    ca_cert: t.ca_cert.clone(),
                    server_cert: t.server_cert.clone(),
                    server_key: t.server_key.clone(),
                }),
                extra: cluster_block(&name, route, &routes, tls.as_ref())?,
            };
            let config_path = dir.join("nats.conf");
            fs::write(&config_path, config::render(&values)?)
                .with_context(|| format!("could not write {}", config_path.display()))?;
            nodes.push(Node {
                record: NodeRecord {
                    name,
                    pid: 0,
                    client_port: client,
                    monitor_port: monitor,
                    cluster_port: route,
                    config: config_path,
                    log: dir.join("nats.log"),
                },
                child: None,
            });
        }
        let mut cluster = Self {
            root,
            binary,
            tls,
            nodes,
            detached: options.detached,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        cluster.wait_ready(CLUSTER_READY_TIMEOUT)?;
        Ok(cluster)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for a cluster without nodes (never: start refuses it).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The client URL of node `i` (`tls://127.0.0.1:P` with TLS).
    pub fn client_url(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.nodes[i].record.client_port)
    }

    /// Every client URL, comma-separated, as the router's `--nats-url` takes them.
    pub fn client_urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.client_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The monitoring port of node `i`.
    pub fn monitor_port(&self, i: usize) -> u16 {
        self.nodes[i].record.monitor_port
    }

    /// TLS files for clients (the client certificate) when the cluster has TLS; its
    /// `server_cert` is the node certificate.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The directory holding the node directories.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// The log of node `i`.
    pub fn log_path(&self, i: usize) -> &Path {
        &self.nodes[i].record.log
    }

    /// True while node `i` runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.nodes[i].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills node `i` with SIGKILL (a crash: no lame-duck, no goodbye to the routes).
    pub fn kill_node(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            child
                .wait()
                .with_context(|| format!("could not reap node {}", node.record.name))?;
        }
        node.record.pid = 0;
        Ok(())
    }

    /// Stops node `i`: SIGTERM, then SIGKILL after [`STOP_TIMEOUT`].
    pub fn stop_node(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        let Some(mut child) = node.child.take() else {
            return Ok(());
        };
        node.record.pid = 0;
        let _ = process::signal(child.id(), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        child
            .wait()
            .with_context(|| format!("could not reap node {}", node.record.name))?;
        Ok(())
    }

    /// Starts node `i` again (same config, ports and store) and waits until it is healthy
    /// and has its routes to every other running node back.
    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        if self.is_running(i) {
            return Ok(());
        }
        self.spawn(i)?;
        self.wait_ready(CLUSTER_READY_TIMEOUT)
    }

    /// Waits until every running node answers `/healthz` (JetStream current included), sees
    /// a JetStream meta leader, and has a route to every other running node.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect();
        for &i in &running {
            loop {
                match self.node_ready(i, running.len()) {
                    Ok(()) => break,
                    Err(err) => {
                        if !self.is_running(i) {
                            bail!(
                                "node {} exited: {err:#}\n{}",
                                self.nodes[i].record.name,
                                logs::tail_for_error(
                                    &self.nodes[i].record.log,
                                    LOG_LINES_IN_ERRORS
                                )
                            );
                        }
                        if Instant::now() > deadline {
                            bail!(
                                "node {} not ready within {} s: {err:#}\n{}",
                                self.nodes[i].record.name,
                                timeout.as_secs(),
                                logs::tail_for_error(
                                    &self.nodes[i].record.log,
                                    LOG_LINES_IN_ERRORS
                                )
                            );
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// What every node looks like now (pid 0 for a stopped node).
    pub fn record(&self) -> ClusterRecord {
        ClusterRecord {
            cluster: CLUSTER_NAME.to_owned(),
            tls: self.tls.is_some(),
            urls: self.client_urls(),
            client_tls: self.tls.as_ref().map(|t| {
                (
                    t.ca_cert.clone(),
                    t.router_cert.clone(),
                    t.router_key.clone(),
                )
            }),
            nodes: self.nodes.iter().map(|n| n.record.clone()).collect(),
        }
    }

    /// Leaves the processes running (they were started in their own process group with
    /// [`ClusterOptions::detached`]) and returns their record; the directory is kept.
    pub fn detach(mut self) -> anyhow::Result<ClusterRecord> {
        if !self.detached {
            bail!("only a cluster started with `detached` can be detached");
        }
        if matches!(self.root, Root::Temporary(_)) {
            bail!("a cluster in a temporary directory cannot be detached");
        }
        let record = self.record();
        for node in &mut self.nodes {
            node.child = None;
        }
        Ok(record)
    }

    fn node_ready(&self, i: usize, running: usize) -> anyhow::Result<()> {
        let port = self.nodes[i].record.monitor_port;
        monitor::healthz(port, Duration::from_secs(2))?;
        let jsz = monitor::get_json(port, "/jsz", Duration::from_secs(2))?;
        let leader = jsz["meta_cluster"]["leader"].as_str().unwrap_or_default();
        if leader.is_empty() {
            bail!("no JetStream meta leader yet");
        }
        let routez = monitor::get_json(port, "/routez", Duration::from_secs(2))?;
        let mut peers: Vec<&str> = routez["routes"]
            .as_array()
            .map(|routes| {
                routes
                    .iter()
                    .filter_map(|r| r["remote_id"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        peers.sort_unstable();
        peers.dedup();
        if peers.len() + 1 < running {
            bail!(
                "routes to {} of the {} other running nodes",
                peers.len(),
                running - 1
            );
        }
        Ok(())
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let detached = self.detached;
        let node = &mut self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.record.log)
            .with_context(|| format!("could not open {}", node.record.log.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("could not reopen {}", node.record.log.display()))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("-c")
            .arg(&node.record.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if detached {
            command.process_group(0);
        }
        let child = command
            .spawn()
            .with_context(|| format!("could not start {}", self.binary.display()))?;
        node.record.pid = child.id();
        node.child = Some(child);
        let port = node.record.client_port;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + crate::START_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if !self.is_running(i) || Instant::now() > deadline {
                let node = &self.nodes[i].record;
                bail!(
                    "node {} did not listen on port {port}\n{}",
                    node.name,
                    logs::tail_for_error(&node.log, LOG_LINES_IN_ERRORS)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_some() {
                if let Err(err) = self.stop_node(i) {
                    eprintln!("nats-harness: {err:#}");
                }
            }
        }
    }
}

/// Starts on fresh free ports when a port was taken between the pick and the start.
const PORT_ATTEMPTS: u32 = 3;

/// A port that was free a moment ago (bound to port 0, then released).
fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).context("could not find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}
