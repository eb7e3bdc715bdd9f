//! Flows synced from the peer director, written into the program's connection table from
//! userspace ([`XdpDirector::install_synced`]) through the table's mapping (`mmap`), by the
//! program's own rules (`ebpf/lib/conntrack.h`).
//!
//! Contract, for each flow:
//! * refused (counted, nothing written): its service is not installed here, its backend index
//!   is not below the service's backend count, or a set it needs stayed claimed for
//!   `abi::CONN_CLAIM_TRIES` attempts;
//! * its forward entry goes to its key's set (`conntable::set_of` under the loader's seed and
//!   mask; tag `conntable::tag_of`), in the way `conntable::place` chooses under the set's
//!   claim: the key's own way, else the first empty one, else the set's victim; a key whose
//!   way was used here after the flow's last packet on the peer is kept as it is (a later
//!   real packet wins);
//! * the entry: backend index, slot 0, service version 0 (never current: the program's slow
//!   path takes the backend against the installed service, checked below its backend count,
//!   and refreshes the entry under the installed version on the flow's first packet here,
//!   `director.bpf.c` step 3), the service's id and mode, and the synced mark (`vport` =
//!   `abi::CONN_SYNCED`; the program's record writes 0 there, clearing it); written as the
//!   program's record writes a way (key and entry, tag, write count + 1), `seen` = now − the
//!   flow's idle time (jiffies at the measured rate, closing bit as its state says), the
//!   most recently used way, half-open as its state says;
//! * a NAT flow's reply entry (backend address and port → client; the VIP and port to
//!   restore) follows in its own set by the same rule, once the forward entry is written,
//!   without the closing bit; both sets are claimed before either is written, so a flow is
//!   installed whole or refused;
//! * forward entries gained or lost (an empty way filled, a forward key evicted by a reply
//!   key or the reverse) move a userspace delta that [`XdpDirector::conn_forward`] adds to the
//!   program's gauge.

use std::collections::HashMap;

use super::mmap::{ConnsMap, SetRef};
use super::{Error, XdpDirector};
use crate::abi;
use crate::datapath::{ticks_of, Installed, SyncedFlow};
use crate::packet::conntable::{self, place, Placed, Record};
use crate::packet::parse::FiveTuple;
use crate::packet::service::{Mode, Service, ServiceKey};
use crate::sync::FlowState;

/// What a synced flow needs of an installed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncTarget {
    /// Its id (`service_gen` index).
    id: u8,
    /// Its `MODE_*`.
    mode: u8,
    /// Its backends' addresses and NAT ports, by index.
    backends: Vec<([u8; 4], u16)>,
}

impl SyncTarget {
    /// The target of `service` installed with id `id` and mode `mode` (`abi::MODE_*`).
    pub(crate) fn of(service: &Service, id: u8, mode: u8) -> SyncTarget {
        SyncTarget {
            id,
            mode,
            backends: service.backends.iter().map(|b| (b.ip, b.port)).collect(),
        }
    }
}

/// One entry to write: its key, its 16 value bytes, its `seen`.
struct Entry {
    key: [u8; 16],
    value: [u8; 16],
    seen: u32,
}

/// The 16 bytes of `struct strait_conn`.
fn conn_bytes(c: &abi::Conn) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&c.backend.to_ne_bytes());
    b[2..4].copy_from_slice(&c.slot.to_ne_bytes());
    b[4..8].copy_from_slice(&c.vip);
    b[8..10].copy_from_slice(&c.vport);
    b[10] = c.id;
    b[11] = c.mode;
    b[12..16].copy_from_slice(&c.gen.to_ne_bytes());
    b
}

fn key_of(t: &FiveTuple, dir: u8) -> [u8; 16] {
    conntable::key_bytes(t.src, t.dst, t.sport, t.dport, t.proto, dir)
}

