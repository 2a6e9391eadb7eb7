//! Configuration: `config/router.toml`, then environment variables, then flags (the flags
//! are read by [`crate::cli::Cli`]).
//!
//! Every setting has a default, so the router also runs with no file at all. Relative paths
//! are taken from the working directory. `load.rs` reads and validates a file, [`Subjects`]
//! names the subjects of the contract under the configured prefix.

mod load;
mod observe;
mod subjects;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use router_core::Thresholds;

pub use observe::{OtlpProtocol, RecordsConfig, TracingConfig};
pub use subjects::{subject_tenant, Subjects};

/// What answers a decide request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    /// router-core validates and decides (the service).
    #[default]
    Decide,
    /// A fixed success reply without reading the request: the same process, connections,
    /// subscriptions, queue and publish path as the service, minus the decision. The
    /// benchmark's raw-NATS reference (`cargo xtask bench`).
    Echo,
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
    /// OpenTelemetry spans (off unless an endpoint is set).
    pub tracing: TracingConfig,
    /// Decision records (off unless a sample ratio is set).
    pub records: RecordsConfig,
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
    /// Where quota windows are counted (`memory`: this router alone; `kv`: leases of the
    /// fleet's limits through `router_quota_minute` and `router_quota_calendar`).
    pub quota_store: StickyStore,
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
            quota_store: StickyStore::Memory,
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
