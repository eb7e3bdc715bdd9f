//! The connection table's layout and replacement rule: a set-associative table, the model of
//! the XDP program's `conns` map (`ebpf/lib/conntrack.h`), bit for bit where it matters.
//!
//! Contract:
//! * A table bounded at `capacity` entries has `sets_for``(capacity)` sets of `WAYS` ways:
//!   twice `capacity` ways, rounded up to a power of two sets. Keys fall into sets at random,
//!   so a set can fill while the table is not: at `capacity` live entries a set holds 4 on
//!   average and about 2% of sets are asked for a ninth (an eviction, counted); at half of it
//!   0.02%. The kernel's LRU hash costs about the same memory per entry.
//! * A key is the 16 bytes of `struct strait_conn_key` ([`key_bytes`]); its set is
//!   [`set_of`]: a multiply-xorshift hash of the key's two little-endian 64-bit words keyed by
//!   a seed (random per load in production, so which flows share a set cannot be chosen from
//!   outside), masked by `sets − 1`.
//! * Each set keeps its ways in recency order, and a half-open mark per way, in one 32-bit
//!   word ([`Order`], the program's `strait_conn_set.order` bit for bit). [`SetTable::put`]
//!   writes the way that holds the key, else the first empty way, else the set's victim: its
//!   least recently used half-open way if it has one, else its least recently used way, which
//!   is an eviction ([`Put::EvictedHalfOpen`] / [`Put::Evicted`]); the way becomes the most
//!   recently used. [`SetTable::get`] of a present key makes its way the most recently used.
//!   So an active connection is never the one evicted while its set holds an idler one.
//! * Half-open: [`SetTable::put_half_open`] (every new flow's record in `packet::decide`)
//!   marks its way half-open; a later use by a packet without SYN ([`SetTable::get_at`] with
//!   `syn` false) clears the mark; a use by a packet with SYN (a retransmitted SYN, a
//!   backend's SYN+ACK to a NAT reply entry) keeps it. So a full set evicts its half-open
//!   entries first (the least recently used first) and an established entry only when it
//!   holds none: a flood of spoofed SYNs (even those whose backends answer) or of one-packet
//!   flows churns the half-open entries, not the established ones (as long as a set is not
//!   all established). [`SetTable::put`] records an entry established (a refresh).
//! * Each way also notes when it was last recorded or used (`seen`, a 32-bit tick with bit 0
//!   cleared: the kernel's jiffies in the program, milliseconds in the userspace datapath)
//!   and, in bit 0 (`SEEN_CLOSING`), whether its flow was marked closing (a TCP FIN or RST,
//!   [`SetTable::mark_closing`]). `SetTable::get_at` with idle timeouts `idle = [open,
//!   closing]` (the one of the entry's mark applies; 0: never) finds an entry whose
//!   `now − seen` (bit 0 cleared, wrapping, as a signed 32-bit difference) exceeds its timeout
//!   `Lookup::Expired`: not used, not marked, left in its way (a record of the same key
//!   writes over it; an eviction may take it as any other). A hit sets `seen` to now, keeping
//!   the mark; a record sets it to now without the mark. [`SetTable::get`] and
//!   [`SetTable::put`] are the same at tick 0 without timeout.
//! * Flows synced from the peer director are installed by one rule for both datapaths
//!   (`place`, `SetTable::install`, module `install`): the way a record would take, a key
//!   used here after the peer's last packet kept as it is.
//! * Sets are allocated when first written ([`SetTable`] is a sparse map of sets), so a large
//!   bound costs nothing until flows arrive.

use std::collections::HashMap;

mod install;

pub(crate) use install::{place, synced_seen, Placed, Record, SetHead, Was};

/// Entries per set (`STRAIT_CONN_WAYS`).
pub(crate) const WAYS: usize = 8;

/// XOR of an order word and the plain order (`STRAIT_ORDER_IDENTITY`): position `p` holds
/// way `p`, so an all-zero word (a new set) is in order.
pub(crate) const ORDER_IDENTITY: u32 = 0xFA_C688;

