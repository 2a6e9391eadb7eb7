//! The router fleet the cluster suites (`cluster`, `cluster_faults`) run on: three nats-server
//! nodes with JetStream and mutual TLS, the base policy in the `router_policies` bucket, and
//! three routers with `policy_source = "kv"` and `sticky_store = "kv"`, in this process or
//! as `router` processes. `client.rs` holds the test clients and requests, `load.rs` the
//! steady load driven through the fleet while a fault happens.

pub mod client;
pub mod load;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nats_harness::cluster::NatsCluster;
use nats_harness::{RouterOptions, RouterProcess};

use crate::support;
use client::{connect, policy_store, put_first_policy};

/// Routers in the fleet.
pub const ROUTERS: usize = 3;
/// Nodes of the cluster.
pub const NODES: usize = 3;
/// How long a router may take to become ready on a loaded machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// First try of a request under load; a retry gets `RETRY_TIMEOUT`.
pub const FIRST_TIMEOUT: Duration = Duration::from_secs(2);
/// A retry of a request that got no answer in time.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(6);

/// One cluster at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The policy every test starts from: three weighted providers, sticky on `user_id`.
pub const BASE_POLICY: &str = r#"{"providers": [{"name": "alpha", "weight": 50},
    {"name": "beta", "weight": 30}, {"name": "gamma", "weight": 20}],
    "sticky": {"enabled": true, "session_key": "user_id", "ttl": "10m"}}"#;

/// A router of the fleet: in this process, or a `router` process of its own for the test
/// that kills one.
pub enum Member {
    InProcess(Box<support::TestRouter>),
    Process(RouterProcess),
}

/// How the fleet's routers run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InProcess,
    Processes,
}

/// The flags every fleet router runs with: policies, sticky sessions and quota windows in
/// the buckets.
fn fleet_flags(name: &str) -> Vec<String> {
    [
        "--policy-source",
        "kv",
        "--sticky-store",
        "kv",
        "--quota-store",
        "kv",
        "--kv-replicas",
        "3",
        "--concurrency",
        "2",
        "--nats-name",
        name,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

impl Member {
    pub async fn start(
        cluster: &NatsCluster,
        name: &str,
        kind: Kind,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let tls = cluster.tls().context("the cluster has TLS")?;
        match kind {
            Kind::InProcess => {
                let mut flags = vec!["router".to_owned()];
                flags.extend(support::connection_flags(&cluster.client_urls(), Some(tls)));
                flags.extend(fleet_flags(name));
                let config = router_bin::Cli::try_parse_from(flags)?.load_config()?;
                let router = support::start_config(config).await?;
                router.wait_ready(READY_TIMEOUT).await?;
                Ok(Member::InProcess(Box::new(router)))
            }
            Kind::Processes => {
                let options = RouterOptions {
                    binary: PathBuf::from(env!("CARGO_BIN_EXE_router")),
                    policy_dir: dir.to_path_buf(),
                    log: dir.join(format!("{name}.log")),
                    extra_args: fleet_flags(name),
                };
                let router = tokio::task::block_in_place(|| {
                    let router =
                        RouterProcess::spawn_at(&cluster.client_urls(), Some(tls), &options)?;
                    router.wait_ready(READY_TIMEOUT)?;
                    anyhow::Ok(router)
                })?;
                Ok(Member::Process(router))
            }
        }
    }

    pub fn metrics_text(&self) -> String {
        match self {
            Member::InProcess(router) => router.running().metrics_text(),
            Member::Process(router) => {
                tokio::task::block_in_place(|| router.get("/metrics").map(|(_, body)| body))
                    .unwrap_or_default()
            }
        }
    }

    /// The sum of every series of `name` whose labels contain `labels` (all when empty).
    pub fn metric_sum(&self, name: &str, labels: &str) -> f64 {
        self.metrics_text()
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']) && rest.contains(labels))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn decisions(&self) -> f64 {
        self.metric_sum("router_decisions_total", "")
    }

    /// SIGKILL (a process only).
    pub fn kill(&mut self) {
        if let Member::Process(router) = self {
            tokio::task::block_in_place(|| router.stop(Duration::ZERO));
        }
    }
}

/// Three nodes, the base policy in the bucket, three ready routers.
pub struct Fleet {
    // Fields drop in order: the routers stop before the cluster.
    pub routers: Vec<Member>,
    pub cluster: NatsCluster,
    _logs: tempfile::TempDir,
}

impl Fleet {
    pub async fn start(kind: Kind) -> anyhow::Result<Fleet> {
        let cluster = tokio::task::block_in_place(|| NatsCluster::start(NODES, true))?;
        let kv = policy_store(&connect(&cluster, None).await?).await?;
        put_first_policy(&kv, "acme", "default", BASE_POLICY).await?;
        let logs = tempfile::Builder::new().prefix("router-fleet-").tempdir()?;
        let mut routers = Vec::with_capacity(ROUTERS);
        for i in 0..ROUTERS {
            routers.push(Member::start(&cluster, &format!("router-{i}"), kind, logs.path()).await?);
        }
        Ok(Fleet {
            routers,
            cluster,
            _logs: logs,
        })
    }

    pub fn decisions(&self) -> Vec<f64> {
        self.routers.iter().map(Member::decisions).collect()
    }
}

/// Polls `check` on every router until all pass or `timeout` ends.
pub async fn wait_all(
    routers: &[Member],
    timeout: Duration,
    check: impl Fn(&Member) -> bool,
) -> bool {
    support::wait_until(timeout, || routers.iter().all(&check)).await
}
