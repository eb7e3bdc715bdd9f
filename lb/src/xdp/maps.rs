//! Map operations of the loaded director beyond installing a service: removing services,
//! per-backend statistics (summed over CPUs), the connection table, the counters and the
//! egress devmap, and taking the flow event ring.
//!
//! Contract:
//! * Per-CPU values are summed over the possible CPUs; [`XdpDirector::zero_stats`] writes
//!   zeros on every CPU (a region about to serve another service starts from zero) and keeps
//!   what it wiped for the derived `tx_new` / `tx_established` counters.
//! * [`XdpDirector::conns`] reads the connection table in batches of sets (`batch`) while the
//!   program runs and returns up to `limit` forward entries. A set copied while the program
//!   held its claim (`busy`, being written) is read again until a copy shows it free (at most
//!   8 times, else left out of this listing); a copy is not atomic, so an entry written at
//!   that very instant may still show old and new halves: the listing is an operator's view,
//!   never an input of the datapath.
//! * [`XdpDirector::conn_forward`] counts the forward entries from the program's gauge
//!   (updated by every record that fills an empty way or evicts) plus what userspace's own
//!   writes (`install_synced`) added, not by reading the table.
//! * [`XdpDirector::counters`] returns every [`abi::Counter`] in index order with its name.
//! * [`XdpDirector::set_owned`] inserts the VIPs given, then deletes every other key of the
//!   `owned` map: a request arriving meanwhile sees the old set, the new one or their union.

use aya::maps::xdp::XdpMapError;
use aya::maps::{Array, DevMap, HashMap, MapError, PerCpuArray, PerCpuValues, RingBuf};

use std::os::fd::AsFd;

use aya::maps::IterableMap;

use super::batch::ArrayBatches;
use super::{map_err, Error, FlowEvents, XdpDirector};
use crate::abi::{self, Counter};
use crate::packet::arp::OwnedVips;
use crate::packet::conntable::Order;
use crate::packet::service::ServiceKey;

/// Sets of the connection table read per system call (320 KiB).
const SETS_PER_CALL: usize = 1024;
/// Reads of a set found claimed before it is left out of a listing.
const SET_READS: usize = 8;

/// Set `index` read again until a copy shows it unclaimed, or `None` (see the module doc).
fn settled_set<T: std::borrow::Borrow<aya::maps::MapData>>(
    map: &Array<T, abi::ConnSet>,
    index: u32,
) -> Result<Option<abi::ConnSet>, Error> {
    for _ in 0..SET_READS {
        let set = map.get(&index, 0).map_err(map_err(abi::names::CONNS))?;
        if set.busy == 0 {
            return Ok(Some(set));
        }
        std::thread::yield_now();
    }
    Ok(None)
}

/// A forward entry listed by `XdpDirector::conns_where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Its key.
    pub key: abi::ConnKey,
    /// Its entry.
    pub value: abi::Conn,
    /// When it was last seen (the low 32 bits of jiffies, bit 0 the closing mark).
    pub seen: u32,
    /// Half-open (`packet::conntable::Order`).
    pub half_open: bool,
}

/// The `services` map key of a model key.
pub(crate) fn abi_key(key: &ServiceKey) -> abi::ServiceKey {
    abi::ServiceKey {
        vip: key.vip,
        port: key.port.to_be_bytes(),
        proto: key.proto,
        pad: 0,
    }
}

