//! The L4 director's packet model: pure functions over Ethernet frames, no sockets.
//!
//! Contract: this module is the reference model of the XDP program (`ebpf/director.bpf.c`) and
//! the decision core of the userspace datapath: for the same frame, service table and
//! connection table both must return the same [`Action`] (verdict and output bytes).
//!
//! Pipeline ([`process`]): [`parse::parse`] classifies the frame, [`decide::decide`] picks a
//! verdict (consulting and filling the connection table), and [`rewrite`] produces the bytes:
//! * DR and TUN forwards leave on the receiving interface ([`Action::Tx`], `XDP_TX`);
//! * NAT forwards and NAT replies leave through another interface ([`Action::Redirect`],
//!   `XDP_REDIRECT` through the egress devmap) with the MACs of a next-hop lookup
//!   ([`nexthop::NextHops`], the kernel's `bpf_fib_lookup` in XDP):
//!   - found: destination MAC := the next hop's, source MAC := the egress interface's;
//!   - NAT forward, no neighbour entry: the backend's configured MAC if it is not all zero
//!     (source MAC := the egress interface's), else [`DropReason::NoNeighbour`];
//!   - NAT reply, no neighbour entry: [`DropReason::NoNeighbour`]; no route (either way):
//!     [`DropReason::NoRoute`]. Never passed: the kernel would forward the frame un-NATed.
//!
//! * a TUN forward whose encapsulation exceeds the director's MTU ([`icmp::over_mtu`],
//!   `Director::mtu`, the client-facing interface's) is not forwarded: DF set, the ICMP
//!   "fragmentation needed" to the client ([`Action::TooBig`], `XDP_TX`, [`icmp`]); DF clear,
//!   [`DropReason::TooBig`] (XDP cannot fragment; without DF the client does no path-MTU
//!   discovery).
//!
//! * NAT forwards and NAT replies are routed: the TTL is decremented ([`rewrite`]); one that
//!   arrived with TTL <= 1 is not forwarded but answered with the ICMP "time exceeded"
//!   ([`Action::TimeExceeded`], `XDP_TX`, [`icmp::time_exceeded`]): a forward from the
//!   client-facing interface (`Director::mac`, `Director::ip`), a reply from the inner one
//!   (`Director::nat_mac`, `Director::nat_ip`). Checked before the next-hop lookup. DR and TUN
//!   keep the TTL (L2 rewrite; a new outer header).
//!
//! A NAT forward dropped for its next hop or answered for its TTL, and a TUN forward over the
//! MTU, have still been recorded in the connection table (the check follows scheduling: the
//! next packet is established and goes to the same backend); nothing else changes.
//!
//! Known limits, shared with the XDP program: later fragments go to the kernel (with NAT they
//! therefore do not reach the backend); DR and NAT keep the frame's size and are not checked
//! against an egress MTU (an inner interface with a smaller MTU than the client side drops
//! what does not fit).

pub mod conntable;
pub mod csum;
pub mod decide;
pub mod icmp;
pub mod nexthop;
pub mod parse;
pub mod rewrite;
pub mod service;

#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod testutil;

use decide::{decide, service_key, DropReason, Verdict};
use nexthop::{Egress, NextHop, NextHops};
use parse::parse;
use rewrite::Director;
use service::{ConnTable, Mode, Services};

/// What the datapath does with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand the original frame to the kernel (`XDP_PASS`).
    Pass,
    /// Drop it (`XDP_DROP`).
    Drop(DropReason),
    /// Transmit these bytes on the receiving interface (`XDP_TX`).
    Tx(Vec<u8>),
    /// Send these bytes out of another interface (`XDP_REDIRECT`).
    Redirect(Vec<u8>),
    /// Transmit this ICMP "fragmentation needed" back to the client on the receiving
    /// interface (`XDP_TX`): a TUN datagram with DF set over the MTU ([`icmp`]); nothing was
    /// forwarded.
    TooBig(Vec<u8>),
    /// Transmit this ICMP "time exceeded" back to the sender on the receiving interface
    /// (`XDP_TX`): a NAT forward or reply that arrived with TTL <= 1 ([`icmp`]); nothing was
    /// forwarded.
    TimeExceeded(Vec<u8>),
}

