//! Reads the router's `/metrics` after a run: backpressure transitions and peak memory.

use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::prometheus;

/// Counter of transitions into backpressure `active` (CONTRACT.md §5).
pub const BACKPRESSURE_COUNTER: &str = "router_backpressure_active_total";
/// Gauge of the router's peak resident set size in bytes.
pub const PEAK_RSS_GAUGE: &str = "router_process_peak_rss_bytes";
/// Gauge of the router's current resident set size, used when the peak is not exported.
pub const RSS_GAUGE: &str = "router_process_rss_bytes";

/// Figures read from the router's Prometheus endpoint; `None` means "not exported".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterMetrics {
    /// Value of [`BACKPRESSURE_COUNTER`] summed over label sets.
    pub backpressure_active_total: Option<f64>,
    /// Router memory in MiB (peak RSS, else current RSS).
    pub mem_mb: Option<f64>,
    /// The gauge `mem_mb` came from.
    pub mem_source: Option<String>,
}

impl RouterMetrics {
    /// Extracts the figures from Prometheus text.
    pub fn from_text(text: &str) -> Self {
        let samples = prometheus::parse(text);
        let (rss, source) = match prometheus::max(&samples, PEAK_RSS_GAUGE) {
            Some(v) => (Some(v), Some(PEAK_RSS_GAUGE)),
            None => match prometheus::max(&samples, RSS_GAUGE) {
                Some(v) => (Some(v), Some(RSS_GAUGE)),
                None => (None, None),
            },
        };
        Self {
            backpressure_active_total: prometheus::sum(&samples, BACKPRESSURE_COUNTER),
            mem_mb: rss
                .filter(|v| v.is_finite())
                .map(|b| (b / (1024.0 * 1024.0) * 10.0).round() / 10.0),
            mem_source: source.map(str::to_owned),
        }
    }

    /// Names of the figures the endpoint did not export, for a warning.
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.backpressure_active_total.is_none() {
            missing.push(BACKPRESSURE_COUNTER.to_owned());
        }
        if self.mem_mb.is_none() {
            missing.push(format!("{PEAK_RSS_GAUGE} (or {RSS_GAUGE})"));
        }
        missing
    }
}

/// Fetches `url` (plain HTTP) and extracts the figures.
pub fn fetch(url: &str, timeout: Duration) -> anyhow::Result<RouterMetrics> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .new_agent();
    let mut response = agent.get(url).call().with_context(|| {
        format!("reading router metrics from {url}: is the router running with metrics_addr there?")
    })?;
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the body of {url}"))?;
    Ok(RouterMetrics::from_text(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_peak_rss() {
        let m = RouterMetrics::from_text(
            "router_backpressure_active_total 0\nrouter_process_peak_rss_bytes 104857600\nrouter_process_rss_bytes 1048576\n",
        );
        assert_eq!(m.backpressure_active_total, Some(0.0));
        assert_eq!(m.mem_mb, Some(100.0));
        assert_eq!(m.mem_source.as_deref(), Some(PEAK_RSS_GAUGE));
        assert!(m.missing().is_empty());
    }

    #[test]
    fn falls_back_to_current_rss() {
        let m = RouterMetrics::from_text("router_process_rss_bytes 31457280\n");
        assert_eq!(m.mem_mb, Some(30.0));
        assert_eq!(m.mem_source.as_deref(), Some(RSS_GAUGE));
        assert_eq!(m.backpressure_active_total, None);
        assert_eq!(m.missing(), vec![BACKPRESSURE_COUNTER.to_owned()]);
    }

    #[test]
    fn nothing_exported_is_missing_not_zero() {
        let m = RouterMetrics::from_text("# nothing here\n");
        assert_eq!(m, RouterMetrics::default());
        assert_eq!(m.missing().len(), 2);
    }

    #[test]
    fn unreachable_endpoint_is_an_error_that_says_what_to_check() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let err = fetch("http://127.0.0.1:9/metrics", Duration::from_secs(2))
            .expect_err("nothing listens on port 9");
        assert!(format!("{err:#}").contains("is the router running"));
    }
}
