//! Configuration: `config/router.toml`, then environment variables, then flags.
//!
//! Every setting has a default, so the router also runs with no file at all. Relative paths
//! are taken from the working directory.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use serde::Deserialize;

use router_core::Thresholds;

pub use crate::decide::Responder;

/// Command-line flags; each can also come from the environment variable named beside it.
#[derive(Debug, Parser)]
#[command(
    name = "router",
    version,
    about = "Beamline Router: routing decisions over NATS"
)]
pub struct Cli {
    /// TOML configuration file (default: config/router.toml when it exists).
    #[arg(long, env = "ROUTER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// NATS URL(s), comma-separated; `tls://` for TLS.
    #[arg(long, env = "ROUTER_NATS_URL", global = true)]
    pub nats_url: Option<String>,
    /// CA certificate (PEM) that signed the server certificate.
    #[arg(long, env = "ROUTER_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to nats-server.
    #[arg(long, env = "ROUTER_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[arg(long, env = "ROUTER_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Subject prefix (`beamline.router`); `v1` is fixed.
    #[arg(long, env = "ROUTER_SUBJECT_PREFIX", global = true)]
    pub subject_prefix: Option<String>,
    /// Queue group of the decide subscription.
    #[arg(long, env = "ROUTER_QUEUE_GROUP")]
    pub queue_group: Option<String>,
    /// Directory of `<tenant>/<policy>.json` files.
    #[arg(long, env = "ROUTER_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Address of the HTTP listener for /metrics, /healthz and /readyz.
    #[arg(long, env = "ROUTER_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Decide workers: the most decide requests processed at once (default 1).
    #[arg(long, env = "ROUTER_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Most decide requests waiting in the router; beyond, `overloaded` at once (default 8192).
    #[arg(long, env = "ROUTER_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,
    /// Tenants allowed, comma-separated (empty: every tenant).
    #[arg(long, env = "ROUTER_ALLOWED_TENANTS", value_delimiter = ',')]
    pub allowed_tenants: Option<Vec<String>>,
    /// Publish intake rejections to the DLQ subject.
    #[arg(long, env = "ROUTER_DLQ_ENABLED")]
    pub dlq_enabled: Option<bool>,
    /// Backpressure: pending messages over which the queue signal is on.
    #[arg(long, env = "ROUTER_QUEUE_OVERLOAD")]
    pub queue_overload: Option<u64>,
    /// Backpressure: in-flight messages over which the in-flight signal is on.
    #[arg(long, env = "ROUTER_INFLIGHT_OVERLOAD")]
    pub inflight_overload: Option<u64>,
    /// Backpressure: p95 latency (ms) over which the latency signal is on.
    #[arg(long, env = "ROUTER_LATENCY_OVERLOAD_MS")]
    pub latency_overload_ms: Option<f64>,
    /// Seconds overloaded callers are told to wait.
    #[arg(long, env = "ROUTER_RETRY_AFTER_SECONDS")]
    pub retry_after_seconds: Option<u64>,
    /// `text` or `json`.
    #[arg(long, env = "ROUTER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `router=debug`.
    #[arg(long, env = "ROUTER_LOG")]
    pub log_level: Option<String>,
    /// Where policies come from: `dir` (the policy directory) or `kv` (the JetStream bucket
    /// `router_policies`, watched for changes).
    #[arg(long, env = "ROUTER_POLICY_SOURCE")]
    pub policy_source: Option<PolicySource>,
    /// Where sticky sessions live: `memory` (this router only) or `kv` (shared with every
    /// router through the JetStream bucket `router_sticky`, cached locally).
    #[arg(long, env = "ROUTER_STICKY_STORE")]
    pub sticky_store: Option<StickyStore>,
    /// Where first decisions by idempotency key live: `memory` (this router only) or `kv`
    /// (shared through the JetStream bucket `router_idempotency`, so a retry on another
    /// router replays the first decision).
    #[arg(long, env = "ROUTER_IDEMPOTENCY_STORE")]
    pub idempotency_store: Option<StickyStore>,
    /// Replicas of the buckets when this router has to create them (3 on a 3-node cluster).
    #[arg(long, env = "ROUTER_KV_REPLICAS")]
    pub kv_replicas: Option<usize>,
    /// Connection name prefix shown by nats-server (`<name>-control`, `<name>-decide`).
    #[arg(long, env = "ROUTER_NATS_NAME")]
    pub nats_name: Option<String>,
    /// What answers decide requests: `decide` (the router) or `echo` (a fixed reply without
    /// a decision, the benchmark's raw-NATS reference).
    #[arg(long, env = "ROUTER_RESPONDER")]
    pub responder: Option<Responder>,
    /// Once listening, write the HTTP address (`127.0.0.1:PORT`) to this file: how a
    /// supervisor learns the port chosen for `--metrics-addr 127.0.0.1:0`.
    #[arg(long, value_name = "FILE")]
    pub http_addr_file: Option<PathBuf>,
    /// Check the configuration, certificates and policies, print a summary and exit.
    #[arg(long)]
    pub check: bool,
    /// Ask a running router instead of serving (same configuration and certificates).
    #[command(subcommand)]
    pub command: Option<crate::ops::Command>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where policies come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PolicySource {
    /// `<policy_dir>/<tenant>/<policy>.json`, reloaded on SIGHUP.
    #[default]
    Dir,
    /// The JetStream key-value bucket `router_policies`, watched.
    Kv,
}

/// Where a fleet's shared state lives: sticky sessions (`sticky_store`) and first decisions
/// by idempotency key (`idempotency_store`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StickyStore {
    /// In this router's memory only.
    #[default]
    Memory,
    /// Shared through a JetStream key-value bucket (`router_sticky`, `router_idempotency`),
    /// cached in memory.
    Kv,
}

