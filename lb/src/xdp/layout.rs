//! Where each service lives in the BPF maps: its pair of Maglev slots and its region of the
//! `backends` / `backend_stats` arrays (pure bookkeeping, no map access).
//!
//! Contract:
//! * A service gets a slot pair (`2p`, `2p + 1`, `p < max_services`) when first placed and
//!   keeps it until removed; every [`Layout::place`] returns the slot *not* in use, so the
//!   control plane fills a table no packet reads, then switches the service entry to it.
//! * A service gets a region `[base, base + capacity)` of the backends array (capacity = its
//!   backend count, at least 1) and keeps its base while its backend count fits; when it grows
//!   beyond, it gets a new region (first fit) and the old one is reported in
//!   [`Placement::moved_from`]. A fresh region is reported in [`Placement::fresh`] (its
//!   statistics must be zeroed before use).
//! * Regions given up (moved away from, or of removed services) stay reserved until
//!   [`Layout::release`]: the caller releases them after the whole set is installed, so a region
//!   a packet may still read through an old service entry is not rewritten in the same update.
//! * Placing more services than pairs, or more backends than fit, is an error; the layout is
//!   left unchanged then.

use std::collections::HashMap;

use crate::packet::service::ServiceKey;

/// Where one service is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Region {
    /// First index in the backends array.
    pub base: u32,
    /// Number of entries reserved.
    pub capacity: u32,
}

impl Region {
    fn end(self) -> u32 {
        self.base + self.capacity
    }

    fn overlaps(self, other: Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// The outcome of placing a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The Maglev slot to fill now (the one no packet reads).
    pub slot: u32,
    /// The service's region.
    pub region: Region,
    /// The region is new: zero its statistics before pointing the service at it.
    pub fresh: bool,
    /// The region the service used before (its statistics are to be carried over).
    pub(crate) moved_from: Option<Region>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    pair: u32,
    /// Slot the service entry points at now.
    active: Option<u32>,
    region: Region,
}

/// The layout of every installed service (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    max_services: u32,
    max_backends: u32,
    placed: HashMap<ServiceKey, Entry>,
    /// Regions given up and not yet released.
    retired: Vec<Region>,
}

/// Why a service cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LayoutError {
    /// Every slot pair is in use.
    #[error("more than {0} services")]
    TooManyServices(u32),
    /// No free run of the backends array is long enough.
    #[error("no room for {wanted} backends in the {max} backend entries")]
    NoRoom {
        /// Backends asked for.
        wanted: u32,
        /// Size of the backends array.
        max: u32,
    },
}

impl Layout {
    /// An empty layout for maps of `max_services` services (slot pairs) and `max_backends`.
    pub(super) fn new(max_services: u32, max_backends: u32) -> Layout {
        Layout {
            max_services,
            max_backends,
            placed: HashMap::new(),
            retired: Vec::new(),
        }
    }

    /// The region of an installed service.
    pub(crate) fn region_of(&self, key: &ServiceKey) -> Option<Region> {
        self.placed.get(key).map(|e| e.region)
    }