/// A set's order word (`strait_conn_set.order`): bits 0..23 XOR [`ORDER_IDENTITY`] are eight
/// 3-bit positions, position 0 holding the most recently used way and 7 the least; bit
/// `24 + w` marks way `w` half-open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Order(pub(crate) u32);

impl Order {
    fn plain(self) -> u32 {
        (self.0 ^ ORDER_IDENTITY) & 0xff_ffff
    }

    /// The way at position `p` (0: the most recently used).
    pub(crate) fn way_at(self, p: usize) -> usize {
        ((self.plain() >> (3 * p)) & 7) as usize
    }

    /// Whether way `w` is marked half-open.
    pub(crate) fn half_open(self, w: usize) -> bool {
        (self.0 >> (24 + w)) & 1 == 1
    }

    /// The word after a use or record of way `w` (`strait_order_use`): `w` at position 0, the
    /// ways before it one position down, its mark set to `half_open`.
    pub(crate) fn used(self, w: usize, half_open: bool) -> Order {
        let w = w & (WAYS - 1);
        let plain = self.plain();
        let pos = (1..WAYS).rfind(|&p| self.way_at(p) == w).unwrap_or(0) as u32;
        let low = plain & ((1 << (3 * pos)) - 1);
        let high = plain & 0xff_ffff & !((1 << (3 * pos + 3)) - 1);
        let plain = (low << 3) | w as u32 | high;
        let marks = ((self.0 >> 24) & !(1 << w)) | (u32::from(half_open) << w);
        Order((plain ^ ORDER_IDENTITY) | (marks << 24))
    }

    /// The way a full set gives up (`strait_order_victim`): the least recently used
    /// half-open way, else the least recently used way.
    pub(crate) fn victim(self) -> usize {
        (0..WAYS)
            .rev()
            .map(|p| self.way_at(p))
            .find(|&w| self.half_open(w))
            .unwrap_or_else(|| self.way_at(WAYS - 1))
    }
}

/// Number of sets of a table bounded at `capacity` entries (see the module doc).
pub(crate) fn sets_for(capacity: usize) -> usize {
    capacity
        .max(1)
        .saturating_mul(2)
        .div_ceil(WAYS)
        .next_power_of_two()
}

/// Entries of the XDP program's per-CPU connection cache for a table of `capacity`
/// entries: the capacity rounded up to a power of two, at most `cache_max`.
#[cfg_attr(strait_no_bpf, allow(dead_code))] // its one user, the XDP loader, needs clang
pub(crate) fn cache_entries_for(capacity: usize, cache_max: usize) -> usize {
    capacity.max(1).next_power_of_two().min(cache_max)
}

/// The 16 bytes of `struct strait_conn_key` for a 5-tuple and a direction (`DIR_*`).
pub fn key_bytes(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    proto: u8,
    dir: u8,
) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[0..4].copy_from_slice(&src);
    k[4..8].copy_from_slice(&dst);
    k[8..10].copy_from_slice(&sport.to_be_bytes());
    k[10..12].copy_from_slice(&dport.to_be_bytes());
    k[12] = proto;
    k[13] = dir;
    k
}

/// The 64-bit hash of `key` under `seed` (`strait_conn_hash`): its set is the low bits
/// ([`set_of`]), its tag the top 7 ([`tag_of`]).
pub fn hash_of(key: &[u8; 16], seed: u64) -> u64 {
    let w0 = u64::from_le_bytes(key[0..8].try_into().expect("8 bytes"));
    let w1 = u64::from_le_bytes(key[8..16].try_into().expect("8 bytes"));
    let mut h = (w0 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 32) ^ w1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 31)
}

/// The set of `key` in a table of `mask + 1` sets under `seed` (the low bits of
/// [`hash_of`], as `strait_conn_locate`).
pub fn set_of(key: &[u8; 16], seed: u64, mask: u32) -> u32 {
    (hash_of(key, seed) as u32) & mask
}

