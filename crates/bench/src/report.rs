//! The candidate JSON (what `cargo xtask perf-gate` reads) and its Markdown summary.
//!
//! Metrics sit flat at the top level so the gate reads them by name; the rounds and blocks
//! they come from are kept beside them, so that the gate can judge the spread and merge the
//! blocks of several runs. A metric that was not measured is `null`, never 0: the gate treats
//! `null` as missing and fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::figures::{BlockFigures, Ratio, RoundFigures, Side, Spread};
use crate::load::PhaseResult;
use crate::stats::{PhaseStats, Recorder};

/// Identifies the candidate format.
pub const SCHEMA: &str = "beamline.perf.candidate/2";

/// Whether the run could be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every requested round ran (its errors, if any, are counted in the figures).
    Ok,
    /// The run could not be done; `reason` says why.
    Failed,
}

/// Everything one side measured, over all its rounds.
#[derive(Debug, Clone, Default)]
pub struct SideTotals {
    recorder: Recorder,
    window: Duration,
    cpu_s: Option<f64>,
    cpu_requests: u64,
}

impl SideTotals {
    /// Adds one round.
    pub fn add(&mut self, result: &PhaseResult) {
        // Every recorder has the same bounds, so merging cannot fail.
        let _ = self.recorder.merge(&result.recorder);
        self.window += result.window;
        if let Some(cpu) = result.cpu_s {
            self.cpu_s = Some(self.cpu_s.unwrap_or(0.0) + cpu);
            self.cpu_requests += result.recorder.recorded();
        }
    }

    /// The side's figures over all its rounds.
    pub fn stats(&self) -> PhaseStats {
        self.recorder.summarize(self.window)
    }

    /// CPU microseconds per request over all rounds with a CPU figure.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let cpu = self.cpu_s?;
        (self.cpu_requests > 0).then(|| cpu * 1e6 / self.cpu_requests as f64)
    }
}

/// What a run measured: its rounds in order, and each side's totals.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Every measured round, in order.
    pub rounds: Vec<RoundFigures>,
    /// Totals by side name.
    pub totals: BTreeMap<String, SideTotals>,
}

impl Measured {
    /// The totals of `side`, when it was measured.
    pub fn side(&self, side: Side) -> Option<&SideTotals> {
        self.totals.get(side.as_str())
    }
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

    /// CP1: successful router replies per second over its rounds.
    pub rps: Option<f64>,
    /// CP1: router latency, 95th percentile (ms).
    pub latency_p95_ms: Option<f64>,
    /// CP1: router latency, 99th percentile (ms).
    pub latency_p99_ms: Option<f64>,
    /// CP1: router requests that did not come back `ok: true`.
    pub errors_total: Option<u64>,
    /// CP1: router transitions into backpressure `active` (from its /metrics).
    pub backpressure_active_total: Option<f64>,
    /// CP1: router peak RSS in MiB.
    pub mem_mb: Option<f64>,

    /// Router latency, median (ms).
    pub latency_p50_ms: Option<f64>,
    /// Router latency, 99.9th percentile (ms).
    pub latency_p999_ms: Option<f64>,
    /// Router latency, maximum (ms).
    pub latency_max_ms: Option<f64>,
    /// Router requests measured, all outcomes.
    pub requests_total: Option<u64>,
    /// Router requests answered `ok: true`.
    pub requests_ok: Option<u64>,
    /// Router errors by kind (`timeout`, `no_responders`, `reply.<code>`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Router CPU microseconds per request.
    pub cpu_us_per_request: Option<f64>,

    /// Echo: successful replies per second.
    pub echo_rps: Option<f64>,
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
    /// Echo requests measured.
    pub echo_requests_total: Option<u64>,
    /// Echo responder CPU microseconds per request.
    pub echo_cpu_us_per_request: Option<f64>,
    /// Echo responder peak RSS in MiB.
    pub echo_mem_mb: Option<f64>,

