//! `cargo xtask policy put|get|list|delete|validate`: policies in the JetStream key-value
//! bucket `router_policies`, the source of routers run with `policy_source = "kv"`.
//!
//! `put` validates the policy with the router's own rules (`router_core::Policy::from_json`)
//! before it writes; an invalid policy never reaches the bucket. The bucket rules (name,
//! key format, settings) are the router's own (`router_bin::fleet::buckets`).
//!
//! Connection: `--nats-url` (comma-separated for a cluster), else the cluster of
//! `cargo xtask cluster-start` with `--cluster`, else the server of `cargo xtask nats-start`
//! (its `nats.json`), else `nats://127.0.0.1:4222`. TLS files default to
//! `<artifacts>/certs` when the URL is `tls://`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;

use router_bin::fleet::buckets;
use router_bin::transport::nats::{self, ClientTls};

use crate::paths::{self, ArtifactsArg};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `cargo xtask policy`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 done, 1 failed (invalid policy, not found, NATS error).")]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    #[command(flatten)]
    pub connection: Connection,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Validate a policy file, then store it under `<tenant>.<policy>`.
    Put {
        /// Tenant id.
        tenant: String,
        /// Policy id.
        policy: String,
        /// Policy JSON file (`-` for standard input).
        file: PathBuf,
    },
    /// Print the stored policy.
    Get {
        /// Tenant id.
        tenant: String,
        /// Policy id.
        policy: String,
        /// An earlier revision instead of the current one.
        #[arg(long)]
        revision: Option<u64>,
    },
    /// List the stored policies with their revision and validity.
    List,
    /// Delete a policy (routers stop serving it).
    Delete {
        /// Tenant id.
        tenant: String,
        /// Policy id.
        policy: String,
    },
    /// Validate a policy file without storing it (no NATS needed).
    Validate {
        /// Tenant id.
        tenant: String,
        /// Policy id.
        policy: String,
        /// Policy JSON file (`-` for standard input).
        file: PathBuf,
    },
}

/// NATS connection options, like the router's.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// NATS URL(s), comma-separated; `tls://` for TLS.
    #[arg(long, global = true)]
    pub nats_url: Option<String>,
    /// Use the cluster of `cargo xtask cluster-start` (its `cluster/cluster.json`).
    #[arg(long, global = true, conflicts_with = "nats_url")]
    pub cluster: bool,
    /// CA certificate [default with tls://: <artifacts>/certs/ca-cert.pem].
    #[arg(long, global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate [default with tls://: <artifacts>/certs/operator-cert.pem].
    #[arg(long, global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Client key [default with tls://: <artifacts>/certs/operator-key.pem].
    #[arg(long, global = true)]
    pub tls_key: Option<PathBuf>,
    /// Replicas of the bucket if it has to be created (3 on a 3-node cluster).
    #[arg(long, global = true, default_value_t = 1)]
    pub replicas: usize,
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// A resolved connection: URL(s) and TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// URL(s), comma-separated.
    pub url: String,
    /// CA, client certificate and key.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Action::Validate {
        tenant,
        policy,
        file,
    } = &args.action
    {
        let text = read_policy(file)?;
        return Ok(match validate(tenant, policy, &text) {
            Ok(summary) => {
                println!("{tenant}.{policy}: valid ({summary})");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        });
    }
    let target = resolve(&args.connection)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(remote(args, target))
}

async fn remote(args: Args, target: Target) -> anyhow::Result<ExitCode> {
    let client = connect(&target).await?;
    let js = async_nats::jetstream::new(client.clone());
    let store = buckets::open(&js, buckets::policy_bucket(args.connection.replicas)).await?;
    let code = match args.action {
        Action::Put {
            tenant,
            policy,
            file,
        } => {
            let text = read_policy(&file)?;
            if let Err(err) = validate(&tenant, &policy, &text) {
                eprintln!("error: {err:#}");
                return Ok(ExitCode::FAILURE);
            }
            let revision = buckets::put_policy(&store, &tenant, &policy, &text).await?;
            println!("{tenant}.{policy}: stored, revision {revision}");
            ExitCode::SUCCESS
        }
        Action::Get {
            tenant,
            policy,
            revision,
        } => {
            let key = buckets::policy_key(&tenant, &policy)?;
            let entry = match revision {
                Some(revision) => store.entry_for_revision(&key, revision).await?,
                None => store.entry(&key).await?,
            };
            match entry {
                Some(entry) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
                    eprintln!("{key}: revision {}", entry.revision);
                    println!("{}", String::from_utf8_lossy(&entry.value));
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!("error: no policy {key} in {}", buckets::POLICY_BUCKET);
                    ExitCode::FAILURE
                }
            }
        }
        Action::List => {
            let mut keys: Vec<String> = store
                .keys()
                .await?
                .filter_map(|k| async move { k.ok() })
                .collect()
                .await;
            keys.sort();
            println!("{:<40} {:>8}  status", "key", "revision");
            for key in &keys {
                let Some(entry) = store.entry(key.as_str()).await? else {
                    continue;
                };
                let status = match buckets::parse_policy_key(key) {
                    Some((tenant, policy)) => {
                        match buckets::parse_policy(&entry.value, tenant, policy) {
                            Ok(_) => "valid".to_owned(),
                            Err(reason) => format!("INVALID: {reason}"),
                        }
                    }
                    None => "INVALID: key is not <tenant>.<policy>".to_owned(),
                };
                println!("{key:<40} {:>8}  {status}", entry.revision);
            }
            println!("{} policies in {}", keys.len(), buckets::POLICY_BUCKET);
            ExitCode::SUCCESS
        }
        Action::Delete { tenant, policy } => {
            let key = buckets::policy_key(&tenant, &policy)?;
            if store.get(key.as_str()).await?.is_none() {
                eprintln!("error: no policy {key} in {}", buckets::POLICY_BUCKET);
                return Ok(ExitCode::FAILURE);
            }
            store
                .delete(&key)
                .await
                .with_context(|| format!("cannot delete {key}"))?;
            println!("{key}: deleted");
            ExitCode::SUCCESS
        }
        Action::Validate { .. } => ExitCode::SUCCESS,
    };
    client.flush().await.context("cannot flush to NATS")?;
    Ok(code)
}

