//! Maglev consistent hashing: weighted lookup tables for the L4 director.
//!
//! Contract: [`Table::build`] is a pure, deterministic function of the *set* of backends
//! (id and weight) and the table size. Input order does not matter, and the result is the same
//! on every machine, release and restart, so both directors of an HA pair compute identical
//! tables (see `hash` for why the hashes are hand-written). Entry `i` of a table
//! is an index into the backend slice given to `build`; [`Table::entries`] is what gets copied
//! into the BPF array map (one `u32` per slot, [`DEFAULT_TABLE_SIZE`] slots per service).
//!
//! Algorithm: Maglev (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
//! Balancer", NSDI'16, §3.4, "Pseudo-code 1: Populate Maglev hashing lookup table"), extended
//! with weights:
//! * each backend gets a permutation of the `M` slots: `offset = h1(id) % M`,
//!   `skip = h2(id) % (M - 1) + 1`, `permutation[j] = (offset + j * skip) % M`; `M` prime makes
//!   every permutation visit every slot exactly once;
//! * backends are visited in a canonical order (sorted by id, then by their position in the
//!   input for duplicate ids), in rounds; a backend claims the next free slot of its
//!   permutation when it has a turn, until all `M` slots are claimed;
//! * weights ("weighted round of turns"): at the start of each of its visits a backend adds its
//!   weight to a credit; if the credit is at least the largest weight `W`, it spends `W` and
//!   takes one turn. A backend of weight `w` therefore takes `w / W` turns per round on
//!   average (exactly `floor(r * w / W)` turns in the first `r` rounds), so its share of slots
//!   is `w / Σw` within a few slots. The heaviest backends take a turn every round, so the
//!   table fills in at most `M` rounds. With equal weights this is the paper's algorithm.
//! * weight 0 means draining: the backend keeps its index but gets no slot.
//!
//! Maglev trades a little disruption for balance: removing one of `N` equal backends moves its
//! own `1/N` of slots plus a small extra (a few percent), as the paper reports.

mod error;
mod hash;
mod prime;

pub use error::MaglevError;
pub use hash::flow_hash;

use prime::is_prime;

/// Default table size (a prime; the BPF map holds this many u32 backend indices).
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

/// Marks a slot not yet claimed while a table is being populated.
const EMPTY: u32 = u32::MAX;

/// One backend of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Stable identity hashed into the permutation, e.g. `"10.0.0.11"`. Two backends with the
    /// same id get the same permutation; keep ids unique.
    pub id: String,
    /// Relative weight; 0 = draining (no new flows).
    pub weight: u32,
}

/// A lookup table: entry `i` = index into the backend list given to [`Table::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// One backend index per slot; every slot is filled.
    entries: Vec<u32>,
    /// Ids of the backend list, by index (to compare tables built from different lists).
    ids: Vec<String>,
}

/// Per-backend population state.
struct Cursor {
    /// Index into the caller's backend list.
    index: u32,
    weight: u64,
    /// Accumulated weight not yet spent on turns.
    credit: u64,
    /// Current slot of the permutation (`permutation[next]`).
    slot: u64,
    skip: u64,
}

