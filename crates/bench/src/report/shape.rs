//! [`LoadShape`]: a second load shape measured after the gated rounds (by default 1,000
//! concurrent callers instead of 64), with its own interleaved blocks and ratios. It is
//! reported beside the main figures and never judged by the gate: the gated figures, memory
//! included, are read before it runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::figures::{BlockFigures, Ratio, RoundFigures, Side, Spread};

use super::candidate::{append_rounds, both, spreads};
use super::markdown::ratio_row;

/// One extra load shape: its callers, its rounds, and the ratios of its blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadShape {
    /// Concurrent callers (the shape runs in a closed loop only).
    pub concurrency: usize,
    /// Failed requests of the router in this shape (timeouts, no responders, error replies).
    pub router_errors: u64,
    /// Router requests sent in this shape.
    pub router_requests: u64,
    /// Backpressure transitions of the router during this shape, when its /metrics was read.
    pub backpressure_active: Option<f64>,
    /// Peak RSS of the router after this shape, MiB (a high-water mark over the whole run).
    pub router_mem_mb: Option<f64>,
    /// Why the shape stopped before its last round, when it did (its rounds so far are
    /// kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Ratio medians and intervals by [`Ratio::key`].
    pub ratios: BTreeMap<String, Spread>,
    /// Every round of this shape, in order.
    pub rounds: Vec<RoundFigures>,
    /// The ratios of each block.
    pub blocks: Vec<BlockFigures>,
}

impl LoadShape {
    /// The shape measured as `rounds` at `concurrency` callers.
    pub fn new(concurrency: usize, rounds: Vec<RoundFigures>) -> LoadShape {
        let blocks = BlockFigures::from_all_rounds(&rounds);
        let router = rounds.iter().filter(|r| r.side == Side::Router);
        let (router_errors, router_requests) =
            router.fold((0, 0), |(e, n), r| (e + r.errors, n + r.requests));
        LoadShape {
            concurrency,
            router_errors,
            router_requests,
            backpressure_active: None,
            router_mem_mb: None,
            stopped: None,
            ratios: BTreeMap::new(),
            rounds,
            blocks,
        }
        .with_ratios()
    }

    fn with_ratios(mut self) -> LoadShape {
        self.ratios = spreads(&self.blocks);
        self
    }

    /// Pools `other` (the same shape in a later run) into this one.
    pub fn absorb(mut self, other: LoadShape) -> LoadShape {
        append_rounds(&mut self.rounds, other.rounds);
        self.blocks.extend(other.blocks);
        self.router_errors += other.router_errors;
        self.stopped = self.stopped.or(other.stopped);
        self.router_requests += other.router_requests;
        self.backpressure_active = both(
            self.backpressure_active,
            other.backpressure_active,
            |a, b| a + b,
        );
        self.router_mem_mb = both(self.router_mem_mb, other.router_mem_mb, f64::max);
        self.with_ratios()
    }

    /// The median of one ratio, when its blocks gave it.
    pub fn median(&self, ratio: Ratio) -> Option<f64> {
        self.ratios.get(ratio.key()).map(|s| s.median)
    }

    /// The Markdown section: a table of the ratios, then errors and backpressure.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let blocks = self.blocks.len();
        let _ = writeln!(
            md,
            "\nSecond load shape, {} concurrent callers (reported, not gated), over {blocks} \
             block(s):\n",
            self.concurrency,
        );
        let few = blocks < FEW_BLOCKS;
        if few {
            // The lowest and highest of n blocks hold the median with probability
            // 1 - 2 / 2^n only: 50 % for two blocks.
            let _ = writeln!(
                md,
                "Too few blocks for a ~90 % interval: the range is the lowest and highest \
                 block.\n"
            );
            let _ = writeln!(md, "| ratio | median | range of the blocks |");
            let _ = writeln!(md, "|---|---:|---:|");
        } else {
            let _ = writeln!(md, "| ratio | median | interval | ± |");
            let _ = writeln!(md, "|---|---:|---:|---:|");
        }
        for ratio in Ratio::ALL {
            let Some(s) = self.ratios.get(ratio.key()) else {
                continue;
            };
            if few {
                let (key, median, low, high) = (ratio.key(), s.median, s.low, s.high);
                let _ = writeln!(md, "| {key} | {median:.3} | {low:.3} – {high:.3} |");
            } else {
                ratio_row(&mut md, ratio, s);
            }
        }
        let _ = writeln!(
            md,
            "\nRouter in this shape: {} request(s), {} error(s), backpressure transitions {}, \
             peak RSS {} MiB.",
            self.router_requests,
            self.router_errors,
            self.backpressure_active
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.0}")),
            self.router_mem_mb
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
        );
        if let Some(reason) = &self.stopped {
            let _ = writeln!(md, "\nThe shape stopped early: {reason}");
        }
        md
    }
}

/// Below this many blocks the shape's table gives the range of the blocks, not an interval:
/// the lowest and highest of five blocks hold the median with probability 94 %.
const FEW_BLOCKS: usize = 5;
