//! The RAM tier: a size-bounded map from primary cache key to the variants stored under it.
//!
//! Contract:
//! * Generic over the stored object ([`Entry`]); the store knows nothing of HTTP.
//! * `bytes() <= capacity()` at all times: every key is charged its variants' weights plus its
//!   length plus `KEY_OVERHEAD_BYTES`, and the eviction policy makes room before admitting.
//! * A hit is an `Arc` clone of the stored object (zero-copy); stored objects are immutable.
//! * A key holds at most [`MAX_VARIANTS`] variants (RFC 9111 §4.1 secondary keys); the oldest
//!   goes first, also when the key's total weight would exceed what one shard admits.
//! * `objects()` and `evictions()` are exact: every value leaving the eviction policy is
//!   reported through its lifecycle hook (see `eviction.rs`).
//!
//! Why `quick_cache`: an eviction policy is a solved problem, and a good one is subtle. Its
//! CLOCK-Pro variant keeps keys that were re-referenced in a large "hot" part and admits new keys
//! to a small "cold" part once the hot part is full, so a one-pass scan (a crawler, a big
//! sequential download of distinct URLs) churns only the cold part instead of flushing the
//! working set as LRU or FIFO would. It is also sharded, weight-bounded and lock-light on reads.
//!
//! Concurrency: reads take only a shard read lock. Writes to one key (read the list, build the
//! new list, insert) are serialised by a striped mutex so two concurrent inserts of different
//! variants cannot lose one; `ban_prefix` takes every stripe so a ban cannot race an insert that
//! would resurrect a banned variant.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, OptionsBuilder};

use super::eviction::{
    admission_limit, key_cost, sharded_capacity, Departures, KeyWeigher, Variants,
    ESTIMATED_KEY_WEIGHT, SHARDS,
};

/// Most variants stored under one primary key; inserting one more drops the oldest.
pub const MAX_VARIANTS: usize = 32;

/// Mutex stripes serialising writes to one key.
const WRITE_STRIPES: usize = 64;

/// What the store needs of a stored object.
pub trait Entry: Send + Sync + 'static {
    /// Bytes charged against the RAM bound: body + headers + fixed per-object overhead.
    /// Must not change during the object's lifetime.
    fn weight(&self) -> u64;
    /// Identifies the variant (Vary secondary key) among the objects of one primary key.
    fn variant_id(&self) -> &[u8];
}

type Slot<E> = Arc<Variants<E>>;

/// The RAM tier (see the module doc).
pub struct RamStore<E: Entry> {
    cache: Cache<String, Slot<E>, KeyWeigher, DefaultHashBuilder, Departures>,
    capacity: u64,
    /// Heaviest key (variants + key cost) the cache admits.
    admit_limit: u64,
    objects: AtomicU64,
    evictions: AtomicU64,
    stripes: Box<[Mutex<()>]>,
    stripe_hasher: RandomState,
}

impl<E: Entry> RamStore<E> {
    /// A store bounded to `capacity_bytes` of weight.
    pub fn new(capacity_bytes: u64) -> Self {
        let weight_capacity = sharded_capacity(capacity_bytes);
        let estimated_items = (weight_capacity / ESTIMATED_KEY_WEIGHT).max(1);
        let mut options = OptionsBuilder::new();
        options
            .shards(SHARDS)
            .hot_allocation(super::eviction::HOT_ALLOCATION)
            .weight_capacity(weight_capacity)
            .estimated_items_capacity(usize::try_from(estimated_items).unwrap_or(usize::MAX));
        // Both mandatory options are set just above, so building cannot fail; the fallback
        // exists only to avoid a panic path.
        let cache = match options.build() {
            Ok(opts) => {
                Cache::with_options(opts, KeyWeigher, DefaultHashBuilder::default(), Departures)
            }
            Err(_) => Cache::with(
                usize::try_from(estimated_items).unwrap_or(usize::MAX),
                weight_capacity,
                KeyWeigher,
                DefaultHashBuilder::default(),
                Departures,
            ),
        };
        let admit_limit = admission_limit(cache.shard_capacity());
        Self {
            cache,
            capacity: capacity_bytes,
            admit_limit,
            objects: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            stripes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            stripe_hasher: RandomState::new(),
        }
    }

