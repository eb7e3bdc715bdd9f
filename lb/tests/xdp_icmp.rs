//! The XDP director's ICMP errors at their limits: NAT datagrams around the egress MTUs, and
//! the per-CPU budget of ICMP errors (`icmp_rate`/`icmp_burst`).
//!
//! Contract checked:
//! * `nat_mtu_matches_the_model`: NAT forwards whose total length is one under, at and one
//!   over the inner interface's MTU (560 here) and NAT replies around the client side's (600),
//!   TCP and UDP, DF set or clear, with and without VLAN tag and IP options, some with TTL 1:
//!   the program and `strait_lb::packet::process` return the same verdict and bytes frame by
//!   frame (forwarded up to the MTU; over it the router's ICMP "fragmentation needed" from
//!   the interface the frame arrived on with DF, a drop without; TTL 1 answered first), a
//!   forward refused for its size keeps its recorded backend, and the counters match.
//! * `icmp_budget_limits_errors`: with a budget of 1 error per second, burst 5, on one CPU,
//!   40 NAT forwards with TTL 1 get 5 "time exceeded" (the model's bytes) and 35 drops
//!   (`icmp_limited`); frames that need no ICMP are still forwarded; once the budget is spent
//!   every kind of ICMP error (time exceeded to forwards and replies, fragmentation needed of
//!   TUN and of NAT both ways) is dropped; 1.1 s later one or two more are sent. A rate of 0
//!   sends none.
//!
//! Runs inside a private namespace (root; otherwise `SKIP`, and with `CI=true` a failure).

#[cfg(not(strait_no_bpf))]
mod diffkit;
mod frames;
mod netns;
mod services;

#[cfg(strait_no_bpf)]
#[test]
fn nat_mtu_matches_the_model() {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "built without clang in CI"
    );
    eprintln!("SKIP nat_mtu_matches_the_model: clang not found");
}

#[cfg(not(strait_no_bpf))]
mod icmp {
    use super::diffkit::*;
    use super::frames::{frame, Rng, Shape, ACK};
    use super::netns::in_child;
    use super::services::{services, TCP, UDP, VIP};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    use strait_lb::abi::{self, Counter};
    use strait_lb::packet::decide::DropReason;
    use strait_lb::packet::parse::parse;
    use strait_lb::packet::ratelimit::IcmpLimit;
    use strait_lb::packet::service::{MemConnTable, Services};
    use strait_lb::packet::{process, Action, Ingress};
    use strait_lb::xdp::XdpDirector;

    /// A NAT flow: protocol, client address and port, backend address and port.
    type NatFlow = (u8, [u8; 4], u16, [u8; 4], u16);

    /// A NAT frame `src:sport -> dst:dport` whose IPv4 total length is `len`.
    fn sized(proto: u8, ends: ([u8; 4], u16, [u8; 4], u16), len: usize, rng: &mut Rng) -> Shape {
        let (src, sport, dst, dport) = ends;
        let options = 4 * rng.below(3) as usize;
        let l4 = if proto == TCP { 20 } else { 8 };
        Shape {
            vlan: (rng.below(3) == 0).then(|| 1 + rng.below(4000) as u16),
            options,
            proto,
            payload: len - 20 - options - l4,
            frag: if rng.below(2) == 0 { 0x4000 } else { 0 },
            ttl: if rng.below(8) == 0 { 1 } else { 64 },
            ..Shape::tcp(src, dst, sport, dport, ACK)
        }
    }

    fn counter(xdp: &XdpDirector, which: Counter) -> u64 {
        let all = xdp.counters().unwrap();
        all.into_iter()
            .find(|(c, _)| *c == which)
            .map_or(0, |(_, v)| v)
    }

