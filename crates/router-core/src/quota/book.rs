//! [`QuotaBook`]: every meter of this router, created on first use, and the estimates that
//! feedback corrects.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, RwLock};

use super::key::{Kind, MeterKey, Scope};
use super::meter::Meter;

/// A map whose keys are hashes already: one multiply spreads them (no SipHash).
type HashedMap<V> = HashMap<u64, V, foldhash::fast::RandomState>;

/// How long an estimate waits for the feedback that corrects it (ms).
const ESTIMATE_TTL_MS: u64 = 60 * 60 * 1000;
/// Most estimates held (the oldest generation is dropped first: its estimates stand).
const ESTIMATE_CAPACITY: usize = 200_000;

/// Estimates in two generations: new ones go into `current`; when it holds half the
/// capacity or half the TTL passed, it becomes `previous` (and the old `previous` is
/// dropped). An insert is one hash-map insert, a lookup at most two.
#[derive(Default)]
struct Estimates {
    current: HashedMap<(u64, Estimate)>,
    previous: HashedMap<(u64, Estimate)>,
    started_ms: u64,
}

impl Estimates {
    fn insert(&mut self, id: u64, estimate: Estimate, now_ms: u64) {
        if self.current.len() >= ESTIMATE_CAPACITY / 2
            || now_ms.saturating_sub(self.started_ms) >= ESTIMATE_TTL_MS / 2
        {
            self.previous = std::mem::take(&mut self.current);
            self.started_ms = now_ms;
        }
        self.current.insert(id, (now_ms, estimate));
    }

    fn remove(&mut self, id: u64, now_ms: u64) -> Option<Estimate> {
        let (at, estimate) = self
            .current
            .remove(&id)
            .or_else(|| self.previous.remove(&id))?;
        (now_ms.saturating_sub(at) < ESTIMATE_TTL_MS).then_some(estimate)
    }
}

/// The key of a decision's estimate: its id, hashed (64 bits: a collision among the
/// estimates held is far less likely than a lost feedback report).
fn estimate_key(decision_id: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0xe571).hash_one(decision_id)
}

/// Wakes the service's sync task when a meter needs a lease or a correction must be shared.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The token and spend meters one decision took from: at most four (the provider's `tpm`,
/// the tenant's `tpm` and its two budgets), held inline.
pub type TakenMeters = smallvec::SmallVec<[Arc<Meter>; 4]>;

/// A decision's estimate, kept until its feedback arrives: what it took, in as few bytes as
/// tell it again (when, how many tokens, at which price, from which meters), since a busy
/// router holds many of them.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The provider's price, for spend.
    pub price: Option<crate::policy::Price>,
    /// When the meters were taken (each meter's window follows from it).
    pub taken_ms: u64,
    /// The tokens the decision was admitted on.
    pub tokens: u64,
    /// Token and spend meters taken.
    pub meters: TakenMeters,
}

impl Estimate {
    /// What the decision took from `meter`: its tokens, or for a spend meter their most
    /// cost at the price, in millionths.
    pub fn amount(&self, meter: &Meter) -> u64 {
        if meter.key().kind.is_spend() {
            self.price.map_or(0, |price| price.most_micros(self.tokens))
        } else {
            self.tokens
        }
    }

    /// The start of the window `meter` was taken in.
    pub fn window_start_ms(&self, meter: &Meter) -> u64 {
        meter.key().kind.window().bounds(self.taken_ms).0
    }
}

/// This router's meters.
pub struct QuotaBook {
    leased: bool,
    /// Meters by the hash of their key ([`key_hash`]), so a lookup builds no key.
    meters: RwLock<HashedMap<Vec<Arc<Meter>>>>,
    estimates: Mutex<Estimates>,
    waker: RwLock<Option<Waker>>,
}

impl std::fmt::Debug for QuotaBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaBook")
            .field("leased", &self.leased)
            .finish_non_exhaustive()
    }
}

impl QuotaBook {
    /// A book whose meters count alone (`leased` false) or hold leases from the fleet.
    pub fn new(leased: bool) -> Self {
        QuotaBook {
            leased,
            meters: RwLock::new(HashedMap::default()),
            estimates: Mutex::new(Estimates::default()),
            waker: RwLock::new(None),
        }
    }

