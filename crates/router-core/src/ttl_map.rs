//! A bounded map whose entries expire: the store behind sticky sessions and idempotency.
//!
//! Entries live until their deadline. When the map is full, expired entries go first, then
//! the oldest insertion: an entry with a long TTL is never evicted while expired ones linger.
//! Time is passed in by the caller (epoch milliseconds), so tests are deterministic.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// A bounded, expiring map. Not synchronised: wrap it in a mutex to share it.
#[derive(Debug)]
pub struct TtlMap<K, V> {
    capacity: usize,
    entries: HashMap<K, Entry<V>, foldhash::fast::RandomState>,
    /// Insertion order; an item is stale when its generation no longer matches the entry's.
    order: VecDeque<(K, u64)>,
    /// (expires at, generation) → key: the next entry to expire first.
    by_expiry: BTreeMap<(u64, u64), K>,
    next_generation: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires_at_ms: u64,
    generation: u64,
}

impl<K: Eq + Hash + Clone, V> TtlMap<K, V> {
    /// A map holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        TtlMap {
            capacity: capacity.max(1),
            entries: HashMap::default(),
            order: VecDeque::new(),
            by_expiry: BTreeMap::new(),
            next_generation: 0,
        }
    }

    /// The live value under `key`; an expired entry is removed and `None` returned.
    pub fn get<Q>(&mut self, key: &Q, now_ms: u64) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let expired = self.entries.get(key)?.expires_at_ms <= now_ms;
        if expired {
            self.remove(key);
            return None;
        }
        self.entries.get(key).map(|entry| &entry.value)
    }

    /// Inserts or replaces `key`, living `ttl_ms` from `now_ms`. When the map is full the
    /// expired entries go first, then the oldest insertions.
    pub fn insert(&mut self, key: K, value: V, now_ms: u64, ttl_ms: u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let entry = Entry {
            value,
            expires_at_ms,
            generation,
        };
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            self.by_expiry.remove(&(old.expires_at_ms, old.generation));
        }
        self.by_expiry
            .insert((expires_at_ms, generation), key.clone());
        self.order.push_back((key, generation));
        if self.entries.len() > self.capacity {
            self.purge_expired(now_ms);
        }
        while self.entries.len() > self.capacity {
            self.pop_oldest();
        }
        if self.order.len() > self.capacity.saturating_mul(2) {
            self.compact();
        }
    }

    /// Removes `key`.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entry = self.entries.remove(key)?;
        self.by_expiry
            .remove(&(entry.expires_at_ms, entry.generation));
        Some(entry.value)
    }

    /// Live entries at `now_ms` (the expired ones are dropped first).
    pub fn len(&mut self, now_ms: u64) -> usize {
        self.purge_expired(now_ms);
        self.entries.len()
    }

    /// True when nothing live is held at `now_ms`.
    pub fn is_empty(&mut self, now_ms: u64) -> bool {
        self.len(now_ms) == 0
    }

    /// Drops every entry expired at `now_ms`.
    fn purge_expired(&mut self, now_ms: u64) {
        while let Some((&(expires_at_ms, generation), _)) = self.by_expiry.first_key_value() {
            if expires_at_ms > now_ms {
                return;
            }
            if let Some(key) = self.by_expiry.remove(&(expires_at_ms, generation)) {
                if self
                    .entries
                    .get(&key)
                    .is_some_and(|e| e.generation == generation)
                {
                    self.entries.remove(&key);
                }
            }
        }
    }

    fn pop_oldest(&mut self) {
        while let Some((key, generation)) = self.order.pop_front() {
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                self.remove(&key);
                return;
            }
        }
    }

    /// Drops stale order items so the queue stays proportional to the map.
    fn compact(&mut self) {
        let entries = &self.entries;
        self.order.retain(|(key, generation)| {
            entries
                .get(key)
                .is_some_and(|e| e.generation == *generation)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let mut map = TtlMap::new(10);
        map.insert("a", 1, 1_000, 500);
        assert_eq!(map.get("a", 1_499), Some(&1));
        assert_eq!(map.get("a", 1_500), None);
        assert!(map.is_empty(1_500));
    }

    #[test]
    fn the_oldest_is_evicted_first() {
        let mut map = TtlMap::new(2);
        map.insert("a", 1, 0, 1_000);
        map.insert("b", 2, 0, 1_000);
        map.insert("a", 3, 1, 1_000); // refreshed: now the newest
        map.insert("c", 4, 2, 1_000);
        assert_eq!(map.get("b", 3), None);
        assert_eq!(map.get("a", 3), Some(&3));
        assert_eq!(map.get("c", 3), Some(&4));
        assert_eq!(map.len(3), 2);
    }

    #[test]
    fn order_queue_stays_bounded_under_rewrites() {
        let mut map = TtlMap::new(4);
        for i in 0..10_000u64 {
            map.insert(i % 3, i, i, 1_000_000);
        }
        assert!(map.order.len() <= 8);
        assert_eq!(map.len(0), 3);
    }

    #[test]
    fn expired_entries_go_before_live_ones() {
        // Two short-lived entries inserted first, then a long-lived one; once the short ones
        // have expired, a new insertion evicts them, not the long-lived entry.
        let mut map = TtlMap::new(3);
        map.insert("long", 1, 0, 1_000_000);
        map.insert("short1", 2, 1, 10);
        map.insert("short2", 3, 2, 10);
        map.insert("new", 4, 100, 1_000);
        assert_eq!(map.get("long", 100), Some(&1), "the long-lived entry stays");
        assert_eq!(map.get("new", 100), Some(&4));
        assert_eq!(map.len(100), 2, "expired entries are not counted");
    }

    #[test]
    fn len_counts_only_live_entries() {
        let mut map = TtlMap::new(10);
        map.insert("a", 1, 0, 10);
        map.insert("b", 2, 0, 100);
        assert_eq!(map.len(5), 2);
        assert_eq!(map.len(10), 1);
        assert_eq!(map.len(100), 0);
    }
}
