//! Command-line flags of the `router` binary; each can also come from the environment
//! variable named beside it, and each overrides the configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, LogFormat, OtlpProtocol, PolicySource, Responder, StickyStore};

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
    /// Where quota windows are counted: `memory` (this router alone) or `kv` (leases of the
    /// fleet's limits through `router_quota_minute` and `router_quota_calendar`, so the
    /// limits hold across every router).
    #[arg(long, env = "ROUTER_QUOTA_STORE")]
    pub quota_store: Option<StickyStore>,
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
    /// Export OpenTelemetry spans with OTLP to this endpoint (`http://host:4317` for gRPC,
    /// `http://host:4318` for HTTP); unset: no span is made.
    #[arg(long, env = "ROUTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// OTLP over `grpc` (default) or `http` (protobuf).
    #[arg(long, env = "ROUTER_OTLP_PROTOCOL")]
    pub otlp_protocol: Option<OtlpProtocol>,
    /// Share of new traces sampled (0 to 1, default 1); a caller's `traceparent` decides
    /// for its own trace.
    #[arg(long, env = "ROUTER_TRACE_SAMPLE_RATIO")]
    pub trace_sample_ratio: Option<f64>,
    /// Share of decisions written to the decision records stream (0 to 1; default 0, off).
    #[arg(long, env = "ROUTER_RECORD_SAMPLE_RATIO")]
    pub record_sample_ratio: Option<f64>,
    /// The JetStream stream of decision records (default `ROUTER_DECISIONS`).
    #[arg(long, env = "ROUTER_RECORD_STREAM", global = true)]
    pub record_stream: Option<String>,
    /// Most bytes the decision records stream keeps, when this router creates it.
    #[arg(long, env = "ROUTER_RECORD_MAX_BYTES")]
    pub record_max_bytes: Option<i64>,
    /// Once listening, write the HTTP address (`127.0.0.1:PORT`) to this file: how a
    /// supervisor learns the port chosen for `--metrics-addr 127.0.0.1:0`.
    #[arg(long, value_name = "FILE")]
    pub http_addr_file: Option<PathBuf>,
    /// Check the configuration, certificates and policies, print a summary and exit.
    #[arg(long)]
    pub check: bool,
    /// Ask a running router instead of serving (same configuration and certificates).
    #[command(subcommand)]
    pub command: Option<crate::cli::Command>,
}

impl Cli {
    /// The configuration of the service: the file (if any) with the environment and flags
    /// applied, validated.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let config = self.read_config()?;
        config.validate_connection()?;
        config.validate_service()?;
        Ok(config)
    }

    /// [`Cli::load_config`] for a client subcommand (`router decide`, …): only the
    /// connection settings are checked.
    pub fn load_client_config(&self) -> anyhow::Result<Config> {
        let config = self.read_config()?;
        config.validate_connection()?;
        Ok(config)
    }

    /// The file (the one named, else `config/router.toml` when it exists, else the
    /// defaults) with the environment and flags applied.
    fn read_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::from_file_or_default(self.config.as_deref())?;
        self.apply(&mut config);
        Ok(config)
    }

    fn apply(&self, config: &mut Config) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *slot = value.clone();
            }
        }
        set(&mut config.nats.url, &self.nats_url);
        if self.tls_ca.is_some() {
            config.nats.ca = self.tls_ca.clone();
        }
        if self.tls_cert.is_some() {
            config.nats.cert = self.tls_cert.clone();
        }
        if self.tls_key.is_some() {
            config.nats.key = self.tls_key.clone();
        }
        set(&mut config.router.subject_prefix, &self.subject_prefix);
        set(&mut config.router.queue_group, &self.queue_group);
        set(&mut config.router.policy_dir, &self.policy_dir);
        set(&mut config.router.concurrency, &self.concurrency);
        set(&mut config.router.queue_capacity, &self.queue_capacity);
        set(&mut config.router.allowed_tenants, &self.allowed_tenants);
        set(&mut config.router.dlq_enabled, &self.dlq_enabled);
        set(&mut config.router.policy_source, &self.policy_source);
        set(&mut config.router.sticky_store, &self.sticky_store);
        set(
            &mut config.router.idempotency_store,
            &self.idempotency_store,
        );
        set(&mut config.router.quota_store, &self.quota_store);
        set(&mut config.router.kv_replicas, &self.kv_replicas);
        set(&mut config.router.responder, &self.responder);
        set(&mut config.nats.name, &self.nats_name);
        set(
            &mut config.backpressure.queue_overload,
            &self.queue_overload,
        );
        set(
            &mut config.backpressure.inflight_overload,
            &self.inflight_overload,
        );
        set(
            &mut config.backpressure.latency_overload_ms,
            &self.latency_overload_ms,
        );
        set(
            &mut config.backpressure.retry_after_seconds,
            &self.retry_after_seconds,
        );
        set(&mut config.http.metrics_addr, &self.metrics_addr);
        set(&mut config.log.format, &self.log_format);
        set(&mut config.log.level, &self.log_level);
        if self.otlp_endpoint.is_some() {
            config.tracing.otlp_endpoint = self.otlp_endpoint.clone();
        }
        set(&mut config.tracing.otlp_protocol, &self.otlp_protocol);
        set(&mut config.tracing.sample_ratio, &self.trace_sample_ratio);
        set(&mut config.records.sample_ratio, &self.record_sample_ratio);
        set(&mut config.records.max_bytes, &self.record_max_bytes);
        set(&mut config.records.stream, &self.record_stream);
    }
}
