//! Counters of the userspace datapath: datapath-wide by name, and per service backend.
//!
//! Contract:
//! * Datapath-wide counters reuse the XDP program's names ([`abi::Counter::as_str`]) for the
//!   same events, and add the events only this datapath has ([`Extra`]).
//! * [`pass_counter`] says which pass counter a frame handed to the kernel belongs to, from
//!   its classification, as the XDP program counts it.
//! * [`BackendCounters`] keeps packets, bytes and new flows per (service, backend index),
//!   cumulative since open; a service's counters outlive its removal, so a service put back
//!   continues where it was.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::abi::Counter;
use crate::datapath::{BackendStats, Counters};
use crate::packet::decide::DropReason;
use crate::packet::parse::{parse, Parsed};
use crate::packet::service::ServiceKey;

/// Events of the userspace datapath that the XDP program does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extra {
    /// A frame the packet socket refused to send.
    TxError = 0,
    /// A received frame longer than the receive buffer (left to the kernel).
    RxTruncated = 1,
    /// A receive that failed (other than a timeout).
    RxError = 2,
}

impl Extra {
    /// Number of extra counters.
    pub(super) const COUNT: usize = 3;
    /// All of them, in index order.
    pub(super) const ALL: [Extra; Extra::COUNT] =
        [Extra::TxError, Extra::RxTruncated, Extra::RxError];

    /// Stable name for metrics and logs.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Extra::TxError => "tx_error",
            Extra::RxTruncated => "rx_truncated",
            Extra::RxError => "rx_error",
        }
    }
}

/// Datapath-wide counters, shared by the receive threads.
#[derive(Debug, Default)]
pub(super) struct DatapathCounters {
    xdp: [AtomicU64; Counter::COUNT as usize],
    extra: [AtomicU64; Extra::COUNT],
}