impl Table {
    /// Weighted Maglev population (see the module doc for the scheme).
    ///
    /// Backends with weight 0 get no entries; each other backend's share of entries is
    /// proportional to its weight (within a few entries). `size` must be prime and at least
    /// twice the number of backends with weight > 0.
    pub fn build(backends: &[Backend], size: u32) -> Result<Table, MaglevError> {
        if !is_prime(size) {
            return Err(MaglevError::SizeNotPrime(size));
        }
        let mut order: Vec<usize> = (0..backends.len())
            .filter(|&i| backends[i].weight > 0)
            .collect();
        if order.is_empty() {
            return Err(MaglevError::NoBackends);
        }
        if u64::from(size) < 2 * order.len() as u64 {
            return Err(MaglevError::SizeTooSmall {
                size,
                backends: order.len(),
            });
        }
        // Canonical order: input order must not change the table.
        order.sort_by(|&a, &b| backends[a].id.cmp(&backends[b].id).then(a.cmp(&b)));

        let m = u64::from(size);
        let mut cursors: Vec<Cursor> = order
            .iter()
            .map(|&i| {
                let b = &backends[i];
                Cursor {
                    // A list of more than u32::MAX backends (hundreds of GiB of ids) cannot
                    // occur; were it to, such a backend would map to the invalid index EMPTY.
                    index: u32::try_from(i).unwrap_or(EMPTY),
                    weight: u64::from(b.weight),
                    credit: 0,
                    slot: hash::offset_hash(&b.id) % m,
                    skip: hash::skip_hash(&b.id) % (m - 1) + 1,
                }
            })
            .collect();
        let max_weight = cursors.iter().map(|c| c.weight).max().unwrap_or(1);

        let mut entries = vec![EMPTY; size as usize];
        let mut filled = 0usize;
        'rounds: loop {
            for c in cursors.iter_mut() {
                c.credit += c.weight;
                if c.credit < max_weight {
                    continue;
                }
                c.credit -= max_weight;
                // Terminates: the permutation visits every slot and one is still empty.
                while entries[c.slot as usize] != EMPTY {
                    c.slot = (c.slot + c.skip) % m;
                }
                entries[c.slot as usize] = c.index;
                c.slot = (c.slot + c.skip) % m;
                filled += 1;
                if filled == entries.len() {
                    break 'rounds;
                }
            }
        }
        Ok(Table {
            entries,
            ids: backends.iter().map(|b| b.id.clone()).collect(),
        })
    }

    /// A table with given entries over a backend list (for schedulers other than Maglev,
    /// e.g. weighted round robin laid out over the slots): every entry must index `ids`.
    pub(crate) fn from_entries(entries: Vec<u32>, ids: Vec<String>) -> Result<Table, MaglevError> {
        if entries.is_empty() || ids.is_empty() {
            return Err(MaglevError::NoBackends);
        }
        if entries.len() > crate::abi::MAGLEV_MAX as usize {
            return Err(MaglevError::SizeTooLarge(entries.len()));
        }
        if let Some(&bad) = entries.iter().find(|&&e| e as usize >= ids.len()) {
            return Err(MaglevError::EntryOutOfRange {
                entry: bad,
                backends: ids.len(),
            });
        }
        Ok(Table { entries, ids })
    }

    /// Number of slots (`M`).
    pub fn size(&self) -> u32 {
        // Lossless: built from a `u32` size.
        self.entries.len() as u32
    }

    /// Backend index for a flow hash: the entry at `hash % size`; `None` if the table is empty.
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let slot = hash % self.entries.len() as u64;
        self.entries.get(slot as usize).copied()
    }

    /// All slots, in order: what gets copied into the BPF map.
    pub fn entries(&self) -> &[u32] {
        &self.entries
    }

    /// Id of the backend at `index` of the list the table was built from.
    pub fn backend_id(&self, index: u32) -> Option<&str> {
        self.ids.get(index as usize).map(String::as_str)
    }

    /// Number of entries per backend index (same length as the backend list).
    pub fn shares(&self) -> Vec<u32> {
        let mut shares = vec![0u32; self.ids.len()];
        for &e in &self.entries {
            if let Some(s) = shares.get_mut(e as usize) {
                *s += 1;
            }
        }
        shares
    }
}

