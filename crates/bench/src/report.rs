//! The candidate JSON (what `cargo xtask perf-gate` reads) and its Markdown summary.
//!
//! Metrics sit flat at the top level so the gate reads them by name. A metric that was not
//! measured is `null`, never 0: the gate treats `null` as missing and fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::stats::PhaseStats;

/// Identifies the candidate format.
pub const SCHEMA: &str = "beamline.perf.candidate/1";

/// Whether the run could be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every requested phase ran (its errors, if any, are counted in the figures).
    Ok,
    /// The run could not be done; `reason` says why.
    Failed,
}

/// One benchmark result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `ok` or `failed`.
    pub status: Status,
    /// Exit status of `router-bench` for this run (0 ok, 1 failed).
    pub exit_status: i32,
    /// Why the run failed; `None` when it did not.
    pub reason: Option<String>,

    /// CP1: successful router replies per second in the measured window.
    pub rps: Option<f64>,
    /// CP1: router latency, 95th percentile (ms).
    pub latency_p95_ms: Option<f64>,
    /// CP1: router latency, 99th percentile (ms).
    pub latency_p99_ms: Option<f64>,
    /// CP1: router requests that did not come back `ok: true`.
    pub errors_total: Option<u64>,
    /// CP1: router transitions into backpressure `active` (from its /metrics).
    pub backpressure_active_total: Option<f64>,
    /// CP1: router peak RSS in MiB (from its /metrics).
    pub mem_mb: Option<f64>,

    /// Router latency, median (ms).
    pub latency_p50_ms: Option<f64>,
    /// Router latency, 99.9th percentile (ms).
    pub latency_p999_ms: Option<f64>,
    /// Router latency, maximum (ms).
    pub latency_max_ms: Option<f64>,
    /// Router requests in the measured window, all outcomes.
    pub requests_total: Option<u64>,
    /// Router requests answered `ok: true`.
    pub requests_ok: Option<u64>,
    /// Router errors by kind (`timeout`, `no_responders`, `reply.<code>`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,

    /// Echo: successful replies per second.
    pub echo_rps: Option<f64>,
    /// `rps / echo_rps`, both from this run.
    pub rps_ratio_to_echo: Option<f64>,
    /// Echo latency, median (ms).
    pub echo_latency_p50_ms: Option<f64>,
    /// Echo latency, 95th percentile (ms).
    pub echo_latency_p95_ms: Option<f64>,
    /// Echo latency, 99th percentile (ms).
    pub echo_latency_p99_ms: Option<f64>,
    /// Echo latency, 99.9th percentile (ms).
    pub echo_latency_p999_ms: Option<f64>,
    /// Echo requests that did not come back `ok: true`.
    pub echo_errors_total: Option<u64>,
    /// Echo requests in the measured window.
    pub echo_requests_total: Option<u64>,

    /// Full figures of each phase that ran.
    pub phases: BTreeMap<String, PhaseStats>,
    /// Things the reader should know (missing router metrics, debug build...).
    pub warnings: Vec<String>,
    /// Where and how the run happened.
    pub environment: Environment,
}

impl Candidate {
    /// A candidate from the phases that ran; `router` / `echo` are `None` when skipped.
    pub fn new(
        environment: Environment,
        router: Option<&PhaseStats>,
        echo: Option<&PhaseStats>,
    ) -> Self {
        let ratio = match (router, echo) {
            (Some(r), Some(e)) if e.rps > 0.0 => Some(round(r.rps / e.rps, 4)),
            _ => None,
        };
        let mut phases = BTreeMap::new();
        if let Some(r) = router {
            phases.insert("router".to_owned(), r.clone());
        }
        if let Some(e) = echo {
            phases.insert("echo".to_owned(), e.clone());
        }
        Self {
            schema: SCHEMA.to_owned(),
            status: Status::Ok,
            exit_status: 0,
            reason: None,
            rps: router.map(|r| round(r.rps, 1)),
            latency_p95_ms: router.and_then(|r| r.latency.p95_ms),
            latency_p99_ms: router.and_then(|r| r.latency.p99_ms),
            errors_total: router.map(|r| r.errors_total),
            backpressure_active_total: None,
            mem_mb: None,
            latency_p50_ms: router.and_then(|r| r.latency.p50_ms),
            latency_p999_ms: router.and_then(|r| r.latency.p999_ms),
            latency_max_ms: router.and_then(|r| r.latency.max_ms),
            requests_total: router.map(|r| r.requests_total),
            requests_ok: router.map(|r| r.requests_ok),
            errors_by_kind: router.map(|r| r.errors_by_kind.clone()).unwrap_or_default(),
            echo_rps: echo.map(|e| round(e.rps, 1)),
            rps_ratio_to_echo: ratio,
            echo_latency_p50_ms: echo.and_then(|e| e.latency.p50_ms),
            echo_latency_p95_ms: echo.and_then(|e| e.latency.p95_ms),
            echo_latency_p99_ms: echo.and_then(|e| e.latency.p99_ms),
            echo_latency_p999_ms: echo.and_then(|e| e.latency.p999_ms),
            echo_errors_total: echo.map(|e| e.errors_total),
            echo_requests_total: echo.map(|e| e.requests_total),
            phases,
            warnings: Vec::new(),
            environment,
        }
    }

