//! [`Candidate`]: one benchmark result as the gate reads it, built from what a run measured,
//! with its block ratios; pooling a later run into it; marking it failed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::figures::{BlockFigures, Ratio, RoundFigures, Side, Spread};
use crate::stats::PhaseStats;

use super::measured::{Measured, SideTotals};
use super::shape::LoadShape;

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

    /// Raw echo: successful replies per second (`null` when it was not measured).
    #[serde(default)]
    pub raw_echo_rps: Option<f64>,
    /// Raw echo latency, median (ms).
    #[serde(default)]
    pub raw_echo_latency_p50_ms: Option<f64>,
    /// Raw echo latency, 99th percentile (ms).
    #[serde(default)]
    pub raw_echo_latency_p99_ms: Option<f64>,
    /// Raw echo requests that did not come back `ok: true`.
    #[serde(default)]
    pub raw_echo_errors_total: Option<u64>,
    /// Raw echo requests measured.
    #[serde(default)]
    pub raw_echo_requests_total: Option<u64>,
    /// Raw echo CPU microseconds per request.
    #[serde(default)]
    pub raw_echo_cpu_us_per_request: Option<f64>,
    /// Raw echo peak RSS in MiB.
    #[serde(default)]
    pub raw_echo_mem_mb: Option<f64>,

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
    /// Median over blocks of router ÷ raw echo throughput.
    #[serde(default)]
    pub rps_ratio_to_raw_echo: Option<f64>,
    /// Median over blocks of router ÷ raw echo p50.
    #[serde(default)]
    pub latency_p50_ratio_to_raw_echo: Option<f64>,
    /// Median over blocks of router ÷ raw echo p99.
    #[serde(default)]
    pub latency_p99_ratio_to_raw_echo: Option<f64>,
    /// Median over blocks of router ÷ raw echo CPU per request.
    #[serde(default)]
    pub cpu_per_request_ratio_to_raw_echo: Option<f64>,
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
    /// The second load shape (many callers), measured after everything above; reported,
    /// not gated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_shape: Option<LoadShape>,
}

