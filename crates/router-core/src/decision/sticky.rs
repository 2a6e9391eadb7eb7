//! Sticky sessions (CONTRACT §4.3 step 2): a bounded, expiring map from (tenant, session
//! value) to the provider a weighted draw chose, and the mappings shared with other routers.

use std::sync::Mutex;

use serde_json::Value;

use crate::ttl_map::TtlMap;

/// A sticky mapping a weighted decision has just recorded, for callers that share sticky
/// sessions beyond one process (e.g. a key-value bucket read by other routers).
///
/// It names the session the way the sticky store keys it: the tenant and the context value
/// under the policy's `session_key`, written as text (a number as its JSON text, so `42`
/// and `"42"` are one session). [`DecisionEngine::remember_sticky`] imports it elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyMapping {
    /// The tenant.
    pub tenant_id: String,
    /// The session value (the context value under the policy's `session_key`).
    pub session: String,
    /// The provider the session is bound to.
    pub provider_id: String,
    /// How long the mapping lives from `recorded_at_ms` (the policy's sticky TTL).
    pub ttl_ms: u64,
    /// When it was recorded, epoch milliseconds.
    pub recorded_at_ms: u64,
}

/// The sticky store: at most `capacity` sessions, oldest evicted first, each living the
/// policy's TTL.
#[derive(Debug)]
pub struct StickyStore {
    map: Mutex<TtlMap<String, String>>,
}

impl StickyStore {
    /// A store holding at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        StickyStore {
            map: Mutex::new(TtlMap::new(capacity)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut TtlMap<String, String>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update; the map is still
        // valid, so keep serving.
        f(&mut self.map.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sessions held (expired ones included until they are evicted or read).
    pub fn len(&self) -> usize {
        self.with(|map| map.len())
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The provider mapped to `key`, when the mapping is live.
    pub fn lookup(&self, key: &str, now_ms: u64) -> Option<String> {
        self.with(|map| map.get(key, now_ms).cloned())
    }

    /// Maps `key` to `provider` for `ttl_ms` from `now_ms`.
    pub fn record(&self, key: String, provider: &str, now_ms: u64, ttl_ms: u64) {
        self.with(|map| map.insert(key, provider.to_owned(), now_ms, ttl_ms));
    }
}

/// The sticky store key `tenant \0 value` for a usable session value: a non-empty string or
/// a number.
pub(super) fn session_key(tenant_id: &str, value: &Value) -> Option<String> {
    let mut key = String::with_capacity(tenant_id.len() + 1 + 32);
    key.push_str(tenant_id);
    key.push('\u{0}');
    match value {
        Value::String(s) if !s.is_empty() => key.push_str(s),
        Value::Number(n) => {
            use std::fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(key, "{n}");
        }
        _ => return None,
    }
    Some(key)
}
