//! One receive thread per packet socket: read a frame, decide, act, count.
//!
//! Contract of [`Worker::run`] (until [`Shared::stop`] is set; it notices within
//! `socket::RECV_TIMEOUT`):
//! * only frames addressed to this host (`PACKET_HOST`) are considered, and on the
//!   client-facing interface broadcast ARP requests for the owned VIPs ([`Shared::owned`],
//!   `packet::arp`: the only broadcast frames a director answers); every other broadcast,
//!   multicast and other hosts' frames (`PACKET_OTHERHOST`: flooded by a switch) are the
//!   kernel's alone, counted `pass_not_ours`. This is the model's check
//!   (`packet::ingress`): the kernel sets `PACKET_HOST` exactly when the Ethernet destination
//!   is the receiving interface's MAC (`eth_type_trans`; a zero MAC on `lo` included), which
//!   is `Director::mac` here, or `Director::nat_mac` on the inner interface. `process` checks
//!   it again (`Action::NotOurs`, counted the same): it differs only if the interface's MAC
//!   changed after open;
//! * each frame goes through `packet::process` against the current service table (swapped
//!   whole by `apply`), the shared connection table and the interface it arrived on
//!   (`packet::Ingress`: the client-facing one with the owned VIPs, or the inner one);
//! * `ArpReply` is sent back out of the receiving interface and counted `arp_reply`, as a
//!   broadcast request answered (the kernel got the request too, but it does not hold the
//!   VIP: it stays silent);
//! * `Tx` is sent back out of the receiving interface; `Redirect` (NAT) out of the inner
//!   interface for a forward and out of the client-facing one for a reply; the model asks
//!   [`KernelHops`] for the MACs: the source MAC of that interface and the destination MAC of
//!   the route's next hop from the neighbour table (an unknown next hop: the model drops the
//!   frame, `drop_no_neigh`, and a resolution is asked for);
//! * `TooBig` and `TimeExceeded` (ICMP errors) go back out of the receiving interface if the
//!   thread's [`Budget`] allows (`icmp_rate`/`icmp_burst`), else they are dropped and
//!   counted `icmp_limited`;
//! * a new flow is recorded only within the thread's new-flow guard (`new_flow_rate`/
//!   `new_flow_burst`, `packet::decide`): over it a DR or TUN flow is forwarded unrecorded
//!   (counted `new_flow_unrecorded`, and as a new flow), a NAT one dropped
//!   (`drop_new_flow_limit`);
//! * every new flow recorded (not one left unrecorded by the guard) is offered to the new-flow
//!   stream ([`Shared::new_flows`], `Datapath::take_new_flows`), whatever the frame's fate;
//! * `Pass` and `NotOurs` do nothing but count: the kernel received its own copy; `Drop` is
//!   counted.
//! * Per-backend packets and bytes count frames actually sent; flows count new flows.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::conns::{Arrival, Conns};
use super::nexthop::{current_routes, next_hop, NeighbourCache, Route};
use super::socket::{
    PacketSocket, PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST,
};
use super::stats::{drop_counter, pass_counter, BackendCounters, DatapathCounters, Extra};
use crate::abi::Counter;
use crate::datapath::{NewFlow, NewFlowStream};
use crate::iface::Interface;
use crate::packet::arp::{self, OwnedVips};
use crate::packet::decide::DropReason;
use crate::packet::nexthop::{Egress as HopEgress, NextHop, NextHops};
use crate::packet::ratelimit::{Bucket, IcmpLimit};
use crate::packet::rewrite::Director;
use crate::packet::service::{ServiceKey, Services};
use crate::packet::{Action, Ingress};

/// Receive buffer per thread: the largest IPv4 datagram plus its Ethernet and VLAN headers
/// (larger frames, from GRO, are left to the kernel and counted as `rx_truncated`).
pub(super) const RECV_BUF_BYTES: usize = 65_535 + 18;
/// Pause after a failed receive (interface down, …) before trying again.
pub(super) const RX_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// How long a thread reuses its copy of the routing table.
pub(super) const ROUTES_TTL: Duration = Duration::from_secs(1);

/// State shared by the receive threads and the datapath handle.
#[derive(Debug)]
pub(super) struct Shared {
    /// The service table, replaced whole by `apply`.
    pub services: ArcSwap<Services>,
    /// The VIPs answered for on the client-facing interface, replaced whole by `set_owned`.
    pub owned: ArcSwap<OwnedVips>,
    /// The connection table.
    pub conns: Mutex<Conns>,
    /// Per-backend counters.
    pub backends: Mutex<BackendCounters>,
    /// Datapath-wide counters.
    pub counters: DatapathCounters,
    /// Every new flow recorded, for the HA sync (`Datapath::take_new_flows`).
    pub new_flows: NewFlowStream,
    /// Set to stop every thread.
    pub stop: Arc<AtomicBool>,
}