impl DatapathCounters {
    /// Adds one to an XDP-named counter.
    pub(super) fn bump(&self, c: Counter) {
        self.xdp[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to a userspace-only counter.
    pub(super) fn bump_extra(&self, e: Extra) {
        self.extra[e as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// All counters by name: the XDP ones in index order, then the extra ones.
    pub(super) fn snapshot(&self) -> Counters {
        Counter::ALL
            .iter()
            .map(|c| (c.as_str(), self.xdp[*c as usize].load(Ordering::Relaxed)))
            .chain(
                Extra::ALL
                    .iter()
                    .map(|e| (e.as_str(), self.extra[*e as usize].load(Ordering::Relaxed))),
            )
            .collect()
    }
}

/// The counter of a dropped frame.
pub(super) fn drop_counter(r: DropReason) -> Counter {
    match r {
        DropReason::NoBackend => Counter::DropNoBackend,
        DropReason::BadBackendIndex => Counter::DropBadBackend,
        DropReason::EncapTooBig => Counter::DropEncapTooBig,
        DropReason::NoRoute => Counter::DropNoRoute,
        DropReason::NoNeighbour => Counter::DropNoNeigh,
        DropReason::TooBig => Counter::DropTooBig,
        DropReason::NewFlowLimit => Counter::DropNewFlowLimit,
    }
}

/// The counter of a frame handed to the kernel (see the module doc).
pub(super) fn pass_counter(frame: &[u8]) -> Counter {
    match parse(frame) {
        Parsed::NotIpv4 => Counter::PassNotIpv4,
        Parsed::Malformed(_) => Counter::PassMalformed,
        // A first fragment with ports is a flow (balanced when it is a service's): passed,
        // it is one to no service, as a whole datagram would be.
        Parsed::Fragment { flow: None, .. } => Counter::PassFragment,
        _ => Counter::PassOther,
    }
}

/// Per (service, backend index) counters (see the module doc).
#[derive(Debug, Default)]
pub(super) struct BackendCounters {
    map: HashMap<ServiceKey, Vec<BackendStats>>,
}

impl BackendCounters {
    fn slot(&mut self, key: ServiceKey, backend: u32) -> &mut BackendStats {
        let v = self.map.entry(key).or_default();
        let i = backend as usize;
        if v.len() <= i {
            v.resize(i + 1, BackendStats::default());
        }
        &mut v[i]
    }

    /// A new flow was assigned to `backend`.
    pub(super) fn add_flow(&mut self, key: ServiceKey, backend: u32) {
        self.slot(key, backend).flows += 1;
    }

    /// A frame of `bytes` bytes was sent to `backend`.
    pub(super) fn add_packet(&mut self, key: ServiceKey, backend: u32, bytes: usize) {
        let s = self.slot(key, backend);
        s.packets += 1;
        s.bytes += bytes as u64;
    }

    /// The counters of the first `backends` backends of `key` (zeros where none yet).
    pub(super) fn get(&self, key: &ServiceKey, backends: usize) -> Vec<BackendStats> {
        let mut v = self.map.get(key).cloned().unwrap_or_default();
        v.resize(backends, BackendStats::default());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_like_the_xdp_ones_plus_extras() {
        let c = DatapathCounters::default();
        c.bump(Counter::TxNew);
        c.bump(Counter::TxNew);
        c.bump(Counter::DropNoNeigh);
        c.bump_extra(Extra::TxError);
        let s = c.snapshot();
        assert_eq!(s.len(), Counter::COUNT as usize + Extra::COUNT);
        assert_eq!(s[Counter::TxNew as usize], ("tx_new", 2));
        assert!(s.contains(&("drop_no_neigh", 1)));
        assert!(s.contains(&("tx_error", 1)));
        assert!(s.contains(&("nat_reply", 0)));
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        for (i, e) in Extra::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
    }

    #[test]
    fn passed_frames_are_classified_like_the_xdp_program() {
        assert_eq!(pass_counter(&[0u8; 10]), Counter::PassMalformed);
        let mut arp = [0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(pass_counter(&arp), Counter::PassNotIpv4);
        let mut icmp = [0u8; 14 + 28];
        icmp[12..14].copy_from_slice(&[0x08, 0x00]);
        icmp[14] = 0x45;
        icmp[16..18].copy_from_slice(&28u16.to_be_bytes());
        icmp[23] = 1;
        assert_eq!(pass_counter(&icmp), Counter::PassOther);
        let mut frag = icmp;
        frag[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
        assert_eq!(pass_counter(&frag), Counter::PassFragment);
        // A first fragment (MF set, offset 0) of UDP with its ports: a flow to no service.
        let mut first = [0u8; 14 + 28];
        first[12..14].copy_from_slice(&[0x08, 0x00]);
        first[14] = 0x45;
        first[16..18].copy_from_slice(&28u16.to_be_bytes());
        first[20..22].copy_from_slice(&0x2000u16.to_be_bytes());
        first[23] = 17;
        assert_eq!(pass_counter(&first), Counter::PassOther);
        first[20..22].copy_from_slice(&0x2001u16.to_be_bytes());
        assert_eq!(pass_counter(&first), Counter::PassFragment);
        // The frame that showed it (xdp_diff, STRAIT_DIFF_SEED=13483158546292809447, frame
        // 97): a TCP first fragment with 36 bytes of IP options from a backend's port to a
        // client, answering no NAT flow; the program counted it pass_other.
        let mut seen = vec![
            0x02, 0x00, 0x00, 0x00, 0x00, 0xd1, 0x02, 0x00, 0x00, 0x00, 0x00, 0xc1, 0x08, 0x00,
            0x4e, 0x10, 0x00, 0x55, 0xc8, 0xdf, 0x20, 0x00, 0x40, 0x06, 0xa9, 0xf5, 0x0a, 0x00,
            0x01, 0x01, 0xc0, 0xa8, 0x01, 0x03,
        ];
        seen.extend([0x01; 36]);
        seen.extend([
            0x1f, 0x41, 0x9c, 0x42, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x10,
            0xff, 0xff, 0x13, 0x8b, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
            0x08, 0x00, 0x00, 0x00, 0x00,
        ]);
        assert_eq!(pass_counter(&seen), Counter::PassOther);
        assert_eq!(drop_counter(DropReason::NoBackend), Counter::DropNoBackend);
    }

    #[test]
    fn backend_counters_accumulate_and_pad() {
        let key = ServiceKey {
            vip: [10, 0, 0, 100],
            port: 80,
            proto: 6,
        };
        let mut b = BackendCounters::default();
        b.add_flow(key, 1);
        b.add_packet(key, 1, 60);
        b.add_packet(key, 1, 1514);
        let v = b.get(&key, 3);
        assert_eq!(v[0], BackendStats::default());
        assert_eq!(
            v[1],
            BackendStats {
                packets: 2,
                bytes: 1574,
                flows: 1
            }
        );
        assert_eq!(b.get(&key, 1).len(), 1);
        let other = ServiceKey { port: 81, ..key };
        assert_eq!(b.get(&other, 2), vec![BackendStats::default(); 2]);
    }
}
