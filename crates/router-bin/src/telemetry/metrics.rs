//! Prometheus metrics: one registry per router (no global recorder, so several routers can
//! run in one process), with handles registered once at start so that the request path only
//! bumps atomics.

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use router_core::{ErrorCode, Reason};

/// Decide latency histogram buckets, in seconds (10 µs … 5 s).
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.5, 1.0, 5.0,
];

/// The metric names whose values are latencies, bucketed by [`LATENCY_BUCKETS`].
const LATENCY_HISTOGRAMS: [&str; 2] = [
    "router_decide_latency_seconds",
    "router_decide_service_seconds",
];

/// How often the supervisor folds histogram samples into buckets ([`Registry::run_upkeep`]).
pub const UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// One router's metric registry: registers handles and renders the Prometheus text.
pub struct Registry {
    recorder: PrometheusRecorder,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> anyhow::Result<Self> {
        let mut builder = PrometheusBuilder::new();
        for name in LATENCY_HISTOGRAMS {
            builder =
                builder.set_buckets_for_metric(Matcher::Full(name.into()), &LATENCY_BUCKETS)?;
        }
        Ok(Registry {
            recorder: builder.build_recorder(),
        })
    }

    /// A counter `name{labels}`.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder
            .register_counter(&key(name, labels), &metadata())
    }

    /// A gauge `name{labels}`.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder
            .register_gauge(&key(name, labels), &metadata())
    }

    /// A histogram `name{labels}`.
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder
            .register_histogram(&key(name, labels), &metadata())
    }

    /// The `# HELP` text (and unit) of a counter.
    pub fn describe_counter(&self, name: &'static str, unit: Option<Unit>, help: &'static str) {
        self.recorder
            .describe_counter(KeyName::from(name), unit, help.into());
    }

    /// The `# HELP` text (and unit) of a gauge.
    pub fn describe_gauge(&self, name: &'static str, unit: Option<Unit>, help: &'static str) {
        self.recorder
            .describe_gauge(KeyName::from(name), unit, help.into());
    }

    /// The `# HELP` text (and unit) of a histogram.
    pub fn describe_histogram(&self, name: &'static str, unit: Option<Unit>, help: &'static str) {
        self.recorder
            .describe_histogram(KeyName::from(name), unit, help.into());
    }

    /// Folds the histogram samples recorded since the last call into their buckets. The
    /// exporter keeps every sample until then, so it must run periodically whether or not
    /// anyone scrapes `/metrics` (the supervisor does, every [`UPKEEP_PERIOD`]); without it a
    /// router under load grows by the samples of its two per-request histograms, 16 bytes a
    /// request.
    pub fn run_upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// The Prometheus text of every metric.
    pub fn render(&self) -> String {
        let handle = self.recorder.handle();
        handle.run_upkeep();
        handle.render()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect();
    Key::from_parts(name, labels)
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, None)
}

/// Every metric of the request path and the service.
pub struct Metrics {
    /// The registry the handles belong to; other tasks register their own metrics in it.
    pub registry: Registry,
    decisions: Vec<Counter>,
    errors: Vec<Counter>,
    /// Idempotent replays.
    pub replayed: Counter,
    /// Decide latency from arrival (read off the connection) to the reply handed to the
    /// client, queueing included; decided requests only (not `overloaded`).
    pub decide_latency: Histogram,
    /// Decide service time: from a worker taking the request to its reply.
    pub decide_service: Histogram,
    /// Decide requests the client library dropped as a slow consumer.
    pub dropped_slow_consumer: Counter,
    /// Messages published to the DLQ subject.
    pub dlq_published: Counter,
    /// 1 while backpressure is active.
    pub backpressure_active: Gauge,
    /// Transitions into active.
    pub backpressure_active_total: Counter,
    /// Decide requests read off the subscriptions since start (refreshed with the gauges).
    pub decide_read: Counter,
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
    /// Decide requests on a tenant's scoped subject naming another tenant, refused.
    pub scope_refused_decide: Counter,
    /// Feedback on a tenant's scoped subject naming another tenant, refused.
    pub scope_refused_feedback: Counter,
    /// Circuit breakers not closed.
    pub breakers_not_closed: Gauge,
}

