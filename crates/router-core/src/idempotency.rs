//! Idempotent replay (CONTRACT §2, `idempotency_key`): the first decision for (tenant, key)
//! is kept for `idempotency_ttl` and returned again, marked replayed, to a repeat.

use std::sync::Mutex;

use crate::decision::Decision;
use crate::ttl_map::TtlMap;

/// The cache key of `key` for `tenant_id`.
pub fn key(tenant_id: &str, key: &str) -> String {
    format!("{tenant_id}\u{0}{key}")
}

/// First decisions by (tenant, key), bounded, oldest evicted first.
#[derive(Debug)]
pub struct IdempotencyCache {
    map: Mutex<TtlMap<String, Decision>>,
}

impl IdempotencyCache {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        IdempotencyCache {
            map: Mutex::new(TtlMap::new(capacity)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut TtlMap<String, Decision>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update; the map is still
        // valid, so keep serving.
        f(&mut self.map.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The first decision for `key` (replayed: `true`), or the one `decide` makes now, kept
    /// for `ttl_ms` when it succeeds. Lookup, decision and insertion happen under one lock:
    /// two concurrent repeats of a key never both decide.
    pub fn first_or_decide<E>(
        &self,
        key: String,
        now_ms: u64,
        ttl_ms: u64,
        decide: impl FnOnce() -> Result<Decision, E>,
    ) -> Result<(Decision, bool), E> {
        self.with(|map| {
            if let Some(first) = map.get(key.as_str(), now_ms) {
                return Ok((first.clone(), true));
            }
            let decision = decide()?;
            map.insert(key, decision.clone(), now_ms, ttl_ms);
            Ok((decision, false))
        })
    }

    /// Keeps `decision` as the first for `key` for `ttl_ms` from `now_ms`, replacing what
    /// was there (a fleet's winner learned from the shared store).
    pub fn remember(&self, key: String, decision: Decision, now_ms: u64, ttl_ms: u64) {
        self.with(|map| map.insert(key, decision, now_ms, ttl_ms));
    }
}
