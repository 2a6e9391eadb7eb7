//! The weighted draw (CONTRACT §4.3 step 3): one provider with probability proportional to
//! its weight, among those whose breaker admits a call.

use rand::Rng;

use crate::policy::Provider;

/// Draws one candidate with probability proportional to its weight.
pub(super) fn draw<'p>(
    candidates: &[&'p Provider],
    total: f64,
    rng: &mut impl Rng,
) -> Option<&'p Provider> {
    let last = candidates.last()?;
    // Weights near f64::MAX can add up to infinity; then draw on weights scaled by the
    // largest one, which keeps the same proportions.
    let scale = if total.is_finite() {
        1.0
    } else {
        candidates.iter().map(|p| p.weight).fold(0.0, f64::max)
    };
    let total: f64 = if total.is_finite() {
        total
    } else {
        candidates.iter().map(|p| p.weight / scale).sum()
    };
    let mut point = rng.random::<f64>() * total;
    for provider in candidates {
        let weight = provider.weight / scale;
        if point < weight {
            return Some(provider);
        }
        point -= weight;
    }
    Some(last)
}