/// The router's effective configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// NATS connection.
    pub nats: NatsConfig,
    /// Request handling.
    pub router: RouterConfig,
    /// Backpressure thresholds.
    pub backpressure: BackpressureConfig,
    /// HTTP listener.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
}

/// `[nats]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// URL(s), comma-separated.
    pub url: String,
    /// CA certificate file.
    pub ca: Option<PathBuf>,
    /// Client certificate file.
    pub cert: Option<PathBuf>,
    /// Client key file.
    pub key: Option<PathBuf>,
    /// Connection name shown by nats-server.
    pub name: String,
}

/// `[router]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Subject prefix before `.v1`.
    pub subject_prefix: String,
    /// Queue group of the decide subscription.
    pub queue_group: String,
    /// Policy directory.
    pub policy_dir: PathBuf,
    /// Decide workers, each handling its messages one at a time: the most decide requests
    /// processed at once.
    pub concurrency: usize,
    /// Most decide requests waiting in the router (read, not yet taken by a worker); a
    /// request beyond is answered `overloaded` at once.
    pub queue_capacity: usize,
    /// Tenants allowed (empty: all).
    pub allowed_tenants: Vec<String>,
    /// Publish intake rejections to the DLQ subject.
    pub dlq_enabled: bool,
    /// Most sticky sessions held.
    pub sticky_capacity: usize,
    /// Most idempotency keys held.
    pub idempotency_capacity: usize,
    /// How long a first decision is replayed, in seconds.
    pub idempotency_ttl_seconds: u64,
    /// Longest time to finish in-flight requests at shutdown, in seconds.
    pub drain_timeout_seconds: u64,
    /// Where policies come from (`dir` or `kv`).
    pub policy_source: PolicySource,
    /// Where sticky sessions live (`memory` or `kv`).
    pub sticky_store: StickyStore,
    /// Where first decisions by idempotency key live (`memory` or `kv`).
    pub idempotency_store: StickyStore,
    /// Replicas of a bucket this router creates (when it does not exist yet).
    pub kv_replicas: usize,
    /// What answers decide requests (`decide`, or `echo` for the benchmark's reference).
    pub responder: Responder,
}

/// `[backpressure]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackpressureConfig {
    /// Pending messages threshold.
    pub queue_overload: u64,
    /// In-flight messages threshold.
    pub inflight_overload: u64,
    /// p95 latency threshold, ms.
    pub latency_overload_ms: f64,
    /// Seconds overloaded callers are told to wait.
    pub retry_after_seconds: u64,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address.
    pub metrics_addr: SocketAddr,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// Filter.
    pub level: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            ca: None,
            cert: None,
            key: None,
            name: "beamline-router".into(),
        }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            subject_prefix: "beamline.router".into(),
            queue_group: "router-decide-group".into(),
            policy_dir: PathBuf::from("config/policies"),
            concurrency: 1,
            queue_capacity: 8192,
            allowed_tenants: Vec::new(),
            dlq_enabled: true,
            sticky_capacity: 100_000,
            idempotency_capacity: 100_000,
            idempotency_ttl_seconds: 600,
            drain_timeout_seconds: 10,
            policy_source: PolicySource::Dir,
            sticky_store: StickyStore::Memory,
            idempotency_store: StickyStore::Memory,
            kv_replicas: 1,
            responder: Responder::Decide,
        }
    }
}

