//! `cargo xtask cluster-start|cluster-status|cluster-stop`: a nats-server cluster with
//! JetStream on loopback for a router fleet.
//!
//! Files under `<artifacts>/cluster/`: `cluster.json` (pids, ports, URLs, TLS files),
//! `n<i>/nats.conf`, `n<i>/nats.log`, `n<i>/store/`. Certificates come from
//! `<artifacts>/certs` (the same CA as `cargo xtask certs`, so the router's and the policy
//! command's default TLS files work), plus a node certificate for the routes.
//! cluster-start also creates the buckets `router_policies` and `router_sticky` with
//! min(3, nodes) replicas, so that they survive the loss of a node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nats_harness::cluster::{ClusterOptions, ClusterRecord, NatsCluster};
use nats_harness::monitor;

use crate::paths::{self, ArtifactsArg};
use crate::policy_cmd;

/// First client port of `cluster-start` (monitoring +100, routes +200).
pub const DEFAULT_BASE_PORT: u16 = 4310;

/// Arguments of cluster-start.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 running and healthy (started now or already), \
1 could not start (the log tail of the failing node is printed)."
)]
pub struct StartArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub nodes: u8,
    /// Plain TCP instead of mutual TLS for clients and routes.
    #[arg(long)]
    pub no_tls: bool,
    /// Node i listens on base+i (clients), base+100+i (monitoring), base+200+i (routes).
    #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
    pub base_port: u16,
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Arguments of cluster-status and cluster-stop.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

fn record_path(artifacts: &Path) -> PathBuf {
    artifacts.join("cluster").join("cluster.json")
}

fn read_record(artifacts: &Path) -> anyhow::Result<Option<ClusterRecord>> {
    let path = record_path(artifacts);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a cluster record", path.display())),
        Err(_) => Ok(None),
    }
}

/// Starts the cluster (idempotent while the recorded one runs).
pub fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let artifacts = args.artifacts.resolve()?;
    if let Some(record) = read_record(&artifacts)? {
        let running = record
            .nodes
            .iter()
            .filter(|n| nats_harness::process::is_nats_server(n.pid))
            .count();
        if running == record.nodes.len() {
            println!("cluster already running: {}", record.urls);
            return status(RecordArgs {
                artifacts: args.artifacts,
            });
        }
        if running > 0 {
            eprintln!(
                "error: {running} of {} recorded nodes still run; `cargo xtask cluster-stop` first",
                record.nodes.len()
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let nodes = usize::from(args.nodes);
    let cluster = NatsCluster::start_with(ClusterOptions {
        nodes,
        tls: !args.no_tls,
        dir: Some(artifacts.join("cluster")),
        certs_dir: Some(paths::certs_dir(&artifacts)),
        base_port: Some(args.base_port),
        detached: true,
    });
    let cluster = match cluster {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!("error: {err:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let record = cluster.detach()?;
    let path = record_path(&artifacts);
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let replicas = nodes.min(3);
    create_buckets(&record, replicas)?;
    println!(
        "cluster {} of {nodes} nodes started ({})",
        record.cluster,
        if record.tls { "mutual TLS" } else { "plain" }
    );
    print_nodes(&record);
    println!("buckets router_policies and router_sticky: {replicas} replicas");
    println!("record   {}", paths::display(&path));
    println!("router   --nats-url {}", record.urls);
    if let Some((ca, cert, key)) = &record.client_tls {
        println!(
            "         --tls-ca {} --tls-cert {} --tls-key {}",
            paths::display(ca),
            paths::display(cert),
            paths::display(key)
        );
    }
    println!("         --policy-source kv --sticky-store kv --kv-replicas {replicas}");
    Ok(ExitCode::SUCCESS)
}

fn create_buckets(record: &ClusterRecord, replicas: usize) -> anyhow::Result<()> {
    let target = policy_cmd::Target {
        url: record.urls.clone(),
        tls: record
            .client_tls
            .as_ref()
            .map(|(ca, _, _)| policy_cmd::operator_tls(ca)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = policy_cmd::connect(&target).await?;
        let js = async_nats::jetstream::new(client);
        for config in [
            router_bin::fleet::buckets::policy_bucket(replicas),
            router_bin::fleet::buckets::sticky_bucket(replicas),
        ] {
            router_bin::fleet::buckets::open(&js, config).await?;
        }
        anyhow::Ok(())
    })
}

fn print_nodes(record: &ClusterRecord) {
    for node in &record.nodes {
        println!(
            "  {}  pid {:<7} client {}  monitor http://127.0.0.1:{}  route {}  log {}",
            node.name,
            node.pid,
            node.client_port,
            node.monitor_port,
            node.cluster_port,
            paths::display(&node.log)
        );
    }
}

/// Shows each node: process, health, routes, JetStream meta leader.
pub fn status(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let artifacts = args.artifacts.resolve()?;
    let Some(record) = read_record(&artifacts)? else {
        println!("no cluster recorded (run `cargo xtask cluster-start`)");
        return Ok(ExitCode::FAILURE);
    };
    println!("cluster {}: {}", record.cluster, record.urls);
    let timeout = Duration::from_secs(2);
    let mut healthy = 0;
    let mut running = 0;
    for node in &record.nodes {
        if !nats_harness::process::is_nats_server(node.pid) {
            println!("  {}  not running (pid {})", node.name, node.pid);
            continue;
        }
        running += 1;
        let health = monitor::healthz(node.monitor_port, timeout)
            .map_err(|e| format!("{e:#}"))
            .map(|_| "ok".to_owned());
        let routes = monitor::get_json(node.monitor_port, "/routez", timeout)
            .ok()
            .and_then(|r| r["num_routes"].as_u64());
        let leader = monitor::get_json(node.monitor_port, "/jsz", timeout)
            .ok()
            .and_then(|j| j["meta_cluster"]["leader"].as_str().map(str::to_owned));
        if health.is_ok() {
            healthy += 1;
        }
        println!(
            "  {}  pid {:<7} client {}  healthz {}  routes {}  meta leader {}",
            node.name,
            node.pid,
            node.client_port,
            health.unwrap_or_else(|e| e),
            routes.map_or("?".to_owned(), |n| n.to_string()),
            leader.unwrap_or_else(|| "none".to_owned())
        );
    }
    Ok(if healthy == record.nodes.len() {
        ExitCode::SUCCESS
    } else if running == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::from(2)
    })
}

/// Stops every recorded node.
pub fn stop(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let artifacts = args.artifacts.resolve()?;
    let Some(record) = read_record(&artifacts)? else {
        println!("no cluster recorded; nothing to stop");
        return Ok(ExitCode::SUCCESS);
    };
    let stopped = record.stop_all()?;
    let path = record_path(&artifacts);
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    println!(
        "stopped {} node(s){}; stores kept under {}",
        stopped.len(),
        if stopped.is_empty() {
            String::new()
        } else {
            format!(" ({})", stopped.join(", "))
        },
        paths::display(&artifacts.join("cluster"))
    );
    Ok(ExitCode::SUCCESS)
}
