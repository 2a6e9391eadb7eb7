//! The headroom strategy: a draw by weight × the share of each provider's `rpm`/`tpm` left
//! in the window (1 for a provider without limits), so that traffic moves away from a
//! provider as it fills, before its limit trips.

use rand::Rng;

use crate::policy::Provider;
use crate::quota::Ask;

/// Draws one of `tier` by weight × headroom; by weight alone when no quota applies or
/// every provider is full.
pub(super) fn draw<'p>(
    tier: &[&'p Provider],
    quota: Option<&Ask<'_>>,
    rng: &mut impl Rng,
) -> Option<&'p Provider> {
    let shares: Vec<f64> = tier
        .iter()
        .map(|p| {
            let left = quota.map_or(1.0, |ask| ask.headroom(&p.name));
            if p.weight.is_finite() {
                p.weight * left
            } else {
                left
            }
        })
        .collect();
    let total: f64 = shares.iter().sum();
    if total.is_nan() || total <= 0.0 {
        let total = tier.iter().map(|p| p.weight).sum();
        return super::weighted::draw(tier, total, rng);
    }
    let mut point = rng.random::<f64>() * total;
    for (provider, share) in tier.iter().zip(&shares) {
        if point < *share {
            return Some(provider);
        }
        point -= share;
    }
    tier.last().copied()
}