impl Default for BackpressureConfig {
    fn default() -> Self {
        let t = Thresholds::default();
        BackpressureConfig {
            queue_overload: t.queue_overload,
            inflight_overload: t.inflight_overload,
            latency_overload_ms: t.latency_overload_ms,
            retry_after_seconds: 30,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9001)),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info,async_nats=warn".into(),
        }
    }
}

/// The file read when `--config` is not given, if it exists.
const DEFAULT_CONFIG_FILE: &str = "config/router.toml";

impl Config {
    /// Builds the configuration from the file (if any) and the flags, then validates it.
    pub fn load(cli: &Cli) -> anyhow::Result<Config> {
        let config = Config::read(cli)?;
        config.validate_connection()?;
        config.validate_service()?;
        Ok(config)
    }

    /// [`Config::load`] for a client subcommand (`router decide`, …): only the connection
    /// settings are checked.
    pub fn load_client(cli: &Cli) -> anyhow::Result<Config> {
        let config = Config::read(cli)?;
        config.validate_connection()?;
        Ok(config)
    }

    /// The file (the one named, else `config/router.toml` when it exists, else the
    /// defaults) with the environment and flags applied.
    fn read(cli: &Cli) -> anyhow::Result<Config> {
        let mut config = match &cli.config {
            Some(path) => Config::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Config::from_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Config::default(),
        };
        config.apply(cli);
        Ok(config)
    }

    /// The defaults, connected to `url` (with the CA, client certificate and key when `tls`
    /// is given), serving the policies in `policy_dir`, with HTTP on a free loopback port:
    /// a router to embed or to start in a test.
    pub fn for_nats(url: &str, tls: Option<(&Path, &Path, &Path)>, policy_dir: &Path) -> Config {
        let mut config = Config::default();
        config.nats.url = url.to_owned();
        if let Some((ca, cert, key)) = tls {
            config.nats.ca = Some(ca.to_path_buf());
            config.nats.cert = Some(cert.to_path_buf());
            config.nats.key = Some(key.to_path_buf());
        }
        config.router.policy_dir = policy_dir.to_path_buf();
        config.http.metrics_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|err| {
            anyhow::anyhow!(
                "config file {} is invalid: {}",
                path.display(),
                err.message()
            )
        })
    }

    fn apply(&mut self, cli: &Cli) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *slot = value.clone();
            }
        }
        set(&mut self.nats.url, &cli.nats_url);
        if cli.tls_ca.is_some() {
            self.nats.ca = cli.tls_ca.clone();
        }
        if cli.tls_cert.is_some() {
            self.nats.cert = cli.tls_cert.clone();
        }
        if cli.tls_key.is_some() {
            self.nats.key = cli.tls_key.clone();
        }
        set(&mut self.router.subject_prefix, &cli.subject_prefix);
        set(&mut self.router.queue_group, &cli.queue_group);
        set(&mut self.router.policy_dir, &cli.policy_dir);
        set(&mut self.router.concurrency, &cli.concurrency);
        set(&mut self.router.queue_capacity, &cli.queue_capacity);
        set(&mut self.router.allowed_tenants, &cli.allowed_tenants);
        set(&mut self.router.dlq_enabled, &cli.dlq_enabled);
        set(&mut self.router.policy_source, &cli.policy_source);
        set(&mut self.router.sticky_store, &cli.sticky_store);
        set(&mut self.router.idempotency_store, &cli.idempotency_store);
        set(&mut self.router.kv_replicas, &cli.kv_replicas);
        set(&mut self.router.responder, &cli.responder);
        set(&mut self.nats.name, &cli.nats_name);
        set(&mut self.backpressure.queue_overload, &cli.queue_overload);
        set(
            &mut self.backpressure.inflight_overload,
            &cli.inflight_overload,
        );
        set(
            &mut self.backpressure.latency_overload_ms,
            &cli.latency_overload_ms,
        );
        set(
            &mut self.backpressure.retry_after_seconds,
            &cli.retry_after_seconds,
        );
        set(&mut self.http.metrics_addr, &cli.metrics_addr);
        set(&mut self.log.format, &cli.log_format);
        set(&mut self.log.level, &cli.log_level);
    }

    fn validate_connection(&self) -> anyhow::Result<()> {
        if self.nats.url.trim().is_empty() {
            bail!("nats.url is empty; give the NATS URL, e.g. tls://127.0.0.1:4222");
        }
        let tls_files = [&self.nats.ca, &self.nats.cert, &self.nats.key];
        if self.nats.cert.is_some() != self.nats.key.is_some() {
            bail!("nats.cert and nats.key go together; give both or neither");
        }
        for path in tls_files.into_iter().flatten() {
            if !path.is_file() {
                bail!("TLS file {} does not exist", path.display());
            }
        }
        if self.nats.name.trim().is_empty() {
            bail!("nats.name is empty");
        }
        let prefix = &self.router.subject_prefix;
        if prefix.is_empty()
            || prefix.split('.').any(str::is_empty)
            || prefix.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
        {
            bail!("router.subject_prefix {prefix:?} is not a valid subject prefix");
        }
        Ok(())
    }

    fn validate_service(&self) -> anyhow::Result<()> {
        if !(1..=5).contains(&self.router.kv_replicas) {
            bail!("router.kv_replicas must be from 1 to 5");
        }
        if self.router.policy_source == PolicySource::Dir && !self.router.policy_dir.is_dir() {
            bail!(
                "policy directory {} does not exist",
                self.router.policy_dir.display()
            );
        }
        if self.router.queue_group.trim().is_empty() {
            bail!("router.queue_group is empty");
        }
        if !(1..=1024).contains(&self.router.concurrency) {
            bail!("router.concurrency must be from 1 to 1024 decide workers");
        }
        if !(1..=1_048_576).contains(&self.router.queue_capacity) {
            bail!("router.queue_capacity must be from 1 to 1048576 requests");
        }
        if let Some(bad) = self
            .router
            .allowed_tenants
            .iter()
            .find(|t| !router_core::ids::is_tenant_id(t))
        {
            bail!("router.allowed_tenants: {bad:?} is not a valid tenant id");
        }
        let latency = self.backpressure.latency_overload_ms;
        if latency.is_nan() || latency < 0.0 {
            bail!("backpressure.latency_overload_ms must be a number >= 0");
        }
        Ok(())
    }

    /// True when the connection uses TLS (a `tls://` URL or any TLS file).
    pub fn uses_tls(&self) -> bool {
        self.nats.url.contains("tls://") || self.nats.ca.is_some() || self.nats.cert.is_some()
    }

    /// The tenant allow-list, `None` when every tenant is served.
    pub fn allowed_tenants(&self) -> Option<HashSet<String>> {
        (!self.router.allowed_tenants.is_empty())
            .then(|| self.router.allowed_tenants.iter().cloned().collect())
    }

    /// Backpressure thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            queue_overload: self.backpressure.queue_overload,
            inflight_overload: self.backpressure.inflight_overload,
            latency_overload_ms: self.backpressure.latency_overload_ms,
        }
    }
}

