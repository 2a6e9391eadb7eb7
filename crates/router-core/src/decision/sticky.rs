//! Sticky sessions (CONTRACT §4.3 step 2): a bounded, expiring map from (tenant, session
//! value) to the provider a weighted draw chose, and the mappings shared with other routers.

use std::borrow::Cow;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ttl_map::TtlMap;

/// A sticky mapping a weighted decision has just recorded, for callers that share sticky
/// sessions beyond one process (e.g. a key-value bucket read by other routers).
///
/// It names the session the way the sticky store keys it: the tenant, the policy, the
/// policy's `session_key` and the context value under it, written as text (a number as its
/// JSON text, so `42` and `"42"` are one session).
/// [`crate::DecisionEngine::remember_sticky`] imports it elsewhere. Its JSON form is the
/// value router fleets share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StickyMapping {
    /// The tenant.
    pub tenant_id: String,
    /// The policy whose sticky settings bound the session.
    pub policy_id: String,
    /// The policy's `session_key` (the context key).
    pub session_key: String,
    /// The session value (the context value under `session_key`).
    pub session: String,
    /// The provider the session is bound to.
    pub provider_id: String,
    /// How long the mapping lives from `recorded_at_ms` (the policy's sticky TTL).
    pub ttl_ms: u64,
    /// When it was recorded, epoch milliseconds.
    pub recorded_at_ms: u64,
}

impl StickyMapping {
    /// Milliseconds it still lives at `now_ms` (0 once expired).
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.recorded_at_ms
            .saturating_add(self.ttl_ms)
            .saturating_sub(now_ms)
    }
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

    /// Live sessions at `now_ms`.
    pub fn len(&self, now_ms: u64) -> usize {
        self.with(|map| map.len(now_ms))
    }

    /// What `found` makes of the provider mapped to `key`, when the mapping is live: the
    /// name is read under the lock, not copied out.
    pub fn lookup<T>(
        &self,
        key: &str,
        now_ms: u64,
        found: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        self.with(|map| found(map.get(key, now_ms)?))
    }

    /// Maps `key` to `provider` for `ttl_ms` from `now_ms`.
    pub fn record(&self, key: String, provider: &str, now_ms: u64, ttl_ms: u64) {
        self.with(|map| map.insert(key, provider.to_owned(), now_ms, ttl_ms));
    }
}

/// The text of a usable session value: a non-empty string (borrowed) or a number (as its
/// JSON text).
pub(super) fn session_value(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// The store key of a session: `tenant \0 policy \0 session_key \0 value`. The policy and
/// the name of its session key are part of it, so two policies (or two session keys) never
/// share a mapping.
pub(super) fn store_key(
    tenant_id: &str,
    policy_id: &str,
    session_key: &str,
    value: &str,
) -> String {
    let mut key = String::with_capacity(
        tenant_id.len() + policy_id.len() + session_key.len() + value.len() + 3,
    );
    for (i, part) in [tenant_id, policy_id, session_key, value]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            key.push('\u{0}');
        }
        key.push_str(part);
    }
    key
}