    #[test]
    fn nat_mtu_matches_the_model() {
        if !in_child() {
            return in_netns("icmp::nat_mtu_matches_the_model");
        }
        let (mut xdp, hops) = load();
        let mut model = Services::new();
        install(&mut xdp, &mut model, &services([100, 100, 100]), 0);
        let mut conns = MemConnTable::new(1 << 12);
        let mut rng = Rng(0x5eed_0000_0e71_0001);
        let mut counts = HashMap::new();
        // Recent NAT forwards (protocol, client, port, backend, port) that replies answer.
        let mut recent: Vec<NatFlow> = Vec::new();
        // [forwards, replies] by length (MTU - 1, MTU, MTU + 1): forwarded, ICMP, dropped;
        // answered for TTL 1; forwards refused for their size and later followed.
        let mut by = [[[0u64; 3]; 3]; 2];
        let (mut ttl_first, mut followed) = (0u64, 0u64);
        let mut refused: HashMap<(u8, [u8; 4], u16, u16), u32> = HashMap::new();
        for n in 0..3000 {
            let mut proto = if rng.below(2) == 0 { TCP } else { UDP };
            let reply = !recent.is_empty() && rng.below(2) == 0;
            let k = rng.below(3) as usize;
            let (shape, side) = if reply {
                let (p, client, cport, b, bport) = recent[rng.below(recent.len() as u64) as usize];
                proto = p;
                let len = MTU as usize - 1 + k;
                (sized(proto, (b, bport, client, cport), len, &mut rng), 1)
            } else {
                let client = [192, 168, 1, rng.below(4) as u8];
                let cport = 40000 + rng.below(64) as u16;
                let dport = [82, 85][rng.below(2) as usize];
                let len = NAT_MTU as usize - 1 + k;
                (sized(proto, (client, cport, VIP, dport), len, &mut rng), 0)
            };
            let input = frame(&shape);
            let tuple = parse(&input).flow().unwrap().tuple;
            let known = conns.peek(&tuple);
            let want = process(
                &input,
                Ingress::CLIENT,
                &model,
                &mut conns,
                &DIRECTOR,
                &hops,
            );
            let got = xdp.test_run(&input).unwrap();
            check(n, &input, &want, &got);
            expect(&want, side == 0, side == 0 && known.is_none(), &mut counts);
            let key = (proto, shape.src, shape.sport, shape.dport);
            match &want {
                Action::TimeExceeded(_) => {
                    assert_eq!(shape.ttl, 1, "frame {n}");
                    ttl_first += u64::from(k == 2);
                }
                Action::Redirect(out) => {
                    assert!(k < 2, "frame {n}: over the MTU forwarded");
                    by[side][k][0] += 1;
                    if side == 0 {
                        let to = parse(out).flow().unwrap().tuple;
                        recent.push((proto, shape.src, shape.sport, to.dst, to.dport));
                        if recent.len() > 16 {
                            recent.remove(0);
                        }
                        if let Some(&was) = refused.get(&key) {
                            assert_eq!(conns.peek(&tuple), Some(was), "frame {n}");
                            followed += 1;
                        }
                    }
                }
                Action::TooBig(out) => {
                    assert_eq!((k, shape.frag), (2, 0x4000), "frame {n}");
                    by[side][k][1] += 1;
                    // Next-hop MTU: the egress interface's (forwards the inner one).
                    let icmp = if shape.vlan.is_some() { 18 } else { 14 } + 20;
                    let mtu = if side == 0 { NAT_MTU } else { MTU };
                    assert_eq!(out[icmp], 3, "frame {n}: destination unreachable");
                    assert_eq!(
                        out[icmp + 6..icmp + 8],
                        (mtu as u16).to_be_bytes(),
                        "frame {n}"
                    );
                    if side == 0 {
                        refused.insert(key, conns.peek(&tuple).unwrap());
                    }
                }
                Action::Drop(DropReason::TooBig) => {
                    assert_eq!((k, shape.frag), (2, 0), "frame {n}");
                    by[side][k][2] += 1;
                    if side == 0 {
                        refused.insert(key, conns.peek(&tuple).unwrap());
                    }
                }
                other => panic!("frame {n}: {other:?}"),
            }
        }
        for (side, name) in [(0, "forwards"), (1, "replies")] {
            let [under, at, over] = by[side];
            assert!(
                under[0] > 100 && at[0] > 100 && over[1] > 100 && over[2] > 100,
                "{name} by length (forwarded, ICMP, dropped): {:?}",
                by[side]
            );
        }
        assert!(ttl_first > 20, "{ttl_first} over the MTU with TTL 1");
        assert!(followed > 20, "{followed} forwards after a refusal");
        for (c, v) in xdp.counters().unwrap() {
            let want = counts.get(&c).copied().unwrap_or(0);
            assert_eq!(v, want, "counter {}", c.as_str());
        }
        println!(
            "[forwards, replies] by length MTU-1, MTU, MTU+1 (forwarded, ICMP, dropped): \
             {by:?}; TTL 1 answered first {ttl_first}; followed after a refusal {followed}"
        );
    }

    /// Frames that each need an ICMP error: NAT forward and reply with TTL 1, TUN over the
    /// MTU, NAT forward and reply over their MTUs (all DF set).
    fn needing_icmp(sport: u16, reply_to: ([u8; 4], u16)) -> Vec<Vec<u8>> {
        let client = [192, 168, 1, 1];
        let (b, bport) = reply_to;
        let ttl1 = |s: Shape| Shape { ttl: 1, ..s };
        let big = |s: Shape, len: usize| Shape {
            frag: 0x4000,
            payload: len - 40,
            ..s
        };
        vec![
            frame(&ttl1(Shape::tcp(client, VIP, sport, 82, ACK))),
            frame(&ttl1(Shape::tcp(b, client, bport, 41000, ACK))),
            frame(&big(Shape::tcp(client, VIP, sport, 81, ACK), MTU as usize)),
            frame(&big(
                Shape::tcp(client, VIP, sport, 82, ACK),
                NAT_MTU as usize + 1,
            )),
            frame(&big(
                Shape::tcp(b, client, bport, 41000, ACK),
                MTU as usize + 1,
            )),
        ]
    }