impl Candidate {
    /// A candidate from what was measured (possibly nothing).
    pub fn new(environment: Environment, measured: &Measured) -> Self {
        let router = measured.side(Side::Router);
        let echo = measured.side(Side::Echo);
        let raw_echo = measured.side(Side::RawEcho);
        let router_stats = router.map(SideTotals::stats);
        let echo_stats = echo.map(SideTotals::stats);
        let raw_echo_stats = raw_echo.map(SideTotals::stats);
        let r = router_stats.as_ref();
        let e = echo_stats.as_ref();
        let a = raw_echo_stats.as_ref();
        let blocks = BlockFigures::from_all_rounds(&measured.rounds);
        let mut phases = BTreeMap::new();
        for (side, stats) in [(Side::Router, r), (Side::Echo, e), (Side::RawEcho, a)] {
            if let Some(stats) = stats {
                phases.insert(side.as_str().to_owned(), stats.clone());
            }
        }
        let cpu_us = |totals: Option<&SideTotals>| {
            totals
                .and_then(SideTotals::cpu_us_per_request)
                .map(|v| round(v, 3))
        };
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
            cpu_us_per_request: cpu_us(router),
            echo_rps: e.map(|e| round(e.rps, 1)),
            echo_latency_p50_ms: e.and_then(|e| e.latency.p50_ms),
            echo_latency_p95_ms: e.and_then(|e| e.latency.p95_ms),
            echo_latency_p99_ms: e.and_then(|e| e.latency.p99_ms),
            echo_latency_p999_ms: e.and_then(|e| e.latency.p999_ms),
            echo_errors_total: e.map(|e| e.errors_total),
            echo_requests_total: e.map(|e| e.requests_total),
            echo_cpu_us_per_request: cpu_us(echo),
            echo_mem_mb: None,
            raw_echo_rps: a.map(|a| round(a.rps, 1)),
            raw_echo_latency_p50_ms: a.and_then(|a| a.latency.p50_ms),
            raw_echo_latency_p99_ms: a.and_then(|a| a.latency.p99_ms),
            raw_echo_errors_total: a.map(|a| a.errors_total),
            raw_echo_requests_total: a.map(|a| a.requests_total),
            raw_echo_cpu_us_per_request: cpu_us(raw_echo),
            raw_echo_mem_mb: None,
            rps_ratio_to_echo: None,
            latency_p50_ratio_to_echo: None,
            latency_p99_ratio_to_echo: None,
            cpu_per_request_ratio_to_echo: None,
            echo_aa_ratio: None,
            rps_ratio_to_raw_echo: None,
            latency_p50_ratio_to_raw_echo: None,
            latency_p99_ratio_to_raw_echo: None,
            cpu_per_request_ratio_to_raw_echo: None,
            ratios: BTreeMap::new(),
            rounds: measured.rounds.clone(),
            blocks,
            phases,
            warnings: Vec::new(),
            environment,
            second_shape: None,
        }
        .with_ratios()
    }

    /// The ratios and their medians computed from the blocks.
    fn with_ratios(mut self) -> Self {
        self.ratios = spreads(&self.blocks);
        let median = |ratio: Ratio| self.ratios.get(ratio.key()).map(|s| round(s.median, 4));
        self.rps_ratio_to_echo = median(Ratio::Throughput);
        self.latency_p50_ratio_to_echo = median(Ratio::P50);
        self.latency_p99_ratio_to_echo = median(Ratio::P99);
        self.cpu_per_request_ratio_to_echo = median(Ratio::CpuPerRequest);
        self.echo_aa_ratio = median(Ratio::EchoAa);
        self.rps_ratio_to_raw_echo = median(Ratio::ThroughputToRawEcho);
        self.latency_p50_ratio_to_raw_echo = median(Ratio::P50ToRawEcho);
        self.latency_p99_ratio_to_raw_echo = median(Ratio::P99ToRawEcho);
        self.cpu_per_request_ratio_to_raw_echo = median(Ratio::CpuPerRequestToRawEcho);
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
    /// The absolute router, echo and raw echo figures stay those of the first run.
    pub fn absorb(self, other: Candidate) -> Candidate {
        let mut this = self;
        if other.status == Status::Failed && this.status == Status::Ok {
            this.fail(other.reason.clone().unwrap_or_default());
        }
        append_rounds(&mut this.rounds, other.rounds);
        this.blocks.extend(other.blocks);
        let mut this = this.with_ratios();
        let add = |a: Option<u64>, b: Option<u64>| both(a, b, |a, b| a + b);
        this.errors_total = add(this.errors_total, other.errors_total);
        this.echo_errors_total = add(this.echo_errors_total, other.echo_errors_total);
        this.raw_echo_errors_total = add(this.raw_echo_errors_total, other.raw_echo_errors_total);
        this.backpressure_active_total = both(
            this.backpressure_active_total,
            other.backpressure_active_total,
            |a, b| a + b,
        );
        this.mem_mb = both(this.mem_mb, other.mem_mb, f64::max);
        this.echo_mem_mb = both(this.echo_mem_mb, other.echo_mem_mb, f64::max);
        this.raw_echo_mem_mb = both(this.raw_echo_mem_mb, other.raw_echo_mem_mb, f64::max);
        this.second_shape = match (this.second_shape, other.second_shape) {
            (Some(a), Some(b)) => Some(a.absorb(b)),
            (a, b) => a.or(b),
        };
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
            Side::RawEcho => self.raw_echo_mem_mb = value,
        }
    }
}

/// Appends a later run's rounds, their blocks numbered on after the last one of `rounds`.
pub(super) fn append_rounds(rounds: &mut Vec<RoundFigures>, more: Vec<RoundFigures>) {
    let base = rounds.iter().map(|r| r.block + 1).max().unwrap_or(0);
    rounds.extend(more.into_iter().map(|mut r| {
        r.block += base;
        r
    }));
}

/// `join` of two runs' figures when both have one; `None` (not measured) otherwise.
pub(super) fn both<T>(a: Option<T>, b: Option<T>, join: impl FnOnce(T, T) -> T) -> Option<T> {
    Some(join(a?, b?))
}

/// The median and interval of every ratio the blocks give, by [`Ratio::key`].
pub(super) fn spreads(blocks: &[BlockFigures]) -> BTreeMap<String, Spread> {
    Ratio::ALL
        .iter()
        .filter_map(|r| Some((r.key().to_owned(), Spread::of(*r, blocks)?)))
        .collect()
}

fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}