/// Locks a mutex, going on with the data if a thread panicked while holding it (every
/// update under these locks leaves the data consistent).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An interface frames leave by.
#[derive(Debug, Clone)]
pub(super) struct Egress {
    /// Its socket.
    pub socket: Arc<PacketSocket>,
    /// Its name, MAC and address.
    pub iface: Interface,
}

/// One receive thread's state (see the module doc).
#[derive(Debug)]
pub(super) struct Worker {
    /// Shared tables and counters.
    pub shared: Arc<Shared>,
    /// The interface this thread reads (and sends `Tx` frames on).
    pub rx: Egress,
    /// The client-facing interface (NAT replies leave here).
    pub outer: Egress,
    /// The backend-facing interface (NAT forwards leave here).
    pub inner: Egress,
    /// Next-hop MACs.
    pub neighbours: NeighbourCache,
    /// This thread's ICMP error budget.
    pub icmp: Budget,
    /// This thread's new-flow guard (`new_flow_rate`/`new_flow_burst`).
    pub new_flow: Budget,
}

/// A receive thread's token bucket (`packet::ratelimit`; XDP keeps one per CPU): its ICMP
/// error budget, its new-flow guard.
#[derive(Debug)]
pub(super) struct Budget {
    limit: IcmpLimit,
    bucket: Bucket,
    epoch: Instant,
}

impl Budget {
    /// A full budget of `limit`.
    pub(super) fn new(limit: IcmpLimit) -> Budget {
        Budget {
            limit,
            bucket: Bucket::default(),
            epoch: Instant::now(),
        }
    }

    /// Whether one more ICMP error (new flow) may be sent (recorded) at `now`.
    pub(super) fn allow(&mut self, now: Instant) -> bool {
        // Nanoseconds since the thread started, plus one: the bucket's clock is never 0.
        let ns = u64::try_from(now.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX - 1)
            + 1;
        self.bucket.allow(self.limit, ns)
    }
}

impl Worker {
    /// The receive loop (see the module doc).
    pub(super) fn run(mut self) {
        let mut buf = vec![0u8; RECV_BUF_BYTES];
        let mut routes = (current_routes(), Instant::now());
        while !self.shared.stop.load(Ordering::Relaxed) {
            match self.rx.socket.recv(&mut buf) {
                Ok(None) => {}
                Ok(Some((n, PACKET_BROADCAST))) if n <= buf.len() => self.broadcast(&buf[..n]),
                Ok(Some((_, PACKET_BROADCAST | PACKET_MULTICAST | PACKET_OTHERHOST))) => {
                    self.shared.counters.bump(Counter::PassNotOurs);
                }
                Ok(Some((_, kind))) if kind != PACKET_HOST => {}
                Ok(Some((n, _))) if n > buf.len() => {
                    self.shared.counters.bump_extra(Extra::RxTruncated);
                }
                Ok(Some((n, _))) => {
                    let now = Instant::now();
                    if now.duration_since(routes.1) >= ROUTES_TTL {
                        routes = (current_routes(), now);
                    }
                    self.handle(&buf[..n], &routes.0, now);
                }
                Err(_) => {
                    self.shared.counters.bump_extra(Extra::RxError);
                    std::thread::sleep(RX_ERROR_BACKOFF);
                }
            }
        }
    }

    /// Whether this thread reads the client-facing interface (where the owned VIPs are
    /// answered for).
    fn on_client_side(&self) -> bool {
        self.rx.iface.ifindex == self.outer.iface.ifindex
    }

    /// A broadcast frame: answered only if it is an ARP request for an owned VIP
    /// (`packet::arp`), on the client-facing interface; anything else is not ours.
    fn broadcast(&self, frame: &[u8]) {
        if self.on_client_side() {
            let owned = self.shared.owned.load();
            if let Some(reply) = arp::answer(frame, &owned, self.rx.iface.mac) {
                return self.arp_reply(&reply);
            }
        }
        self.shared.counters.bump(Counter::PassNotOurs);
    }

    /// Sends an ARP reply back out of the receiving interface, counted `arp_reply`.
    fn arp_reply(&self, out: &[u8]) {
        self.shared.counters.bump(Counter::ArpReply);
        if self.rx.socket.send(out).is_err() {
            self.shared.counters.bump_extra(Extra::TxError);
        }
    }

    /// Sends an ICMP reply the model built back out of the receiving interface, within this
    /// thread's budget (over it: dropped, counted `icmp_limited`).
    fn icmp_reply(&mut self, counter: Counter, out: &[u8], now: Instant) {
        if !self.icmp.allow(now) {
            return self.shared.counters.bump(Counter::IcmpLimited);
        }
        self.shared.counters.bump(counter);
        if self.rx.socket.send(out).is_err() {
            self.shared.counters.bump_extra(Extra::TxError);
        }
    }