/// The entries of flow `f` to `target`, last seen at `seen` (see the module doc); `None`
/// when its backend index is outside the list.
fn entries_of(f: &SyncedFlow, target: &SyncTarget, seen: u32) -> Option<(Entry, Option<Entry>)> {
    let &(ip, port) = target.backends.get(usize::try_from(f.backend).ok()?)?;
    let t = &f.tuple;
    let forward = Entry {
        key: key_of(t, abi::DIR_FORWARD),
        value: conn_bytes(&abi::Conn {
            backend: u16::try_from(f.backend).ok()?,
            slot: 0,
            vip: [0; 4],
            vport: abi::CONN_SYNCED,
            id: target.id,
            mode: target.mode,
            gen: 0,
        }),
        seen,
    };
    let reply = (target.mode == abi::MODE_NAT).then(|| {
        let reply = FiveTuple {
            src: ip,
            dst: t.src,
            sport: port,
            dport: t.sport,
            proto: t.proto,
        };
        Entry {
            key: key_of(&reply, abi::DIR_REPLY),
            value: conn_bytes(&abi::Conn {
                vip: t.dst,
                vport: t.dport.to_be_bytes(),
                ..abi::Conn::default()
            }),
            seen: seen & !conntable::SEEN_CLOSING,
        }
    });
    Some((forward, reply))
}

/// Where an entry went in its (claimed) set, written; the forward entries it added.
fn put(set: SetRef<'_>, e: &Entry, seed: u64, half_open: bool) -> (Placed, i64) {
    let tag = conntable::tag_of(&e.key, conntable::hash_of(&e.key, seed));
    let record = Record {
        tag,
        seen: e.seen,
        half_open,
    };
    let placed = place(&set.head(), &record, |w| set.holds(w, &e.key));
    let Placed::Written { way, was, .. } = placed else {
        return (placed, 0);
    };
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&e.key);
    bytes[16..].copy_from_slice(&e.value);
    set.write(way, &bytes, tag, e.seen, half_open);
    (placed, was.forward_delta(e.key[13] == abi::DIR_FORWARD))
}

/// The table's geometry: the mapping, the hash seed and the set mask.
struct Table<'a> {
    map: &'a ConnsMap,
    seed: u64,
    mask: u32,
}

impl Table<'_> {
    fn set_of(&self, key: &[u8; 16]) -> Option<(u32, SetRef<'_>)> {
        let index = conntable::set_of(key, self.seed, self.mask);
        self.map.set(index).map(|s| (index, s))
    }

    /// Installs one flow's entries (see the module doc): `None` when refused for a held
    /// set, else the placements and the forward entries gained.
    fn install(
        &self,
        forward: &Entry,
        reply: Option<&Entry>,
        half_open: bool,
    ) -> Option<(Placed, Option<Placed>, i64)> {
        let (f_index, f_set) = self.set_of(&forward.key)?;
        let r_set = match reply {
            Some(r) => Some(self.set_of(&r.key)?),
            None => None,
        };
        if !f_set.claim() {
            return None;
        }
        // The reply's set, claimed too unless it is the same one.
        let other = r_set.filter(|(i, _)| *i != f_index).map(|(_, s)| s);
        if other.is_some_and(|s| !s.claim()) {
            f_set.release();
            return None;
        }
        let (f_placed, mut gained) = put(f_set, forward, self.seed, half_open);
        let mut r_placed = None;
        if let (Placed::Written { .. }, Some(r), Some((_, r_set))) = (f_placed, reply, r_set) {
            let (placed, delta) = put(r_set, r, self.seed, half_open);
            r_placed = Some(placed);
            gained += delta;
        }
        if let Some(s) = other {
            s.release();
        }
        f_set.release();
        Some((f_placed, r_placed, gained))
    }
}