    /// Keys of the installed services.
    pub(super) fn keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.placed.keys()
    }

    /// Places `key` with `backends` entries (see the module doc) and records the switch.
    pub(super) fn place(
        &mut self,
        key: ServiceKey,
        backends: u32,
    ) -> Result<Placement, LayoutError> {
        let wanted = backends.max(1);
        let existing = self.placed.get(&key).copied();
        let pair = match existing {
            Some(e) => e.pair,
            None => self.free_pair()?,
        };
        let (region, fresh, moved_from) = match existing {
            Some(e) if backends <= e.region.capacity => (e.region, false, None),
            Some(e) => (self.free_region(wanted)?, true, Some(e.region)),
            None => (self.free_region(wanted)?, true, None),
        };
        let slot = match existing.and_then(|e| e.active) {
            Some(s) if s == 2 * pair => 2 * pair + 1,
            _ => 2 * pair,
        };
        if let Some(old) = moved_from {
            self.retired.push(old);
        }
        self.placed.insert(
            key,
            Entry {
                pair,
                active: Some(slot),
                region,
            },
        );
        Ok(Placement {
            slot,
            region,
            fresh,
            moved_from,
        })
    }

    /// Forgets `key`; its region is retired. Returns whether it was placed.
    pub(super) fn remove(&mut self, key: &ServiceKey) -> bool {
        match self.placed.remove(key) {
            Some(e) => {
                self.retired.push(e.region);
                true
            }
            None => false,
        }
    }

    /// Makes the retired regions available again.
    pub(super) fn release(&mut self) {
        self.retired.clear();
    }

    fn free_pair(&self) -> Result<u32, LayoutError> {
        (0..self.max_services)
            .find(|p| self.placed.values().all(|e| e.pair != *p))
            .ok_or(LayoutError::TooManyServices(self.max_services))
    }

    /// The lowest base where `capacity` entries overlap no used or retired region.
    fn free_region(&self, capacity: u32) -> Result<Region, LayoutError> {
        let mut used: Vec<Region> = self.placed.values().map(|e| e.region).collect();
        used.extend(self.retired.iter().copied());
        used.sort_by_key(|r| r.base);
        let mut base = 0u32;
        for r in used {
            let candidate = Region { base, capacity };
            if !candidate.overlaps(r) && candidate.end() <= r.base {
                break;
            }
            base = base.max(r.end());
        }
        match base.checked_add(capacity) {
            Some(end) if end <= self.max_backends => Ok(Region { base, capacity }),
            _ => Err(LayoutError::NoRoom {
                wanted: capacity,
                max: self.max_backends,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> ServiceKey {
        ServiceKey {
            vip: [10, 0, 0, 100],
            port,
            proto: 6,
        }
    }

    #[test]
    fn slots_alternate_and_regions_stay_while_they_fit() {
        let mut l = Layout::new(4, 100);
        let a = l.place(key(80), 3).unwrap();
        assert_eq!((a.slot, a.region.base, a.region.capacity), (0, 0, 3));
        assert!(a.fresh && a.moved_from.is_none());
        let b = l.place(key(81), 2).unwrap();
        assert_eq!((b.slot, b.region.base), (2, 3));
        let a2 = l.place(key(80), 3).unwrap();
        assert_eq!((a2.slot, a2.region, a2.fresh), (1, a.region, false));
        let a3 = l.place(key(80), 2).unwrap();
        assert_eq!((a3.slot, a3.region), (0, a.region));
    }

    #[test]
    fn a_growing_service_moves_and_old_regions_wait_for_release() {
        let mut l = Layout::new(4, 10);
        l.place(key(80), 3).unwrap();
        l.place(key(81), 2).unwrap();
        let grown = l.place(key(80), 4).unwrap();
        assert_eq!(
            grown.region,
            Region {
                base: 5,
                capacity: 4
            }
        );
        assert_eq!(
            grown.moved_from,
            Some(Region {
                base: 0,
                capacity: 3
            })
        );
        assert!(grown.fresh);
        assert_eq!(grown.slot, 1);
        // The old region is retired: not reused before release.
        assert_eq!(
            l.place(key(82), 2),
            Err(LayoutError::NoRoom { wanted: 2, max: 10 })
        );
        l.release();
        let c = l.place(key(82), 2).unwrap();
        assert_eq!(
            c.region,
            Region {
                base: 0,
                capacity: 2
            }
        );
        assert_eq!(l.region_of(&key(80)), Some(grown.region));
    }

    #[test]
    fn removed_services_free_their_pair_and_region() {
        let mut l = Layout::new(2, 10);
        l.place(key(80), 0).unwrap();
        let b = l.place(key(81), 5).unwrap();
        assert_eq!(b.region.base, 1);
        assert_eq!(l.place(key(82), 1), Err(LayoutError::TooManyServices(2)));
        assert!(l.remove(&key(80)));
        assert!(!l.remove(&key(80)));
        l.release();
        let c = l.place(key(82), 1).unwrap();
        assert_eq!((c.slot, c.region.base), (0, 0));
        assert_eq!(l.keys().count(), 2);
        assert_eq!(l.place(key(83), 1), Err(LayoutError::TooManyServices(2)));
    }
}
