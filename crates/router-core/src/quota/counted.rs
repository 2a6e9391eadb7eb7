//! A decision under quotas ([`Router`]'s path for a policy or tenant with limits): the
//! tenant's `rpm`/`tpm` first, then a decision without the providers over their limits,
//! then the chosen provider and the tenant taken from together.

use rand::Rng;

use crate::decision::{Decision, Explanation, StickyMapping};
use crate::error::Rejection;
use crate::policy::{Policy, TenantQuota};
use crate::request::RoutingContext;
use crate::router::Router;

use super::admission::{estimated_tokens, Ask};
use super::meter::Verdict;

/// Why a counted decision did not decide.
#[derive(Debug)]
pub(crate) enum Uncounted {
    /// Refused: the rejection to answer with, and the quota that refused (scope, kind),
    /// when one did.
    Refused(Rejection, Option<(&'static str, &'static str)>),
    /// A lease is on its way from the fleet: ask again after waiting for it.
    AwaitingLease,
}

impl From<Rejection> for Uncounted {
    fn from(rejection: Rejection) -> Self {
        Uncounted::Refused(rejection, None)
    }
}

/// One counted decision's inputs.
pub(crate) struct CountedRequest<'r, 'c> {
    pub policy: &'r Policy,
    pub tenant_quota: Option<TenantQuota>,
    pub tenant_id: &'r str,
    pub context: &'r RoutingContext<'c>,
    pub now_ms: u64,
    pub may_wait: bool,
    /// Where what the decision weighed goes, when it is recorded.
    pub explain: Option<&'r mut Explanation>,
}

impl Router {
    /// Decides under quotas; the sticky mapping a weighted draw recorded goes to `sticky`.
    pub(crate) fn decide_counted(
        &self,
        request: CountedRequest<'_, '_>,
        rng: &mut impl Rng,
        sticky: &mut Option<StickyMapping>,
    ) -> Result<Decision, Uncounted> {
        let CountedRequest {
            policy,
            tenant_quota,
            tenant_id,
            context,
            now_ms,
            may_wait,
            mut explain,
        } = request;
        let tokens = estimated_tokens(context, policy)?;
        let book = self.engine().quota();
        let mut ask = Ask::new(
            book,
            policy,
            tenant_id,
            tenant_quota,
            tokens,
            now_ms,
            may_wait,
        );
        if let Some(refusal) = ask.tenant_refusal() {
            let tag = ("tenant", refusal.meter.key().kind.as_str());
            return Err(Uncounted::Refused(refusal.rejection(now_ms), Some(tag)));
        }
        loop {
            let decided = self.engine().decide_counted(
                policy,
                tenant_id,
                context,
                now_ms,
                rng,
                self.exports_sticky(),
                Some(&ask),
                explain.as_deref_mut(),
            );
            let (decision, exported) = match decided {
                Ok(decided) => decided,
                Err(rejection) => {
                    // Left with nothing because of a provider's quota: count it by the
                    // limit that left the first one out.
                    let tag = rejection
                        .details
                        .contains_key("quota_frees_in_ms")
                        .then(|| {
                            policy
                                .providers
                                .iter()
                                .find_map(|p| ask.excludes(&p.name))
                                .map_or("rpm", |(kind, _)| kind.as_str())
                        })
                        .map(|kind| ("provider", kind));
                    return Err(Uncounted::Refused(rejection, tag));
                }
            };
            match ask.take(&decision.provider_id) {
                Ok(estimate) => {
                    if !estimate.meters.is_empty() {
                        book.remember(&decision.decision_id, estimate, now_ms);
                    }
                    *sticky = exported;
                    return Ok(decision);
                }
                Err(refusal) if refusal.verdict == Verdict::Pending && may_wait => {
                    return Err(Uncounted::AwaitingLease);
                }
                Err(refusal) if Ask::is_tenant(&refusal) => {
                    let tag = ("tenant", refusal.meter.key().kind.as_str());
                    return Err(Uncounted::Refused(refusal.rejection(now_ms), Some(tag)));
                }
                Err(refusal) => {
                    if ask.refused_count() > policy.providers.len() {
                        let tag = ("provider", refusal.meter.key().kind.as_str());
                        return Err(Uncounted::Refused(refusal.rejection(now_ms), Some(tag)));
                    }
                    // Taken by another decision since it was found eligible: decide again
                    // without it.
                    ask.refuse(&decision.provider_id);
                }
            }
        }
    }
}
