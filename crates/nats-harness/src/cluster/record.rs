//! What a cluster looks like on disk ([`ClusterRecord`], one [`NodeRecord`] per node), and
//! stopping the recorded nodes later, from another process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::process::{self, is_nats_server, Signal};
use crate::server::STOP_TIMEOUT;

/// One node as recorded on disk: enough to find, check and stop it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// `n1`, `n2`, …
    pub name: String,
    /// Process id (0 when not running).
    pub pid: u32,
    /// Client port.
    pub client_port: u16,
    /// HTTP monitoring port.
    pub monitor_port: u16,
    /// Route port.
    pub cluster_port: u16,
    /// Rendered configuration.
    pub config: PathBuf,
    /// Server log.
    pub log: PathBuf,
}

/// A cluster as recorded on disk by `cargo xtask cluster-start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The cluster name.
    pub cluster: String,
    /// True with mutual TLS.
    pub tls: bool,
    /// Client URLs, comma-separated, as the router's `--nats-url` takes them.
    pub urls: String,
    /// CA, router certificate and key for a TLS cluster (the operator's are beside the CA).
    pub client_tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// The nodes.
    pub nodes: Vec<NodeRecord>,
}

impl ClusterRecord {
    /// Stops every recorded node that still runs nats-server: SIGTERM, then SIGKILL after
    /// [`STOP_TIMEOUT`]. Returns the names of the nodes that were running.
    pub fn stop_all(&self) -> anyhow::Result<Vec<String>> {
        let running: Vec<&NodeRecord> = self
            .nodes
            .iter()
            .filter(|n| is_nats_server(n.pid))
            .collect();
        for node in &running {
            let _ = process::signal(node.pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for node in &running {
            while is_nats_server(node.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if is_nats_server(node.pid) {
                let _ = process::signal(node.pid, Signal::SIGKILL);
            }
        }
        for node in &running {
            let gone = Instant::now() + Duration::from_secs(5);
            while is_nats_server(node.pid) {
                if Instant::now() > gone {
                    bail!("node {} (pid {}) did not stop", node.name, node.pid);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(running.iter().map(|n| n.name.clone()).collect())
    }
}
