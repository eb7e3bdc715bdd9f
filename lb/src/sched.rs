//! Schedulers: from a service's backends (id, effective weight) to its lookup table and flow
//! hash. Pure; no I/O.
//!
//! Contract:
//! * Entry `i` of a table is an index into the backend list given, so indices are the
//!   control plane's stable backend indices: a rebuild never renumbers anything.
//! * A backend of weight 0 (drained, down or unresolved) gets no entries; when no backend has
//!   a weight above 0 there is no table (`Ok(None)`): new flows are dropped, established ones
//!   keep their backend through the connection table.
//! * `maglev`: [`maglev::Table::build`] (consistent: a change moves few slots), 5-tuple hash.
//! * `wrr`: the slots are laid out as the smooth weighted round-robin sequence (stride
//!   scheduling: backend `i` is due at virtual times `(k + ½)·Σw / wᵢ`, the earliest due goes
//!   next, ties to the lower index), so each backend holds `wᵢ / Σw` of the slots (within one)
//!   spread evenly over the table; 5-tuple hash.
//! * `sh`: a Maglev table hashed on the client address only ([`FlowHash::Source`]): every
//!   connection of one client goes to one backend while the backend set is unchanged.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::maglev::{self, MaglevError, Table};
use crate::packet::service::FlowHash;

/// How a service spreads new flows over its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheduler {
    /// Weighted Maglev (the default).
    #[default]
    Maglev,
    /// Weighted round robin laid out over the table.
    Wrr,
    /// Source hashing: one backend per client address.
    Sh,
}

