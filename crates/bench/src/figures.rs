//! The figures of interleaved rounds, shared by the bench (which measures them) and the perf
//! gate (which judges them): one round per side and time slot, one block of four rounds
//! (echo, router, router, echo) or, with the raw echo, six (raw echo, echo, router, router,
//! echo, raw echo), and the ratios of each block with their median and spread.
//!
//! A block is an ABBA (or ABCCBA) design: every side's rounds sit symmetrically around the
//! block's middle, so a drift of the machine that is linear in time weighs the same on every
//! side and cancels out of each pair's ratios. The verdict uses the median over blocks, and a
//! distribution-free confidence interval of that median says how far the figure can be
//! trusted.

use serde::{Deserialize, Serialize};

/// Which responder a round measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// `raw-echo`: a bare NATS client that answers every request with a fixed reply (one
    /// connection, one subscription, no queue, no metrics): the physical limit.
    RawEcho,
    /// `router --responder echo`: the same process and NATS path without a decision.
    Echo,
    /// The router.
    Router,
}

impl Side {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::RawEcho => "raw_echo",
            Side::Echo => "echo",
            Side::Router => "router",
        }
    }
}

/// The sides of a block's four rounds, in order.
pub const BLOCK_PATTERN: [Side; 4] = [Side::Echo, Side::Router, Side::Router, Side::Echo];

/// The sides of a block's six rounds when the raw echo is measured too, in order (ABCCBA).
pub const RAW_BLOCK_PATTERN: [Side; 6] = [
    Side::RawEcho,
    Side::Echo,
    Side::Router,
    Side::Router,
    Side::Echo,
    Side::RawEcho,
];

/// The rounds of one block: [`RAW_BLOCK_PATTERN`] with the raw echo, else [`BLOCK_PATTERN`].
pub fn block_pattern(raw_echo: bool) -> &'static [Side] {
    if raw_echo {
        &RAW_BLOCK_PATTERN
    } else {
        &BLOCK_PATTERN
    }
}

/// What one measured round gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundFigures {
    /// The block the round belongs to (0-based).
    pub block: usize,
    /// The responder measured.
    pub side: Side,
    /// Successful replies per second.
    pub rps: f64,
    /// Latency median, ms (all outcomes).
    pub p50_ms: f64,
    /// Latency 99th percentile, ms (all outcomes).
    pub p99_ms: f64,
    /// Requests in the measured window, all outcomes.
    pub requests: u64,
    /// Requests that did not come back `ok: true`.
    pub errors: u64,
    /// CPU seconds (user + system) the measured process used in the window; `None` when its
    /// pid was not given or could not be read.
    pub cpu_s: Option<f64>,
}

impl RoundFigures {
    /// CPU microseconds per request of the measured process.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let cpu = self.cpu_s?;
        (self.requests > 0).then(|| cpu * 1e6 / self.requests as f64)
    }
}

/// The ratios of one block: router over echo, from the block's two rounds of each side, and
/// (six-round blocks only) router over raw echo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockFigures {
    /// Router throughput ÷ echo throughput.
    pub throughput: f64,
    /// Router p50 ÷ echo p50.
    pub p50: f64,
    /// Router p99 ÷ echo p99.
    pub p99: f64,
    /// Router CPU per request ÷ echo CPU per request; `None` without CPU figures.
    pub cpu_per_request: Option<f64>,
    /// Second echo round's throughput ÷ first's (A/A): the drift of the machine within the
    /// block plus what switching sides costs the first round after a switch (the block's
    /// second echo round follows the router's; its first follows the previous block's echo).
    /// Reported, not gated: the ABBA layout gives each side one round of each kind, so both
    /// cancel out of the ratios.
    pub echo_aa: f64,
    /// Router throughput ÷ raw echo throughput; `None` in a block without the raw echo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_to_raw_echo: Option<f64>,
    /// Router p50 ÷ raw echo p50; `None` in a block without the raw echo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_to_raw_echo: Option<f64>,
    /// Router p99 ÷ raw echo p99; `None` in a block without the raw echo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_to_raw_echo: Option<f64>,
    /// Router CPU per request ÷ raw echo CPU per request; `None` without the raw echo or
    /// without CPU figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_per_request_to_raw_echo: Option<f64>,
}