impl Metrics {
    /// A registry with every metric of the router registered (the decide subject labels the
    /// intake gauges).
    pub fn new(decide_subject: &str) -> anyhow::Result<Metrics> {
        let registry = Registry::new()?;
        describe(&registry);
        let subject = [("subject", decide_subject)];
        let r = &registry;
        Ok(Metrics {
            decisions: Reason::ALL
                .iter()
                .map(|reason| r.counter("router_decisions_total", &[("reason", reason.as_str())]))
                .collect(),
            errors: ErrorCode::ALL
                .iter()
                .map(|code| r.counter("router_errors_total", &[("code", code.as_str())]))
                .collect(),
            replayed: r.counter("router_decisions_replayed_total", &[]),
            decide_latency: r.histogram("router_decide_latency_seconds", &[]),
            decide_service: r.histogram("router_decide_service_seconds", &[]),
            dropped_slow_consumer: r
                .counter("router_dropped_total", &[("reason", "slow_consumer")]),
            dlq_published: r.counter("router_dlq_published_total", &[]),
            backpressure_active: r.gauge("router_intake_backpressure_active", &subject),
            backpressure_active_total: r.counter("router_backpressure_active_total", &[]),
            decide_read: r.counter("router_decide_read_total", &[]),
            pending: r.gauge("router_pending_messages", &subject),
            inflight: r.gauge("router_inflight_messages", &subject),
            nats_connected: r.gauge("router_nats_connected", &[]),
            nats_connects: r.counter("router_nats_connects_total", &[]),
            rss_bytes: r.gauge("router_process_rss_bytes", &[]),
            peak_rss_bytes: r.gauge("router_process_peak_rss_bytes", &[]),
            client_cert_days_left: r.gauge("router_client_cert_days_left", &[]),
            policies_loaded: r.gauge("router_policies_loaded", &[]),
            reloads_ok: r.counter("router_policy_reloads_total", &[("result", "ok")]),
            reloads_failed: r.counter("router_policy_reloads_total", &[("result", "error")]),
            feedback_applied: r.counter("router_feedback_total", &[("result", "applied")]),
            feedback_rejected: r.counter("router_feedback_total", &[("result", "rejected")]),
            scope_refused_decide: r.counter(
                "router_tenant_scope_refusals_total",
                &[("endpoint", "decide")],
            ),
            scope_refused_feedback: r.counter(
                "router_tenant_scope_refusals_total",
                &[("endpoint", "feedback")],
            ),
            breakers_not_closed: r.gauge("router_circuit_breakers_not_closed", &[]),
            registry,
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
        self.registry.render()
    }
}

fn describe(r: &Registry) {
    super::quota::describe(r);
    r.describe_counter("router_decisions_total", None, "Decisions by reason");
    r.describe_counter("router_errors_total", None, "Error replies by error code");
    r.describe_counter(
        "router_tenant_scope_refusals_total",
        None,
        "Requests on a tenant's scoped subject naming another tenant, refused unauthorized",
    );
    r.describe_histogram(
        "router_decide_latency_seconds",
        Some(Unit::Seconds),
        "Decide latency from arrival to reply, queueing included (decided requests)",
    );
    r.describe_histogram(
        "router_decide_service_seconds",
        Some(Unit::Seconds),
        "Decide service time, from a worker taking the request to its reply",
    );
    r.describe_gauge(
        "router_breaker_state",
        None,
        "Circuit breaker state by tenant, policy and provider: 0 closed, 1 half-open, 2 open",
    );
    r.describe_counter(
        "router_breaker_transitions_total",
        None,
        "Circuit breaker state changes by tenant, policy, provider and new state",
    );
    r.describe_counter(
        "router_dropped_total",
        None,
        "Decide requests dropped without a reply, by reason",
    );
    r.describe_gauge(
        "router_intake_backpressure_active",
        None,
        "1 while backpressure is active",
    );
    r.describe_counter(
        "router_backpressure_active_total",
        None,
        "Transitions of backpressure into active",
    );
    r.describe_gauge("router_nats_connected", None, "1 while connected to NATS");
    r.describe_gauge(
        "router_process_rss_bytes",
        Some(Unit::Bytes),
        "Resident set size",
    );
    r.describe_gauge(
        "router_process_peak_rss_bytes",
        Some(Unit::Bytes),
        "Peak resident set size",
    );
    r.describe_gauge(
        "router_client_cert_days_left",
        None,
        "Days until the NATS client certificate expires",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_registries_do_not_share_values() {
        let a = Metrics::new("a.v1.decide").expect("registry a");
        let b = Metrics::new("b.v1.decide").expect("registry b");
        a.decision(Reason::Weighted);
        a.decision(Reason::Weighted);
        b.decision(Reason::Sticky);
        let text_a = a.render();
        let text_b = b.render();
        assert!(
            text_a.contains("router_decisions_total{reason=\"weighted\"} 2"),
            "{text_a}"
        );
        assert!(
            text_b.contains("router_decisions_total{reason=\"weighted\"} 0"),
            "{text_b}"
        );
        assert!(text_a.contains("router_pending_messages{subject=\"a.v1.decide\"}"));
        assert!(text_a.contains("# HELP router_decisions_total Decisions by reason"));
    }
}