/// Runs the whole model on one frame (see the module doc).
pub fn process<C: ConnTable + ?Sized>(
    frame: &[u8],
    services: &Services,
    conns: &mut C,
    director: &Director,
    hops: &dyn NextHops,
) -> Action {
    let parsed = parse(frame);
    let verdict = decide(&parsed, services, conns);
    let Some(flow) = parsed.flow() else {
        return Action::Pass;
    };
    match verdict {
        Verdict::Pass => Action::Pass,
        Verdict::Drop(r) => Action::Drop(r),
        Verdict::NatReply(origin) => {
            if icmp::ttl_expired(flow) {
                // Arrived on the inner interface: answered from its MAC and address.
                return Action::TimeExceeded(icmp::time_exceeded(
                    frame,
                    flow,
                    director.nat_mac,
                    director.nat_ip,
                ));
            }
            let (dmac, smac) = match hops.resolve(Egress::Client, origin.vip, flow.tuple.dst) {
                NextHop::Found { dmac, smac } => (dmac, smac),
                NextHop::NoNeighbour { .. } => return Action::Drop(DropReason::NoNeighbour),
                NextHop::NoRoute => return Action::Drop(DropReason::NoRoute),
            };
            let mut out = frame.to_vec();
            rewrite::nat_source(&mut out, flow, origin.vip, origin.port);
            rewrite::rewrite_macs(&mut out, dmac, smac);
            Action::Redirect(out)
        }
        Verdict::Forward { backend, .. } => {
            let service = services.get(&service_key(flow));
            let Some((service, b)) =
                service.and_then(|s| s.backends.get(backend as usize).map(|b| (s, b)))
            else {
                // decide only forwards to a backend of the flow's service.
                return Action::Drop(DropReason::BadBackendIndex);
            };
            match service.mode {
                Mode::Dr => {
                    let mut out = frame.to_vec();
                    rewrite::rewrite_macs(&mut out, b.mac, director.mac);
                    Action::Tx(out)
                }
                Mode::Tun if icmp::over_mtu(flow, director.mtu) => {
                    if flow.dont_fragment {
                        Action::TooBig(icmp::frag_needed(frame, flow, director.mac, director.mtu))
                    } else {
                        Action::Drop(DropReason::TooBig)
                    }
                }
                Mode::Tun => {
                    let mut out = rewrite::encapsulate(frame, flow, director, b.ip);
                    rewrite::rewrite_macs(&mut out, b.mac, director.mac);
                    Action::Tx(out)
                }
                Mode::Nat if icmp::ttl_expired(flow) => Action::TimeExceeded(icmp::time_exceeded(
                    frame,
                    flow,
                    director.mac,
                    director.ip,
                )),
                Mode::Nat => {
                    let (dmac, smac) = match hops.resolve(Egress::Nat, flow.tuple.src, b.ip) {
                        NextHop::Found { dmac, smac } => (dmac, smac),
                        NextHop::NoNeighbour { smac } if b.mac != [0; 6] => (b.mac, smac),
                        NextHop::NoNeighbour { .. } => {
                            return Action::Drop(DropReason::NoNeighbour)
                        }
                        NextHop::NoRoute => return Action::Drop(DropReason::NoRoute),
                    };
                    let mut out = frame.to_vec();
                    rewrite::nat_destination(&mut out, flow, b.ip, b.port);
                    rewrite::rewrite_macs(&mut out, dmac, smac);
                    Action::Redirect(out)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nexthop::{Egress, NextHop};
    use super::service::{MemConnTable, ServiceKey};
    use super::testutil::*;
    use super::*;

    fn nat_forward(hops: &dyn NextHops, services: &Services) -> (Action, MemConnTable) {
        let mut conns = MemConnTable::new(16);
        let a = process(
            &Spec::udp(5000, 82).build(),
            services,
            &mut conns,
            &DIRECTOR,
            hops,
        );
        (a, conns)
    }

    #[test]
    fn tun_over_the_mtu_answers_icmp_or_drops_and_keeps_the_flow() {
        let s = services();
        let t = hops();
        let mut conns = MemConnTable::new(16);
        // Inner 1481 bytes: 1501 once encapsulated, one over DIRECTOR.mtu.
        let mut big = Spec::tcp(7000, 81);
        big.payload = vec![5; 1500 - 20 - 20 - 20 + 1];
        let f = big.build();
        let flow = *parse(&f).flow().unwrap();
        let a = process(&f, &s, &mut conns, &DIRECTOR, &t);
        let want = icmp::frag_needed(&f, &flow, DIRECTOR.mac, DIRECTOR.mtu);
        assert_eq!(a, Action::TooBig(want));
        let b = conns.get(&flow.tuple).expect("the flow is recorded");
        // One byte less fits: forwarded, established, to the recorded backend.
        big.payload.pop();
        let Action::Tx(out) = process(&big.build(), &s, &mut conns, &DIRECTOR, &t) else {
            panic!("a fitting segment is forwarded");
        };
        assert_eq!(out.len(), big.build().len() + 20);
        assert_eq!(conns.get(&flow.tuple), Some(b));
        let be = &s.get(&service_key(&flow)).unwrap().backends[b as usize];
        assert_eq!(
            (out[0..6].to_vec(), out[30..34].to_vec()),
            (be.mac.to_vec(), be.ip.to_vec())
        );
        // DF clear: dropped, recorded too.
        let mut udp = Spec::udp(7001, 81);
        udp.frag = 0;
        udp.payload = vec![1; 1500 - 20 - 8 - 20 + 1];
        let mut c2 = MemConnTable::new(16);
        let a = process(&udp.build(), &s, &mut c2, &DIRECTOR, &t);
        assert_eq!(a, Action::Drop(DropReason::TooBig));
        assert_eq!(c2.len(), 1);
        // DR and NAT keep the size: not checked.
        for port in [80, 82] {
            let mut dr = Spec::udp(7002, port);
            dr.payload = udp.payload.clone();
            let a = process(&dr.build(), &s, &mut c2, &DIRECTOR, &t);
            assert!(matches!(a, Action::Tx(_) | Action::Redirect(_)), "{a:?}");
        }
        // An MTU of 0 disables the check.
        let unchecked = Director { mtu: 0, ..DIRECTOR };
        let a = process(&udp.build(), &s, &mut c2, &unchecked, &t);
        assert!(matches!(a, Action::Tx(ref out) if out.len() == udp.build().len() + 20));
    }

    #[test]
    fn nat_answers_ttl_1_and_0_with_time_exceeded_and_decrements_the_rest() {
        let s = services();
        let t = hops();
        for vlan in [None, Some(5)] {
            let l3 = if vlan.is_some() { 18 } else { 14 };
            let mut conns = MemConnTable::new(16);
            for ttl in [0u8, 1] {
                // Forward: from the client-facing interface's MAC and address.
                let mut fwd = Spec::udp(6000, 82);
                fwd.ttl = ttl;
                fwd.vlan = vlan;
                let f = fwd.build();
                let flow = *parse(&f).flow().unwrap();
                let Action::TimeExceeded(out) = process(&f, &s, &mut conns, &DIRECTOR, &t) else {
                    panic!("TTL {ttl} forward");
                };
                assert_eq!(
                    out,
                    icmp::time_exceeded(&f, &flow, DIRECTOR.mac, DIRECTOR.ip)
                );
                assert_eq!(
                    (out[0..6].to_vec(), out[6..12].to_vec()),
                    (f[6..12].to_vec(), DIRECTOR.mac.to_vec())
                );
                assert_eq!(out[12..l3], f[12..l3], "VLAN tag kept");
                assert_eq!(out[l3 + 9], 1, "ICMP");
                assert_eq!(out[l3 + 12..l3 + 16], DIRECTOR.ip, "not the VIP");
                assert_eq!(out[l3 + 16..l3 + 20], CLIENT);
                assert_eq!(out[l3 + 20..l3 + 22], [11, 0]);
                assert!(conns.get(&flow.tuple).is_some(), "recorded");
            }
            // TTL 2: forwarded with TTL 1, to the recorded backend.
            let mut fwd = Spec::udp(6000, 82);
            fwd.vlan = vlan;
            fwd.ttl = 2;
            let f = fwd.build();
            let flow = *parse(&f).flow().unwrap();
            let recorded = conns.get(&flow.tuple).unwrap();
            let Action::Redirect(out) = process(&f, &s, &mut conns, &DIRECTOR, &t) else {
                panic!("TTL 2 forward");
            };
            assert_eq!(out[l3 + 8], 1);
            let b = &s.get(&service_key(&flow)).unwrap().backends[recorded as usize];
            assert_eq!(out[l3 + 16..l3 + 20], b.ip, "the recorded backend");
            // Replies: from the inner interface's MAC and address.
            let mut reply = Spec::udp(b.port, 6000);
            reply.src = b.ip;
            reply.dst = CLIENT;
            reply.vlan = vlan;
            for ttl in [0u8, 1] {
                reply.ttl = ttl;
                let r = reply.build();
                let Action::TimeExceeded(out) = process(&r, &s, &mut conns, &DIRECTOR, &t) else {
                    panic!("TTL {ttl} reply");
                };
                assert_eq!(out[6..12], DIRECTOR.nat_mac);
                assert_eq!(out[0..6], r[6..12]);
                assert_eq!(out[12..l3], r[12..l3], "VLAN tag kept");
                assert_eq!(out[l3 + 12..l3 + 16], DIRECTOR.nat_ip);
                assert_eq!(out[l3 + 16..l3 + 20], b.ip);
                assert_eq!(out[l3 + 20..l3 + 22], [11, 0]);
            }
            reply.ttl = 64;
            let Action::Redirect(out) = process(&reply.build(), &s, &mut conns, &DIRECTOR, &t)
            else {
                panic!("TTL 64 reply");
            };
            assert_eq!(
                (out[l3 + 8], out[l3 + 12..l3 + 16].to_vec()),
                (63, VIP.to_vec())
            );
        }
        // DR and TUN forward TTL 1 and 0 as they are.
        for (port, ttl) in [(80, 1), (80, 0), (81, 1), (81, 0)] {
            let mut spec = Spec::tcp(6001, port);
            spec.ttl = ttl;
            let f = spec.build();
            let mut conns = MemConnTable::new(16);
            let Action::Tx(out) = process(&f, &s, &mut conns, &DIRECTOR, &t) else {
                panic!("port {port} TTL {ttl}");
            };
            assert_eq!(out[out.len() - f.len() + 14 + 8], ttl);
        }
    }

    #[test]
    fn nat_frames_take_the_next_hop_macs_or_drop() {
        let s = services();
        let t = hops();
        let (Action::Redirect(out), conns) = nat_forward(&t, &s) else {
            panic!("NAT forward with a neighbour");
        };
        let b = backend(out[33], 0);
        assert_eq!(out[0..6], b.mac);
        assert_eq!(out[6..12], NAT_EGRESS_MAC);
        // The reply: through the client-side gateway, source MAC of the client egress.
        let mut reply = Spec::udp(b.port, 5000);
        reply.src = b.ip;
        reply.dst = CLIENT;
        let mut c = conns;
        let Action::Redirect(r) = process(&reply.build(), &s, &mut c, &DIRECTOR, &t) else {
            panic!("NAT reply");
        };
        assert_eq!(
            (r[0..6].to_vec(), r[6..12].to_vec()),
            (GATEWAY_MAC.to_vec(), CLIENT_EGRESS_MAC.to_vec())
        );
        // No neighbour: forwards fall back to the backend's MAC, replies drop.
        let mut no_neigh = t.clone();
        no_neigh.neighbours.clear();
        let (Action::Redirect(out), _) = nat_forward(&no_neigh, &s) else {
            panic!("fallback to the backend MAC");
        };
        assert_eq!(
            (out[0..6].to_vec(), out[6..12].to_vec()),
            (b.mac.to_vec(), NAT_EGRESS_MAC.to_vec())
        );
        assert_eq!(
            process(&reply.build(), &s, &mut c, &DIRECTOR, &no_neigh),
            Action::Drop(DropReason::NoNeighbour)
        );
        // ... unless the backend has no MAC configured.
        let mut zero_mac = services();
        for proto in [6, 17] {
            let key = ServiceKey {
                vip: VIP,
                port: 82,
                proto,
            };
            let mut svc = zero_mac.get(&key).unwrap().clone();
            svc.backends.iter_mut().for_each(|b| b.mac = [0; 6]);
            zero_mac.insert(key, svc);
        }
        let (a, conns) = nat_forward(&no_neigh, &zero_mac);
        assert_eq!(a, Action::Drop(DropReason::NoNeighbour));
        assert_eq!(conns.len(), 1, "the flow is recorded even so");
        // No route: both drop.
        let mut no_route = t.clone();
        no_route.routes.clear();
        assert_eq!(
            nat_forward(&no_route, &s).0,
            Action::Drop(DropReason::NoRoute)
        );
        assert_eq!(
            process(&reply.build(), &s, &mut c, &DIRECTOR, &no_route),
            Action::Drop(DropReason::NoRoute)
        );
        assert_eq!(
            no_route.resolve(Egress::Nat, CLIENT, b.ip),
            NextHop::NoRoute
        );
        // DR ignores next hops entirely.
        let mut conns = MemConnTable::new(16);
        let dr = process(
            &Spec::tcp(1, 80).build(),
            &s,
            &mut conns,
            &DIRECTOR,
            &no_route,
        );
        assert!(matches!(dr, Action::Tx(_)), "{dr:?}");
    }
}