    /// Hit path: the newest variant of `key` for which `pick` returns true (RFC 9111 §4.1: when
    /// several stored responses match, the most recent one is used). Zero-copy: an `Arc` clone.
    /// Counts as a reference for the eviction policy.
    pub fn get(&self, key: &str, mut pick: impl FnMut(&E) -> bool) -> Option<Arc<E>> {
        let slot = self.cache.get(key)?;
        slot.list().iter().rev().find(|e| pick(e)).cloned()
    }

    /// Inserts a variant, replacing the one with the same `variant_id`. A key holds at most
    /// [`MAX_VARIANTS`]; the oldest variants go first (also when the key would outgrow what one
    /// shard admits). Returns false if the entry was not stored: heavier than the store can
    /// ever hold (see [`Self::max_entry_weight`]), or evicted at once.
    pub fn insert(&self, key: &str, entry: Arc<E>) -> bool {
        let key_cost = key_cost(key);
        let entry_weight = entry.weight();
        if entry_weight.saturating_add(key_cost) > self.admit_limit {
            return false;
        }
        let _stripe = self.stripe(key);
        let mut kept: Vec<Arc<E>> = match self.cache.peek(key) {
            Some(old) => old
                .list()
                .iter()
                .filter(|e| e.variant_id() != entry.variant_id())
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let budget = self.admit_limit - key_cost - entry_weight;
        let mut kept_weight = kept.iter().fold(0u64, |s, e| s.saturating_add(e.weight()));
        let mut dropped = 0usize;
        while kept.len() - dropped >= MAX_VARIANTS || kept_weight > budget {
            kept_weight -= kept[dropped].weight();
            dropped += 1;
        }
        kept.drain(..dropped);
        kept.push(entry);
        self.evictions.fetch_add(dropped as u64, Ordering::Relaxed);
        self.put(key, Variants::new(kept, E::weight))
    }

    /// Removes one variant; true if it was there.
    pub fn remove_variant(&self, key: &str, variant_id: &[u8]) -> bool {
        let _stripe = self.stripe(key);
        let Some(old) = self.cache.peek(key) else {
            return false;
        };
        if !old.list().iter().any(|e| e.variant_id() == variant_id) {
            return false;
        }
        let rest: Vec<Arc<E>> = old
            .list()
            .iter()
            .filter(|e| e.variant_id() != variant_id)
            .cloned()
            .collect();
        if rest.is_empty() {
            self.remove_key(key);
        } else {
            self.put(key, Variants::new(rest, E::weight));
        }
        true
    }

    /// Removes every variant of `key`; returns how many objects were removed.
    pub fn purge(&self, key: &str) -> usize {
        let _stripe = self.stripe(key);
        self.remove_key(key)
    }

    /// Removes every object whose key starts with `prefix`; returns the count removed.
    pub fn ban_prefix(&self, prefix: &str) -> usize {
        let _all: Vec<MutexGuard<'_, ()>> = self.stripes.iter().map(|s| s.lock()).collect();
        let removed = Cell::new(0u64);
        self.cache.retain(|key, slot| {
            if key.starts_with(prefix) {
                removed.set(removed.get() + slot.count());
                false
            } else {
                true
            }
        });
        let removed = removed.get();
        self.objects.fetch_sub(removed, Ordering::Relaxed);
        usize::try_from(removed).unwrap_or(usize::MAX)
    }

    /// Stored variants (objects), exact, also after evictions.
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    /// Weight in use (never above `capacity()`).
    pub fn bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// The configured bound, in bytes of weight.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Objects evicted to make room (by the policy or by the per-key variant bound).
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// The heaviest entry `insert` accepts under an empty key (subtract the key length for a
    /// real key). At least `capacity / 8` once the capacity is 64 KiB or more.
    #[cfg(test)]
    pub fn max_entry_weight(&self) -> u64 {
        self.admit_limit.saturating_sub(key_cost(""))
    }

    fn stripe(&self, key: &str) -> MutexGuard<'_, ()> {
        let hash = self.stripe_hasher.hash_one(key);
        // The modulo keeps the index below WRITE_STRIPES, the length of `stripes`.
        let index = (hash % WRITE_STRIPES as u64) as usize;
        self.stripes[index].lock()
    }