impl BlockFigures {
    /// The ratios of rounds laid out as [`BLOCK_PATTERN`] or [`RAW_BLOCK_PATTERN`]; `None`
    /// when the rounds follow neither or a side has no throughput or latency.
    pub fn from_rounds(rounds: &[RoundFigures]) -> Option<BlockFigures> {
        let follows = |pattern: &[Side]| {
            rounds.len() == pattern.len() && rounds.iter().zip(pattern).all(|(r, s)| r.side == *s)
        };
        let (raw, e1, r1, r2, e2) = if follows(&BLOCK_PATTERN) {
            (None, &rounds[0], &rounds[1], &rounds[2], &rounds[3])
        } else if follows(&RAW_BLOCK_PATTERN) {
            let raw = (&rounds[0], &rounds[5]);
            (Some(raw), &rounds[1], &rounds[2], &rounds[3], &rounds[4])
        } else {
            return None;
        };
        let router = Pair(r1, r2);
        let echo = Pair(e1, e2);
        let mut block = BlockFigures {
            throughput: router.throughput_over(&echo)?,
            p50: router.p50_over(&echo)?,
            p99: router.p99_over(&echo)?,
            cpu_per_request: router.cpu_per_request_over(&echo),
            echo_aa: ratio(e2.rps, e1.rps)?,
            throughput_to_raw_echo: None,
            p50_to_raw_echo: None,
            p99_to_raw_echo: None,
            cpu_per_request_to_raw_echo: None,
        };
        if let Some((a1, a2)) = raw {
            let raw = Pair(a1, a2);
            block.throughput_to_raw_echo = Some(router.throughput_over(&raw)?);
            block.p50_to_raw_echo = Some(router.p50_over(&raw)?);
            block.p99_to_raw_echo = Some(router.p99_over(&raw)?);
            block.cpu_per_request_to_raw_echo = router.cpu_per_request_over(&raw);
        }
        Some(block)
    }

    /// Every block of `rounds` (consecutive rounds of the same block number, as the bench
    /// lays them out); a group that is no complete block is left out.
    pub fn from_all_rounds(rounds: &[RoundFigures]) -> Vec<BlockFigures> {
        rounds
            .chunk_by(|a, b| a.block == b.block)
            .filter_map(BlockFigures::from_rounds)
            .collect()
    }
}

/// `numerator ÷ denominator` when both make sense.
fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0 && numerator.is_finite()).then(|| numerator / denominator)
}

/// One side's two rounds of a block.
struct Pair<'a>(&'a RoundFigures, &'a RoundFigures);

impl Pair<'_> {
    fn throughput_over(&self, other: &Pair<'_>) -> Option<f64> {
        ratio(self.0.rps + self.1.rps, other.0.rps + other.1.rps)
    }

    fn p50_over(&self, other: &Pair<'_>) -> Option<f64> {
        ratio(
            self.0.p50_ms + self.1.p50_ms,
            other.0.p50_ms + other.1.p50_ms,
        )
    }

    fn p99_over(&self, other: &Pair<'_>) -> Option<f64> {
        ratio(
            self.0.p99_ms + self.1.p99_ms,
            other.0.p99_ms + other.1.p99_ms,
        )
    }

    /// CPU seconds per request over both rounds.
    fn cpu_per_request(&self) -> Option<f64> {
        let cpu = self.0.cpu_s? + self.1.cpu_s?;
        let requests = self.0.requests + self.1.requests;
        (requests > 0).then(|| cpu / requests as f64)
    }

    fn cpu_per_request_over(&self, other: &Pair<'_>) -> Option<f64> {
        ratio(self.cpu_per_request()?, other.cpu_per_request()?)
    }
}

/// A ratio the bench reports and the gate can judge, with its candidate key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ratio {
    /// Router throughput ÷ echo throughput.
    Throughput,
    /// Router p50 ÷ echo p50.
    P50,
    /// Router p99 ÷ echo p99.
    P99,
    /// Router CPU per request ÷ echo CPU per request.
    CpuPerRequest,
    /// Echo ÷ echo within a block (A/A).
    EchoAa,
    /// Router throughput ÷ raw echo throughput.
    ThroughputToRawEcho,
    /// Router p50 ÷ raw echo p50.
    P50ToRawEcho,
    /// Router p99 ÷ raw echo p99.
    P99ToRawEcho,
    /// Router CPU per request ÷ raw echo CPU per request.
    CpuPerRequestToRawEcho,
}

impl Ratio {
    /// Every ratio, in report order: router ÷ echo (the decision alone) and the echo A/A
    /// check, then router ÷ raw echo (against the physical limit).
    pub const ALL: [Ratio; 9] = [
        Ratio::Throughput,
        Ratio::P50,
        Ratio::P99,
        Ratio::CpuPerRequest,
        Ratio::EchoAa,
        Ratio::ThroughputToRawEcho,
        Ratio::P50ToRawEcho,
        Ratio::P99ToRawEcho,
        Ratio::CpuPerRequestToRawEcho,
    ];