impl XdpDirector {
    /// Installs flows synced from the peer director (see the module doc), their idle times
    /// converted at `hz` ticks per second, against the jiffies now (`jiffies::Anchor`).
    pub fn install_synced(&mut self, flows: &[SyncedFlow], hz: u32) -> Result<Installed, Error> {
        let now = self.jiffies.now(hz).map_err(Error::Jiffies)? as u32;
        let table = Table {
            map: &self.conns_map,
            seed: self.conn_seed,
            mask: self.conn_mask,
        };
        let mut done = Installed::default();
        for f in flows {
            let seen =
                conntable::synced_seen(now, ticks_of(f.idle, hz), f.state == FlowState::Closing);
            let entries = self
                .sync_targets
                .get(&f.service)
                .and_then(|t| entries_of(f, t, seen));
            let installed = entries.and_then(|(forward, reply)| {
                table.install(&forward, reply.as_ref(), f.state == FlowState::HalfOpen)
            });
            match installed {
                Some((forward, reply, gained)) => {
                    self.forward_delta += gained;
                    done.count(forward, reply);
                }
                None => done.refused += 1,
            }
        }
        Ok(done)
    }

    /// Claims (`held`) or frees the set of `tuple`'s key in direction `dir` (`abi::DIR_*`)
    /// as another CPU would, without waiting: for tests of a set held by the program.
    #[doc(hidden)]
    pub fn hold_set_of(&self, tuple: &FiveTuple, dir: u8, held: bool) {
        let index = conntable::set_of(&key_of(tuple, dir), self.conn_seed, self.conn_mask);
        if let Some(s) = self.conns_map.set(index) {
            s.set_busy(held);
        }
    }
}

/// The synced-flow targets of the installed services, by key.
pub(crate) type SyncTargets = HashMap<ServiceKey, SyncTarget>;

/// `abi::MODE_*` of a mode.
pub(crate) fn mode_byte(mode: Mode) -> u8 {
    match mode {
        Mode::Dr => abi::MODE_DR,
        Mode::Tun => abi::MODE_TUN,
        Mode::Nat => abi::MODE_NAT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bytes_are_the_abi_layout() {
        let c = abi::Conn {
            backend: 0x0102,
            slot: 0x0304,
            vip: [5, 6, 7, 8],
            vport: [9, 10],
            id: 11,
            mode: 12,
            gen: 0x0d0e_0f10,
        };
        // SAFETY: Conn is repr(C), 16 bytes, no implicit padding (abi tests).
        let raw: [u8; 16] = unsafe { std::mem::transmute(c) };
        assert_eq!(conn_bytes(&c), raw);
    }

    #[test]
    fn a_nat_flow_gets_a_reply_entry_and_a_bad_index_none() {
        let target = SyncTarget {
            id: 3,
            mode: abi::MODE_NAT,
            backends: vec![([10, 0, 1, 1], 8001), ([10, 0, 1, 2], 8002)],
        };
        let tuple = FiveTuple {
            src: [192, 168, 1, 7],
            dst: [10, 0, 0, 100],
            sport: 40000,
            dport: 80,
            proto: 6,
        };
        let flow = SyncedFlow {
            tuple,
            service: ServiceKey::of(&tuple),
            backend: 1,
            state: FlowState::Closing,
            idle: std::time::Duration::ZERO,
        };
        let (f, r) = entries_of(&flow, &target, 901).unwrap();
        assert_eq!(f.key, key_of(&flow.tuple, abi::DIR_FORWARD));
        assert_eq!(f.seen, 901);
        assert_eq!(&f.value[0..2], &1u16.to_ne_bytes());
        assert_eq!(&f.value[8..12], &[0xff, 0xff, 3, abi::MODE_NAT]);
        assert_eq!(&f.value[12..16], &[0; 4], "version 0: never current");
        let r = r.expect("NAT: a reply entry");
        assert_eq!(
            r.key,
            conntable::key_bytes([10, 0, 1, 2], [192, 168, 1, 7], 8002, 40000, 6, 1)
        );
        assert_eq!(&r.value[4..10], &[10, 0, 0, 100, 0, 80]);
        assert_eq!(r.seen, 900, "no closing mark on the reply");
        let dr = SyncTarget {
            mode: abi::MODE_DR,
            ..target.clone()
        };
        assert!(entries_of(&flow, &dr, 0).unwrap().1.is_none());
        let bad = SyncedFlow { backend: 2, ..flow };
        assert!(entries_of(&bad, &target, 0).is_none());
    }
}
