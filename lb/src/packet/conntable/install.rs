//! Installing a flow synced from the peer director (`Datapath::install_synced`) into one set
//! of the connection table: the pure rule, shared by the XDP datapath (which applies it to the
//! program's sets through their mapping, `xdp::install`) and the model ([`SetTable::install`],
//! the userspace datapath's table).
//!
//! Contract of [`place`], for a key of tag `tag` (`tag_of`) and a record last seen at `seen`:
//! * the way it takes is the one a record of the program would take (`strait_table_put`,
//!   [`SetTable::put`]): the way holding the key (its tag matches and its key is the key),
//!   else the first empty way (tag 0), else the set's victim ([`Order::victim`]: the least
//!   recently used half-open way, else the least recently used way), an eviction;
//! * a way holding the key whose `seen` is later than the record's (bit 0 cleared, a signed
//!   32-bit difference, as every idle check) is kept ([`Placed::Kept`]): a packet of the flow
//!   here came after the peer's last one, and a later real packet wins;
//! * otherwise the way is written ([`Placed::Written`]) and becomes the most recently used,
//!   half-open as the record says (the order word after it is given).
//!
//! [`synced_seen`] is the `seen` of a record idle `idle` ticks at `now`, closing or not.

use super::{Order, SetTable, SEEN_CLOSING, TAG_FORWARD, WAYS};

/// What [`place`] reads of a set: its order word, and per way its tag and `seen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetHead {
    /// The order word (`strait_conn_set.order`).
    pub order: Order,
    /// Each way's tag (0: empty).
    pub tags: [u8; WAYS],
    /// Each way's last record or use (bit 0: closing).
    pub seen: [u32; WAYS],
}

/// A record to place: its key's tag, when it was last seen, whether it is half-open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// The key's tag (`tag_of`).
    pub tag: u8,
    /// Its `seen` ([`synced_seen`]).
    pub seen: u32,
    /// Half-open (evicted first until a packet without SYN uses it).
    pub half_open: bool,
}

/// What the way written held before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Was {
    /// The same key, last seen before the record.
    Held,
    /// Nothing.
    Empty,
    /// Another key, evicted: its tag (bit 7: a forward key) and whether it was half-open.
    Evicted {
        /// The evicted key's tag.
        tag: u8,
        /// It was half-open.
        half_open: bool,
    },
}

impl Was {
    /// Forward entries the write adds to the set (−1, 0 or 1), for a forward key or not.
    pub(crate) fn forward_delta(self, forward: bool) -> i64 {
        let new = i64::from(forward);
        match self {
            Was::Held => 0,
            Was::Empty => new,
            Was::Evicted { tag: old, .. } => new - i64::from(old & TAG_FORWARD != 0),
        }
    }
}

/// Where a record goes (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// The key's way was used here after the record: left as it is.
    Kept(usize),
    /// Write the record in `way`; the set's order word becomes `order`.
    Written {
        /// The way.
        way: usize,
        /// The order word after the write.
        order: Order,
        /// What the way held.
        was: Was,
    },
}

/// Whether `here` (a way's `seen`) is later than `record` (bit 0 of both cleared).
pub(crate) fn is_later(here: u32, record: u32) -> bool {
    ((here & !SEEN_CLOSING).wrapping_sub(record & !SEEN_CLOSING) as i32) > 0
}

/// The `seen` of a record idle `idle` ticks at tick `now`: bit 0 the closing mark. An idle
/// time beyond `i32::MAX` ticks counts as that (the tables' signed arithmetic).
pub(crate) fn synced_seen(now: u32, idle: u32, closing: bool) -> u32 {
    let at = now.wrapping_sub(idle.min(i32::MAX as u32)) & !SEEN_CLOSING;
    at | if closing { SEEN_CLOSING } else { 0 }
}

