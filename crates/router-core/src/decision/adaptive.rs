//! The adaptive strategy: power of two choices over live latency, load and errors.
//!
//! Score = latency × (1 + outstanding decisions) ÷ weight ÷ (1 − error rate); lower wins.
//! A provider without a recent latency starts at its peers' mean. Two providers are drawn by
//! weight; the better score wins unless both are within `latency_buffer` of each other (then
//! the first draw stands, which keeps the weights). An `explore` share of decisions goes to
//! another healthy provider, so a recovered one is noticed. A provider whose error rate passes
//! `degraded_error_rate` is skipped while another is healthy.

use rand::Rng;

use crate::live::{PolicyLive, ProviderView};
use crate::policy::{AdaptiveConfig, Provider};

use super::weighted::draw;

/// Highest error rate the score divides by (keeps it finite).
const MAX_SCORED_ERROR_RATE: f64 = 0.95;

/// A provider with its score.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scored<'p> {
    pub provider: &'p Provider,
    pub score: f64,
    degraded: bool,
}

/// Scores every candidate from the live state at `now_ms`.
pub(super) fn score<'p>(
    candidates: &[&'p Provider],
    live: Option<&PolicyLive>,
    config: &AdaptiveConfig,
    now_ms: u64,
) -> Vec<Scored<'p>> {
    let views: Vec<Option<ProviderView>> = candidates
        .iter()
        .map(|p| {
            live.and_then(|l| l.provider(&p.name))
                .map(|state| state.view(now_ms, config.decay_ms))
        })
        .collect();
    let known: Vec<f64> = views
        .iter()
        .filter_map(|v| v.and_then(|v| v.latency_ms))
        .collect();
    let peers_mean = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    candidates
        .iter()
        .zip(views)
        .map(|(provider, view)| {
            let latency = view
                .and_then(|v| v.latency_ms)
                .unwrap_or(peers_mean)
                .max(1e-3);
            let outstanding = view.map_or(0, |v| v.outstanding) as f64;
            let error_rate = view.map_or(0.0, |v| v.error_rate);
            let score = latency * (1.0 + outstanding)
                / provider.weight
                / (1.0 - error_rate.min(MAX_SCORED_ERROR_RATE));
            Scored {
                provider,
                score,
                degraded: error_rate > config.degraded_error_rate,
            }
        })
        .collect()
}

/// The pick among `tier` (all of one priority): (provider, its score).
pub(super) fn pick<'p>(
    tier: &[Scored<'p>],
    config: &AdaptiveConfig,
    rng: &mut impl Rng,
) -> Option<Scored<'p>> {
    let healthy: Vec<Scored<'p>> = tier.iter().copied().filter(|s| !s.degraded).collect();
    let pool = if healthy.is_empty() {
        tier.to_vec()
    } else {
        healthy
    };
    let providers: Vec<&Provider> = pool.iter().map(|s| s.provider).collect();
    let total: f64 = providers.iter().map(|p| p.weight).sum();
    let first = draw(&providers, total, rng)?;
    let first = pool
        .iter()
        .copied()
        .find(|s| std::ptr::eq(s.provider, first))?;
    let others: Vec<&Provider> = providers
        .iter()
        .copied()
        .filter(|p| !std::ptr::eq(*p, first.provider))
        .collect();
    let Some(second) = draw(&others, others.iter().map(|p| p.weight).sum(), rng) else {
        return Some(first);
    };
    let second = pool
        .iter()
        .copied()
        .find(|s| std::ptr::eq(s.provider, second))?;
    let better = if second.score < first.score {
        second
    } else {
        first
    };
    let tied = first.score <= better.score * (1.0 + config.latency_buffer);
    let chosen = if tied { first } else { better };
    if config.explore > 0.0 && pool.len() > 1 && rng.random::<f64>() < config.explore {
        let rest: Vec<Scored<'p>> = pool
            .iter()
            .copied()
            .filter(|s| !std::ptr::eq(s.provider, chosen.provider))
            .collect();
        return rest.get(rng.random_range(0..rest.len())).copied();
    }
    Some(chosen)
}
