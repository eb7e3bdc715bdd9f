//! The L4 director's packet model: pure functions over Ethernet frames, no sockets.
//!
//! Contract: this module is the reference model of the XDP program (`ebpf/director.bpf.c`) and
//! the decision core of the userspace datapath: for the same frame, service table and
//! connection table both must return the same [`Action`] (verdict and output bytes).
//!
//! [`process`] is told which interface the frame arrived on ([`Ingress`]: the client-facing
//! one with the VIPs it answers ARP for, or the inner one).
//!
//! First, ARP: a request for a VIP the client-facing interface owns (`Datapath::set_owned`)
//! becomes its reply ([`Action::ArpReply`], `XDP_TX`, [`arp`]); every other ARP frame goes on.
//!
//! Then the destination: a frame whose Ethernet destination is not the MAC of the interface
//! it arrived on (`Director::mac`, on the inner interface `Director::nat_mac`; another host's
//! frame flooded by a switch, multicast, broadcast) is handed to the kernel as it is, without
//! a look ([`Action::NotOurs`], [`ingress`]): a backup director must not forward frames meant
//! for its master. Every frame below is one addressed to us (an unanswered ARP frame to us is
//! passed like any frame that is not IPv4).
//!
//! Pipeline ([`process`]): [`parse::parse`] classifies the frame, `decide::decide` picks a
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
//! * a TUN forward whose encapsulation exceeds the director's MTU (`icmp::over_mtu`,
//!   `Director::mtu`, the client-facing interface's) is not forwarded: DF set, the ICMP
//!   "fragmentation needed" to the client ([`Action::TooBig`], `XDP_TX`, [`icmp`]); DF clear,
//!   [`DropReason::TooBig`] (XDP cannot fragment; without DF the client does no path-MTU
//!   discovery).
//!
//! * NAT forwards and NAT replies are routed: the TTL is decremented ([`rewrite`]); one that
//!   arrived with TTL <= 1 is not forwarded but answered with the ICMP "time exceeded"
//!   ([`Action::TimeExceeded`], `XDP_TX`, `icmp::time_exceeded`): a forward from the
//!   client-facing interface (`Director::mac`, `Director::ip`), a reply from the inner one
//!   (`Director::nat_mac`, `Director::nat_ip`). Checked before the next-hop lookup. DR and TUN
//!   keep the TTL (L2 rewrite; a new outer header).
//!
//! * NAT forwards and replies keep their size: one longer than the MTU of the interface it
//!   leaves by (forwards `Director::nat_mtu`, replies `Director::mtu`; `icmp::routed_over_mtu`,
//!   checked after the TTL) is not forwarded: DF set, the router's ICMP "fragmentation needed"
//!   from the interface it arrived on ([`Action::TooBig`], [`icmp::frag_needed_routed`]); DF
//!   clear, [`DropReason::TooBig`]. DR leaves by the interface it arrived on: not checked.
//!
//! A NAT forward dropped for its next hop or answered for its TTL or size, and a TUN forward
//! over the MTU, have still been recorded in the connection table (the check follows
//! scheduling: the next packet is established and goes to the same backend); nothing else
//! changes. Whether an ICMP answer is actually sent is the datapath's budget
//! ([`ratelimit`]): over it, the frame is dropped instead (counted `icmp_limited`).
//!
//! Known limit, shared with the XDP program: later fragments go to the kernel (with NAT they
//! therefore do not reach the backend).

pub mod arp;
pub mod conntable;
pub mod csum;
pub mod decide;
pub mod icmp;
pub mod ingress;
pub mod nexthop;
pub mod parse;
pub mod ratelimit;
pub mod rewrite;
pub mod service;

#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod testutil;

pub use ingress::Ingress;

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
    /// Hand the original frame to the kernel without a look (`XDP_PASS`, counted
    /// `pass_not_ours`): its Ethernet destination is not the MAC of the interface it arrived
    /// on ([`ingress`]).
    NotOurs,
    /// Drop it (`XDP_DROP`).
    Drop(DropReason),
    /// Transmit these bytes on the receiving interface (`XDP_TX`).
    Tx(Vec<u8>),
    /// Send these bytes out of another interface (`XDP_REDIRECT`).
    Redirect(Vec<u8>),
    /// Transmit this ICMP "fragmentation needed" back to the sender on the receiving
    /// interface (`XDP_TX`): a TUN datagram with DF set over the MTU once encapsulated, or a
    /// NAT forward or reply with DF set over its egress MTU ([`icmp`]); nothing was
    /// forwarded.
    TooBig(Vec<u8>),
    /// Transmit this ICMP "time exceeded" back to the sender on the receiving interface
    /// (`XDP_TX`): a NAT forward or reply that arrived with TTL <= 1 ([`icmp`]); nothing was
    /// forwarded.
    TimeExceeded(Vec<u8>),
    /// Transmit this ARP reply back to the requester on the receiving interface (`XDP_TX`):
    /// the frame was a request for an owned VIP ([`arp`]).
    ArpReply(Vec<u8>),
}