impl Scheduler {
    /// Name in config, logs and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Maglev => "maglev",
            Scheduler::Wrr => "wrr",
            Scheduler::Sh => "sh",
        }
    }

    /// Which fields of a new flow pick its slot.
    pub fn flow_hash(self) -> FlowHash {
        match self {
            Scheduler::Maglev | Scheduler::Wrr => FlowHash::FiveTuple,
            Scheduler::Sh => FlowHash::Source,
        }
    }

    /// The table of `size` slots over `backends` (see the module doc); `None` when no backend
    /// has a weight above 0.
    pub fn table(
        self,
        backends: &[maglev::Backend],
        size: u32,
    ) -> Result<Option<Table>, MaglevError> {
        let built = match self {
            Scheduler::Maglev | Scheduler::Sh => Table::build(backends, size),
            Scheduler::Wrr => {
                let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
                match wrr_entries(&weights, size) {
                    Some(entries) => Table::from_entries(
                        entries,
                        backends.iter().map(|b| b.id.clone()).collect(),
                    ),
                    None => Err(MaglevError::NoBackends),
                }
            }
        };
        match built {
            Ok(table) => Ok(Some(table)),
            Err(MaglevError::NoBackends) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One backend's place in the stride schedule: next due at `(2k + 1)·Σw / (2w)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    /// Numerator `(2k + 1)·Σw`.
    num: u128,
    /// Denominator `2w` (w > 0).
    den: u128,
    index: u32,
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.num * other.den)
            .cmp(&(other.num * self.den))
            .then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The smooth weighted round-robin layout of `size` slots (see the module doc); `None` when
/// every weight is 0 or `size` is 0.
pub(crate) fn wrr_entries(weights: &[u32], size: u32) -> Option<Vec<u32>> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total == 0 || size == 0 {
        return None;
    }
    let mut heap: BinaryHeap<Reverse<Due>> = weights
        .iter()
        .enumerate()
        .filter(|(_, &w)| w > 0)
        .map(|(i, &w)| {
            Reverse(Due {
                num: total,
                den: 2 * u128::from(w),
                // Backend lists are bounded far below u32::MAX by config validation.
                index: i as u32,
            })
        })
        .collect();
    let mut entries = Vec::with_capacity(size as usize);
    while entries.len() < size as usize {
        let Reverse(mut due) = heap.pop()?;
        entries.push(due.index);
        due.num += 2 * total;
        heap.push(Reverse(due));
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(weights: &[u32]) -> Vec<maglev::Backend> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| maglev::Backend {
                id: format!("10.0.0.{}:80", i + 10),
                weight: w,
            })
            .collect()
    }

    fn shares(s: Scheduler, weights: &[u32], size: u32) -> Vec<u32> {
        s.table(&backends(weights), size).unwrap().unwrap().shares()
    }

    #[test]
    fn shares_follow_weights_within_one_percent() {
        let weights = [100, 200, 50, 150];
        let total: u32 = weights.iter().sum();
        for s in [Scheduler::Maglev, Scheduler::Wrr, Scheduler::Sh] {
            let got = shares(s, &weights, 65_537);
            for (i, &w) in weights.iter().enumerate() {
                let want = f64::from(w) / f64::from(total);
                let have = f64::from(got[i]) / 65_537.0;
                assert!(
                    (want - have).abs() < 0.01,
                    "{s:?} backend {i}: {have} vs {want}"
                );
            }
        }
        // wrr is exact to one slot.
        assert_eq!(shares(Scheduler::Wrr, &[1, 3], 401), vec![100, 301]);
    }

    #[test]
    fn drained_or_down_backends_get_no_entries() {
        for s in [Scheduler::Maglev, Scheduler::Wrr, Scheduler::Sh] {
            let got = shares(s, &[100, 0, 100], 251);
            assert_eq!(got[1], 0, "{s:?}");
            assert_eq!(got[0] + got[2], 251);
            assert_eq!(s.table(&backends(&[0, 0]), 251).unwrap(), None, "{s:?}");
            assert_eq!(s.table(&[], 251).unwrap(), None, "{s:?}");
        }
        assert_eq!(
            Scheduler::Maglev.table(&backends(&[1]), 8),
            Err(MaglevError::SizeNotPrime(8))
        );
    }

    #[test]
    fn wrr_interleaves_smoothly() {
        assert_eq!(wrr_entries(&[1, 1, 1], 6).unwrap(), vec![0, 1, 2, 0, 1, 2]);
        // 5:1:1 as in nginx's smooth round robin: the heavy backend never runs 5 in a row.
        let e = wrr_entries(&[5, 1, 1], 7).unwrap();
        assert_eq!(e.iter().filter(|&&i| i == 0).count(), 5);
        assert!(e.windows(4).all(|w| w.iter().any(|&i| i != 0)), "{e:?}");
        let e = wrr_entries(&[2, 0, 1], 6).unwrap();
        assert_eq!(e, vec![0, 2, 0, 0, 2, 0]);
        assert_eq!(wrr_entries(&[0, 0], 5), None);
        // No long runs in a big table either: the longest run of one backend is bounded by
        // its weight ratio.
        let e = wrr_entries(&[300, 100], 65_537).unwrap();
        let longest = e.chunk_by(|a, b| a == b).map(<[u32]>::len).max().unwrap();
        assert!(longest <= 3, "{longest}");
    }

    #[test]
    fn source_hashing_is_stable_and_uses_the_client_only() {
        assert_eq!(Scheduler::Sh.flow_hash(), FlowHash::Source);
        assert_eq!(Scheduler::Maglev.flow_hash(), FlowHash::FiveTuple);
        assert_eq!(Scheduler::Wrr.flow_hash(), FlowHash::FiveTuple);
        let a = Scheduler::Sh
            .table(&backends(&[100, 100, 100]), 251)
            .unwrap();
        let b = Scheduler::Sh
            .table(&backends(&[100, 100, 100]), 251)
            .unwrap();
        assert_eq!(a, b);
        let table = a.unwrap();
        let client = |port: u16| crate::packet::parse::FiveTuple {
            src: [192, 0, 2, 7],
            dst: [10, 0, 0, 100],
            sport: port,
            dport: 80,
            proto: 6,
        };
        let first = table.lookup(FlowHash::Source.of(&client(1000)));
        for port in 1001..1100 {
            assert_eq!(table.lookup(FlowHash::Source.of(&client(port))), first);
        }
    }

    #[test]
    fn indices_stay_put_across_rebuilds() {
        // Backend 1 drained: the others keep their indices, and its slots are all that moves
        // for wrr's neighbours' identities (entries still index the same list).
        for s in [Scheduler::Maglev, Scheduler::Wrr, Scheduler::Sh] {
            let before = s.table(&backends(&[100, 100, 100]), 251).unwrap().unwrap();
            let after = s.table(&backends(&[100, 0, 100]), 251).unwrap().unwrap();
            for i in 0..3 {
                assert_eq!(before.backend_id(i), after.backend_id(i), "{s:?}");
            }
            assert!(after.entries().iter().all(|&e| e == 0 || e == 2), "{s:?}");
        }
        // Maglev keeps the untouched backends' slots where they were.
        let before = Scheduler::Maglev
            .table(&backends(&[100, 100, 100]), 251)
            .unwrap()
            .unwrap();
        let after = Scheduler::Maglev
            .table(&backends(&[100, 0, 100]), 251)
            .unwrap()
            .unwrap();
        let kept = before
            .entries()
            .iter()
            .zip(after.entries())
            .filter(|(b, a)| **b != 1 && b == a)
            .count();
        let unaffected = before.entries().iter().filter(|&&b| b != 1).count();
        assert!(kept * 100 >= unaffected * 90, "{kept}/{unaffected}");
    }
}