/// Checks the key and the policy; a short summary when valid.
fn validate(tenant: &str, policy: &str, text: &str) -> anyhow::Result<String> {
    buckets::policy_key(tenant, policy)?;
    let parsed = buckets::parse_policy(text.as_bytes(), tenant, policy)
        .map_err(|reason| anyhow::anyhow!("policy {tenant}.{policy} is invalid: {reason}"))?;
    let providers: Vec<String> = parsed
        .providers
        .iter()
        .map(|p| match p.priority {
            0 => p.name.clone(),
            tier => format!("{} (tier {tier})", p.name),
        })
        .collect();
    let strategy = match parsed.strategy {
        router_core::policy::Strategy::Weighted => "weighted",
        router_core::policy::Strategy::Adaptive => "adaptive",
        router_core::policy::Strategy::Headroom => "headroom",
    };
    Ok(format!(
        "strategy {strategy}, providers {}, sticky {}",
        providers.join(", "),
        if parsed.sticky.is_some() { "on" } else { "off" }
    ))
}

fn read_policy(file: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .take(buckets::MAX_POLICY_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .context("cannot read the policy from standard input")?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    if text.len() > buckets::MAX_POLICY_BYTES {
        bail!(
            "the policy is over the limit of {} bytes",
            buckets::MAX_POLICY_BYTES
        );
    }
    Ok(text)
}

/// Where to connect, from the options and the records in the artifacts folder.
pub fn resolve(connection: &Connection) -> anyhow::Result<Target> {
    let artifacts = connection.artifacts.resolve()?;
    let (url, recorded_tls) = if let Some(url) = &connection.nats_url {
        (url.clone(), None)
    } else if connection.cluster {
        let path = artifacts.join("cluster").join("cluster.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no cluster record {}; run `cargo xtask cluster-start`",
                paths::display(&path)
            )
        })?;
        let record: nats_harness::cluster::ClusterRecord = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a cluster record", path.display()))?;
        (record.urls, record.client_tls)
    } else {
        let path = artifacts.join("nats.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let record: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                let url = record["url"]
                    .as_str()
                    .unwrap_or("nats://127.0.0.1:4222")
                    .to_owned();
                let files = &record["client_tls"];
                let tls = match (
                    files["ca_cert"].as_str(),
                    files["client_cert"].as_str(),
                    files["client_key"].as_str(),
                ) {
                    (Some(ca), Some(cert), Some(key)) => Some((ca.into(), cert.into(), key.into())),
                    _ => None,
                };
                (url, tls)
            }
            Err(_) => ("nats://127.0.0.1:4222".to_owned(), None),
        }
    };
    let certs = paths::certs_dir(&artifacts);
    let uses_tls = url.contains("tls://") || connection.tls_ca.is_some();
    let tls = if uses_tls {
        // Policies are the operator's: its certificate beside the recorded CA.
        let ca = recorded_tls.map_or_else(|| certs.join(certs::CA_CERT), |(ca, _, _)| ca);
        let (ca, cert, key) = operator_tls(&ca);
        let pick = |flag: &Option<PathBuf>, default: PathBuf| flag.clone().unwrap_or(default);
        Some((
            pick(&connection.tls_ca, ca),
            pick(&connection.tls_cert, cert),
            pick(&connection.tls_key, key),
        ))
    } else {
        None
    };
    if let Some((ca, cert, key)) = &tls {
        for file in [ca, cert, key] {
            if !file.is_file() {
                bail!(
                    "TLS file {} does not exist (run `cargo xtask certs` or pass --tls-ca/--tls-cert/--tls-key)",
                    file.display()
                );
            }
        }
    }
    Ok(Target { url, tls })
}

/// The CA `ca` with the operator's certificate and key from the same folder (as
/// `cargo xtask certs` writes them).
pub fn operator_tls(ca: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let set = certs::BundlePaths::new(ca.parent().unwrap_or(Path::new(".")));
    (ca.to_path_buf(), set.operator_cert, set.operator_key)
}

/// Connects to `target` (any of its URLs), with TLS set up as the router does it.
pub async fn connect(target: &Target) -> anyhow::Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::new()
        .name("beamline-xtask")
        .connection_timeout(CONNECT_TIMEOUT);
    let tls = target.tls.as_ref().map(|(ca, cert, key)| ClientTls {
        ca: Some(ca.clone()),
        client: Some((cert.clone(), key.clone())),
    });
    let servers = nats::server_addrs(&target.url)?;
    nats::tls_options(options, tls.as_ref())
        .connect(servers)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", target.url))
}