    /// The router ÷ raw echo ratios.
    pub const TO_RAW_ECHO: [Ratio; 4] = [
        Ratio::ThroughputToRawEcho,
        Ratio::P50ToRawEcho,
        Ratio::P99ToRawEcho,
        Ratio::CpuPerRequestToRawEcho,
    ];

    /// True for a router ÷ raw echo ratio.
    pub fn is_to_raw_echo(self) -> bool {
        Ratio::TO_RAW_ECHO.contains(&self)
    }

    /// The candidate's key for the median of this ratio.
    pub fn key(self) -> &'static str {
        match self {
            Ratio::Throughput => "rps_ratio_to_echo",
            Ratio::P50 => "latency_p50_ratio_to_echo",
            Ratio::P99 => "latency_p99_ratio_to_echo",
            Ratio::CpuPerRequest => "cpu_per_request_ratio_to_echo",
            Ratio::EchoAa => "echo_aa_ratio",
            Ratio::ThroughputToRawEcho => "rps_ratio_to_raw_echo",
            Ratio::P50ToRawEcho => "latency_p50_ratio_to_raw_echo",
            Ratio::P99ToRawEcho => "latency_p99_ratio_to_raw_echo",
            Ratio::CpuPerRequestToRawEcho => "cpu_per_request_ratio_to_raw_echo",
        }
    }

    /// The ratio named by a candidate key.
    pub fn from_key(key: &str) -> Option<Ratio> {
        Ratio::ALL.into_iter().find(|r| r.key() == key)
    }

    /// This ratio's value in one block.
    pub fn of(self, block: &BlockFigures) -> Option<f64> {
        match self {
            Ratio::Throughput => Some(block.throughput),
            Ratio::P50 => Some(block.p50),
            Ratio::P99 => Some(block.p99),
            Ratio::CpuPerRequest => block.cpu_per_request,
            Ratio::EchoAa => Some(block.echo_aa),
            Ratio::ThroughputToRawEcho => block.throughput_to_raw_echo,
            Ratio::P50ToRawEcho => block.p50_to_raw_echo,
            Ratio::P99ToRawEcho => block.p99_to_raw_echo,
            Ratio::CpuPerRequestToRawEcho => block.cpu_per_request_to_raw_echo,
        }
    }
}

/// Confidence of the interval around the median.
pub const CONFIDENCE: f64 = 0.90;

/// The median of one ratio over blocks and how well it is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median over blocks.
    pub median: f64,
    /// Lower end of the ~90 % confidence interval of the median (an order statistic).
    pub low: f64,
    /// Upper end of that interval.
    pub high: f64,
    /// Half the interval's width relative to the median: ± this share is what the median is
    /// known to.
    pub relative_half_width: f64,
    /// Blocks the figure comes from.
    pub blocks: usize,
}

impl Spread {
    /// The spread of `ratio` over `blocks`; `None` when no block has it.
    pub fn of(ratio: Ratio, blocks: &[BlockFigures]) -> Option<Spread> {
        let mut values: Vec<f64> = blocks.iter().filter_map(|b| ratio.of(b)).collect();
        Spread::from_values(&mut values)
    }

    /// The spread of a sample.
    pub fn from_values(values: &mut [f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        let k = interval_rank(n, CONFIDENCE);
        let (low, high) = (values[k], values[n - 1 - k]);
        let half = (high - low) / 2.0;
        Some(Spread {
            median,
            low,
            high,
            relative_half_width: if median.abs() > 0.0 {
                half / median.abs()
            } else {
                f64::INFINITY
            },
            blocks: n,
        })
    }
}

/// The 0-based rank `k` such that (`x[k]`, `x[n-1-k]`) covers the median with at least
/// `confidence` (binomial order statistics; 0 when `n` is too small for more).
pub fn interval_rank(n: usize, confidence: f64) -> usize {
    // (x[k], x[n-1-k]) misses the median with probability 2 P(B <= k), B ~ Binomial(n, 1/2):
    // the largest k whose tail stays within (1 - confidence) / 2.
    let tail = (1.0 - confidence) / 2.0;
    let mut cumulative = 0.0;
    let mut term = 0.5f64.powi(n as i32);
    let mut k = 0;
    for j in 0..n / 2 {
        cumulative += term;
        if cumulative > tail {
            break;
        }
        k = j;
        term = term * (n - j) as f64 / (j + 1) as f64;
    }
    k
}

#[cfg(test)]
mod tests;