    /// Marks the run failed with `reason`.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.status = Status::Failed;
        self.exit_status = 1;
        self.reason = Some(reason.into());
    }

    /// The Markdown summary: status, metric table, errors, environment.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let env = &self.environment;
        let _ = writeln!(md, "# router-bench result\n");
        match (&self.status, &self.reason) {
            (Status::Ok, _) => {
                let _ = writeln!(md, "Status: **ok**\n");
            }
            (Status::Failed, reason) => {
                let _ = writeln!(
                    md,
                    "Status: **failed** — {}\n",
                    reason.as_deref().unwrap_or("no reason recorded")
                );
            }
        }
        let _ = writeln!(md, "| metric | router | echo |");
        let _ = writeln!(md, "|---|---:|---:|");
        let rows: [(&str, Option<String>, Option<String>); 9] = [
            ("rps", fmt(self.rps, 1), fmt(self.echo_rps, 1)),
            ("rps ratio to echo", fmt(self.rps_ratio_to_echo, 3), None),
            (
                "latency p50 (ms)",
                fmt(self.latency_p50_ms, 3),
                fmt(self.echo_latency_p50_ms, 3),
            ),
            (
                "latency p95 (ms)",
                fmt(self.latency_p95_ms, 3),
                fmt(self.echo_latency_p95_ms, 3),
            ),
            (
                "latency p99 (ms)",
                fmt(self.latency_p99_ms, 3),
                fmt(self.echo_latency_p99_ms, 3),
            ),
            (
                "latency p99.9 (ms)",
                fmt(self.latency_p999_ms, 3),
                fmt(self.echo_latency_p999_ms, 3),
            ),
            (
                "requests",
                self.requests_total.map(|v| v.to_string()),
                self.echo_requests_total.map(|v| v.to_string()),
            ),
            (
                "errors",
                self.errors_total.map(|v| v.to_string()),
                self.echo_errors_total.map(|v| v.to_string()),
            ),
            (
                "backpressure active (transitions)",
                fmt(self.backpressure_active_total, 0),
                None,
            ),
        ];
        for (name, router, echo) in rows {
            let _ = writeln!(md, "| {name} | {} | {} |", dash(router), dash(echo));
        }
        let _ = writeln!(
            md,
            "| memory, peak RSS (MiB) | {} | — |",
            dash(fmt(self.mem_mb, 1))
        );
        for (name, phase) in &self.phases {
            if !phase.errors_by_kind.is_empty() {
                let _ = writeln!(md, "\nErrors by kind ({name}):\n");
                for (kind, count) in &phase.errors_by_kind {
                    let _ = writeln!(md, "- `{kind}`: {count}");
                }
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(md, "\nWarnings:\n");
            for warning in &self.warnings {
                let _ = writeln!(md, "- {warning}");
            }
        }
        let load = match env.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            md,
            "\nMode `{}`, {load}, concurrency {} over {} connection(s), {} s measured after {} s \
             warm-up, TLS {}.  ",
            env.mode,
            env.concurrency,
            env.connections,
            env.duration_s,
            env.warmup_s,
            if env.tls { "on" } else { "off" },
        );
        let _ = writeln!(
            md,
            "nats-server {}, {} CPU(s), kernel {}, commit {}{}, bench build {}, {}.",
            env.nats_server_version.as_deref().unwrap_or("unknown"),
            env.cpu_count,
            env.kernel.as_deref().unwrap_or("unknown"),
            env.git_commit.as_deref().unwrap_or("unknown"),
            if env.git_dirty == Some(true) {
                " (dirty)"
            } else {
                ""
            },
            env.bench_build,
            env.timestamp,
        );
        md
    }

    /// Writes the JSON to `path` and the Markdown to the same path with `.md`; returns the
    /// Markdown path.
    pub fn write(&self, path: &Path) -> anyhow::Result<PathBuf> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the output folder {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).context("encoding the candidate JSON")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the candidate to {}", path.display()))?;
        let md_path = markdown_path(path);
        std::fs::write(&md_path, self.to_markdown())
            .with_context(|| format!("writing the summary to {}", md_path.display()))?;
        Ok(md_path)
    }
}