    /// Decides and acts on one frame addressed to this host.
    fn handle(&mut self, frame: &[u8], routes: &[Route], now: Instant) {
        let client_side = self.on_client_side();
        let shared = &self.shared;
        let director = Director {
            mac: self.rx.iface.mac,
            ip: self.rx.iface.ip.octets(),
            // As STRAIT_DIRECTOR: the client-facing interface's MTU (TUN forwards, NAT
            // replies), the inner one's (NAT forwards).
            mtu: self.outer.iface.mtu,
            nat_mac: self.inner.iface.mac,
            nat_ip: self.inner.iface.ip.octets(),
            nat_mtu: self.inner.iface.mtu,
        };
        let hops = KernelHops {
            routes,
            neighbours: RefCell::new(&mut self.neighbours),
            outer: &self.outer.iface,
            inner: &self.inner.iface,
            now,
        };
        let owned = shared.owned.load();
        let ingress = if client_side {
            Ingress::Client(&owned)
        } else {
            Ingress::Inner
        };
        let (action, seen) = {
            let services = shared.services.load();
            lock(&shared.conns).observe(
                frame,
                ingress,
                &services,
                &director,
                &hops,
                Arrival {
                    at: now,
                    guard: &mut self.new_flow,
                },
            )
        };
        // Every new flow recorded (not the ones over the guard), whatever the frame's fate.
        if let (Some(tuple), Some(backend), false) = (seen.flow, seen.new_flow, seen.unrecorded) {
            shared.new_flows.send(NewFlow {
                tuple,
                service: ServiceKey::of(&tuple),
                backend,
            });
        }
        // Over the new-flow guard: a NAT flow is dropped (counted as such), others forwarded.
        if seen.unrecorded && !matches!(action, Action::Drop(DropReason::NewFlowLimit)) {
            shared.counters.bump(Counter::NewFlowUnrecorded);
        }
        let (out, redirect) = match action {
            Action::Pass => return shared.counters.bump(pass_counter(frame)),
            Action::NotOurs => return shared.counters.bump(Counter::PassNotOurs),
            Action::Drop(r) => return shared.counters.bump(drop_counter(r)),
            // ICMP replies (TUN over the MTU; NAT with TTL <= 1) go back out of the receiving
            // interface, counted as XDP counts them, before sending: no backend packet or
            // new-flow stat, the flow is recorded all the same.
            Action::TooBig(out) => return self.icmp_reply(Counter::IcmpTooBig, &out, now),
            Action::TimeExceeded(out) => {
                return self.icmp_reply(Counter::IcmpTimeExceeded, &out, now)
            }
            Action::ArpReply(out) => return self.arp_reply(&out),
            Action::Tx(out) => (out, false),
            Action::Redirect(out) => (out, true),
        };
        let target = match (seen.flow, seen.new_flow.or(seen.established)) {
            (Some(t), Some(b)) if !seen.nat_reply => Some((ServiceKey::of(&t), b)),
            _ => None,
        };
        shared.counters.bump(if seen.nat_reply {
            Counter::NatReply
        } else if seen.new_flow.is_some() {
            Counter::TxNew
        } else {
            Counter::TxEstablished
        });
        if let (Some((key, b)), Some(_)) = (target, seen.new_flow) {
            lock(&shared.backends).add_flow(key, b);
        }
        let egress = match (redirect, seen.nat_reply) {
            (false, _) => &self.rx,
            (true, true) => &self.outer,
            (true, false) => &self.inner,
        };
        match egress.socket.send(&out) {
            Ok(()) => {
                if let Some((key, b)) = target {
                    lock(&shared.backends).add_packet(key, b, out.len());
                }
            }
            Err(_) => shared.counters.bump_extra(Extra::TxError),
        }
    }
}

/// The kernel's answer to the model's next-hop questions: the main routing table (re-read
/// every [`ROUTES_TTL`]) and the neighbour cache, for the egress interface of each side.
struct KernelHops<'a> {
    routes: &'a [Route],
    neighbours: RefCell<&'a mut NeighbourCache>,
    outer: &'a Interface,
    inner: &'a Interface,
    now: Instant,
}

impl NextHops for KernelHops<'_> {
    fn resolve(&self, egress: HopEgress, _src: [u8; 4], dst: [u8; 4]) -> NextHop {
        let iface = match egress {
            HopEgress::Nat => self.inner,
            HopEgress::Client => self.outer,
        };
        let hop = next_hop(self.routes, dst.into(), &iface.name);
        match self.neighbours.borrow_mut().mac(hop, &iface.name, self.now) {
            Some(dmac) => NextHop::Found {
                dmac,
                smac: iface.mac,
            },
            None => NextHop::NoNeighbour { smac: iface.mac },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_budget_sends_its_burst_then_refills() {
        let mut b = Budget::new(IcmpLimit::new(10, 3)); // 100 ms each
        let t0 = b.epoch;
        assert_eq!((0..10).filter(|_| b.allow(t0)).count(), 3);
        assert!(!b.allow(t0 + Duration::from_millis(99)));
        assert!(b.allow(t0 + Duration::from_millis(101)));
        let mut none = Budget::new(IcmpLimit::new(0, 3));
        assert!(!none.allow(Instant::now()));
        let mut all = Budget::new(IcmpLimit::NONE);
        assert!((0..100).all(|_| all.allow(Instant::now())));
    }
}
