//! Prometheus metrics: handles registered once at start, so the request path only bumps
//! atomics.

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use router_core::{ErrorCode, Reason};

/// Decide latency histogram buckets, in seconds (10 µs … 5 s).
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.5, 1.0, 5.0,
];

/// Every metric the router exports.
pub struct Metrics {
    handle: PrometheusHandle,
    decisions: Vec<Counter>,
    errors: Vec<Counter>,
    /// Idempotent replays.
    pub replayed: Counter,
    /// End-to-end decide latency (receipt to reply handed to the client).
    pub decide_latency: Histogram,
    /// Messages published to the DLQ subject.
    pub dlq_published: Counter,
    /// 1 while backpressure is active.
    pub backpressure_active: Gauge,
    /// Transitions into active.
    pub backpressure_active_total: Counter,
    /// Received, not yet being processed.
    pub pending: Gauge,
    /// Being processed.
    pub inflight: Gauge,
    /// 1 while connected to NATS.
    pub nats_connected: Gauge,
    /// Connections (re-)established.
    pub nats_connects: Counter,
    /// Resident set size.
    pub rss_bytes: Gauge,
    /// Peak resident set size.
    pub peak_rss_bytes: Gauge,
    /// Days until the client certificate expires.
    pub client_cert_days_left: Gauge,
    /// Policies served.
    pub policies_loaded: Gauge,
    /// Successful policy reloads.
    pub reloads_ok: Counter,
    /// Reloads that reported at least one bad file or failed.
    pub reloads_failed: Counter,
    /// Feedback messages applied.
    pub feedback_applied: Counter,
    /// Feedback messages refused.
    pub feedback_rejected: Counter,
    /// Circuit breakers not closed.
    pub breakers_not_closed: Gauge,
}

impl Metrics {
    /// Installs the global recorder and registers every metric. Call once.
    pub fn install(decide_subject: &str) -> anyhow::Result<Metrics> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("router_decide_latency_seconds".into()),
                &LATENCY_BUCKETS,
            )?
            .install_recorder()?;
        describe();
        let subject = decide_subject.to_owned();
        Ok(Metrics {
            handle,
            decisions: Reason::ALL
                .iter()
                .map(|r| metrics::counter!("router_decisions_total", "reason" => r.as_str()))
                .collect(),
            errors: ErrorCode::ALL
                .iter()
                .map(|c| metrics::counter!("router_errors_total", "code" => c.as_str()))
                .collect(),
            replayed: metrics::counter!("router_decisions_replayed_total"),
            decide_latency: metrics::histogram!("router_decide_latency_seconds"),
            dlq_published: metrics::counter!("router_dlq_published_total"),
            backpressure_active: metrics::gauge!("router_intake_backpressure_active", "subject" => subject.clone()),
            backpressure_active_total: metrics::counter!("router_backpressure_active_total"),
            pending: metrics::gauge!("router_pending_messages", "subject" => subject.clone()),
            inflight: metrics::gauge!("router_inflight_messages", "subject" => subject),
            nats_connected: metrics::gauge!("router_nats_connected"),
            nats_connects: metrics::counter!("router_nats_connects_total"),
            rss_bytes: metrics::gauge!("router_process_rss_bytes"),
            peak_rss_bytes: metrics::gauge!("router_process_peak_rss_bytes"),
            client_cert_days_left: metrics::gauge!("router_client_cert_days_left"),
            policies_loaded: metrics::gauge!("router_policies_loaded"),
            reloads_ok: metrics::counter!("router_policy_reloads_total", "result" => "ok"),
            reloads_failed: metrics::counter!("router_policy_reloads_total", "result" => "error"),
            feedback_applied: metrics::counter!("router_feedback_total", "result" => "applied"),
            feedback_rejected: metrics::counter!("router_feedback_total", "result" => "rejected"),
            breakers_not_closed: metrics::gauge!("router_circuit_breakers_not_closed"),
        })
    }

    /// Counts one decision.
    pub fn decision(&self, reason: Reason) {
        self.decisions[reason as usize].increment(1);
    }

    /// Counts one error reply.
    pub fn error(&self, code: ErrorCode) {
        self.errors[code as usize].increment(1);
    }

    /// Prometheus text of every metric, with process memory refreshed first.
    pub fn render(&self) -> String {
        if let Some((rss, peak)) = process_memory() {
            self.rss_bytes.set(rss as f64);
            self.peak_rss_bytes.set(peak as f64);
        }
        self.handle.run_upkeep();
        self.handle.render()
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("router_decisions_total", "Decisions by reason");
    describe_counter!("router_errors_total", "Error replies by error code");
    describe_histogram!(
        "router_decide_latency_seconds",
        Unit::Seconds,
        "Decide latency from receipt to reply"
    );
    describe_gauge!(
        "router_intake_backpressure_active",
        "1 while backpressure is active"
    );
    describe_counter!(
        "router_backpressure_active_total",
        "Transitions of backpressure into active"
    );
    describe_gauge!("router_nats_connected", "1 while connected to NATS");
    describe_gauge!("router_process_rss_bytes", Unit::Bytes, "Resident set size");
    describe_gauge!(
        "router_process_peak_rss_bytes",
        Unit::Bytes,
        "Peak resident set size"
    );
    describe_gauge!(
        "router_client_cert_days_left",
        "Days until the NATS client certificate expires"
    );
}

/// (RSS, peak RSS) in bytes from /proc/self/status, on Linux.
pub fn process_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
