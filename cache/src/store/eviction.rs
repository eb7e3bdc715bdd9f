//! The glue between the RAM tier and its eviction policy (`quick_cache`, CLOCK-Pro).
//!
//! Contract:
//! * One cache entry per primary key; its value is an immutable [`Variants`] list (the Vary
//!   secondary keys of RFC 9111 §4.1), replaced copy-on-write, never mutated in place.
//! * [`KeyWeigher`] charges a key `sum of its variants' weights + key length +
//!   KEY_OVERHEAD_BYTES`; the weight of a list is computed once, when the list is built, so the
//!   weigher (called on every eviction step) is O(1) and constant for the value's lifetime, as
//!   `quick_cache` requires.
//! * [`Departures`] records every value that leaves the cache during one insert (evicted to make
//!   room, replaced, or refused as too heavy) so the caller can keep exact counters and drop the
//!   values outside the shard lock.
//!
//! Sharding rule: `quick_cache` splits the weight capacity into equal shards and refuses any
//! value heavier than one shard's "hot" budget (`HOT_ALLOCATION` × shard capacity). To admit any
//! object up to `capacity / 8`, we need `HOT_ALLOCATION × capacity / shards ≥ capacity / 8`, i.e.
//! `shards ≤ 8 × 0.97 = 7.76`; shard counts are powers of two, so [`SHARDS`] is 4 (a budget of
//! `0.2425 × capacity` per key, which leaves room for the key and its overhead above
//! `capacity / 8` once the capacity is 64 KiB or more). `quick_cache` may use fewer shards for a
//! small capacity (it wants ~32 items per shard), which only raises the per-key budget; the
//! weight capacity handed to it is rounded down to a multiple of [`SHARDS`] so the sum of the
//! shard capacities never exceeds the configured bound.

use std::sync::Arc;

use quick_cache::{Lifecycle, Weighter};

/// Shards of the RAM tier (see the module doc for why 4).
pub(crate) const SHARDS: usize = 4;

/// Share of each shard reserved for "hot" (re-referenced) keys; the `quick_cache` default. A
/// new key enters the small cold part once the hot part is full, so a one-pass scan only ever
/// churns the cold part.
pub(crate) const HOT_ALLOCATION: f64 = 0.97;

/// Bytes charged per primary key on top of its variants: the map slot, the list header and
/// the key `String`'s header. An estimate; it only has to keep tiny objects from being free.
pub const KEY_OVERHEAD_BYTES: u64 = 128;

/// Expected weight of a stored key, used only to size `quick_cache`'s ghost (recently evicted
/// keys) list and its shard count heuristic.
pub(crate) const ESTIMATED_KEY_WEIGHT: u64 = 16 * 1024;

/// The immutable list of variants stored under one primary key, oldest first.
pub(crate) struct Variants<E> {
    list: Box<[Arc<E>]>,
    /// Sum of `weight` over `list`, computed once.
    weight: u64,
}

impl<E> Variants<E> {
    /// Builds a list, computing its weight with `weight_of`.
    pub(crate) fn new(list: Vec<Arc<E>>, weight_of: impl Fn(&E) -> u64) -> Self {
        let weight = list
            .iter()
            .fold(0u64, |sum, e| sum.saturating_add(weight_of(e)));
        Self {
            list: list.into_boxed_slice(),
            weight,
        }
    }

    /// The variants, oldest first.
    pub(crate) fn list(&self) -> &[Arc<E>] {
        &self.list
    }

    /// Number of variants (stored objects) in the list.
    pub(crate) fn count(&self) -> u64 {
        self.list.len() as u64
    }

    /// Sum of the variants' weights.
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }
}

/// What one key costs in the cache besides its variants.
pub(crate) fn key_cost(key: &str) -> u64 {
    (key.len() as u64).saturating_add(KEY_OVERHEAD_BYTES)
}

/// The weight capacity handed to `quick_cache`: `capacity` rounded down to a multiple of
/// [`SHARDS`], so that any power-of-two shard count up to [`SHARDS`] divides it exactly.
pub(crate) fn sharded_capacity(capacity: u64) -> u64 {
    capacity / SHARDS as u64 * SHARDS as u64
}

/// The heaviest key (variants + key cost) one shard admits, mirroring `quick_cache`'s
/// admission rule (`weight > hot target` is refused).
pub(crate) fn admission_limit(shard_capacity: u64) -> u64 {
    // Truncation of the f64 product matches quick_cache's own computation.
    ((shard_capacity as f64 * HOT_ALLOCATION) as u64).clamp(shard_capacity.min(1), shard_capacity)
}

/// Charges a key for its variants, its length and a fixed overhead.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyWeigher;

impl<E> Weighter<String, Arc<Variants<E>>> for KeyWeigher {
    fn weight(&self, key: &String, val: &Arc<Variants<E>>) -> u64 {
        val.weight().saturating_add(key_cost(key))
    }
}