/// Bit 7 of a way's tag: its key is a forward one (`DIR_FORWARD`).
pub(crate) const TAG_FORWARD: u8 = 0x80;

/// The tag of `key` of hash `hash` ([`hash_of`]; `strait_conn_tag`): bit 7 set for a forward
/// key, bits 0..6 the hash's top 7 bits, 1 when they are 0 (a tag of 0 is an empty way).
pub fn tag_of(key: &[u8; 16], hash: u64) -> u8 {
    let t = (hash >> 57) as u8;
    let t = t | u8::from(t == 0);
    if key[13] == crate::abi::DIR_FORWARD {
        t | TAG_FORWARD
    } else {
        t
    }
}

/// A seed for [`set_of`] that differs from process to process and from call to call (the
/// standard library's randomly keyed hasher over the time): not a secret key, but not
/// predictable from outside.
pub(crate) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one(now)
}

/// One set: the order word, and per way its last tick seen and entry.
#[derive(Debug, Clone)]
struct Set<V> {
    order: Order,
    seen: [u32; WAYS],
    ways: [Option<([u8; 16], V)>; WAYS],
}

impl<V> Default for Set<V> {
    fn default() -> Self {
        Set {
            order: Order::default(),
            seen: [0; WAYS],
            ways: std::array::from_fn(|_| None),
        }
    }
}

/// What `SetTable::get_at` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup<V> {
    /// The entry, now marked used.
    Hit(V),
    /// The key's entry, idle past the timeout: not used (see the module doc).
    Expired,
    /// No entry for the key.
    Miss,
}

/// Bit 0 of a way's `seen`: its flow was marked closing (`STRAIT_SEEN_CLOSING`).
pub(crate) const SEEN_CLOSING: u32 = 1;

/// Whether an entry last seen as `seen` is idle past its timeout at tick `now`: `idle[1]` if
/// it is marked closing, else `idle[0]` (0: never).
pub(crate) fn expired(seen: u32, now: u32, idle: [u32; 2]) -> bool {
    let timeout = idle[usize::from(seen & SEEN_CLOSING != 0)];
    timeout != 0 && idle_ticks(seen, now) > timeout
}

/// Ticks since `seen` (its mark bit cleared) at `now`: the wrapping difference as a signed
/// 32-bit age, a negative one (seen an instant "after" now, by another CPU) counted as 0.
pub(crate) fn idle_ticks(seen: u32, now: u32) -> u32 {
    let age = (now & !SEEN_CLOSING).wrapping_sub(seen & !SEEN_CLOSING) as i32;
    age.max(0) as u32
}

/// What [`SetTable::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The key was present: its entry was replaced.
    Replaced,
    /// The key took an empty way.
    Added,
    /// The key took the least recently used way of a full set, whose entry (this key's) is
    /// gone.
    Evicted([u8; 16]),
    /// The same, and the entry gone was half-open (see the module doc).
    EvictedHalfOpen([u8; 16]),
}

/// The set-associative table (see the module doc).
#[derive(Debug, Clone)]
pub struct SetTable<V> {
    sets: HashMap<u32, Set<V>>,
    mask: u32,
    seed: u64,
    len: usize,
}

impl<V: Copy> SetTable<V> {
    /// A table of `sets_for``(capacity)` sets, hashed under `seed`.
    pub fn new(capacity: usize, seed: u64) -> SetTable<V> {
        let sets = sets_for(capacity).min(1 << 31);
        SetTable {
            sets: HashMap::new(),
            mask: (sets - 1) as u32,
            seed,
            len: 0,
        }
    }

