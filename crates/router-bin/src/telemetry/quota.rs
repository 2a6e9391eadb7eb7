//! Quota metrics: `router_quota_used` and `router_quota_limit` per meter (the fleet's usage
//! as this router last saw it), and `router_quota_refusals_total{scope,kind}`.

use router_core::quota::{QuotaBook, Scope};

use super::metrics::{Metrics, Registry};

/// Registers the help texts of the quota metrics.
pub fn describe(r: &Registry) {
    r.describe_gauge(
        "router_quota_used",
        None,
        "Usage of a quota in its current window, fleet-wide as last seen (requests, tokens, or currency for budgets)",
    );
    r.describe_gauge(
        "router_quota_limit",
        None,
        "The limit of a quota in its window (requests, tokens, or currency for budgets)",
    );
    r.describe_counter(
        "router_quota_refusals_total",
        None,
        "Requests refused by a quota: scope tenant (quota_exceeded) or provider (left out until it frees)",
    );
}

impl Metrics {
    /// Counts one request a quota refused.
    pub fn quota_refused(&self, scope: &str, kind: &str) {
        self.registry
            .counter(
                "router_quota_refusals_total",
                &[("scope", scope), ("kind", kind)],
            )
            .increment(1);
    }

    /// Sets the usage and limit gauges of every meter of `book` at `now_ms`.
    pub fn publish_quotas(&self, book: &QuotaBook, now_ms: u64) {
        for meter in book.meters() {
            meter.window_ms(now_ms);
            let key = meter.key();
            let (policy, provider) = match &key.scope {
                Scope::Tenant { .. } => ("", ""),
                Scope::Provider {
                    policy_id,
                    provider_id,
                    ..
                } => (policy_id.as_str(), provider_id.as_str()),
            };
            let labels = [
                ("tenant", key.scope.tenant_id()),
                ("policy", policy),
                ("provider", provider),
                ("kind", key.kind.as_str()),
            ];
            let scale = if key.kind.is_spend() { 1e-6 } else { 1.0 };
            self.registry
                .gauge("router_quota_used", &labels)
                .set(meter.fleet_used() as f64 * scale);
            self.registry
                .gauge("router_quota_limit", &labels)
                .set(meter.limit() as f64 * scale);
        }
    }
}
