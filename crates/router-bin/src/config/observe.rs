//! `[tracing]` (OpenTelemetry spans exported with OTLP) and `[records]` (decision records on
//! a JetStream stream): both off unless configured.

use serde::Deserialize;

/// How spans travel to the OTLP endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP over gRPC (`http://collector:4317`).
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http://collector:4318`; `/v1/traces` is added
    /// when the URL has no path).
    Http,
}

/// `[tracing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// Where spans are exported; none (the default): no span is made or exported.
    pub otlp_endpoint: Option<String>,
    /// `grpc` or `http`.
    pub otlp_protocol: OtlpProtocol,
    /// Share of the traces started here that are sampled (0 to 1); a request whose
    /// `traceparent` says sampled or not is followed as its caller decided.
    pub sample_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

/// `[records]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// Share of decisions recorded (0 to 1); 0, the default, records none.
    pub sample_ratio: f64,
    /// The JetStream stream the records go to (created when missing).
    pub stream: String,
    /// How long a record is kept, in seconds.
    pub max_age_seconds: u64,
    /// Most bytes the stream keeps; the oldest records go first.
    pub max_bytes: i64,
    /// Replicas of the stream when this router creates it.
    pub replicas: usize,
    /// Most records waiting to be written; beyond, a record is dropped and counted.
    pub queue_capacity: usize,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::Grpc,
            sample_ratio: 1.0,
            service_name: "beamline-router".into(),
        }
    }
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            sample_ratio: 0.0,
            stream: "ROUTER_DECISIONS".into(),
            max_age_seconds: 7 * 24 * 3600,
            max_bytes: 256 * 1024 * 1024,
            replicas: 1,
            queue_capacity: 8192,
        }
    }
}

impl TracingConfig {
    /// The endpoint, when tracing is on (an empty string is off).
    pub fn endpoint(&self) -> Option<&str> {
        self.otlp_endpoint
            .as_deref()
            .filter(|e| !e.trim().is_empty())
    }
}

/// A ratio setting from 0 to 1, or what is wrong with it.
pub(super) fn check_ratio(name: &str, value: f64) -> anyhow::Result<()> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        anyhow::bail!("{name} is {value}: give a share from 0 to 1")
    }
}