impl XdpDirector {
    /// Makes the `owned` map hold exactly `vips` (see the module doc).
    pub fn set_owned(&mut self, vips: &OwnedVips) -> Result<(), Error> {
        let m = abi::names::OWNED;
        let mut map: HashMap<_, [u8; 4], u32> =
            HashMap::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?)
                .map_err(map_err(m))?;
        for vip in vips.iter() {
            map.insert(vip.octets(), 0, 0).map_err(map_err(m))?;
        }
        let held = map
            .keys()
            .collect::<Result<Vec<[u8; 4]>, MapError>>()
            .map_err(map_err(m))?;
        for key in held.into_iter().filter(|k| !vips.contains(*k)) {
            match map.remove(&key) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(m)(e)),
            }
        }
        Ok(())
    }

    /// The VIPs of the `owned` map, in address order.
    pub fn owned(&self) -> Result<Vec<std::net::Ipv4Addr>, Error> {
        let m = abi::names::OWNED;
        let map: HashMap<_, [u8; 4], u32> =
            HashMap::try_from(self.ebpf.map(m).ok_or(Error::Missing(m))?).map_err(map_err(m))?;
        let mut vips = map
            .keys()
            .map(|k| k.map(std::net::Ipv4Addr::from))
            .collect::<Result<Vec<_>, MapError>>()
            .map_err(map_err(m))?;
        vips.sort_unstable();
        Ok(vips)
    }

    /// Sets `service_gen[id]` (0: no installed version).
    pub(crate) fn set_service_gen(&mut self, id: u32, gen: u32) -> Result<(), Error> {
        let m = abi::names::SERVICE_GEN;
        let mut map: Array<_, u32> =
            Array::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?).map_err(map_err(m))?;
        map.set(id, gen, 0).map_err(map_err(m))
    }

    /// Deletes the service entry of `key` (its generation first, so connection entries leave
    /// the fast path); `Ok(false)` when there was none.
    pub(crate) fn remove_service(&mut self, key: &ServiceKey) -> Result<bool, Error> {
        let m = abi::names::SERVICES;
        let id = {
            let services: HashMap<_, abi::ServiceKey, abi::Service> =
                HashMap::try_from(self.ebpf.map(m).ok_or(Error::Missing(m))?)
                    .map_err(map_err(m))?;
            match services.get(&abi_key(key), 0) {
                Ok(v) => v.id,
                Err(MapError::KeyNotFound) => return Ok(false),
                Err(e) => return Err(map_err(m)(e)),
            }
        };
        self.set_service_gen(u32::from(id), 0)?;
        self.sync_targets.remove(key);
        let mut services: HashMap<_, abi::ServiceKey, abi::Service> =
            HashMap::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?)
                .map_err(map_err(m))?;
        match services.remove(&abi_key(key)) {
            Ok(()) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(e) => Err(map_err(m)(e)),
        }
    }

    /// Statistics of `count` backends from index `base`, each summed over CPUs.
    pub fn stats(&self, base: u32, count: u32) -> Result<Vec<abi::Stats>, Error> {
        let m = abi::names::BACKEND_STATS;
        let map: PerCpuArray<_, abi::Stats> =
            PerCpuArray::try_from(self.ebpf.map(m).ok_or(Error::Missing(m))?)
                .map_err(map_err(m))?;
        (base..base.saturating_add(count))
            .map(|i| {
                let values = map.get(&i, 0).map_err(map_err(m))?;
                Ok(values
                    .iter()
                    .fold(abi::Stats::default(), |a, v| abi::Stats {
                        packets: a.packets + v.packets,
                        bytes: a.bytes + v.bytes,
                        flows: a.flows + v.flows,
                    }))
            })
            .collect()
    }

    /// Zeroes the statistics of `count` backends from index `base` on every CPU (what they
    /// held stays in the derived tx counters).
    pub(crate) fn zero_stats(&mut self, base: u32, count: u32) -> Result<(), Error> {
        for s in self.stats(base, count)? {
            self.wiped.packets += s.packets;
            self.wiped.bytes += s.bytes;
            self.wiped.flows += s.flows;
        }
        let m = abi::names::BACKEND_STATS;
        let cpus =
            aya::util::nr_cpus().map_err(|(what, e)| Error::OutOfBounds(format!("{what}: {e}")))?;
        let mut map: PerCpuArray<_, abi::Stats> =
            PerCpuArray::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?)
                .map_err(map_err(m))?;
        for i in base..base.saturating_add(count) {
            let zeros = PerCpuValues::try_from(vec![abi::Stats::default(); cpus])
                .map_err(|e| Error::OutOfBounds(format!("per-CPU values: {e}")))?;
            map.set(i, zeros, 0).map_err(map_err(m))?;
        }
        Ok(())
    }

    /// Up to `limit` forward entries of the connection table (see the module doc).
    pub fn conns(&self, limit: usize) -> Result<Vec<(abi::ConnKey, abi::Conn)>, Error> {
        let all = self.conns_where(limit, |_, _| true)?;
        Ok(all.into_iter().map(|e| (e.key, e.value)).collect())
    }

    /// Up to `limit` forward entries for which `keep(key, seen)` holds, with when they were
    /// last seen and their half-open mark.
    pub(crate) fn conns_where(
        &self,
        limit: usize,
        keep: impl Fn(&abi::ConnKey, u32) -> bool,
    ) -> Result<Vec<Listed>, Error> {
        let m = abi::names::CONNS;
        let map: Array<_, abi::ConnSet> =
            Array::try_from(self.ebpf.map(m).ok_or(Error::Missing(m))?).map_err(map_err(m))?;
        let fd = map.map().fd().as_fd();
        let mut batches = ArrayBatches::<abi::ConnSet>::new(fd, SETS_PER_CALL, 0);
        let mut out = Vec::new();
        let mut index = 0u32;
        while out.len() < limit {
            let sets = batches.next().map_err(|e| Error::Batch(m, e))?;
            if sets.is_empty() {
                break;
            }
            for set in sets {
                let set = match set.busy {
                    0 => Some(*set),
                    _ => settled_set(&map, index)?,
                };
                index += 1;
                let Some(set) = set else { continue };
                let order = Order(set.order);
                for (w, way) in set.way.iter().enumerate() {
                    let (tag, seen) = (set.tag[w], set.seen[w]);
                    let listed = tag != 0 && way.key.dir == abi::DIR_FORWARD;
                    if listed && out.len() < limit && keep(&way.key, seen) {
                        out.push(Listed {
                            key: way.key,
                            value: way.value,
                            seen,
                            half_open: order.half_open(w),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Forward entries in the connection table: the program's per-CPU gauge, summed, and the
    /// entries userspace wrote (`install_synced`).
    pub fn conn_forward(&self) -> Result<u64, Error> {
        let m = abi::names::CONN_FORWARD;
        let map: PerCpuArray<_, i64> =
            PerCpuArray::try_from(self.ebpf.map(m).ok_or(Error::Missing(m))?)
                .map_err(map_err(m))?;
        let values = map.get(&0, 0).map_err(map_err(m))?;
        let sum = values
            .iter()
            .fold(self.forward_delta, |a, v| a.wrapping_add(*v));
        Ok(u64::try_from(sum).unwrap_or(0))
    }

    /// Every counter summed over CPUs, in index order.
    pub fn counters(&self) -> Result<Vec<(Counter, u64)>, Error> {
        Counter::ALL
            .iter()
            .map(|&c| Ok((c, self.counter(c)?)))
            .collect()
    }

    /// The reader of the new-flow events; `None` after the first call (taken once).
    pub fn take_flow_events(&mut self) -> Option<FlowEvents> {
        let map = self.ebpf.take_map(abi::names::FLOW_EVENTS)?;
        RingBuf::try_from(map).ok().map(FlowEvents::new)
    }

    /// Sets entry `slot` (`abi::EGRESS_*`) of the egress devmap to interface `ifindex`.
    pub(crate) fn set_egress(&mut self, slot: u32, ifindex: u32) -> Result<(), Error> {
        let m = abi::names::EGRESS;
        let mut map =
            DevMap::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?).map_err(map_err(m))?;
        map.set(slot, ifindex, None, 0).map_err(|e| match e {
            XdpMapError::MapError(e) => map_err(m)(e),
            other => Error::OutOfBounds(format!("egress devmap: {other}")),
        })
    }
}