    /// The fixture director with an ICMP budget.
    fn with_budget(limit: IcmpLimit) -> abi::Director {
        abi::Director {
            icmp_cost: limit.cost_ns,
            icmp_cap: limit.cap_ns,
            ..bpf_director()
        }
    }

    #[test]
    fn icmp_budget_limits_errors() {
        if !in_child() {
            return in_netns("icmp::icmp_budget_limits_errors");
        }
        // One CPU: the budget is per CPU.
        pin_to_cpu(0);
        let (mut xdp, hops) = load_with(with_budget(IcmpLimit::new(1, 5)), 1 << 12);
        let mut model = Services::new();
        install(&mut xdp, &mut model, &services([100, 100, 100]), 0);
        let mut conns = MemConnTable::new(1 << 12);
        let client = [192, 168, 1, 1];
        // A NAT flow for the replies below.
        let open = frame(&Shape::tcp(client, VIP, 41000, 82, ACK));
        let Action::Redirect(out) =
            process(&open, Ingress::CLIENT, &model, &mut conns, &DIRECTOR, &hops)
        else {
            panic!("port 82 is NAT");
        };
        check(
            0,
            &open,
            &Action::Redirect(out.clone()),
            &xdp.test_run(&open).unwrap(),
        );
        let reply_to = (
            [out[30], out[31], out[32], out[33]],
            u16::from_be_bytes([out[36], out[37]]),
        );

        let start = Instant::now();
        let mut sent = 0u64;
        for i in 0..40u16 {
            let f = frame(&Shape {
                ttl: 1,
                ..Shape::tcp(client, VIP, 42000 + i, 82, ACK)
            });
            let want = process(&f, Ingress::CLIENT, &model, &mut conns, &DIRECTOR, &hops);
            assert!(matches!(want, Action::TimeExceeded(_)), "{want:?}");
            let got = xdp.test_run(&f).unwrap();
            if got.action == XDP_TX {
                check(usize::from(i), &f, &want, &got);
                sent += 1;
            } else {
                assert_eq!(got.action, XDP_DROP, "frame {i}");
            }
        }
        let earned = start.elapsed().as_secs();
        assert!(
            (5..=5 + earned).contains(&sent),
            "{sent} of 40 sent in {:?} (burst 5, 1/s)",
            start.elapsed()
        );
        assert_eq!(counter(&xdp, Counter::IcmpTimeExceeded), sent);
        assert_eq!(counter(&xdp, Counter::IcmpLimited), 40 - sent);
        // Forwarding needs no budget.
        let f = frame(&Shape::tcp(client, VIP, 43000, 82, ACK));
        let want = process(&f, Ingress::CLIENT, &model, &mut conns, &DIRECTOR, &hops);
        check(40, &f, &want, &xdp.test_run(&f).unwrap());
        assert!(matches!(want, Action::Redirect(_)));
        // Every kind of ICMP error comes out of the same spent budget.
        let limited = counter(&xdp, Counter::IcmpLimited);
        let kinds = needing_icmp(44000, reply_to);
        for (i, f) in kinds.iter().enumerate() {
            let want = process(f, Ingress::CLIENT, &model, &mut conns, &DIRECTOR, &hops);
            assert!(
                matches!(want, Action::TimeExceeded(_) | Action::TooBig(_)),
                "kind {i}: {want:?}"
            );
            assert_eq!(xdp.test_run(f).unwrap().action, XDP_DROP, "kind {i}");
        }
        assert_eq!(
            counter(&xdp, Counter::IcmpLimited),
            limited + kinds.len() as u64
        );
        // 1.1 s later: one more, or as many as whole seconds passed since the budget was
        // spent (under one token was left then, or a kind above would have been sent): two
        // normally, more only if a busy machine held the test up.
        let spent = Instant::now();
        std::thread::sleep(Duration::from_millis(1100));
        let later = needing_icmp(45000, reply_to)
            .iter()
            .filter(|f| xdp.test_run(f).unwrap().action == XDP_TX)
            .count();
        let waited = spent.elapsed();
        assert!(
            (1..=1 + waited.as_secs() as usize).contains(&later),
            "{later} sent after {waited:?}"
        );

        // A rate of 0 sends none.
        let (mut xdp, _) = load_with(with_budget(IcmpLimit::new(0, 50)), 1 << 12);
        install(
            &mut xdp,
            &mut Services::new(),
            &services([100, 100, 100]),
            0,
        );
        // The same services: the same backend for the replies' flow.
        assert_eq!(xdp.test_run(&open).unwrap().frame, out);
        for f in needing_icmp(46000, reply_to) {
            assert_eq!(xdp.test_run(&f).unwrap().action, XDP_DROP);
        }
        println!(
            "burst 5 at 1/s: {sent} of 40 sent in {:?}; after 1.1 s: {later} of 5",
            start.elapsed()
        );
    }
}