/// Where `record` goes in the set `head`; `holds(w)` compares way `w`'s key with the
/// record's (asked only for ways whose tag matches). See the module doc.
pub(crate) fn place(head: &SetHead, record: &Record, holds: impl Fn(usize) -> bool) -> Placed {
    let held = (0..WAYS).find(|&w| head.tags[w] == record.tag && holds(w));
    let (way, was) = match held {
        Some(w) if is_later(head.seen[w], record.seen) => return Placed::Kept(w),
        Some(w) => (w, Was::Held),
        None => match head.tags.iter().position(|&t| t == 0) {
            Some(w) => (w, Was::Empty),
            None => {
                let w = head.order.victim();
                let half_open = head.order.half_open(w);
                (
                    w,
                    Was::Evicted {
                        tag: head.tags[w],
                        half_open,
                    },
                )
            }
        },
    };
    Placed::Written {
        way,
        order: head.order.used(way, record.half_open),
        was,
    }
}

impl<V: Copy> SetTable<V> {
    /// Installs `key` → `value`, last seen at `seen` and half-open or not, by [`place`]; a
    /// key used here after `seen` is kept. The way's `seen` becomes `seen` (its closing mark
    /// included).
    pub(crate) fn install(
        &mut self,
        key: [u8; 16],
        value: V,
        seen: u32,
        half_open: bool,
    ) -> Placed {
        let seed = self.seed;
        let tag = |k: &[u8; 16]| super::tag_of(k, super::hash_of(k, seed));
        let set = self
            .sets
            .entry(super::set_of(&key, seed, self.mask))
            .or_default();
        let head = SetHead {
            order: set.order,
            tags: std::array::from_fn(|w| set.ways[w].as_ref().map_or(0, |(k, _)| tag(k))),
            seen: set.seen,
        };
        let record = Record {
            tag: tag(&key),
            seen,
            half_open,
        };
        let placed = place(&head, &record, |w| {
            set.ways[w].as_ref().is_some_and(|(k, _)| *k == key)
        });
        if let Placed::Written { way, order, was } = placed {
            set.ways[way] = Some((key, value));
            set.order = order;
            set.seen[way] = seen;
            if was == Was::Empty {
                self.len += 1;
            }
        }
        placed
    }
}

#[cfg(test)]
mod tests {
    use super::super::{key_bytes, Put};
    use super::*;

    const SEED: u64 = 0x1234_5678_9abc_def0;
    const MASK: u32 = 3;

    /// Keys `n..` that fall in set 0 of 4 sets, forward or reply ones.
    fn same_set(count: usize) -> Vec<[u8; 16]> {
        (0..u16::MAX)
            .map(|n| {
                key_bytes(
                    [10, 0, 0, 1],
                    [10, 0, 0, 100],
                    n,
                    80,
                    6,
                    (n % 3 == 0).into(),
                )
            })
            .filter(|k| super::super::set_of(k, SEED, MASK) == 0)
            .take(count)
            .collect()
    }

    #[test]
    fn an_empty_set_fills_in_way_order_half_open_as_told() {
        let head = SetHead {
            order: Order::default(),
            tags: [0x81, 0x05, 0, 0, 0, 0, 0, 0],
            seen: [0; WAYS],
        };
        let placed = place(
            &head,
            &Record {
                tag: 0x90,
                seen: 100,
                half_open: true,
            },
            |_| panic!("no tag matches"),
        );
        assert_eq!(
            placed,
            Placed::Written {
                way: 2,
                order: Order::default().used(2, true),
                was: Was::Empty
            }
        );
        assert_eq!(Was::Empty.forward_delta(true), 1);
        assert_eq!(Was::Empty.forward_delta(false), 0);
        assert_eq!(Was::Held.forward_delta(true), 0);
        let gone = |tag| Was::Evicted {
            tag,
            half_open: false,
        };
        assert_eq!(gone(0x81).forward_delta(false), -1);
        assert_eq!(gone(0x01).forward_delta(true), 1);
        assert_eq!(gone(0x81).forward_delta(true), 0);
    }

