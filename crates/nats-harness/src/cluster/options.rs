//! [`ClusterOptions`]: how many nodes, TLS or not, where their files go, which ports.

use std::path::PathBuf;

/// How to start a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Number of nodes (1 to 9).
    pub nodes: usize,
    /// Mutual TLS for clients and routes.
    pub tls: bool,
    /// Where node directories (config, store, log) go; `None`: a temporary directory that is
    /// removed with the cluster.
    pub dir: Option<PathBuf>,
    /// Where the CA, client and node certificates are kept (created if missing); `None`:
    /// `<dir>/certs`.
    pub certs_dir: Option<PathBuf>,
    /// Fixed ports: node `i` (from 0) gets client `base + i`, monitoring `base + 100 + i` and
    /// route `base + 200 + i`. `None`: free ports chosen at start.
    pub base_port: Option<u16>,
    /// Start the processes in their own process group, to outlive this process after
    /// [`NatsCluster::detach`].
    pub detached: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            nodes: 3,
            tls: true,
            dir: None,
            certs_dir: None,
            base_port: None,
            detached: false,
        }
    }
}