    /// Sets − 1.
    pub fn mask(&self) -> u32 {
        self.mask
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn way_of(set: &Set<V>, key: &[u8; 16]) -> Option<usize> {
        set.ways
            .iter()
            .position(|w| w.as_ref().is_some_and(|(k, _)| k == key))
    }

    /// The entry of `key`, without marking it used.
    pub fn peek(&self, key: &[u8; 16]) -> Option<V> {
        let set = self.sets.get(&set_of(key, self.seed, self.mask))?;
        Self::way_of(set, key).and_then(|w| set.ways[w].map(|(_, v)| v))
    }

    /// The entry of `key`, marking its way most recently used and established (tick 0, no
    /// timeout).
    pub fn get(&mut self, key: &[u8; 16]) -> Option<V> {
        match self.get_at(key, 0, [0, 0], false) {
            Lookup::Hit(v) => Some(v),
            Lookup::Expired | Lookup::Miss => None,
        }
    }

    /// The entry of `key` at tick `now` under idle timeouts `idle`, for a packet with SYN set
    /// or not (see the module doc).
    pub(crate) fn get_at(
        &mut self,
        key: &[u8; 16],
        now: u32,
        idle: [u32; 2],
        syn: bool,
    ) -> Lookup<V> {
        let Some(set) = self.sets.get_mut(&set_of(key, self.seed, self.mask)) else {
            return Lookup::Miss;
        };
        let Some(w) = Self::way_of(set, key) else {
            return Lookup::Miss;
        };
        if expired(set.seen[w], now, idle) {
            return Lookup::Expired;
        }
        set.order = set.order.used(w, syn && set.order.half_open(w));
        set.seen[w] = (now & !SEEN_CLOSING) | (set.seen[w] & SEEN_CLOSING);
        set.ways[w].map_or(Lookup::Miss, |(_, v)| Lookup::Hit(v))
    }

    /// Replaces the entry of `key`, if any, by `f` of it (its way's order and `seen` as they
    /// are).
    pub(crate) fn update(&mut self, key: &[u8; 16], f: impl FnOnce(V) -> V) {
        if let Some(set) = self.sets.get_mut(&set_of(key, self.seed, self.mask)) {
            if let Some(w) = Self::way_of(set, key) {
                set.ways[w] = set.ways[w].map(|(k, v)| (k, f(v)));
            }
        }
    }

    /// Marks the entry of `key`, if any, closing (see the module doc).
    pub fn mark_closing(&mut self, key: &[u8; 16]) {
        if let Some(set) = self.sets.get_mut(&set_of(key, self.seed, self.mask)) {
            if let Some(w) = Self::way_of(set, key) {
                set.seen[w] |= SEEN_CLOSING;
            }
        }
    }

    /// Records `key` → `value` at tick 0 (see the module doc for the way it takes).
    pub fn put(&mut self, key: [u8; 16], value: V) -> Put {
        self.put_at(key, value, 0)
    }

    /// Records `key` → `value` at tick `now` (see the module doc for the way it takes).
    pub(crate) fn put_at(&mut self, key: [u8; 16], value: V, now: u32) -> Put {
        self.record(key, value, now, false)
    }

    /// Records `key` → `value` at tick `now` as a half-open entry (see the module doc).
    pub(crate) fn put_half_open(&mut self, key: [u8; 16], value: V, now: u32) -> Put {
        self.record(key, value, now, true)
    }

    fn record(&mut self, key: [u8; 16], value: V, now: u32, half_open: bool) -> Put {
        let set = self
            .sets
            .entry(set_of(&key, self.seed, self.mask))
            .or_default();
        let (w, put) = if let Some(w) = Self::way_of(set, &key) {
            (w, Put::Replaced)
        } else if let Some(w) = set.ways.iter().position(Option::is_none) {
            (w, Put::Added)
        } else {
            let w = set.order.victim();
            let old = set.ways[w].map(|(k, _)| k).unwrap_or_default();
            if set.order.half_open(w) {
                (w, Put::EvictedHalfOpen(old))
            } else {
                (w, Put::Evicted(old))
            }
        };
        set.ways[w] = Some((key, value));
        set.order = set.order.used(w, half_open);
        set.seen[w] = now & !SEEN_CLOSING;
        if put == Put::Added {
            self.len += 1;
        }
        put
    }

    /// Every entry, set by set (ascending set index), way by way.
    pub fn entries(&self) -> Vec<([u8; 16], V)> {
        self.entries_seen()
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect()
    }

    /// [`SetTable::entries`] with the tick each was last seen.
    pub(crate) fn entries_seen(&self) -> Vec<([u8; 16], V, u32)> {
        self.entries_marked()
            .into_iter()
            .map(|(k, v, seen, _)| (k, v, seen))
            .collect()
    }

    /// [`SetTable::entries_seen`] with each entry's half-open mark.
    pub(crate) fn entries_marked(&self) -> Vec<([u8; 16], V, u32, bool)> {
        let mut sets: Vec<_> = self.sets.iter().collect();
        sets.sort_unstable_by_key(|(i, _)| **i);
        sets.into_iter()
            .flat_map(|(_, s)| {
                (0..WAYS)
                    .filter_map(|w| s.ways[w].map(|(k, v)| (k, v, s.seen[w], s.order.half_open(w))))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> [u8; 16] {
        key_bytes([10, 0, 0, 1], [10, 0, 0, 100], n, 80, 6, 0)
    }

    /// `n` distinct keys that fall in set 0 of a table of `mask + 1` sets.
    fn same_set(n: usize, mask: u32, seed: u64) -> Vec<[u8; 16]> {
        (1..u16::MAX)
            .map(key)
            .filter(|k| set_of(k, seed, mask) == 0)
            .take(n)
            .collect()
    }

    #[test]
    fn sets_are_a_power_of_two_holding_the_capacity() {
        assert_eq!(sets_for(0), 1);
        assert_eq!(sets_for(1), 1);
        assert_eq!(sets_for(4), 1);
        assert_eq!(sets_for(5), 2);
        assert_eq!(sets_for(1000), 256);
        assert_eq!(sets_for(1 << 20), 1 << 18);
        assert_eq!(sets_for((1 << 20) + 1), 1 << 19);
        assert_eq!(sets_for(1 << 20) * WAYS, 2 << 20);
        assert_eq!(cache_entries_for(0, 1 << 15), 1);
        assert_eq!(cache_entries_for(1000, 1 << 15), 1024);
        assert_eq!(cache_entries_for(1 << 20, 1 << 15), 1 << 15);
    }

    #[test]
    fn ways_and_the_default_capacity_are_the_abi_ones() {
        assert_eq!(crate::abi::CONN_WAYS, WAYS);
        assert_eq!(
            crate::packet::service::DEFAULT_CONN_CAPACITY,
            crate::abi::MAX_CONNS as usize
        );
    }

    #[test]
    fn hash_tag_and_set_are_pinned() {
        // Values computed apart from this code (the C's arithmetic, by hand in Python).
        let seed = 0x5eed_0f5e_7a55_0c1a;
        let forward = key_bytes([192, 168, 1, 7], [10, 0, 0, 100], 40000, 80, 6, 0);
        let reply = key_bytes([10, 0, 1, 1], [192, 168, 1, 7], 8001, 40000, 6, 1);
        let plain = key_bytes([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, 17, 0);
        assert_eq!(hash_of(&forward, seed), 0x10b7_2e27_143e_fff5);
        assert_eq!(hash_of(&reply, seed), 0xb37b_ec10_7d6a_7461);
        assert_eq!(hash_of(&plain, 0), 0xbc2f_15b8_9486_640e);
        assert_eq!(tag_of(&forward, hash_of(&forward, seed)), 0x88);
        assert_eq!(tag_of(&reply, hash_of(&reply, seed)), 0x59);
        assert_eq!(tag_of(&plain, hash_of(&plain, 0)), 0xde);
        assert_eq!(set_of(&forward, seed, 255), 245);
        assert_eq!(set_of(&reply, seed, 255), 97);
        // Top 7 bits zero: tag 1 (0 is an empty way), plus the direction.
        assert_eq!(tag_of(&forward, 0x01ff_ffff_ffff_ffff), 0x81);
        assert_eq!(tag_of(&reply, 0), 0x01);
        assert_eq!(tag_of(&reply, u64::MAX), 0x7f);
    }

    #[test]
    fn key_bytes_are_the_abi_key() {
        let k = crate::abi::ConnKey {
            src: [1, 2, 3, 4],
            dst: [5, 6, 7, 8],
            sport: 0x1234u16.to_be_bytes(),
            dport: 80u16.to_be_bytes(),
            proto: 17,
            dir: 1,
            pad: [0; 2],
        };
        // SAFETY: ConnKey is repr(C), 16 bytes, no implicit padding (abi tests).
        let raw: [u8; 16] = unsafe { std::mem::transmute(k) };
        assert_eq!(
            key_bytes([1, 2, 3, 4], [5, 6, 7, 8], 0x1234, 80, 17, 1),
            raw
        );
    }

    #[test]
    fn set_index_spreads_and_depends_on_the_seed() {
        let mask = 255;
        let mut counts = vec![0u32; 256];
        for n in 0..25_600u32 {
            let k = key_bytes(
                [10, 0, (n >> 8) as u8, n as u8],
                [10, 0, 0, 100],
                40_000,
                80,
                6,
                0,
            );
            counts[set_of(&k, 7, mask) as usize] += 1;
        }
        // 100 per set on average: a uniform hash keeps every set within 50..150.
        assert!(counts.iter().all(|&c| (50..150).contains(&c)), "{counts:?}");
        let moved = (1..1000).filter(|&n| set_of(&key(n), 1, mask) != set_of(&key(n), 2, mask));
        assert!(moved.count() > 900);
    }

    #[test]
    fn a_full_set_evicts_its_least_recently_used_way() {
        let mask = 63;
        let mut t = SetTable::new(256, 9);
        assert_eq!(t.mask(), mask);
        let k = same_set(WAYS + 2, mask, 9);
        for (i, key) in k[..WAYS].iter().enumerate() {
            assert_eq!(t.put(*key, i as u32), Put::Added);
        }
        assert_eq!(t.put(k[0], 100), Put::Replaced);
        assert_eq!(t.get(&k[1]), Some(1));
        // Recency now: k2 (oldest), k3, ..., k0, k1.
        assert_eq!(t.put(k[WAYS], 200), Put::Evicted(k[2]));
        assert_eq!(t.peek(&k[2]), None);
        assert_eq!(t.peek(&k[0]), Some(100));
        // peek does not mark: k3 is the oldest now and goes next.
        assert_eq!(t.peek(&k[3]), Some(3));
        assert_eq!(t.put(k[WAYS + 1], 300), Put::Evicted(k[3]));
        assert_eq!(t.peek(&k[3]), None);
        assert_eq!(t.len(), WAYS);
        let mut held: Vec<u32> = t.entries().iter().map(|e| e.1).collect();
        held.sort_unstable();
        let mut want: Vec<u32> = (4..WAYS as u32).chain([1, 100, 200, 300]).collect();
        want.sort_unstable();
        assert_eq!(held, want);
    }

    #[test]
    fn half_open_entries_are_evicted_first_until_used() {
        let mask = 63;
        let mut t = SetTable::new(256, 9);
        let k = same_set(WAYS + 6, mask, 9);
        // Ways 0..3 established (recorded, then used), 4..7 half-open.
        for (i, key) in k[..4].iter().enumerate() {
            t.put(*key, i as u32);
        }
        for (i, key) in k[4..WAYS].iter().enumerate() {
            assert_eq!(t.put_half_open(*key, 10 + i as u32, 0), Put::Added);
        }
        // k4 gets its next packet: established now.
        assert_eq!(t.get(&k[4]), Some(10));
        // A flood of half-open records takes the half-open ways only, the oldest first.
        assert_eq!(t.put_half_open(k[8], 20, 0), Put::EvictedHalfOpen(k[5]));
        assert_eq!(t.put_half_open(k[9], 21, 0), Put::EvictedHalfOpen(k[6]));
        assert_eq!(t.put_half_open(k[10], 22, 0), Put::EvictedHalfOpen(k[7]));
        assert_eq!(t.put_half_open(k[11], 23, 0), Put::EvictedHalfOpen(k[8]));
        for (i, key) in k[..5].iter().enumerate() {
            assert!(t.peek(key).is_some(), "established k{i} kept");
        }
        // An established record evicts a half-open one too.
        assert_eq!(t.put(k[12], 24), Put::EvictedHalfOpen(k[9]));
        // All established but two half-open: used, they are established; the LRU goes.
        t.get(&k[10]);
        t.get(&k[11]);
        assert_eq!(t.put(k[13], 25), Put::Evicted(k[0]));
    }

    /// The ways from the most recently used to the least, and the half-open ones.
    fn unpack(o: Order) -> (Vec<usize>, Vec<usize>) {
        let ways = (0..WAYS).map(|p| o.way_at(p)).collect();
        (ways, (0..WAYS).filter(|&w| o.half_open(w)).collect())
    }

    #[test]
    fn the_order_word_is_a_permutation_moved_to_front_with_marks() {
        // A new set (all zero) is in way order, nothing marked.
        let o = Order::default();
        assert_eq!(unpack(o), ((0..WAYS).collect(), vec![]));
        assert_eq!(o.victim(), 7);
        let o = o.used(5, true);
        assert_eq!(unpack(o), (vec![5, 0, 1, 2, 3, 4, 6, 7], vec![5]));
        // The least recently used half-open way goes first.
        assert_eq!(o.victim(), 5);
        let o = o.used(2, true).used(7, false);
        assert_eq!(unpack(o), (vec![7, 2, 5, 0, 1, 3, 4, 6], vec![2, 5]));
        assert_eq!(o.victim(), 5);
        // Using the first way again changes nothing; clearing its mark only the mark.
        assert_eq!(o.used(7, false), o);
        let o = o.used(5, false);
        assert_eq!(unpack(o), (vec![5, 7, 2, 0, 1, 3, 4, 6], vec![2]));
        assert_eq!(o.victim(), 2);
        let o = o.used(2, false);
        assert_eq!(o.victim(), 6, "no mark left: the least recently used");
        // The last position moves too.
        let o = o.used(6, false);
        assert_eq!(unpack(o).0, vec![6, 2, 5, 7, 0, 1, 3, 4]);
        // Exact bits, as the program computes them (a C twin in ebpf/lib/conntrack.h).
        assert_eq!(Order::default().used(5, true).0, 0x2000_F2CD);
    }

    #[test]
    fn any_sequence_of_uses_keeps_a_permutation() {
        let mut o = Order::default();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut model: Vec<usize> = (0..WAYS).collect();
        let mut marks = [false; WAYS];
        for _ in 0..10_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let (w, half) = ((rng % 8) as usize, rng & 0x100 != 0);
            o = o.used(w, half);
            model.retain(|&x| x != w);
            model.insert(0, w);
            marks[w] = half;
            let (ways, marked) = unpack(o);
            assert_eq!(ways, model);
            let want: Vec<usize> = (0..WAYS).filter(|&w| marks[w]).collect();
            assert_eq!(marked, want);
            let victim = model.iter().rev().find(|&&w| marks[w]).unwrap_or(&model[7]);
            assert_eq!(o.victim(), *victim);
        }
    }

    #[test]
    fn a_syn_does_not_establish_a_half_open_entry() {
        let mask = 63;
        let mut t = SetTable::new(256, 9);
        let k = same_set(2 * WAYS + 1, mask, 9);
        for (i, key) in k[..WAYS].iter().enumerate() {
            t.put_half_open(*key, i as u32, 0);
        }
        // k0 answered with SYN (a backend's SYN+ACK to a spoofed client): used, still
        // half-open; k1 used without SYN: established.
        assert_eq!(t.get_at(&k[0], 0, [0, 0], true), Lookup::Hit(0));
        assert_eq!(t.get_at(&k[1], 0, [0, 0], false), Lookup::Hit(1));
        assert_eq!(
            t.get_at(&k[1], 0, [0, 0], true),
            Lookup::Hit(1),
            "stays established"
        );
        // Half-open, least recently used first: k2..k7, then k0; never k1.
        for (n, gone) in [2, 3, 4, 5, 6, 7, 0].into_iter().enumerate() {
            let fresh = k[WAYS + 1 + n];
            assert_eq!(t.put(fresh, 99), Put::EvictedHalfOpen(k[gone]));
            t.get(&fresh);
        }
        assert_eq!(t.peek(&k[1]), Some(1));
        assert_eq!(
            t.put(k[WAYS], 100),
            Put::Evicted(k[1]),
            "all established: the LRU"
        );
    }

    #[test]
    fn an_entry_idle_past_its_timeout_is_expired_until_recorded_again() {
        let mut t: SetTable<u32> = SetTable::new(64, 7);
        let k = key(1);
        let idle = [100, 10];
        assert_eq!(t.get_at(&k, 10, idle, false), Lookup::Miss);
        t.put_at(k, 5, 1000);
        // Idle 100 ticks: still there (the timeout is "more than idle").
        assert_eq!(t.get_at(&k, 1100, idle, false), Lookup::Hit(5));
        // A hit refreshes: 100 more.
        assert_eq!(t.get_at(&k, 1200, idle, false), Lookup::Hit(5));
        assert_eq!(t.get_at(&k, 1302, idle, false), Lookup::Expired);
        // Expired is not a use: still expired, still held, still peekable.
        assert_eq!(t.get_at(&k, 1304, idle, false), Lookup::Expired);
        assert_eq!((t.len(), t.peek(&k)), (1, Some(5)));
        // No timeout: found whatever the idle time.
        assert_eq!(t.get_at(&k, 1_000_000, [0, 0], false), Lookup::Hit(5));
        assert_eq!(t.get_at(&k, 1_000_002, idle, false), Lookup::Hit(5));
        // Recorded again over it: fresh, the same way (no second entry).
        t.put_at(k, 6, 5_000_000);
        assert_eq!(t.get_at(&k, 5_000_100, idle, false), Lookup::Hit(6));
        assert_eq!(t.len(), 1);
        assert_eq!(t.entries_seen(), vec![(k, 6, 5_000_100)]);
        // Marked closing: the closing timeout (10), kept by later hits, cleared by a record.
        t.mark_closing(&k);
        assert_eq!(t.entries_seen(), vec![(k, 6, 5_000_101)]);
        assert_eq!(t.get_at(&k, 5_000_110, idle, false), Lookup::Hit(6));
        assert_eq!(t.entries_seen(), vec![(k, 6, 5_000_111)]);
        assert_eq!(t.get_at(&k, 5_000_122, idle, false), Lookup::Expired);
        t.put_at(k, 7, 5_000_122);
        assert_eq!(t.get_at(&k, 5_000_200, idle, false), Lookup::Hit(7));
        // Odd ticks count as the even one below (bit 0 is the mark).
        t.put_at(k, 8, 7);
        assert_eq!(t.entries_seen(), vec![(k, 8, 6)]);
        t.mark_closing(&key(99)); // absent: nothing happens
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn idle_time_wraps_and_a_tick_ahead_is_fresh() {
        // Across the 32-bit wrap.
        assert!(!expired(u32::MAX - 11, 20, [100, 0]));
        assert!(expired(u32::MAX - 101, 20, [100, 0]));
        // Seen "after" now (another CPU read jiffies a tick later): not idle at all.
        assert!(!expired(1002, 1000, [1, 1]));
        assert!(!expired(0, u32::MAX, [0, 0]));
        // The mark picks the timeout.
        assert!(!expired(100, 150, [100, 10]));
        assert!(expired(100 | SEEN_CLOSING, 150, [100, 10]));
        assert!(!expired(100 | SEEN_CLOSING, 150, [10, 0]));
        assert_eq!(idle_ticks(101, 151), 50);
    }
}