    #[test]
    fn a_key_used_here_after_the_record_is_kept_else_rewritten() {
        let mut head = SetHead {
            order: Order::default().used(3, false),
            tags: [0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88],
            seen: [1000; WAYS],
        };
        // Way 4 holds the key (tag 0x85); way 1 has the same tag, another key.
        let holds = |w| w == 4;
        head.tags[1] = 0x85;
        let record = |seen| Record {
            tag: 0x85,
            seen,
            half_open: false,
        };
        assert_eq!(place(&head, &record(998), holds), Placed::Kept(4));
        assert_eq!(
            place(&head, &record(1000), holds),
            Placed::Written {
                way: 4,
                order: head.order.used(4, false),
                was: Was::Held
            },
            "as recent: the record"
        );
        // The closing bit is no tick; across the 32-bit wrap.
        assert!(matches!(
            place(&head, &record(1001), holds),
            Placed::Written { way: 4, .. }
        ));
        head.seen[4] = 5;
        assert_eq!(place(&head, &record(u32::MAX - 10), holds), Placed::Kept(4));
        // Absent and full: the victim, half-open first.
        let absent = |_| false;
        let evicted = place(&head, &record(0), absent);
        assert_eq!(
            evicted,
            Placed::Written {
                way: 7,
                order: head.order.used(7, false),
                was: Was::Evicted {
                    tag: 0x88,
                    half_open: false
                }
            }
        );
        head.order = head.order.used(5, true).used(0, false);
        let Placed::Written { way, was, .. } = place(&head, &record(0), absent) else {
            panic!("written");
        };
        assert_eq!(
            (way, was),
            (
                5,
                Was::Evicted {
                    tag: 0x86,
                    half_open: true
                }
            )
        );
    }

    #[test]
    fn seen_counts_back_from_now_and_carries_the_closing_mark() {
        assert_eq!(synced_seen(1000, 100, false), 900);
        assert_eq!(synced_seen(1000, 101, true), (899 & !1) | 1);
        assert_eq!(synced_seen(10, 20, false), (u32::MAX - 9) & !1);
        assert_eq!(
            synced_seen(0, u32::MAX, false),
            0u32.wrapping_sub(i32::MAX as u32) & !1
        );
        assert!(is_later(902, 900) && !is_later(901, 900) && !is_later(899, 900));
        assert!(is_later(4, u32::MAX - 3));
    }

    /// A random sequence of records into one set: installing each (never kept: its `seen` is
    /// always the latest) takes the way `SetTable::put` / `put_half_open` takes, with the same
    /// order and evictions, forward and reply keys mixed.
    #[test]
    fn installs_take_the_ways_records_take() {
        let keys = same_set(24);
        let mut recorded: SetTable<u32> = SetTable::new(16, SEED);
        let mut installed: SetTable<u32> = SetTable::new(16, SEED);
        assert_eq!(recorded.mask(), MASK);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut evictions = 0;
        for step in 0..5000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = keys[(rng % keys.len() as u64) as usize];
            let half_open = rng & 0x100 != 0;
            if rng & 0x600 == 0 {
                // A packet's use of a held key, in both.
                let syn = rng & 0x800 != 0;
                let a = recorded.get_at(&key, 0, [0, 0], syn);
                assert_eq!(a, installed.get_at(&key, 0, [0, 0], syn), "step {step}");
                continue;
            }
            let put = if half_open {
                recorded.put_half_open(key, step, 0)
            } else {
                recorded.put_at(key, step, 0)
            };
            let placed = installed.install(key, step, 0, half_open);
            let Placed::Written { was, .. } = placed else {
                panic!("step {step}: kept");
            };
            match (put, was) {
                (Put::Replaced, Was::Held) | (Put::Added, Was::Empty) => {}
                (
                    Put::Evicted(old),
                    Was::Evicted {
                        tag,
                        half_open: false,
                    },
                )
                | (
                    Put::EvictedHalfOpen(old),
                    Was::Evicted {
                        tag,
                        half_open: true,
                    },
                ) => {
                    assert_eq!(tag & TAG_FORWARD != 0, old[13] == 0, "step {step}");
                    evictions += 1;
                }
                other => panic!("step {step}: {other:?}"),
            }
            assert_eq!(recorded.entries(), installed.entries(), "step {step}");
        }
        assert!(evictions > 1000, "{evictions} evictions");
        assert_eq!(recorded.len(), installed.len());
    }
}