/// `FILE.json` → `FILE.md` (any other name gets `.md` appended).
pub fn markdown_path(json_path: &Path) -> PathBuf {
    if json_path.extension().is_some_and(|e| e == "json") {
        json_path.with_extension("md")
    } else {
        let mut name = json_path.as_os_str().to_owned();
        name.push(".md");
        PathBuf::from(name)
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

fn fmt(value: Option<f64>, decimals: usize) -> Option<String> {
    value.map(|v| format!("{v:.decimals$}"))
}

fn dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;

    fn phase(rps: f64, errors: u64) -> PhaseStats {
        let mut errors_by_kind = BTreeMap::new();
        if errors > 0 {
            errors_by_kind.insert("timeout".to_owned(), errors);
        }
        PhaseStats {
            requests_total: 1000 + errors,
            requests_ok: 1000,
            errors_total: errors,
            errors_by_kind,
            rps,
            window_s: 10.0,
            latency: Percentiles {
                p50_ms: Some(0.5),
                p95_ms: Some(0.9),
                p99_ms: Some(1.2),
                p999_ms: Some(2.0),
                max_ms: Some(3.0),
                mean_ms: Some(0.6),
            },
        }
    }

    #[test]
    fn both_phases_give_every_metric_and_the_ratio() {
        let router = phase(40_000.0, 0);
        let echo = phase(80_000.0, 0);
        let c = Candidate::new(Environment::default(), Some(&router), Some(&echo));
        assert_eq!(c.rps, Some(40_000.0));
        assert_eq!(c.echo_rps, Some(80_000.0));
        assert_eq!(c.rps_ratio_to_echo, Some(0.5));
        assert_eq!(c.latency_p99_ms, Some(1.2));
        assert_eq!(c.errors_total, Some(0));
        let v = serde_json::to_value(&c).expect("json");
        for key in [
            "rps",
            "latency_p95_ms",
            "latency_p99_ms",
            "errors_total",
            "backpressure_active_total",
            "mem_mb",
            "echo_rps",
            "rps_ratio_to_echo",
            "latency_p50_ms",
            "latency_p999_ms",
            "echo_latency_p99_ms",
            "errors_by_kind",
            "requests_total",
            "environment",
            "status",
            "exit_status",
        ] {
            assert!(v.get(key).is_some(), "{key} is in the JSON");
        }
        assert_eq!(v["status"], "ok");
        // Not measured: null, never 0.
        assert!(v["mem_mb"].is_null());
        assert!(v["backpressure_active_total"].is_null());
        let back: Candidate = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, c);
    }

    #[test]
    fn echo_only_leaves_router_metrics_null() {
        let echo = phase(80_000.0, 0);
        let c = Candidate::new(Environment::default(), None, Some(&echo));
        assert_eq!(c.rps, None);
        assert_eq!(c.errors_total, None);
        assert_eq!(c.rps_ratio_to_echo, None);
        assert_eq!(c.echo_errors_total, Some(0));
    }

    #[test]
    fn failed_run_says_why_in_json_and_markdown() {
        let mut c = Candidate::new(Environment::default(), None, None);
        c.fail("no responders on beamline.router.v1.decide");
        assert_eq!(c.exit_status, 1);
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["status"], "failed");
        let md = c.to_markdown();
        assert!(md.contains("**failed** — no responders"), "{md}");
    }

    #[test]
    fn markdown_lists_errors_by_kind() {
        let router = phase(100.0, 3);
        let c = Candidate::new(Environment::default(), Some(&router), None);
        let md = c.to_markdown();
        assert!(md.contains("| rps | 100.0 | — |"), "{md}");
        assert!(md.contains("Errors by kind (router)"), "{md}");
        assert!(md.contains("- `timeout`: 3"), "{md}");
        assert!(md.contains("| errors | 3 | — |"), "{md}");
    }

    #[test]
    fn writes_json_and_md_side_by_side() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/perf_1.json");
        let c = Candidate::new(Environment::default(), Some(&phase(1.0, 0)), None);
        let md = c.write(&path).expect("write");
        assert_eq!(md, dir.path().join("sub/perf_1.md"));
        let text = std::fs::read_to_string(&path).expect("read back");
        let back: Candidate = serde_json::from_str(&text).expect("parse back");
        assert_eq!(back.rps, Some(1.0));
        assert!(std::fs::read_to_string(&md)
            .expect("md")
            .contains("router-bench result"));
    }

    #[test]
    fn markdown_path_rules() {
        assert_eq!(
            markdown_path(Path::new("a/b.json")),
            PathBuf::from("a/b.md")
        );
        assert_eq!(
            markdown_path(Path::new("a/b.out")),
            PathBuf::from("a/b.out.md")
        );
    }
}