/// Entries that point at a different backend (compared by id) in `b` than in `a`.
///
/// Meant for tables of the same size; if the sizes differ every flow moves, so the larger
/// size is returned.
pub fn disruption(a: &Table, b: &Table) -> usize {
    if a.entries.len() != b.entries.len() {
        return a.entries.len().max(b.entries.len());
    }
    a.entries
        .iter()
        .zip(&b.entries)
        .filter(|&(&x, &y)| a.backend_id(x) != b.backend_id(y))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u32 = DEFAULT_TABLE_SIZE;

    fn backend(id: &str, weight: u32) -> Backend {
        Backend {
            id: id.to_string(),
            weight,
        }
    }

    /// `n` backends of weight 100 with ids `10.0.0.1`..`10.0.0.n`.
    fn equal(n: usize) -> Vec<Backend> {
        (1..=n)
            .map(|i| backend(&format!("10.0.0.{i}"), 100))
            .collect()
    }

    fn build(backends: &[Backend]) -> Table {
        match Table::build(backends, M) {
            Ok(t) => t,
            Err(e) => panic!("build failed: {e}"),
        }
    }

    /// The table as slot -> backend id.
    fn id_map(t: &Table) -> Vec<String> {
        t.entries()
            .iter()
            .map(|&e| t.backend_id(e).unwrap().to_string())
            .collect()
    }

    fn pct(count: usize) -> f64 {
        100.0 * count as f64 / f64::from(M)
    }

    #[test]
    fn three_equal_backends_balance_fill_and_determinism() {
        let bs = equal(3);
        let t = build(&bs);
        assert_eq!(t.size(), M);
        assert_eq!(t.entries().len(), M as usize);
        assert!(t.entries().iter().all(|&e| e < 3), "unfilled or bad entry");
        let shares = t.shares();
        assert_eq!(
            shares.iter().map(|&s| s as usize).sum::<usize>(),
            M as usize
        );
        for s in &shares {
            let p = pct(*s as usize);
            assert!((p - 100.0 / 3.0).abs() <= 0.5, "share {p}% in {shares:?}");
        }
        assert_eq!(build(&bs), t);
        let shuffled = vec![bs[2].clone(), bs[0].clone(), bs[1].clone()];
        let u = build(&shuffled);
        assert_ne!(u.entries(), t.entries());
        assert_eq!(id_map(&u), id_map(&t));
        assert_eq!(disruption(&t, &u), 0);
    }

    #[test]
    fn small_table_is_pinned() {
        // Guards the algorithm and hashes: both HA directors and future releases must agree.
        let t = Table::build(&equal(3), 7).unwrap();
        // Values cross-checked with an independent implementation of the documented steps.
        assert_eq!(t.entries(), &[1, 0, 2, 0, 2, 1, 0]);
        let w = Table::build(&[backend("a", 3), backend("b", 1)], 13).unwrap();
        assert_eq!(w.entries(), &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn weights_set_shares_and_zero_drains() {
        let bs = vec![
            backend("a", 2),
            backend("b", 1),
            backend("c", 1),
            backend("d", 0),
        ];
        let t = build(&bs);
        let shares = t.shares();
        assert_eq!(shares.len(), 4);
        for (i, want) in [(0, 50.0), (1, 25.0), (2, 25.0)] {
            let p = pct(shares[i] as usize);
            assert!((p - want).abs() <= 1.0, "backend {i}: {p}% in {shares:?}");
        }
        assert_eq!(shares[3], 0);
        assert!(t.entries().iter().all(|&e| e < 3));
    }

    #[test]
    fn skewed_weights_stay_proportional() {
        let t = build(&[backend("big", 1000), backend("small", 1)]);
        // 65537 / 1001 = 65.47 slots for the small backend.
        let small = t.shares()[1];
        assert!((65..=66).contains(&small), "small got {small}");
    }

    #[test]
    fn removing_a_backend_moves_little_and_adding_it_back_restores() {
        let bs = equal(10);
        let before = build(&bs);
        let removed_share = before.shares()[3] as usize;
        let mut fewer = bs.clone();
        let gone = fewer.remove(3);
        let after = build(&fewer);
        let moved = disruption(&before, &after);
        // Every slot of the removed backend moved ...
        let removed_slots: Vec<usize> = (0..M as usize)
            .filter(|&i| before.entries()[i] == 3)
            .collect();
        assert_eq!(removed_slots.len(), removed_share);
        assert!(removed_slots
            .iter()
            .all(|&i| after.backend_id(after.entries()[i]) != Some(gone.id.as_str())));
        // ... and only a small extra share of the others.
        assert!(pct(moved) < 13.0, "moved {}%", pct(moved));
        assert!(moved >= removed_share);
        let extra = moved - removed_share;
        assert!(pct(extra) < 3.0, "extra moved {}%", pct(extra));

        fewer.push(gone);
        let restored = build(&fewer);
        assert_eq!(id_map(&restored), id_map(&before));
        assert_eq!(disruption(&before, &restored), 0);
    }

    #[test]
    fn changing_one_weight_moves_a_bounded_share() {
        let bs = equal(10);
        let before = build(&bs);
        for new_weight in [200, 50] {
            let mut changed = bs.clone();
            changed[4].weight = new_weight;
            let after = build(&changed);
            let old_share = pct(before.shares()[4] as usize);
            let new_share = pct(after.shares()[4] as usize);
            let expected = 100.0 * f64::from(new_weight) / f64::from(900 + new_weight);
            assert!((new_share - expected).abs() < 0.5, "share {new_share}%");
            let delta = (new_share - old_share).abs();
            let moved = pct(disruption(&before, &after));
            assert!(
                moved < 2.0 * delta,
                "weight {new_weight}: moved {moved}% > 2 x {delta}%"
            );
        }
    }

    #[test]
    fn errors() {
        let bs = equal(3);
        assert_eq!(
            Table::build(&bs, 65_536),
            Err(MaglevError::SizeNotPrime(65_536))
        );
        assert_eq!(Table::build(&bs, 1), Err(MaglevError::SizeNotPrime(1)));
        assert_eq!(Table::build(&bs, 0), Err(MaglevError::SizeNotPrime(0)));
        assert_eq!(
            Table::build(&bs, 5),
            Err(MaglevError::SizeTooSmall {
                size: 5,
                backends: 3
            })
        );
        assert!(Table::build(&bs, 7).is_ok());
        // Only backends with weight > 0 count towards the minimum size.
        let mut draining = bs.clone();
        draining[0].weight = 0;
        assert!(Table::build(&draining, 5).is_ok());
        assert_eq!(Table::build(&[], M), Err(MaglevError::NoBackends));
        let all_zero = vec![backend("a", 0), backend("b", 0)];
        assert_eq!(Table::build(&all_zero, M), Err(MaglevError::NoBackends));
    }

    #[test]
    fn lookup_indexes_by_hash_modulo_size() {
        let t = build(&equal(4));
        assert_eq!(t.lookup(5), Some(t.entries()[5]));
        assert_eq!(t.lookup(u64::from(M) + 5), Some(t.entries()[5]));
        assert_eq!(
            t.lookup(u64::MAX),
            Some(t.entries()[(u64::MAX % 65_537) as usize])
        );
        let empty = Table {
            entries: Vec::new(),
            ids: Vec::new(),
        };
        assert_eq!(empty.lookup(1), None);
        assert_eq!(t.backend_id(0), Some("10.0.0.1"));
        assert_eq!(t.backend_id(4), None);
    }

    #[test]
    fn disruption_counts_by_id_and_size() {
        let a = Table::build(&equal(2), 7).unwrap();
        let b = Table::build(&equal(2), 11).unwrap();
        assert_eq!(disruption(&a, &b), 11);
        assert_eq!(disruption(&a, &a), 0);
    }
}