    /// Median over blocks of router ÷ echo throughput.
    pub rps_ratio_to_echo: Option<f64>,
    /// Median over blocks of router ÷ echo p50.
    pub latency_p50_ratio_to_echo: Option<f64>,
    /// Median over blocks of router ÷ echo p99.
    pub latency_p99_ratio_to_echo: Option<f64>,
    /// Median over blocks of router ÷ echo CPU per request.
    pub cpu_per_request_ratio_to_echo: Option<f64>,
    /// Median over blocks of the echo A/A ratio (second echo round ÷ first).
    pub echo_aa_ratio: Option<f64>,
    /// Each ratio's median and spread, by candidate key.
    pub ratios: BTreeMap<String, Spread>,

    /// Every measured round, in order.
    pub rounds: Vec<RoundFigures>,
    /// The ratios of each complete block.
    pub blocks: Vec<BlockFigures>,
    /// Totals of each side that was measured.
    pub phases: BTreeMap<String, PhaseStats>,
    /// Things the reader should know (missing router metrics, debug build...).
    pub warnings: Vec<String>,
    /// Where and how the run happened.
    pub environment: Environment,
}

impl Candidate {
    /// A candidate from what was measured (possibly nothing).
    pub fn new(environment: Environment, measured: &Measured) -> Self {
        let router = measured.side(Side::Router);
        let echo = measured.side(Side::Echo);
        let router_stats = router.map(SideTotals::stats);
        let echo_stats = echo.map(SideTotals::stats);
        let r = router_stats.as_ref();
        let e = echo_stats.as_ref();
        let blocks = BlockFigures::from_all_rounds(&measured.rounds);
        let mut phases = BTreeMap::new();
        for (name, stats) in [("router", r), ("echo", e)] {
            if let Some(stats) = stats {
                phases.insert(name.to_owned(), stats.clone());
            }
        }
        Self {
            schema: SCHEMA.to_owned(),
            status: Status::Ok,
            exit_status: 0,
            reason: None,
            rps: r.map(|r| round(r.rps, 1)),
            latency_p95_ms: r.and_then(|r| r.latency.p95_ms),
            latency_p99_ms: r.and_then(|r| r.latency.p99_ms),
            errors_total: r.map(|r| r.errors_total),
            backpressure_active_total: None,
            mem_mb: None,
            latency_p50_ms: r.and_then(|r| r.latency.p50_ms),
            latency_p999_ms: r.and_then(|r| r.latency.p999_ms),
            latency_max_ms: r.and_then(|r| r.latency.max_ms),
            requests_total: r.map(|r| r.requests_total),
            requests_ok: r.map(|r| r.requests_ok),
            errors_by_kind: r.map(|r| r.errors_by_kind.clone()).unwrap_or_default(),
            cpu_us_per_request: router
                .and_then(SideTotals::cpu_us_per_request)
                .map(|v| round(v, 3)),
            echo_rps: e.map(|e| round(e.rps, 1)),
            echo_latency_p50_ms: e.and_then(|e| e.latency.p50_ms),
            echo_latency_p95_ms: e.and_then(|e| e.latency.p95_ms),
            echo_latency_p99_ms: e.and_then(|e| e.latency.p99_ms),
            echo_latency_p999_ms: e.and_then(|e| e.latency.p999_ms),
            echo_errors_total: e.map(|e| e.errors_total),
            echo_requests_total: e.map(|e| e.requests_total),
            echo_cpu_us_per_request: echo
                .and_then(SideTotals::cpu_us_per_request)
                .map(|v| round(v, 3)),
            echo_mem_mb: None,
            rps_ratio_to_echo: None,
            latency_p50_ratio_to_echo: None,
            latency_p99_ratio_to_echo: None,
            cpu_per_request_ratio_to_echo: None,
            echo_aa_ratio: None,
            ratios: BTreeMap::new(),
            rounds: measured.rounds.clone(),
            blocks,
            phases,
            warnings: Vec::new(),
            environment,
        }
        .with_ratios()
    }