/// Collects the values that leave the cache during one request (see the module doc).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Departures;

impl<E> Lifecycle<String, Arc<Variants<E>>> for Departures {
    type RequestState = Vec<(String, Arc<Variants<E>>)>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, state: &mut Self::RequestState, key: String, val: Arc<Variants<E>>) {
        state.push((key, val));
    }
}

#[cfg(test)]
mod tests {
    use super::super::ram::tests::{any, obj, MIB};
    use super::super::ram::RamStore;
    use super::*;

    #[test]
    fn variants_weight_is_the_sum_of_entries() {
        let v = Variants::new(vec![Arc::new(10u64), Arc::new(32u64)], |w| *w);
        assert_eq!(v.weight(), 42);
        assert_eq!(v.count(), 2);
        assert_eq!(*v.list()[0], 10);
    }

    #[test]
    fn weigher_adds_key_length_and_overhead() {
        let v = Arc::new(Variants::new(vec![Arc::new(100u64)], |w| *w));
        let w = KeyWeigher.weight(&"abc".to_owned(), &v);
        assert_eq!(w, 100 + 3 + KEY_OVERHEAD_BYTES);
    }

    #[test]
    fn sharded_capacity_rounds_down_to_the_shard_count() {
        assert_eq!(sharded_capacity(1_000_003), 1_000_000);
        assert_eq!(sharded_capacity(3), 0);
        assert_eq!(sharded_capacity(1 << 20), 1 << 20);
    }

    #[test]
    fn one_eighth_of_the_capacity_fits_one_shard() {
        // The rule of the module doc, at the smallest capacity it promises (64 KiB) and at 1 GiB.
        for capacity in [64 * 1024u64, 1 << 30] {
            let shard = sharded_capacity(capacity) / SHARDS as u64;
            let budget = admission_limit(shard);
            assert!(
                budget >= capacity / 8 + key_cost(&"k".repeat(1024)),
                "capacity {capacity}: budget {budget}"
            );
        }
    }

    #[test]
    fn admission_limit_matches_the_hot_share() {
        assert_eq!(admission_limit(1000), 970);
        assert_eq!(admission_limit(1), 1);
        assert_eq!(admission_limit(0), 0);
    }

    #[test]
    fn bound_is_never_exceeded() {
        let store = RamStore::new(MIB);
        let mut inserted = 0u64;
        let mut i = 0u64;
        while inserted < 10 * MIB {
            let weight = 1000 + (i * 7919) % 20_000;
            assert!(store.insert(&format!("/obj/{i}"), obj(weight, "", 0)));
            assert!(
                store.bytes() <= store.capacity(),
                "step {i}: {}",
                store.bytes()
            );
            inserted += weight;
            i += 1;
        }
        assert!(
            store.bytes() > MIB / 2,
            "store barely used: {}",
            store.bytes()
        );
        assert!(store.evictions() > 0);
    }

    #[test]
    fn a_one_pass_scan_keeps_the_hot_set() {
        // 100 hot keys of 20 kB = ~2 MB, i.e. ~48% of 4 MiB; then a scan of distinct keys worth
        // 5x the capacity, each inserted once. With LRU (or FIFO) the store keeps the most
        // recently inserted ~4 MiB, which after the scan are all scan keys: the 2 MB of hot keys
        // fall out after the first ~2.1 MB of the 21 MB scan, and 0 of 100 survive. CLOCK-Pro
        // admits scan keys to the cold part once the hot part is full and evicts them from
        // there, so the referenced hot keys stay.
        let capacity = 4 * MIB;
        let store = RamStore::new(capacity);
        let hot: Vec<String> = (0..100).map(|i| format!("/hot/{i}")).collect();
        for key in &hot {
            assert!(store.insert(key, obj(20_000, "", 0)));
        }
        for _ in 0..3 {
            for key in &hot {
                assert!(
                    store.get(key, any).is_some(),
                    "{key} missing before the scan"
                );
            }
        }
        let scan_keys = 5 * capacity / 20_000;
        for i in 0..scan_keys {
            store.insert(&format!("/scan/{i}"), obj(20_000, "", 0));
            assert!(store.bytes() <= capacity);
        }
        let survivors = hot.iter().filter(|k| store.get(k, any).is_some()).count();
        assert!(
            survivors >= 90,
            "only {survivors} of 100 hot keys survived the scan"
        );
    }

    #[test]
    fn objects_stay_exact_after_evictions() {
        let store = RamStore::new(MIB);
        let keys: Vec<String> = (0..500).map(|i| format!("/o/{i}")).collect();
        for key in &keys {
            assert!(store.insert(key, obj(10_000, "", 0)));
        }
        let present = keys.iter().filter(|k| store.get(k, any).is_some()).count() as u64;
        assert!(store.evictions() > 0);
        assert_eq!(store.objects(), present);
        assert_eq!(store.objects() + store.evictions(), 500);
    }
}
