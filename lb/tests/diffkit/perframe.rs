//! What one frame did besides its verdict and bytes, in both datapaths: the counters it
//! moved and the egress its redirect used.
//!
//! Contract:
//! * [`Snapshot::read`] takes every counter of the program at once: the per-CPU counters,
//!   and `tx_new` / `tx_established` summed from the statistics of the first `backends`
//!   backends (the counters' own derivation, without reading all 4096);
//!   [`Snapshot::read_counters`] skips the backend statistics (a third of the cost);
//!   [`Snapshot::moved`] lists the counters that changed since another snapshot, by name.
//! * [`moved_by`] is the one counter the model's action moves (the pass class of a passed
//!   frame from its classification, as the program counts it: `pass_fragment` only for
//!   fragments without ports): every frame of the
//!   differential test moves exactly that one by one, no other.
//! * [`NotingHops`] wraps the model's next hops and notes the egress of the last lookup: a
//!   model `Redirect` is built right after the lookup of its egress, so that is the egress
//!   it leaves by.
//! * [`EgressPin`] leaves only one entry of the program's egress devmap filled before a
//!   frame the model redirects, so the program returns `XDP_REDIRECT` only if it redirects
//!   through that entry, to that interface (`XDP_DROP` otherwise: `lib/egress.h`);
//!   `BPF_PROG_TEST_RUN` itself does not report a redirect's target.

use std::cell::Cell;

use strait_lb::abi::Counter;
use strait_lb::packet::nexthop::{Egress, NextHop, NextHops};
use strait_lb::packet::parse::{parse, Parsed};
use strait_lb::packet::Action;
use strait_lb::xdp::XdpDirector;

/// Every counter's value, in `Counter::ALL` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(Vec<(Counter, u64)>);

impl Snapshot {
    /// The program's counters now (see the module doc).
    pub fn read(xdp: &XdpDirector, backends: u32) -> Snapshot {
        let (packets, flows) = xdp
            .stats(0, backends)
            .unwrap()
            .iter()
            .fold((0, 0), |a, s| (a.0 + s.packets, a.1 + s.flows));
        Snapshot::with_tx(xdp, flows, packets - flows)
    }

    /// The per-CPU counters now, `tx_new` and `tx_established` as in `earlier` (the backend
    /// statistics not read: a frame the model does not forward must not move them, which the
    /// next full read, or the run's totals, would show).
    pub fn read_counters(xdp: &XdpDirector, earlier: &Snapshot) -> Snapshot {
        let tx = |c| earlier.0.iter().find(|e| e.0 == c).map_or(0, |e| e.1);
        Snapshot::with_tx(xdp, tx(Counter::TxNew), tx(Counter::TxEstablished))
    }

    fn with_tx(xdp: &XdpDirector, new: u64, established: u64) -> Snapshot {
        let values = Counter::ALL.iter().map(|&c| {
            let v = match c {
                Counter::TxNew => new,
                Counter::TxEstablished => established,
                _ => xdp.counter(c).unwrap(),
            };
            (c, v)
        });
        Snapshot(values.collect())
    }

    /// The counters that changed since `before`, with their difference.
    pub fn moved(&self, before: &Snapshot) -> Vec<(&'static str, i128)> {
        self.0
            .iter()
            .zip(&before.0)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, b)| (a.0.as_str(), i128::from(a.1) - i128::from(b.1)))
            .collect()
    }
}

/// The counter the model's `action` on `input` moves (`to_vip`: a forward; `new`: the model
/// recorded a new flow).
pub fn moved_by(action: &Action, input: &[u8], to_vip: bool, new: bool) -> Counter {
    match action {
        Action::Pass => match parse(input) {
            Parsed::NotIpv4 => Counter::PassNotIpv4,
            Parsed::Malformed(_) => Counter::PassMalformed,
            // A first fragment with ports is a flow: passed, it is one to no service.
            Parsed::Fragment { flow: None, .. } => Counter::PassFragment,
            _ => Counter::PassOther,
        },
        Action::NotOurs => Counter::PassNotOurs,
        Action::Drop(r) => r.counter(),
        Action::TimeExceeded(_) => Counter::IcmpTimeExceeded,
        Action::Redirect(_) if !to_vip => Counter::NatReply,
        Action::TooBig(_) => Counter::IcmpTooBig,
        Action::ArpReply(_) => Counter::ArpReply,
        _ if new => Counter::TxNew,
        _ => Counter::TxEstablished,
    }
}

/// The model's next hops, noting the egress of the last lookup (see the module doc).
pub struct NotingHops<'a> {
    pub hops: &'a dyn NextHops,
    pub last: Cell<Option<Egress>>,
}

impl<'a> NotingHops<'a> {
    pub fn new(hops: &'a dyn NextHops) -> NotingHops<'a> {
        NotingHops {
            hops,
            last: Cell::new(None),
        }
    }
}

impl NextHops for NotingHops<'_> {
    fn resolve(&self, egress: Egress, src: [u8; 4], dst: [u8; 4]) -> NextHop {
        self.last.set(Some(egress));
        self.hops.resolve(egress, src, dst)
    }
}

/// Which entries of the program's egress devmap are filled (see the module doc).
pub struct EgressPin {
    /// The interface of each egress (the loader's `nat_ifindex`, `client_ifindex`).
    nat: u32,
    client: u32,
    /// The egress whose entry alone is filled; `None`: both (as loaded).
    only: Option<Egress>,
}

impl EgressPin {
    /// Both entries filled, as the loader leaves them.
    pub fn new(nat: u32, client: u32) -> EgressPin {
        EgressPin {
            nat,
            client,
            only: None,
        }
    }

    /// The interface of `egress`.
    pub fn ifindex(&self, egress: Egress) -> u32 {
        match egress {
            Egress::Nat => self.nat,
            Egress::Client => self.client,
        }
    }

    /// Leaves only `egress`'s entry filled, pointing at its interface.
    pub fn only(&mut self, xdp: &mut XdpDirector, egress: Egress) {
        if self.only == Some(egress) {
            return;
        }
        let other = match egress {
            Egress::Nat => Egress::Client,
            Egress::Client => Egress::Nat,
        };
        xdp.set_egress_entry(egress, Some(self.ifindex(egress)))
            .unwrap();
        xdp.set_egress_entry(other, None).unwrap();
        self.only = Some(egress);
    }
}