/// Runs the whole model on one frame that arrived on `ingress` (see the module doc).
pub fn process<C: ConnTable + ?Sized>(
    frame: &[u8],
    ingress: Ingress<'_>,
    services: &Services,
    conns: &mut C,
    director: &Director,
    hops: &dyn NextHops,
) -> Action {
    if let Some(reply) = arp::answer(frame, ingress.owned(), director.mac) {
        return Action::ArpReply(reply);
    }
    if !ingress::is_for(frame, ingress.mac(director)) {
        return Action::NotOurs;
    }
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
            if icmp::routed_over_mtu(flow, director.mtu) {
                // Leaves by the client-facing interface; answered from the inner one.
                return too_big(flow, || {
                    icmp::frag_needed_routed(
                        frame,
                        flow,
                        director.nat_mac,
                        director.nat_ip,
                        director.mtu,
                    )
                });
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
                Mode::Tun if icmp::over_mtu(flow, director.mtu) => too_big(flow, || {
                    icmp::frag_needed(frame, flow, director.mac, director.mtu)
                }),
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
                Mode::Nat if icmp::routed_over_mtu(flow, director.nat_mtu) => too_big(flow, || {
                    icmp::frag_needed_routed(
                        frame,
                        flow,
                        director.mac,
                        director.ip,
                        director.nat_mtu,
                    )
                }),
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

/// A datagram over an MTU: with DF set, the "fragmentation needed" `reply` builds; DF clear,
/// dropped (XDP cannot fragment).
fn too_big(flow: &parse::Flow, reply: impl FnOnce() -> Vec<u8>) -> Action {
    if flow.dont_fragment {
        Action::TooBig(reply())
    } else {
        Action::Drop(DropReason::TooBig)
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
            Ingress::CLIENT,
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
        let a = process(&f, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t);
        let want = icmp::frag_needed(&f, &flow, DIRECTOR.mac, DIRECTOR.mtu);
        assert_eq!(a, Action::TooBig(want));
        let b = conns.get(&flow.tuple).expect("the flow is recorded");
        // One byte less fits: forwarded, established, to the recorded backend.
        big.payload.pop();
        let Action::Tx(out) = process(&big.build(), Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t)
        else {
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
        let a = process(&udp.build(), Ingress::CLIENT, &s, &mut c2, &DIRECTOR, &t);
        assert_eq!(a, Action::Drop(DropReason::TooBig));
        assert_eq!(c2.len(), 1);
        // DR keeps the size (not checked); NAT checks it as it is: 1481 fits 1500.
        for port in [80, 82] {
            let mut dr = Spec::udp(7002, port);
            dr.payload = udp.payload.clone();
            let a = process(&dr.build(), Ingress::CLIENT, &s, &mut c2, &DIRECTOR, &t);
            assert!(matches!(a, Action::Tx(_) | Action::Redirect(_)), "{a:?}");
        }
        // An MTU of 0 disables the check.
        let unchecked = Director { mtu: 0, ..DIRECTOR };
        let a = process(&udp.build(), Ingress::CLIENT, &s, &mut c2, &unchecked, &t);
        assert!(matches!(a, Action::Tx(ref out) if out.len() == udp.build().len() + 20));
    }

    #[test]
    fn nat_over_the_egress_mtu_answers_as_a_router_or_drops() {
        let s = services();
        let t = hops();
        // A smaller inner interface: forwards over 1400 are refused, replies over 1500.
        let d = Director {
            nat_mtu: 1400,
            ..DIRECTOR
        };
        let mut conns = MemConnTable::new(16);
        let mut fwd = Spec::tcp(6100, 82);
        fwd.payload = vec![7; 1400 - 40 + 1];
        let f = fwd.build();
        let flow = *parse(&f).flow().unwrap();
        let Action::TooBig(out) = process(&f, Ingress::CLIENT, &s, &mut conns, &d, &t) else {
            panic!("1401 bytes to a 1400 inner MTU, DF set");
        };
        assert_eq!(out, icmp::frag_needed_routed(&f, &flow, d.mac, d.ip, 1400));
        // From the client-facing interface, to the client, next-hop MTU 1400.
        assert_eq!(
            (out[6..12].to_vec(), out[0..6].to_vec()),
            (d.mac.to_vec(), f[6..12].to_vec())
        );
        assert_eq!(
            (out[26..30].to_vec(), out[30..34].to_vec()),
            (d.ip.to_vec(), CLIENT.to_vec())
        );
        assert_eq!(out[34..36], [3, 4]);
        assert_eq!(out[38..42], [0, 0, 0x05, 0x78]);
        let b = conns.get(&flow.tuple).expect("recorded");
        // 1400 fits: forwarded to the recorded backend.
        fwd.payload.pop();
        let Action::Redirect(ok) = process(&fwd.build(), Ingress::CLIENT, &s, &mut conns, &d, &t)
        else {
            panic!("1400 bytes fit");
        };
        let be = &s.get(&service_key(&flow)).unwrap().backends[b as usize];
        assert_eq!(ok[30..34], be.ip);
        // TTL first (a router's order): TTL 1 and over the MTU is "time exceeded".
        fwd.payload.push(7);
        fwd.ttl = 1;
        let a = process(&fwd.build(), Ingress::CLIENT, &s, &mut conns, &d, &t);
        assert!(matches!(a, Action::TimeExceeded(_)), "{a:?}");
        // DF clear: dropped.
        let mut udp = Spec::udp(6101, 82);
        udp.frag = 0;
        udp.payload = vec![1; 1400 - 28 + 1];
        let a = process(&udp.build(), Ingress::CLIENT, &s, &mut conns, &d, &t);
        assert_eq!(a, Action::Drop(DropReason::TooBig));
        // A reply over the client side's 1500: answered from the inner interface to the
        // backend, next-hop MTU 1500.
        let mut reply = Spec::tcp(be.port, 6100);
        reply.src = be.ip;
        reply.dst = CLIENT;
        reply.payload = vec![3; 1500 - 40 + 1];
        let r = reply.build();
        let rflow = *parse(&r).flow().unwrap();
        let Action::TooBig(out) = process(&r, Ingress::CLIENT, &s, &mut conns, &d, &t) else {
            panic!("a 1501-byte reply, DF set");
        };
        assert_eq!(
            out,
            icmp::frag_needed_routed(&r, &rflow, d.nat_mac, d.nat_ip, 1500)
        );
        assert_eq!(
            (out[26..30].to_vec(), out[30..34].to_vec()),
            (d.nat_ip.to_vec(), be.ip.to_vec())
        );
        assert_eq!(out[38..42], [0, 0, 0x05, 0xdc]);
        reply.payload.pop();
        let a = process(&reply.build(), Ingress::CLIENT, &s, &mut conns, &d, &t);
        assert!(matches!(a, Action::Redirect(_)), "1500 fits: {a:?}");
        // MTUs of 0: nothing is checked.
        let unchecked = Director {
            mtu: 0,
            nat_mtu: 0,
            ..DIRECTOR
        };
        let a = process(
            &udp.build(),
            Ingress::CLIENT,
            &s,
            &mut conns,
            &unchecked,
            &t,
        );
        assert!(matches!(a, Action::Redirect(_)), "{a:?}");
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
                let Action::TimeExceeded(out) =
                    process(&f, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t)
                else {
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
            let Action::Redirect(out) = process(&f, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t)
            else {
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
                let Action::TimeExceeded(out) =
                    process(&r, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t)
                else {
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
            let Action::Redirect(out) = process(
                &reply.build(),
                Ingress::CLIENT,
                &s,
                &mut conns,
                &DIRECTOR,
                &t,
            ) else {
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
            let Action::Tx(out) = process(&f, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t)
            else {
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
        let Action::Redirect(r) =
            process(&reply.build(), Ingress::CLIENT, &s, &mut c, &DIRECTOR, &t)
        else {
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
            process(
                &reply.build(),
                Ingress::CLIENT,
                &s,
                &mut c,
                &DIRECTOR,
                &no_neigh
            ),
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
            process(
                &reply.build(),
                Ingress::CLIENT,
                &s,
                &mut c,
                &DIRECTOR,
                &no_route
            ),
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
            Ingress::CLIENT,
            &s,
            &mut conns,
            &DIRECTOR,
            &no_route,
        );
        assert!(matches!(dr, Action::Tx(_)), "{dr:?}");
    }
}