/// The subjects of CONTRACT §1 under a prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// `<prefix>.v1.decide`
    pub decide: String,
    /// `<prefix>.v1.decide.reply`
    pub decide_reply: String,
    /// `<prefix>.v1.decide.dlq`
    pub dlq: String,
    /// `<prefix>.v1.status.backpressure`
    pub backpressure_status: String,
    /// `<prefix>.v1.feedback`
    pub feedback: String,
    /// `<prefix>.v1.decide.tenant.*`: a tenant's caller decides on its own token.
    pub decide_scoped: String,
    /// `<prefix>.v1.feedback.tenant.*`: a tenant's caller reports on its own token.
    pub feedback_scoped: String,
}

impl Subjects {
    /// Subjects under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Subjects {
            decide: format!("{prefix}.v1.decide"),
            decide_reply: format!("{prefix}.v1.decide.reply"),
            dlq: format!("{prefix}.v1.decide.dlq"),
            backpressure_status: format!("{prefix}.v1.status.backpressure"),
            feedback: format!("{prefix}.v1.feedback"),
            decide_scoped: format!("{prefix}.v1.decide.tenant.*"),
            feedback_scoped: format!("{prefix}.v1.feedback.tenant.*"),
        }
    }

    /// The decide subject of `tenant`'s caller: `<prefix>.v1.decide.tenant.<tenant>`.
    pub fn decide_for(&self, tenant: &str) -> String {
        format!("{}.{tenant}", self.decide_scoped.trim_end_matches(".*"))
    }

    /// The feedback subject of `tenant`'s caller: `<prefix>.v1.feedback.tenant.<tenant>`.
    pub fn feedback_for(&self, tenant: &str) -> String {
        format!("{}.{tenant}", self.feedback_scoped.trim_end_matches(".*"))
    }
}

/// The tenant a message's subject names when it matched `scoped` (a `….tenant.*` subject);
/// `None` for the unscoped subject.
pub fn subject_tenant<'a>(scoped: &str, subject: &'a str) -> Option<&'a str> {
    subject.strip_prefix(scoped.strip_suffix('*')?)
}
