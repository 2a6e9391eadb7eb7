//! A bounded map whose entries expire: the store behind sticky sessions and idempotency.
//!
//! Entries live until their deadline; when the map is full the oldest insertion is evicted
//! first. Time is passed in by the caller (epoch milliseconds), so tests are deterministic.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// A bounded, expiring map. Not synchronised: wrap it in a mutex to share it.
#[derive(Debug)]
pub struct TtlMap<K, V> {
    capacity: usize,
    entries: HashMap<K, Entry<V>>,
    /// Insertion order; an item is stale when its generation no longer matches the entry's.
    order: VecDeque<(K, u64)>,
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
            entries: HashMap::new(),
            order: VecDeque::new(),
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
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|entry| &entry.value)
    }

    /// Inserts or replaces `key`, living `ttl_ms` from `now_ms`; evicts the oldest when full.
    pub fn insert(&mut self, key: K, value: V, now_ms: u64, ttl_ms: u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                value,
                expires_at_ms: now_ms.saturating_add(ttl_ms),
                generation,
            },
        );
        self.order.push_back((key, generation));
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
        self.entries.remove(key).map(|entry| entry.value)
    }

    /// Entries held, expired ones included until they are touched or evicted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn pop_oldest(&mut self) {
        while let Some((key, generation)) = self.order.pop_front() {
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                self.entries.remove(&key);
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
        assert!(map.is_empty());
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
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn order_queue_stays_bounded_under_rewrites() {
        let mut map = TtlMap::new(4);
        for i in 0..10_000u64 {
            map.insert(i % 3, i, i, 1_000_000);
        }
        assert!(map.order.len() <= 8);
        assert_eq!(map.len(), 3);
    }
}