    /// True when meters hold leases from the fleet's shared store.
    pub fn is_leased(&self) -> bool {
        self.leased
    }

    /// Sets what wakes the sync task.
    pub fn set_waker(&self, waker: Waker) {
        *self.waker.write().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }

    /// Wakes the sync task, if there is one.
    pub fn wake(&self) {
        if let Some(waker) = self
            .waker
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            waker();
        }
    }

    /// The meter of `kind` for the tenant, or for `(policy, provider)` of the tenant,
    /// created with `limit` when missing; its limit follows `limit`.
    pub fn meter_for(
        &self,
        kind: Kind,
        tenant_id: &str,
        provider: Option<(&str, &str)>,
        limit: u64,
    ) -> Arc<Meter> {
        let hash = key_hash(kind, tenant_id, provider);
        let found = {
            let meters = self.meters.read().unwrap_or_else(|p| p.into_inner());
            meters.get(&hash).and_then(|same| {
                same.iter()
                    .find(|m| matches(m.key(), kind, tenant_id, provider))
                    .cloned()
            })
        };
        let meter = match found {
            Some(meter) => meter,
            None => {
                let key = match provider {
                    None => MeterKey::tenant(tenant_id, kind),
                    Some((policy, name)) => MeterKey::provider(tenant_id, policy, name, kind),
                };
                let mut meters = self.meters.write().unwrap_or_else(|p| p.into_inner());
                let same = meters.entry(hash).or_default();
                match same
                    .iter()
                    .find(|m| matches(m.key(), kind, tenant_id, provider))
                {
                    Some(meter) => meter.clone(),
                    None => {
                        let meter = Arc::new(Meter::new(key, limit, self.leased));
                        same.push(meter.clone());
                        meter
                    }
                }
            }
        };
        if meter.limit() != limit {
            meter.set_limit(limit);
        }
        meter
    }

    /// The meter for `key`, if a decision created it.
    pub fn find(&self, key: &MeterKey) -> Option<Arc<Meter>> {
        let (tenant_id, provider) = match &key.scope {
            Scope::Tenant { tenant_id } => (tenant_id.as_str(), None),
            Scope::Provider {
                tenant_id,
                policy_id,
                provider_id,
            } => (
                tenant_id.as_str(),
                Some((policy_id.as_str(), provider_id.as_str())),
            ),
        };
        let meters = self.meters.read().unwrap_or_else(|p| p.into_inner());
        meters
            .get(&key_hash(key.kind, tenant_id, provider))?
            .iter()
            .find(|m| m.key() == key)
            .cloned()
    }

    /// Every meter, sorted by key.
    pub fn meters(&self) -> Vec<Arc<Meter>> {
        let mut all: Vec<Arc<Meter>> = self
            .meters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flatten()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.key().cmp(b.key()));
        all
    }

    /// Keeps a decision's estimate for its feedback.
    pub fn remember(&self, decision_id: &str, estimate: Estimate, now_ms: u64) {
        let mut estimates = self.estimates.lock().unwrap_or_else(|p| p.into_inner());
        estimates.insert(estimate_key(decision_id), estimate, now_ms);
    }

    /// The estimate of `decision_id`, removed: a decision is corrected once.
    pub fn estimate(&self, decision_id: &str, now_ms: u64) -> Option<Estimate> {
        let mut estimates = self.estimates.lock().unwrap_or_else(|p| p.into_inner());
        estimates.remove(estimate_key(decision_id), now_ms)
    }
}

/// The hash a meter is found by: its kind, tenant, and policy and provider.
fn key_hash(kind: Kind, tenant_id: &str, provider: Option<(&str, &str)>) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5eed).hash_one((kind, tenant_id, provider))
}

fn matches(key: &MeterKey, kind: Kind, tenant_id: &str, provider: Option<(&str, &str)>) -> bool {
    key.kind == kind
        && match (&key.scope, provider) {
            (Scope::Tenant { tenant_id: t }, None) => t == tenant_id,
            (
                Scope::Provider {
                    tenant_id: t,
                    policy_id,
                    provider_id,
                },
                Some((policy, name)),
            ) => t == tenant_id && policy_id == policy && provider_id == name,
            _ => false,
        }
}
