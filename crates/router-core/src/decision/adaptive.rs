//! The adaptive strategy: power of two choices over live latency, load and errors.
//!
//! Score = latency × load ÷ weight ÷ (1 − error rate); lower wins. Load is
//! 1 + outstanding decisions ÷ the provider's capacity: `max_concurrency`, else what its
//! `rpm` serves at once at its latency (rpm × latency ÷ 60 s). An LLM API serves calls in
//! parallel up to its limits, so without a known capacity the load is 1: a handful of
//! calls in flight says nothing about its queue, and must not outweigh a latency gap.
//! A provider without a recent latency starts at its peers' mean. Two providers are drawn by
//! weight; the better score wins unless both are within `latency_buffer` of each other (then
//! the first draw stands, which keeps the weights). An `explore` share of decisions goes to
//! another healthy provider, so a recovered one is noticed. A provider whose error rate passes
//! `degraded_error_rate` is skipped while another is healthy.

use std::sync::Arc;

use rand::Rng;

use crate::live::{PolicyLive, ProviderLive, ProviderView};
use crate::policy::{AdaptiveConfig, Provider};

/// Highest error rate the score divides by (keeps it finite).
const MAX_SCORED_ERROR_RATE: f64 = 0.95;

/// A provider with its score.
#[derive(Debug, Clone)]
pub(super) struct Scored<'p> {
    pub provider: &'p Provider,
    pub score: f64,
    degraded: bool,
    /// Its live state, when it has one (a decision for it counts as outstanding there).
    pub live: Option<Arc<ProviderLive>>,
}

/// Scores every candidate from the live state at `now_ms`.
pub(super) fn score<'p>(
    candidates: &[&'p Provider],
    live: Option<&PolicyLive>,
    config: &AdaptiveConfig,
    now_ms: u64,
) -> Vec<Scored<'p>> {
    let states = match live {
        Some(live) => live.each(candidates.iter().map(|p| p.name.as_str())),
        None => vec![None; candidates.len()],
    };
    let views: Vec<Option<ProviderView>> = states
        .iter()
        .map(|state| state.as_ref().map(|s| s.view(now_ms, config.decay_ms)))
        .collect();
    let (sum, known) = views
        .iter()
        .filter_map(|v| v.and_then(|v| v.latency_ms))
        .fold((0.0, 0usize), |(sum, n), ms| (sum + ms, n + 1));
    let peers_mean = if known == 0 { 1.0 } else { sum / known as f64 };
    candidates
        .iter()
        .zip(views)
        .zip(states)
        .map(|((provider, view), live)| {
            let latency = view
                .and_then(|v| v.latency_ms)
                .unwrap_or(peers_mean)
                .max(1e-3);
            let outstanding = view.map_or(0, |v| v.outstanding) as f64;
            let error_rate = view.map_or(0.0, |v| v.error_rate);
            let score = latency * load(provider, outstanding, latency)
                / provider.weight
                / (1.0 - error_rate.min(MAX_SCORED_ERROR_RATE));
            Scored {
                provider,
                score,
                degraded: error_rate > config.degraded_error_rate,
                live,
            }
        })
        .collect()
}

/// 1 + `outstanding` as a share of the provider's capacity; 1 when its capacity is unknown.
fn load(provider: &Provider, outstanding: f64, latency_ms: f64) -> f64 {
    let limits = &provider.limits;
    let capacity = limits.max_concurrency.map(|c| c as f64).or_else(|| {
        limits
            .rpm
            .map(|rpm| (rpm as f64 * latency_ms / 60_000.0).max(1.0))
    });
    capacity.map_or(1.0, |c| 1.0 + outstanding / c)
}

/// A draw by weight among the entries of `scored` that `include` admits.
fn draw_where(
    scored: &[Scored<'_>],
    include: impl Fn(usize) -> bool,
    rng: &mut impl Rng,
) -> Option<usize> {
    let total: f64 = (0..scored.len())
        .filter(|i| include(*i))
        .map(|i| scored[i].provider.weight)
        .sum();
    let mut last = None;
    let mut point = rng.random::<f64>() * total;
    for i in (0..scored.len()).filter(|i| include(*i)) {
        let weight = scored[i].provider.weight;
        // Weights adding up to infinity: the first admitted entry.
        if !total.is_finite() || point < weight {
            return Some(i);
        }
        point -= weight;
        last = Some(i);
    }
    last
}

/// The pick among the entries of `scored` whose priority is `tier`: the index chosen.
pub(super) fn pick(
    scored: &[Scored<'_>],
    tier: u32,
    config: &AdaptiveConfig,
    rng: &mut impl Rng,
) -> Option<usize> {
    let in_tier = |i: usize| scored[i].provider.priority == tier;
    let any_healthy = (0..scored.len()).any(|i| in_tier(i) && !scored[i].degraded);
    let in_pool = |i: usize| in_tier(i) && (!any_healthy || !scored[i].degraded);
    let first = draw_where(scored, in_pool, rng)?;
    let chosen = match draw_where(scored, |i| i != first && in_pool(i), rng) {
        None => first,
        Some(second) => {
            let (a, b) = (scored[first].score, scored[second].score);
            // Within the buffer the first draw stands: the weights decide.
            if b < a && a > b * (1.0 + config.latency_buffer) {
                second
            } else {
                first
            }
        }
    };
    if config.explore > 0.0 && rng.random::<f64>() < config.explore {
        let others = (0..scored.len())
            .filter(|i| *i != chosen && in_pool(*i))
            .count();
        if others > 0 {
            let k = rng.random_range(0..others);
            return (0..scored.len())
                .filter(|i| *i != chosen && in_pool(*i))
                .nth(k);
        }
    }
    Some(chosen)
}
