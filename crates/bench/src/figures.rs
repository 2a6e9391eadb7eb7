//! The figures of interleaved rounds, shared by the bench (which measures them) and the perf
//! gate (which judges them): one round per side and time slot, one block of four rounds
//! (echo, router, router, echo), and the ratios of each block with their median and spread.
//!
//! A block is an ABBA design: a drift of the machine that is linear in time weighs the same
//! on both sides, so it cancels out of the block's ratios. The verdict uses the median over
//! blocks, and a distribution-free confidence interval of that median says how far the
//! figure can be trusted.

use serde::{Deserialize, Serialize};

/// Which responder a round measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// `router --responder echo`: the same process and NATS path without a decision.
    Echo,
    /// The router.
    Router,
}

impl Side {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Echo => "echo",
            Side::Router => "router",
        }
    }
}

/// The sides of a block's four rounds, in order.
pub const BLOCK_PATTERN: [Side; 4] = [Side::Echo, Side::Router, Side::Router, Side::Echo];

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

/// The ratios of one block: router over echo, from the block's two rounds of each side.
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
}

impl BlockFigures {
    /// The ratios of four rounds laid out as [`BLOCK_PATTERN`]; `None` when the rounds do not
    /// follow it or a side has no throughput or latency.
    pub fn from_rounds(rounds: &[RoundFigures]) -> Option<BlockFigures> {
        if rounds.len() != BLOCK_PATTERN.len()
            || rounds.iter().zip(BLOCK_PATTERN).any(|(r, s)| r.side != s)
        {
            return None;
        }
        let (e1, r1, r2, e2) = (&rounds[0], &rounds[1], &rounds[2], &rounds[3]);
        let ratio =
            |router: f64, echo: f64| (echo > 0.0 && router.is_finite()).then(|| router / echo);
        let cpu_per_request = |a: &RoundFigures, b: &RoundFigures| {
            let cpu = a.cpu_s? + b.cpu_s?;
            let requests = a.requests + b.requests;
            (requests > 0).then(|| cpu / requests as f64)
        };
        let cpu = match (cpu_per_request(r1, r2), cpu_per_request(e1, e2)) {
            (Some(router), Some(echo)) => ratio(router, echo),
            _ => None,
        };
        Some(BlockFigures {
            throughput: ratio(r1.rps + r2.rps, e1.rps + e2.rps)?,
            p50: ratio(r1.p50_ms + r2.p50_ms, e1.p50_ms + e2.p50_ms)?,
            p99: ratio(r1.p99_ms + r2.p99_ms, e1.p99_ms + e2.p99_ms)?,
            cpu_per_request: cpu,
            echo_aa: ratio(e2.rps, e1.rps)?,
        })
    }

    /// Every block of `rounds` (consecutive groups of four, as the bench lays them out).
    pub fn from_all_rounds(rounds: &[RoundFigures]) -> Vec<BlockFigures> {
        rounds
            .chunks(BLOCK_PATTERN.len())
            .filter_map(BlockFigures::from_rounds)
            .collect()
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
}

impl Ratio {
    /// Every ratio, in report order.
    pub const ALL: [Ratio; 5] = [
        Ratio::Throughput,
        Ratio::P50,
        Ratio::P99,
        Ratio::CpuPerRequest,
        Ratio::EchoAa,
    ];

    /// The candidate's key for the median of this ratio.
    pub fn key(self) -> &'static str {
        match self {
            Ratio::Throughput => "rps_ratio_to_echo",
            Ratio::P50 => "latency_p50_ratio_to_echo",
            Ratio::P99 => "latency_p99_ratio_to_echo",
            Ratio::CpuPerRequest => "cpu_per_request_ratio_to_echo",
            Ratio::EchoAa => "echo_aa_ratio",
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
mod tests {
    use super::*;

    fn round(side: Side, rps: f64, p99: f64, cpu: f64, requests: u64) -> RoundFigures {
        RoundFigures {
            block: 0,
            side,
            rps,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            requests,
            errors: 0,
            cpu_s: Some(cpu),
        }
    }

    #[test]
    fn a_block_is_router_over_echo() {
        let rounds = [
            round(Side::Echo, 100.0, 1.0, 1.0, 1000),
            round(Side::Router, 80.0, 1.5, 1.6, 800),
            round(Side::Router, 60.0, 2.5, 1.2, 600),
            round(Side::Echo, 100.0, 1.0, 1.0, 1000),
        ];
        let block = BlockFigures::from_rounds(&rounds).expect("a block");
        assert!((block.throughput - 0.7).abs() < 1e-9);
        assert!((block.p99 - 2.0).abs() < 1e-9);
        // Router 2.8 s / 1400 requests = 2 ms; echo 2 s / 2000 = 1 ms.
        assert_eq!(block.cpu_per_request, Some(2.0));
        assert_eq!(block.echo_aa, 1.0);
        assert_eq!(rounds[1].cpu_us_per_request(), Some(2000.0));
    }

    #[test]
    fn rounds_out_of_pattern_make_no_block() {
        let rounds = [
            round(Side::Router, 1.0, 1.0, 1.0, 1),
            round(Side::Echo, 1.0, 1.0, 1.0, 1),
            round(Side::Router, 1.0, 1.0, 1.0, 1),
            round(Side::Echo, 1.0, 1.0, 1.0, 1),
        ];
        assert!(BlockFigures::from_rounds(&rounds).is_none());
        assert!(BlockFigures::from_rounds(&rounds[..3]).is_none());
    }

    #[test]
    fn a_linear_drift_cancels_within_a_block() {
        // The machine slows by 10 % per round; the router is 0.8 of the echo throughout.
        let speed = [1.0, 0.9, 0.8, 0.7];
        let rounds: Vec<RoundFigures> = BLOCK_PATTERN
            .iter()
            .zip(speed)
            .map(|(side, s)| {
                let base = if *side == Side::Router { 80.0 } else { 100.0 };
                round(*side, base * s, 1.0, 1.0, 100)
            })
            .collect();
        let block = BlockFigures::from_rounds(&rounds).expect("a block");
        assert!((block.throughput - 0.8).abs() < 1e-9, "{block:?}");
        assert!(
            (block.echo_aa - 0.7).abs() < 1e-9,
            "the A/A check sees the drift"
        );
    }

    #[test]
    fn interval_ranks_follow_the_binomial() {
        // n = 5: (x0, x4) covers the median with 93.75 %; (x1, x3) only 62.5 %.
        assert_eq!(interval_rank(5, 0.90), 0);
        assert_eq!(interval_rank(8, 0.90), 1);
        assert_eq!(interval_rank(10, 0.90), 1);
        assert_eq!(interval_rank(20, 0.90), 5);
        assert_eq!(interval_rank(1, 0.90), 0);
    }

    #[test]
    fn spread_of_a_sample() {
        let mut values = [0.9, 1.1, 1.0, 0.95, 1.05];
        let spread = Spread::from_values(&mut values).expect("spread");
        assert_eq!(spread.median, 1.0);
        assert_eq!((spread.low, spread.high), (0.9, 1.1));
        assert!((spread.relative_half_width - 0.1).abs() < 1e-9);
        assert!(Spread::from_values(&mut []).is_none());
    }

    #[test]
    fn keys_round_trip() {
        for ratio in Ratio::ALL {
            assert_eq!(Ratio::from_key(ratio.key()), Some(ratio));
        }
        assert_eq!(Ratio::from_key("rps"), None);
    }
}
