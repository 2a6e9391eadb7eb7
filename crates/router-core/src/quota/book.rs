//! [`QuotaBook`]: every meter of this router, created on first use, and the estimates that
//! feedback corrects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::ttl_map::TtlMap;

use super::key::MeterKey;
use super::meter::Meter;

/// How long an estimate waits for the feedback that corrects it (ms).
const ESTIMATE_TTL_MS: u64 = 60 * 60 * 1000;
/// Most estimates held (oldest dropped first: their estimate stands).
const ESTIMATE_CAPACITY: usize = 200_000;

/// Wakes the service's sync task when a meter needs a lease or a correction must be shared.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// What one decision took from a meter that feedback can correct.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The meter.
    pub meter: Arc<Meter>,
    /// The window it was taken in.
    pub window_start_ms: u64,
    /// How much (tokens, or millionths of spend).
    pub amount: u64,
}

/// A decision's estimate, kept until its feedback arrives.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The provider's price, for spend.
    pub price: Option<crate::policy::Price>,
    /// Token and spend meters taken.
    pub taken: Vec<Taken>,
}

/// This router's meters.
pub struct QuotaBook {
    leased: bool,
    meters: RwLock<HashMap<MeterKey, Arc<Meter>, foldhash::fast::RandomState>>,
    estimates: Mutex<TtlMap<String, Estimate>>,
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
            meters: RwLock::new(HashMap::default()),
            estimates: Mutex::new(TtlMap::new(ESTIMATE_CAPACITY)),
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

    /// The meter for `key`, created with `limit` when missing; its limit follows `limit`.
    pub fn meter(&self, key: MeterKey, limit: u64) -> Arc<Meter> {
        let found = self
            .meters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let meter = match found {
            Some(meter) => meter,
            None => {
                let mut meters = self.meters.write().unwrap_or_else(|p| p.into_inner());
                meters
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(Meter::new(key, limit, self.leased)))
                    .clone()
            }
        };
        if meter.limit() != limit {
            meter.set_limit(limit);
        }
        meter
    }

    /// The meter for `key`, if a decision created it.
    pub fn find(&self, key: &MeterKey) -> Option<Arc<Meter>> {
        self.meters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// Every meter, sorted by key.
    pub fn meters(&self) -> Vec<Arc<Meter>> {
        let mut all: Vec<Arc<Meter>> = self
            .meters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.key().cmp(b.key()));
        all
    }

    /// Keeps a decision's estimate for its feedback.
    pub fn remember(&self, decision_id: &str, estimate: Estimate, now_ms: u64) {
        let mut estimates = self.estimates.lock().unwrap_or_else(|p| p.into_inner());
        estimates.insert(decision_id.to_owned(), estimate, now_ms, ESTIMATE_TTL_MS);
    }

    /// The estimate of `decision_id`, removed: a decision is corrected once.
    pub fn estimate(&self, decision_id: &str, now_ms: u64) -> Option<Estimate> {
        let mut estimates = self.estimates.lock().unwrap_or_else(|p| p.into_inner());
        estimates.get(decision_id, now_ms)?;
        estimates.remove(decision_id)
    }
}