    /// The ratios and their medians computed from the blocks.
    fn with_ratios(mut self) -> Self {
        self.ratios = Ratio::ALL
            .iter()
            .filter_map(|r| Some((r.key().to_owned(), Spread::of(*r, &self.blocks)?)))
            .collect();
        let median = |ratio: Ratio| self.ratios.get(ratio.key()).map(|s| round(s.median, 4));
        self.rps_ratio_to_echo = median(Ratio::Throughput);
        self.latency_p50_ratio_to_echo = median(Ratio::P50);
        self.latency_p99_ratio_to_echo = median(Ratio::P99);
        self.cpu_per_request_ratio_to_echo = median(Ratio::CpuPerRequest);
        self.echo_aa_ratio = median(Ratio::EchoAa);
        self
    }

    /// Marks the run failed with `reason`.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.status = Status::Failed;
        self.exit_status = 1;
        self.reason = Some(reason.into());
    }

    /// Pools `other` (a later run of the same plan) into this candidate: its rounds and
    /// blocks are added and the ratios recomputed over all blocks; errors and backpressure
    /// transitions add up, memory keeps the larger peak, and a failed run fails the whole.
    /// The absolute router and echo figures stay those of the first run.
    pub fn absorb(self, other: Candidate) -> Candidate {
        let mut this = self;
        if other.status == Status::Failed && this.status == Status::Ok {
            this.fail(other.reason.clone().unwrap_or_default());
        }
        let base = this.rounds.iter().map(|r| r.block + 1).max().unwrap_or(0);
        this.rounds.extend(other.rounds.into_iter().map(|mut r| {
            r.block += base;
            r
        }));
        this.blocks.extend(other.blocks);
        let mut this = this.with_ratios();
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        this.errors_total = add(this.errors_total, other.errors_total);
        this.echo_errors_total = add(this.echo_errors_total, other.echo_errors_total);
        this.backpressure_active_total = match (
            this.backpressure_active_total,
            other.backpressure_active_total,
        ) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        this.mem_mb = max(this.mem_mb, other.mem_mb);
        this.echo_mem_mb = max(this.echo_mem_mb, other.echo_mem_mb);
        for warning in other.warnings {
            if !this.warnings.contains(&warning) {
                this.warnings.push(warning);
            }
        }
        this
    }

    /// Records the peak RSS of a side's process.
    pub fn set_peak_memory(&mut self, side: Side, mib: f64) {
        let value = Some(round(mib, 1));
        match side {
            Side::Router => self.mem_mb = value,
            Side::Echo => self.echo_mem_mb = value,
        }
    }

    /// The Markdown summary: status, side totals, ratios, rounds, errors, environment.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
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
        self.totals_table(&mut md);
        self.ratio_table(&mut md);
        self.round_table(&mut md);
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
        self.environment_lines(&mut md);
        md
    }

    fn totals_table(&self, md: &mut String) {
        let _ = writeln!(md, "| metric | router | echo |");
        let _ = writeln!(md, "|---|---:|---:|");
        let rows: [(&str, Option<String>, Option<String>); 9] = [
            ("rps", fmt(self.rps, 1), fmt(self.echo_rps, 1)),
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
                "CPU per request (µs)",
                fmt(self.cpu_us_per_request, 2),
                fmt(self.echo_cpu_us_per_request, 2),
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
                "memory, peak RSS (MiB)",
                fmt(self.mem_mb, 1),
                fmt(self.echo_mem_mb, 1),
            ),
        ];
        for (name, router, echo) in rows {
            let _ = writeln!(md, "| {name} | {} | {} |", dash(router), dash(echo));
        }
        let _ = writeln!(
            md,
            "| backpressure active (transitions) | {} | — |",
            dash(fmt(self.backpressure_active_total, 0))
        );
    }

    fn ratio_table(&self, md: &mut String) {
        if self.ratios.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\nRatios over {} block(s) (median, and the ~90 % confidence interval of the median):\n",
            self.blocks.len()
        );
        let _ = writeln!(md, "| ratio | median | interval | ± |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for ratio in Ratio::ALL {
            if let Some(s) = self.ratios.get(ratio.key()) {
                let _ = writeln!(
                    md,
                    "| {} | {:.3} | {:.3} – {:.3} | {:.1} % |",
                    ratio.key(),
                    s.median,
                    s.low,
                    s.high,
                    s.relative_half_width * 100.0
                );
            }
        }
    }

    fn round_table(&self, md: &mut String) {
        if self.rounds.len() < 2 {
            return;
        }
        let _ = writeln!(md, "\nRounds:\n");
        let _ = writeln!(
            md,
            "| # | block | side | rps | p50 (ms) | p99 (ms) | requests | errors | CPU µs/req |"
        );
        let _ = writeln!(md, "|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        for (i, r) in self.rounds.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} |",
                i + 1,
                r.block + 1,
                r.side.as_str(),
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.requests,
                r.errors,
                dash(fmt(r.cpu_us_per_request(), 2))
            );
        }
    }

    fn environment_lines(&self, md: &mut String) {
        let env = &self.environment;
        let load = match env.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_owned(),
        };
        let schedule = match (env.blocks, env.round_s) {
            (Some(blocks), Some(round)) => format!(
                "{blocks} blocks of 4 rounds of {round} s after {} s warm-up per side",
                env.warmup_s
            ),
            _ => format!(
                "{} s measured after {} s warm-up",
                env.duration_s, env.warmup_s
            ),
        };
        let _ = writeln!(
            md,
            "\nMode `{}`, {load}, concurrency {} over {} connection(s), {schedule}, TLS {}.  ",
            env.mode,
            env.concurrency,
            env.connections,
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
    }

    /// Reads a candidate written by [`Candidate::write`].
    pub fn read(path: &Path) -> anyhow::Result<Candidate> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the candidate {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a {SCHEMA} candidate; run `cargo xtask bench` to make a new one",
                path.display()
            )
        })
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
    use crate::outcome::Outcome;

    /// A round's result: `ok` successes and `errors` timeouts of 1 ms each over 1 s.
    fn result(ok: u64, errors: u64, cpu_s: f64) -> PhaseResult {
        let mut recorder = Recorder::new();
        for _ in 0..ok {
            recorder.record(&Outcome::Ok, Duration::from_millis(1));
        }
        for _ in 0..errors {
            recorder.record(&Outcome::Timeout, Duration::from_millis(1));
        }
        PhaseResult {
            recorder,
            window: Duration::from_secs(1),
            cpu_s: Some(cpu_s),
        }
    }

    fn interleaved(blocks: usize) -> Measured {
        let mut measured = Measured::default();
        for block in 0..blocks {
            for side in crate::figures::BLOCK_PATTERN {
                let (ok, cpu) = match side {
                    Side::Echo => (1000, 0.01),
                    Side::Router => (800, 0.012),
                };
                let result = result(ok, 0, cpu);
                let stats = result.stats();
                measured.rounds.push(RoundFigures {
                    block,
                    side,
                    rps: stats.rps,
                    p50_ms: 1.0,
                    p99_ms: 1.0,
                    requests: stats.requests_total,
                    errors: 0,
                    cpu_s: result.cpu_s,
                });
                measured
                    .totals
                    .entry(side.as_str().to_owned())
                    .or_default()
                    .add(&result);
            }
        }
        measured
    }

    #[test]
    fn interleaved_rounds_give_every_metric_and_the_ratios() {
        let c = Candidate::new(Environment::default(), &interleaved(3));
        assert_eq!(c.rps, Some(800.0));
        assert_eq!(c.echo_rps, Some(1000.0));
        assert_eq!(c.rps_ratio_to_echo, Some(0.8));
        assert_eq!(c.blocks.len(), 3);
        assert_eq!(c.rounds.len(), 12);
        // Router 12 ms CPU / 800 requests = 15 µs; echo 10 ms / 1000 = 10 µs.
        assert_eq!(c.cpu_us_per_request, Some(15.0));
        assert_eq!(c.echo_cpu_us_per_request, Some(10.0));
        assert_eq!(c.cpu_per_request_ratio_to_echo, Some(1.5));
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
            "latency_p99_ratio_to_echo",
            "cpu_per_request_ratio_to_echo",
            "ratios",
            "rounds",
            "blocks",
            "environment",
            "status",
        ] {
            assert!(v.get(key).is_some(), "{key} is in the JSON");
        }
        // Not measured: null, never 0.
        assert!(v["mem_mb"].is_null());
        assert!(v["backpressure_active_total"].is_null());
        let back: Candidate = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, c);
        let md = c.to_markdown();
        assert!(md.contains("| rps_ratio_to_echo | 0.800 |"), "{md}");
        assert!(md.contains("| 2 | 1 | router | 800 |"), "{md}");
    }

    #[test]
    fn absorbing_a_second_run_pools_its_blocks() {
        let mut first = Candidate::new(Environment::default(), &interleaved(2));
        first.mem_mb = Some(20.0);
        first.backpressure_active_total = Some(0.0);
        let mut second = Candidate::new(Environment::default(), &interleaved(3));
        second.mem_mb = Some(25.0);
        second.backpressure_active_total = Some(1.0);
        second.errors_total = Some(2);
        let pooled = first.absorb(second);
        assert_eq!(pooled.blocks.len(), 5);
        assert_eq!(pooled.rounds.len(), 20);
        assert_eq!(pooled.rounds[19].block, 4, "blocks are numbered on");
        assert_eq!(pooled.ratios["rps_ratio_to_echo"].blocks, 5);
        assert_eq!(pooled.rps_ratio_to_echo, Some(0.8));
        assert_eq!(pooled.errors_total, Some(2));
        assert_eq!(pooled.backpressure_active_total, Some(1.0));
        assert_eq!(pooled.mem_mb, Some(25.0));
        assert_eq!(pooled.status, Status::Ok);
        let mut failed = Candidate::new(Environment::default(), &interleaved(1));
        failed.fail("no responders");
        let pooled = pooled.absorb(failed);
        assert_eq!(pooled.status, Status::Failed);
        assert_eq!(pooled.reason.as_deref(), Some("no responders"));
    }

    #[test]
    fn a_single_side_has_no_ratio() {
        let mut measured = Measured::default();
        measured
            .totals
            .entry("echo".to_owned())
            .or_default()
            .add(&result(1000, 0, 0.01));
        let c = Candidate::new(Environment::default(), &measured);
        assert_eq!(c.rps, None);
        assert_eq!(c.errors_total, None);
        assert_eq!(c.rps_ratio_to_echo, None);
        assert!(c.ratios.is_empty());
        assert_eq!(c.echo_errors_total, Some(0));
    }

    #[test]
    fn failed_run_says_why_in_json_and_markdown() {
        let mut c = Candidate::new(Environment::default(), &Measured::default());
        c.fail("no responders on beamline.router.v1.decide");
        assert_eq!(c.exit_status, 1);
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["status"], "failed");
        let md = c.to_markdown();
        assert!(md.contains("**failed** — no responders"), "{md}");
    }

    #[test]
    fn markdown_lists_errors_by_kind() {
        let mut measured = Measured::default();
        measured
            .totals
            .entry("router".to_owned())
            .or_default()
            .add(&result(100, 3, 0.01));
        let c = Candidate::new(Environment::default(), &measured);
        let md = c.to_markdown();
        assert!(md.contains("| rps | 100.0 | — |"), "{md}");
        assert!(md.contains("Errors by kind (router)"), "{md}");
        assert!(md.contains("- `timeout`: 3"), "{md}");
        assert!(md.contains("| errors | 3 | — |"), "{md}");
    }

    #[test]
    fn writes_json_and_md_side_by_side_and_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/perf_1.json");
        let c = Candidate::new(Environment::default(), &interleaved(1));
        let md = c.write(&path).expect("write");
        assert_eq!(md, dir.path().join("sub/perf_1.md"));
        let back = Candidate::read(&path).expect("read back");
        assert_eq!(back, c);
        assert!(std::fs::read_to_string(&md)
            .expect("md")
            .contains("router-bench result"));
        std::fs::write(&path, "{}").expect("write");
        let err = Candidate::read(&path).expect_err("not a candidate");
        assert!(format!("{err:#}").contains("cargo xtask bench"), "{err:#}");
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