    /// Removes `key` (caller holds its stripe); returns the objects removed.
    fn remove_key(&self, key: &str) -> usize {
        match self.cache.remove(key) {
            Some((_, slot)) => {
                self.objects.fetch_sub(slot.count(), Ordering::Relaxed);
                slot.list().len()
            }
            None => 0,
        }
    }

    /// Stores `variants` under `key` (caller holds its stripe) and settles the counters with
    /// what left the cache meanwhile. Returns false if the new list did not stay.
    fn put(&self, key: &str, variants: Variants<E>) -> bool {
        let new = Arc::new(variants);
        // Count before inserting, so a concurrent eviction of the new list never subtracts
        // objects that were not added yet.
        self.objects.fetch_add(new.count(), Ordering::Relaxed);
        let departed = self
            .cache
            .insert_with_lifecycle(key.to_owned(), new.clone());
        let mut stayed = true;
        for (departed_key, slot) in departed {
            self.objects.fetch_sub(slot.count(), Ordering::Relaxed);
            if Arc::ptr_eq(&slot, &new) {
                // Refused or evicted at once: the variants carried over from the old list were
                // stored before and are now gone; the new entry never was.
                stayed = false;
                self.evictions
                    .fetch_add(slot.count().saturating_sub(1), Ordering::Relaxed);
            } else if departed_key != key {
                self.evictions.fetch_add(slot.count(), Ordering::Relaxed);
            }
            // Otherwise: the old list of `key`, replaced by `new` (not an eviction).
        }
        stayed
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::eviction::KEY_OVERHEAD_BYTES;
    use super::*;

    pub(crate) const MIB: u64 = 1024 * 1024;

    pub(crate) struct Obj {
        weight: u64,
        variant: Vec<u8>,
        tag: u32,
    }

    impl Entry for Obj {
        fn weight(&self) -> u64 {
            self.weight
        }
        fn variant_id(&self) -> &[u8] {
            &self.variant
        }
    }

    pub(crate) fn obj(weight: u64, variant: &str, tag: u32) -> Arc<Obj> {
        Arc::new(Obj {
            weight,
            variant: variant.as_bytes().to_vec(),
            tag,
        })
    }

    pub(crate) fn any(_: &Obj) -> bool {
        true
    }

    fn variant<'a>(id: &'a str) -> impl FnMut(&Obj) -> bool + 'a {
        move |o| o.variant == id.as_bytes()
    }

    #[test]
    fn variants_share_a_key_and_replace_by_id() {
        let store = RamStore::new(MIB);
        assert!(store.insert("/k", obj(100, "gzip", 1)));
        assert!(store.insert("/k", obj(100, "br", 2)));
        assert_eq!(store.objects(), 2);
        assert_eq!(store.get("/k", variant("gzip")).map(|o| o.tag), Some(1));
        assert_eq!(store.get("/k", variant("br")).map(|o| o.tag), Some(2));
        assert!(store.get("/k", variant("zstd")).is_none());
        // Newest first when several match.
        assert_eq!(store.get("/k", any).map(|o| o.tag), Some(2));
        assert!(store.insert("/k", obj(300, "gzip", 3)));
        assert_eq!(store.objects(), 2);
        assert_eq!(store.get("/k", variant("gzip")).map(|o| o.tag), Some(3));
        assert_eq!(store.get("/k", any).map(|o| o.tag), Some(3));
        assert_eq!(store.bytes(), 100 + 300 + key_cost("/k"));
        assert_eq!(store.evictions(), 0);
    }

    #[test]
    fn a_key_holds_at_most_max_variants_oldest_first_out() {
        let store = RamStore::new(MIB);
        for i in 0..40u32 {
            assert!(store.insert("/k", obj(10, &format!("v{i}"), i)));
        }
        assert_eq!(store.objects(), MAX_VARIANTS as u64);
        assert_eq!(store.evictions(), 8);
        for i in 0..8 {
            assert!(store.get("/k", variant(&format!("v{i}"))).is_none(), "v{i}");
        }
        for i in 8..40u32 {
            let got = store.get("/k", variant(&format!("v{i}"))).map(|o| o.tag);
            assert_eq!(got, Some(i));
        }
    }

    #[test]
    fn a_key_too_heavy_for_a_shard_drops_its_oldest_variants() {
        let store = RamStore::new(MIB);
        let w = store.max_entry_weight() * 2 / 5;
        assert!(store.insert("/k", obj(w, "a", 1)));
        assert!(store.insert("/k", obj(w, "b", 2)));
        assert!(store.insert("/k", obj(w, "c", 3)));
        assert_eq!(store.objects(), 2);
        assert_eq!(store.evictions(), 1);
        assert!(store.get("/k", variant("a")).is_none());
        assert_eq!(store.get("/k", variant("c")).map(|o| o.tag), Some(3));
    }

    #[test]
    fn too_heavy_entries_are_refused_and_an_eighth_fits() {
        let store = RamStore::new(MIB);
        assert!(!store.insert("", obj(store.max_entry_weight() + 1, "", 0)));
        assert!(!store.insert("/x", obj(2 * MIB, "", 0)));
        assert_eq!(store.objects(), 0);
        assert_eq!(store.bytes(), 0);
        assert!(store.insert("/big", obj(MIB / 8, "", 0)));
        assert_eq!(store.objects(), 1);
        let fresh = RamStore::new(MIB);
        assert!(fresh.insert("", obj(fresh.max_entry_weight(), "", 0)));
        assert_eq!(fresh.objects(), 1);
        assert_eq!(fresh.bytes(), fresh.max_entry_weight() + KEY_OVERHEAD_BYTES);
    }

    #[test]
    fn remove_variant_and_purge_count() {
        let store = RamStore::new(MIB);
        for v in ["a", "b", "c"] {
            store.insert("/k", obj(10, v, 0));
        }
        store.insert("/other", obj(10, "", 0));
        assert!(store.remove_variant("/k", b"b"));
        assert!(!store.remove_variant("/k", b"b"));
        assert!(!store.remove_variant("/nope", b"a"));
        assert_eq!(store.objects(), 3);
        assert_eq!(store.purge("/k"), 2);
        assert_eq!(store.purge("/k"), 0);
        assert_eq!(store.objects(), 1);
        assert!(store.remove_variant("/other", b""));
        assert_eq!(store.objects(), 0);
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn ban_prefix_counts_and_spares_other_keys() {
        let store = RamStore::new(MIB);
        store.insert("a/1", obj(10, "", 0));
        store.insert("a/2", obj(10, "x", 0));
        store.insert("a/2", obj(10, "y", 0));
        store.insert("b/1", obj(10, "", 0));
        store.insert("ab", obj(10, "", 0));
        assert_eq!(store.ban_prefix("a/"), 3);
        assert_eq!(store.objects(), 2);
        assert!(store.get("a/1", any).is_none());
        assert!(store.get("a/2", any).is_none());
        assert!(store.get("b/1", any).is_some());
        assert!(store.get("ab", any).is_some());
        assert_eq!(store.ban_prefix("a/"), 0);
    }

    #[test]
    fn hits_are_zero_copy() {
        let store = RamStore::new(MIB);
        let stored = obj(10, "", 7);
        store.insert("/k", stored.clone());
        let (Some(a), Some(b)) = (store.get("/k", any), store.get("/k", any)) else {
            panic!("miss");
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a, &stored));
    }
}
