//! Differential test: the XDP director (`ebpf/director.bpf.c`, run with `BPF_PROG_TEST_RUN`)
//! against the reference model `strait_lb::packet::process`, frame by frame.
//!
//! Contract checked: for 7200 generated frames (TCP/UDP, new and established flows, DR, TUN
//! and NAT services, 5-tuple and source hashing, NAT replies from the backends, a service
//! without backends, misses, VLAN tags, IP options, padding, first and later fragments,
//! truncated frames, non-IP), both return the same verdict (PASS/TX/REDIRECT/DROP) and, for
//! TX and REDIRECT, the same output bytes; a passed frame leaves the program unmodified.
//! Seed: fresh per run (printed), `STRAIT_DIFF_SEED=<n>` replays a run, and a failure prints
//! the seed and the frame index (`diffkit::seed`). Bit flips: one frame in eight (ARP
//! included) gets 1 to 3 bits flipped anywhere, after its checksums were computed, so wrong
//! checksums, lengths, versions, flags, ports and MACs all reach both (`diffgen::corrupt`).
//! Per frame, not only in the run's sums (`diffkit::perframe`): exactly the counter the
//! model's action names moves, by one, and no other (the drop reason of a drop, the pass
//! class of a pass, new or established for a forward; `tx_*` from the backends' statistics,
//! read on forwards); a redirect leaves through the model's egress: before a frame the model
//! redirects, only that egress's devmap entry is filled (its interface: `in0` for NAT
//! forwards, `out0` for NAT replies), so a program redirecting through the other entry
//! returns XDP_DROP (the test run reports no redirect target). The
//! model's connection table is kept in step (same inserts), and the services are replaced
//! every 600 frames (`PHASES`: weights change, backends go down and come back, table slot
//! switches) so established flows must keep their backend in both while it is alive, also
//! drained at weight 0, and be rescheduled as new flows in both once it is dead (LVS
//! `expire_nodest_conn`), every backend dead included. TCP frames carry a mix of flags
//! (`frames::tcp_flags`): opening SYNs (SYN without ACK) must be scheduled anew in both even
//! when their 5-tuple is recorded (reused tuples, some recorded on another backend than the
//! new pick), while SYN+ACK and the other segments of recorded tuples follow the table.
//! TUN path MTU: the director's MTU is 600 (`DIRECTOR.mtu`, also the program's setting), and
//! one frame in ten is a TUN datagram (TCP or UDP, with or without VLAN tag and IP options,
//! DF set or clear) whose inner total length is 579, 580 or 581 (mtu - 21, mtu - 20,
//! mtu - 19): the first two fit once encapsulated and are forwarded; the last one, over the
//! MTU by one byte, must give the same ICMP "fragmentation
//! needed" bytes (DF set: `icmp_too_big`) or the same drop (DF clear: `drop_too_big`) in
//! both, still record the flow, and a later segment of such a flow that fits is forwarded
//! to the recorded backend (established) in both.
//! TTL: frames carry TTL 0, 1 or 2 (one in sixteen each) or 64. NAT forwards and replies
//! must leave with TTL - 1 (checked on the output bytes here, besides their identity), and
//! those with TTL 0 or 1 must give the same ICMP "time exceeded" bytes in both
//! (`icmp_time_exceeded`), forwards and replies, with and without VLAN tag and IP options; a
//! forward answered so is recorded, and a later packet of its flow with a normal TTL goes to
//! the recorded backend in both.
//! ARP (director HA): one frame in eight is an ARP frame (`frames::arp`: requests, RFC 5227
//! probes, gratuitous ARPs, replies, unicast to the director, to another host, to a
//! multicast group, padded, VLAN-tagged, with a wrong type or length, truncated) for the VIP,
//! a second VIP, an address never owned or the director's own; the owned VIPs change with the
//! phase (both, the VIP only, none) in the program's `owned` map and the model's set alike.
//! Frames run as received on the client-facing interface (`out0`, the model's
//! `Ingress::Client`), one in eight on the inner one (`in0`, `Ingress::Inner`), where the
//! model answers for no VIP: owned requests must be answered with the same reply bytes
//! (`arp_reply`), everything else passed unchanged (`pass_not_ipv4` when addressed to us,
//! `pass_not_ours` otherwise), in both.
//! Destination MACs (step 1 of the program, `packet::ingress`): the other frames are addressed
//! to the MAC of the interface they run on (`DIRECTOR.mac` on `out0`, `DIRECTOR.nat_mac` on
//! `in0`), but one in 32 each to another host's unicast MAC, to a multicast group, to the
//! broadcast address and to the director's other interface: those must be passed unchanged
//! in both and counted `pass_not_ours` exactly as the model's `Action::NotOurs` (checked
//! counter by counter, not in the sum of the pass counters), flows to the VIP among them.
//! NAT next hops: each test re-runs itself inside a private namespace whose
//! routes and permanent neighbour entries (`netns::nexthops`) make the kernel's
//! `bpf_fib_lookup` answer deterministically, and the model gets the same table: found,
//! no neighbour (fallback to the backend MAC, or drop), no route, for forwards and replies.
//! Needs root: otherwise prints `SKIP`, and with `CI=true` fails instead.
//! Frames under 14 bytes (`frames_under_14_bytes_are_refused_and_passed_by_the_model`):
//! `BPF_PROG_TEST_RUN` refuses them with `EINVAL` (the kernel's `bpf_test_init` checks
//! `ETH_HLEN` before the program runs; 6.18 here), so only the model runs them: no panic, the
//! verdict of the program's first steps (passed: `pass_not_ours`, or `pass_malformed` when
//! addressed to us). They cannot reach the hook from a NIC either: Ethernet's minimum frame
//! is 64 bytes (60 without FCS; shorter "runts" are dropped by the MAC as errors), and a
//! driver hands XDP only frames it received whole, never fewer bytes than a header.

#[cfg(not(strait_no_bpf))]
mod diffgen;
#[cfg(not(strait_no_bpf))]
mod diffkit;
mod frames;
mod netns;
mod services;

#[cfg(strait_no_bpf)]
#[test]
fn xdp_matches_the_model() {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "built without clang in CI"
    );
    eprintln!("SKIP xdp_matches_the_model: clang not found");
}

#[cfg(not(strait_no_bpf))]
mod diff {
    use super::diffgen::{address, corrupt, generate, owned_in, OTHER_HOST};
    use super::diffkit::perframe::{moved_by, EgressPin, NotingHops, Snapshot};
    use super::diffkit::seed::{seed, AtFrame};
    use super::diffkit::*;
    use super::frames::{frame, Rng, Shape, ACK, SYN, SYN_ACK};
    use super::netns::{in_child, nexthops};
    use super::services::{services, services_alive, Noting, PHASES, TCP, UDP, VIP};
    use std::cell::Cell;
    use std::collections::{HashMap, HashSet};
    use strait_lb::abi::{self, Counter};
    use strait_lb::iface::Interface;
    use strait_lb::packet::arp::{answer, OwnedVips};
    use strait_lb::packet::conntable::{key_bytes, set_of};
    use strait_lb::packet::csum::{l4_checksum, update16, update32};
    use strait_lb::packet::decide::DropReason;
    use strait_lb::packet::nexthop::Egress;
    use strait_lb::packet::parse::{parse, FiveTuple};
    use strait_lb::packet::ratelimit::IcmpLimit;
    use strait_lb::packet::service::{MemConnTable, Services};
    use strait_lb::packet::{process, Action, Ingress};
    use strait_lb::xdp::{test_run_timed, TestRunOutput, XdpDirector};

    /// A full connection table replaces the same entries in both: a table of 24 entries (8
    /// sets of 8 ways) under the fixture's seed, 4000 TCP frames of 512 client tuples to the
    /// DR (80) and NAT (82) services — segments of established flows, opening SYNs, and (one in
    /// three) NAT replies to one of the last NAT forwards, whose entry may be evicted — with
    /// the weights and health changing every 400 frames (`PHASES`), so a flow evicted
    /// in one datapath and kept in the other would be rescheduled differently. Same verdict and
    /// bytes frame by frame, the same forward entries every 25 frames (and the program's count
    /// of them, its gauge), the same eviction count.
    #[test]
    fn eviction_matches_the_model() {
        if !in_child() {
            return in_netns("diff::eviction_matches_the_model");
        }
        let (mut xdp, hops) = load_bounded(24);
        let mut model = Services::new();
        let mut conns = MemConnTable::with_seed(24, nexthops::CONN_SEED);
        let mut rng = Rng(0x5eed_0000_e71c_0001);
        let (mut compared, mut replies) = (0, 0);
        let mut recent = std::collections::VecDeque::new();
        for n in 0..4000 {
            let phase = n / 400;
            if n % 400 == 0 {
                let (weights, alive) = PHASES[phase];
                let list = services_alive(weights, alive);
                install(&mut xdp, &mut model, &list, phase as u32 % 2);
            }
            // Clients routed through the fixture's gateway (192.168.1.0/30).
            let mut client = [192, 168, 1, rng.below(4) as u8];
            let mut client_port = 40000 + rng.below(128) as u16;
            // A reply answers one of the last NAT forwards (its entry may be gone already).
            let reply = !recent.is_empty() && rng.below(3) == 0;
            let (mut b_ip, mut b_port) = ([0; 4], 0);
            if reply {
                let i = rng.below(recent.len() as u64) as usize;
                (client, client_port, b_ip, b_port) = recent[i];
            }
            let (src, dst, sport) = if reply {
                (b_ip, client, b_port)
            } else {
                (client, VIP, client_port)
            };
            // Drawn in this order: port, payload, flags.
            let dport = if reply {
                client_port
            } else {
                [80, 82][rng.below(2) as usize]
            };
            let payload = rng.below(20) as usize;
            let flags = if rng.below(6) == 0 { SYN } else { ACK };
            let shape = Shape {
                payload,
                ..Shape::tcp(src, dst, sport, dport, flags)
            };
            let input = frame(&shape);
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
            match &want {
                Action::Redirect(_) if reply => replies += 1,
                Action::Redirect(out) => {
                    let ip = [out[30], out[31], out[32], out[33]];
                    recent.push_back((
                        client,
                        client_port,
                        ip,
                        u16::from_be_bytes([out[36], out[37]]),
                    ));
                    if recent.len() > 4 {
                        recent.pop_front();
                    }
                }
                _ => {}
            }
            if n % 25 == 24 {
                let held: HashSet<(FiveTuple, u32)> = conns.forward_entries().into_iter().collect();
                assert_eq!(forward_entries(&xdp), held, "frame {n}");
                assert_eq!(xdp.conn_forward().unwrap(), conns.len() as u64, "frame {n}");
                compared += 1;
            }
        }
        let evicted = xdp
            .counters()
            .unwrap()
            .into_iter()
            .find(|(c, _)| *c == Counter::ConnEvicted)
            .map(|(_, v)| v);
        assert_eq!(evicted, Some(conns.evicted()));
        assert!(conns.evicted() > 1000, "{} evictions", conns.evicted());
        assert!(replies > 200, "{replies} NAT replies rewritten");
        println!(
            "evictions {}, NAT replies {replies}, tables compared {compared} times, {} forward \
             entries held at the end",
            conns.evicted(),
            conns.len()
        );
    }

    /// The counter `which` of the program.
    fn counter(xdp: &XdpDirector, which: Counter) -> u64 {
        let got = xdp.counters().unwrap();
        got.into_iter()
            .find(|(c, _)| *c == which)
            .map_or(0, |e| e.1)
    }

    /// One SYN flood run (see `syn_floods_match_the_model`): its guard, the model's table and
    /// the program, both after the run, and how many established frames were checked.
    fn flood(guard: IcmpLimit) -> (MemConnTable, XdpDirector, u64) {
        pin_to_cpu(0);
        let director = abi::Director {
            new_flow_cost: guard.cost_ns,
            new_flow_cap: guard.cap_ns,
            ..bpf_director()
        };
        let (mut xdp, hops) = load_with(director, 64);
        let mut model = Services::new();
        let mut conns = MemConnTable::with_seed(64, nexthops::CONN_SEED).with_new_flow_guard(guard);
        // Backend 3 not yet in the table (weight 0).
        install(
            &mut xdp,
            &mut model,
            &services_alive([100, 100, 0], [true; 3]),
            0,
        );
        let mut n = 0;
        let mut run =
            |xdp: &mut XdpDirector, conns: &mut MemConnTable, model: &Services, input: &[u8]| {
                let want = process(input, Ingress::CLIENT, model, conns, &DIRECTOR, &hops);
                let got = xdp.test_run(input).unwrap();
                check(n, input, &want, &got);
                n += 1;
                want
            };
        // 16 DR and 4 NAT connections (clients routed through the fixture's gateway):
        // SYN, the NAT backend's SYN+ACK and a segment of its, the client's ACK.
        let mut established = Vec::new();
        for i in 0..20u16 {
            let client = [192, 168, 1, (i % 4) as u8];
            let (sport, dport) = (40_000 + i, if i < 16 { 80 } else { 82 });
            let syn = frame(&Shape::tcp(client, VIP, sport, dport, SYN));
            let want = run(&mut xdp, &mut conns, &model, &syn);
            let reply = match want {
                Action::Redirect(out) => {
                    let (b_ip, b_port) = (
                        [out[30], out[31], out[32], out[33]],
                        u16::from_be_bytes([out[36], out[37]]),
                    );
                    // The SYN+ACK leaves its reply entry half-open; the backend's next
                    // segment (an ACK) makes it established.
                    for flags in [SYN_ACK, ACK] {
                        let r = frame(&Shape::tcp(b_ip, client, b_port, sport, flags));
                        assert!(matches!(
                            run(&mut xdp, &mut conns, &model, &r),
                            Action::Redirect(_)
                        ));
                    }
                    Some(frame(&Shape::tcp(b_ip, client, b_port, sport, ACK)))
                }
                Action::Tx(_) => None,
                other => panic!("connection {i}: {other:?}"),
            };
            let ack = frame(&Shape::tcp(client, VIP, sport, dport, ACK));
            let want = run(&mut xdp, &mut conns, &model, &ack);
            established.push((ack, reply, want));
        }
        // A backend added: a rescheduled connection could move.
        install(
            &mut xdp,
            &mut model,
            &services_alive([100, 100, 100], [true; 3]),
            1,
        );
        let before = conns.forward_entries();
        // 3000 distinct SYNs (one in four to NAT); every tenth frame a segment (or NAT reply)
        // of an established connection, which must leave as it did before the flood.
        let mut checked = 0;
        for f in 0..3000u32 {
            let client = [192, 168, 1, (f % 4) as u8];
            let dport = if f % 4 == 3 { 82 } else { 80 };
            // One in eight a lone ACK (a one-packet flow: a spoofed ACK flood); a NAT
            // backend answers its SYN with a SYN+ACK (to a spoofed client: no ACK follows).
            let flags = if f % 8 == 5 { ACK } else { SYN };
            let syn = frame(&Shape::tcp(client, VIP, 1024 + f as u16, dport, flags));
            if let Action::Redirect(out) = run(&mut xdp, &mut conns, &model, &syn) {
                let b_ip = [out[30], out[31], out[32], out[33]];
                let b_port = u16::from_be_bytes([out[36], out[37]]);
                let answer = Shape::tcp(b_ip, client, b_port, 1024 + f as u16, SYN_ACK);
                run(&mut xdp, &mut conns, &model, &frame(&answer));
            }
            if f % 10 == 9 {
                let (ack, reply, want) = &established[(f / 10) as usize % 20];
                assert_eq!(&run(&mut xdp, &mut conns, &model, ack), want, "frame {f}");
                if let Some(r) = reply {
                    assert!(matches!(
                        run(&mut xdp, &mut conns, &model, r),
                        Action::Redirect(_)
                    ));
                }
                checked += 1;
            }
        }
        let after: HashSet<(FiveTuple, u32)> = conns.forward_entries().into_iter().collect();
        assert!(
            before.iter().all(|e| after.contains(e)),
            "every established entry kept"
        );
        assert_eq!(forward_entries(&xdp), after);
        assert_eq!(xdp.conn_forward().unwrap(), conns.len() as u64);
        (conns, xdp, checked)
    }

    /// A SYN flood against established connections, with and without the new-flow guard: a
    /// table of 64 entries (16 sets of 8 ways) under the fixture's seed, 20 connections (16
    /// DR, 4 NAT with their replies) established before a backend is added, then 3000
    /// distinct new flows (DR and NAT; one in eight a lone ACK, the others SYNs, each NAT one
    /// answered by its backend's SYN+ACK as to a spoofed client) with a segment of an
    /// established connection every tenth frame, on one CPU. Same verdict and bytes frame by frame; every established segment
    /// leaves as before the flood (its backend kept); the same forward entries at the end,
    /// all of the established ones among them; the same eviction, half-open eviction,
    /// unrecorded and NAT-drop counts. Without a guard every eviction is of a half-open
    /// entry; with one (a burst of 100, no refill: one new flow a day) exactly 100 new flows
    /// are recorded, the other DR ones forwarded unrecorded and the NAT ones dropped.
    #[test]
    fn syn_floods_match_the_model() {
        if !in_child() {
            return in_netns("diff::syn_floods_match_the_model");
        }
        let day = 86_400 * 1_000_000_000u64;
        for guard in [
            IcmpLimit::NONE,
            IcmpLimit {
                cost_ns: day,
                cap_ns: 100 * day,
            },
        ] {
            let (conns, xdp, checked) = flood(guard);
            let drops = counter(&xdp, Counter::DropNewFlowLimit);
            let unrecorded = counter(&xdp, Counter::NewFlowUnrecorded);
            let evicted = counter(&xdp, Counter::ConnEvicted);
            let half_open = counter(&xdp, Counter::ConnEvictedHalfOpen);
            assert_eq!(evicted, conns.evicted());
            assert_eq!(half_open, conns.evicted_half_open());
            assert_eq!(drops + unrecorded, conns.unadmitted());
            assert_eq!(evicted, half_open, "only half-open entries evicted");
            if guard == IcmpLimit::NONE {
                assert_eq!(conns.unadmitted(), 0);
                assert!(half_open > 2000, "{half_open} half-open evictions");
            } else {
                // 20 connections (and no retransmitted SYN) took 20 of the 100.
                assert_eq!(conns.unadmitted(), 3000 - 80);
                assert!(drops > 600 && unrecorded > 2000, "{drops} {unrecorded}");
            }
            println!(
                "guard {guard:?}: {checked} established segments checked, evicted {evicted} \
                 (half-open {half_open}), unrecorded {unrecorded}, NAT dropped {drops}"
            );
        }
    }

    /// Frames of 0 to 13 bytes: `BPF_PROG_TEST_RUN` refuses them with `EINVAL` (the
    /// kernel's `bpf_test_init` wants a whole Ethernet header), so they cannot be compared
    /// through the program; nor can they reach the XDP hook from a NIC (see the module doc).
    /// The model, given the same bytes, must not panic and must give what the program's
    /// first two steps give (`strait_for_us`, `strait_parse`): under 6 bytes or to another
    /// MAC, passed unlooked at (`pass_not_ours`); to the interface's MAC, passed as
    /// malformed (`pass_malformed`); and the program's counters must not move.
    #[test]
    fn frames_under_14_bytes_are_refused_and_passed_by_the_model() {
        if !in_child() {
            return in_netns("diff::frames_under_14_bytes_are_refused_and_passed_by_the_model");
        }
        let (mut xdp, hops) = load();
        let mut model = Services::new();
        install(&mut xdp, &mut model, &services([100, 100, 100]), 0);
        let mut conns = MemConnTable::new(16);
        let (out0, in0) = (
            Interface::by_name("out0").unwrap().ifindex,
            Interface::by_name("in0").unwrap().ifindex,
        );
        let owned = OwnedVips::new(&[VIP.into()]).unwrap();
        xdp.set_owned(&owned).unwrap();
        let seed = seed("frames_under_14_bytes_are_refused_and_passed_by_the_model");
        let at = AtFrame::new("frames_under_14_bytes", seed);
        let mut rng = Rng(seed);
        let backends = 3 * services(PHASES[0].0).len() as u32;
        let before = Snapshot::read(&xdp, backends);
        let mut n = 0;
        for len in 0..14 {
            for k in 0..16 {
                at.set(n);
                n += 1;
                let inner = k % 2 == 1;
                let (ifindex, ingress, mac) = if inner {
                    (in0, Ingress::Inner, DIRECTOR.nat_mac)
                } else {
                    (out0, Ingress::Client(&owned), DIRECTOR.mac)
                };
                let mut f: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
                // Most to the interface's MAC, as much of it as fits; an IPv4 or ARP type.
                if k % 4 < 3 {
                    let m = len.min(6);
                    f[..m].copy_from_slice(&mac[..m]);
                    if len >= 14 - 2 {
                        let t = [[0x08, 0x00], [0x08, 0x06]][k % 2];
                        f[12..len].copy_from_slice(&t[..len - 12]);
                    }
                }
                let want = process(&f, ingress, &model, &mut conns, &DIRECTOR, &hops);
                let ours = len >= 6 && f[..6] == mac;
                let (action, counter) = if ours {
                    (Action::Pass, Counter::PassMalformed)
                } else {
                    (Action::NotOurs, Counter::PassNotOurs)
                };
                assert_eq!(want, action, "frame {n}: {f:02x?}");
                assert_eq!(moved_by(&want, &f, false, false), counter, "frame {n}");
                let err = xdp.test_run_on(&f, ifindex).expect_err("the kernel ran it");
                assert_eq!(errno(&err), Some(libc::EINVAL), "frame {n}: {err:?}");
            }
        }
        assert!(conns.is_empty());
        assert_eq!(Snapshot::read(&xdp, backends).moved(&before), []);
        println!("{n} frames of 0 to 13 bytes refused (EINVAL), passed by the model");
    }

    /// The OS error under `e`'s chain of sources.
    fn errno(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return io.raw_os_error();
            }
            cur = err.source();
        }
        None
    }

    #[test]
    fn xdp_matches_the_model() {
        if !in_child() {
            return in_netns("diff::xdp_matches_the_model");
        }
        let (mut xdp, hops) = load();
        let mut model = Services::new();
        let mut conns = Noting {
            table: MemConnTable::with_seed(1 << 16, nexthops::CONN_SEED),
            found: Cell::new(false),
            inserted: false,
        };
        let seed = seed("xdp_matches_the_model");
        let at = AtFrame::new("xdp_matches_the_model", seed);
        let mut rng = Rng(seed);
        let hops = NotingHops::new(&hops);
        // Frames with bits flipped, and how many of them each datapath did not pass.
        let (mut flipped, mut flipped_acted) = (0u64, 0u64);
        // Redirects by egress (NAT forwards, NAT replies), each through its own devmap entry.
        let mut redirects = [0u64; 2];
        // Forwards of flows recorded on a dead backend (rescheduled), of flows kept by a
        // drained backend (alive, weight 0).
        let (mut rescheduled, mut drained) = (0, 0);
        // Passed, dropped, transmitted, NAT forwards, NAT replies; TUN among the transmitted.
        let mut seen = [0u64; 5];
        let mut tun = 0;
        // Forwards of the source-hashed services.
        let mut sh = 0;
        // Opening SYNs forwarded on a recorded 5-tuple, those moved to another backend than
        // the recorded one, and SYN+ACKs that followed a recorded entry.
        let (mut syn_reused, mut syn_moved, mut syn_ack_followed) = (0, 0, 0);
        let mut counts = HashMap::new();
        // Flows refused for the MTU (ICMP or drop), with their recorded backend; ICMP replies,
        // such drops and TUN forwards by inner length (579, 580, 581); later segments of the
        // refused flows forwarded to their backend.
        let mut too_big_flows: HashMap<FiveTuple, u32> = HashMap::new();
        let (mut icmp, mut too_big_drops, mut fitting) = ([0u64; 3], [0u64; 3], [0u64; 3]);
        let mut after_too_big = 0u64;
        // ICMP replies to frames with a VLAN tag, with IP options.
        let (mut icmp_vlan, mut icmp_options) = (0u64, 0u64);
        // ICMP time exceeded to forwards and to replies, to frames with VLAN tag, with IP
        // options, by TTL (0, 1); NAT forwards and replies by input TTL (2, 64); flows
        // answered for their TTL and later forwards of them to the recorded backend.
        let (mut ttl_fwd, mut ttl_reply, mut ttl_vlan, mut ttl_options) = (0u64, 0, 0, 0);
        let (mut ttl_by, mut nat_by) = ([0u64; 2], [[0u64; 2]; 2]);
        let mut ttl_flows: HashMap<FiveTuple, u32> = HashMap::new();
        let mut after_ttl = 0u64;
        // ARP: replies, and owned requests arriving on the inner interface (passed).
        let (mut arp_replies, mut arp_inner) = (0u64, 0u64);
        // Frames not ours, to another host, a multicast group, broadcast, another MAC (the
        // director's other interface, a corrupted one); those of them carrying a flow to the VIP.
        let (mut not_ours, mut not_ours_flows) = ([0u64; 4], 0u64);
        let (out0, in0) = (
            Interface::by_name("out0").unwrap().ifindex,
            Interface::by_name("in0").unwrap().ifindex,
        );
        let mut pin = EgressPin::new(in0, out0);
        let backends = 3 * services(PHASES[0].0).len() as u32;
        let mut owned = OwnedVips::NONE;
        let mut before = Snapshot::read(&xdp, backends);
        for n in 0..7200 {
            at.set(n);
            let phase = n / 600;
            let (weights, alive) = PHASES[phase];
            if n % 600 == 0 {
                // Weights and health change: new flows follow the new table, established
                // ones stay unless their backend is dead.
                let list = services_alive(weights, alive);
                install(&mut xdp, &mut model, &list, phase as u32 % 2);
                owned = owned_in(phase);
                xdp.set_owned(&owned).unwrap();
                assert_eq!(xdp.owned().unwrap(), owned.iter().collect::<Vec<_>>());
                // An install zeroes the statistics of the backends it rewrites.
                before = Snapshot::read(&xdp, backends);
            }
            let (input, is_arp) = generate(&mut rng);
            let inner = rng.below(8) == 0;
            let mut input = if is_arp {
                input
            } else {
                address(&mut rng, input, inner)
            };
            // One frame in eight: 1 to 3 bits flipped anywhere, checksums already computed.
            let flips = if rng.below(8) == 0 {
                corrupt(&mut rng, &mut input)
            } else {
                0
            };
            let (ifindex, ingress) = if inner {
                (in0, Ingress::Inner)
            } else {
                (out0, Ingress::Client(&owned))
            };
            arp_inner += u64::from(inner && answer(&input, &owned, DIRECTOR.mac).is_some());
            let parsed = parse(&input);
            let flow = parsed.flow().map(|f| f.tuple);
            let syn = parsed.flow().is_some_and(|f| f.opening_syn);
            let syn_ack = flow.is_some_and(|t| t.proto == TCP) && !syn && {
                let l4 = parsed.flow().map_or(0, |f| f.l4_offset);
                input.get(l4 + 13) == Some(&SYN_ACK)
            };
            let recorded = flow.and_then(|t| conns.table.peek(&t));
            conns.found.set(false);
            conns.inserted = false;
            hops.last.set(None);
            let want = process(&input, ingress, &model, &mut conns, &DIRECTOR, &hops);
            if let Action::Redirect(_) = want {
                // Only the model's egress entry filled: another one would give XDP_DROP.
                let egress = hops
                    .last
                    .get()
                    .expect("a redirect follows a next-hop lookup");
                pin.only(&mut xdp, egress);
                redirects[usize::from(egress == Egress::Client)] += 1;
            }
            let got = xdp.test_run_on(&input, ifindex).unwrap();
            check(n, &input, &want, &got);
            let to_vip = flow.map(|t| t.dst) == Some(VIP);
            expect(&want, to_vip, conns.inserted, &mut counts);
            // Exactly the model's counter moved, by one: the drop reason, pass class or
            // forward kind of this frame, not only the run's sums.
            let c = moved_by(&want, &input, to_vip, conns.inserted);
            let after = if matches!(c, Counter::TxNew | Counter::TxEstablished) {
                Snapshot::read(&xdp, backends)
            } else {
                Snapshot::read_counters(&xdp, &before)
            };
            assert_eq!(
                after.moved(&before),
                [(c.as_str(), 1)],
                "frame {n}: counters moved, model {want:?}, input {input:02x?}"
            );
            before = after;
            if flips > 0 {
                flipped += 1;
                flipped_acted += u64::from(!matches!(want, Action::Pass | Action::NotOurs));
            }
            if matches!(want, Action::Tx(_) | Action::Redirect(_)) && to_vip {
                let b = flow.and_then(|t| conns.table.peek(&t)).unwrap();
                rescheduled += u64::from(conns.found.get() && conns.inserted);
                let bi = b as usize;
                drained += u64::from(!conns.inserted && weights[bi] == 0 && alive[bi]);
                if syn && recorded.is_some() {
                    assert!(conns.inserted, "frame {n}: a SYN is always a new flow");
                    syn_reused += 1;
                    syn_moved += u64::from(recorded != Some(b));
                }
                if syn_ack && recorded.is_some() && !conns.inserted {
                    syn_ack_followed += 1;
                }
            }
            let inner_len = parsed.flow().map(|f| f.l3_end - f.l3_offset);
            let at = |len: Option<usize>| len.map_or(3, |l| l.wrapping_sub(MTU as usize - 21));
            match want {
                Action::TooBig(_) | Action::Drop(DropReason::TooBig) => {
                    let t = flow.unwrap();
                    let b = conns.table.peek(&t);
                    assert!(b.is_some(), "frame {n}: a flow over the MTU is recorded");
                    too_big_flows.insert(t, b.unwrap());
                    let i = at(inner_len);
                    // Flipped bits may make another length or a NAT datagram too big.
                    if flips == 0 {
                        assert_eq!(i, 2, "frame {n}: inner length {inner_len:?}");
                    }
                    if i == 2 && matches!(want, Action::TooBig(_)) {
                        icmp[i] += 1;
                        let f = parsed.flow().unwrap();
                        icmp_vlan += u64::from(f.l3_offset == 18);
                        icmp_options += u64::from(f.l4_offset - f.l3_offset > 20);
                    } else if i == 2 {
                        too_big_drops[i] += 1;
                    }
                }
                Action::Tx(_) => {
                    let i = at(inner_len);
                    if flow.map(|t| t.dport) == Some(81) && i < 3 {
                        fitting[i] += 1;
                    }
                    let t = flow.unwrap();
                    if let Some(&b) = too_big_flows.get(&t) {
                        if !conns.inserted {
                            assert_eq!(conns.table.peek(&t), Some(b), "frame {n}");
                            after_too_big += 1;
                        }
                        too_big_flows.remove(&t);
                    }
                }
                _ => {}
            }
            if let Some(f) = parsed.flow().filter(|_| conns.inserted) {
                // Rescheduled (a SYN, a dead backend): no longer the answered flow's backend.
                ttl_flows.remove(&f.tuple);
            }
            if let Some(f) = parsed.flow() {
                let ttl = input[f.l3_offset + 8];
                match want {
                    Action::TimeExceeded(ref out) => {
                        assert!(ttl <= 1, "frame {n}: TTL {ttl}");
                        // Type 11, code 0, second word 0; to the sender, quoting its header.
                        let icmp = f.l3_offset + 20;
                        assert_eq!(out[icmp..icmp + 2], [11, 0], "frame {n}");
                        assert_eq!(out[icmp + 4..icmp + 8], [0; 4], "frame {n}");
                        assert_eq!(out[f.l3_offset + 16..icmp], f.tuple.src, "frame {n}");
                        assert_eq!(out[0..6], input[6..12], "frame {n}");
                        let (smac, saddr) = if to_vip {
                            ttl_fwd += 1;
                            let b = conns.table.peek(&f.tuple);
                            assert!(b.is_some(), "frame {n}: answered, still recorded");
                            ttl_flows.insert(f.tuple, b.unwrap());
                            (DIRECTOR.mac, DIRECTOR.ip)
                        } else {
                            ttl_reply += 1;
                            (DIRECTOR.nat_mac, DIRECTOR.nat_ip)
                        };
                        assert_eq!(out[6..12], smac, "frame {n}");
                        assert_eq!(out[f.l3_offset + 12..f.l3_offset + 16], saddr, "frame {n}");
                        ttl_by[usize::from(ttl)] += 1;
                        ttl_vlan += u64::from(f.l3_offset == 18);
                        ttl_options += u64::from(f.l4_offset - f.l3_offset > 20);
                    }
                    Action::Redirect(ref out) => {
                        assert!(ttl > 1, "frame {n}: TTL {ttl} forwarded");
                        assert_eq!(out[f.l3_offset + 8], ttl - 1, "frame {n}: TTL - 1");
                        nat_by[usize::from(to_vip)][usize::from(ttl == 64)] += 1;
                        if to_vip {
                            if let Some(b) = ttl_flows.remove(&f.tuple) {
                                assert_eq!(conns.table.peek(&f.tuple), Some(b), "frame {n}");
                                after_ttl += 1;
                            }
                        }
                    }
                    Action::Tx(ref out) => {
                        // DR keeps the TTL; TUN's outer header has TTL 64, the inner keeps it.
                        let inner = f.l3_offset + 8 + out.len() - input.len();
                        assert_eq!(out[inner], ttl, "frame {n}: DR/TUN keep the TTL");
                    }
                    _ => {}
                }
            }
            let dport = flow.map(|t| t.dport);
            if matches!(want, Action::Tx(_) | Action::Redirect(_)) && matches!(dport, Some(84 | 85))
            {
                sh += 1;
            }
            match want {
                Action::Pass => seen[0] += 1,
                Action::NotOurs => {
                    let d = &input[0..6];
                    let kind = match d {
                        _ if d == OTHER_HOST => 0,
                        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] => 2,
                        _ if d[0] & 1 == 1 => 1,
                        _ => 3,
                    };
                    not_ours[kind] += 1;
                    not_ours_flows += u64::from(to_vip);
                }
                Action::Drop(_) => seen[1] += 1,
                Action::Tx(ref out) => {
                    seen[2] += 1;
                    tun += u64::from(out.len() == input.len() + 20);
                }
                Action::Redirect(_) => seen[if to_vip { 3 } else { 4 }] += 1,
                Action::TooBig(_) | Action::TimeExceeded(_) => {}
                Action::ArpReply(_) => arp_replies += 1,
            }
        }
        // The run covered every verdict, all modes, new and established flows, every drop.
        assert!(seen[1] > 100, "verdicts {seen:?}");
        assert!(
            [0, 2, 3].iter().all(|&i| seen[i] > 200),
            "verdicts {seen:?}"
        );
        assert!(seen[4] > 20, "verdicts {seen:?}");
        assert!(tun > 50, "{tun} TUN frames");
        // Around the MTU: mtu - 21 and mtu - 20 fit (forwarded), mtu - 19 does not (ICMP with
        // DF, drop without).
        assert!(
            fitting[..2].iter().all(|&c| c > 10) && fitting[2] == 0,
            "TUN forwards {fitting:?} by inner length mtu - 21 + i"
        );
        assert!(
            icmp[2] > 10 && too_big_drops[2] > 10,
            "ICMP {icmp:?}, drops {too_big_drops:?} by inner length mtu - 21 + i"
        );
        assert!(
            after_too_big > 5,
            "{after_too_big} forwards after a too-big"
        );
        assert!(
            icmp_vlan > 5 && icmp_options > 20,
            "ICMP replies: {icmp_vlan} with VLAN, {icmp_options} with IP options"
        );
        assert!(
            ttl_fwd > 10 && ttl_reply > 10 && ttl_by.iter().all(|&c| c > 5),
            "ICMP time exceeded: {ttl_fwd} forwards, {ttl_reply} replies, by TTL {ttl_by:?}"
        );
        assert!(
            ttl_vlan > 3 && ttl_options > 10,
            "ICMP time exceeded: {ttl_vlan} with VLAN, {ttl_options} with IP options"
        );
        assert!(
            nat_by.iter().flatten().all(|&c| c > 5),
            "NAT [replies, forwards] by TTL [2, 64]: {nat_by:?}"
        );
        assert!(after_ttl > 3, "{after_ttl} forwards after a time exceeded");
        assert!(sh > 100, "{sh} source-hashed forwards");
        assert!(
            arp_replies > 20 && arp_inner > 0,
            "{arp_replies} ARP replies, {arp_inner} owned requests passed on the inner interface"
        );
        assert!(rescheduled > 50, "{rescheduled} rescheduled flows");
        assert!(drained > 30, "{drained} flows kept by drained backends");
        assert!(syn_reused > 80, "{syn_reused} SYNs on recorded 5-tuples");
        assert!(
            syn_moved > 25,
            "{syn_moved} SYNs moved off their recorded backend"
        );
        assert!(
            syn_ack_followed > 20,
            "{syn_ack_followed} SYN+ACKs following the table"
        );
        let got: Vec<(Counter, u64)> = xdp.counters().unwrap();
        let mut pass = 0;
        for (c, v) in &got {
            if c.as_str().starts_with("pass_") && *c != Counter::PassNotOurs {
                pass += v;
                continue;
            }
            let want = counts.get(c).copied().unwrap_or(0);
            assert_eq!(*v, want, "counter {}", c.as_str());
            // Control-plane bugs, 64 KiB datagrams and a full ring are not generated here.
            // The table is far larger than the flows here: evictions are
            // `eviction_matches_the_model`'s.
            let rare = [
                Counter::DropBadBackend,
                Counter::DropEncapTooBig,
                Counter::EventLost,
                Counter::ConnEvicted,
                Counter::ConnBusy,
                // No ICMP budget here (as the model): `icmp_budget_limits_errors`'s.
                Counter::IcmpLimited,
                // No idle timeout here: xdp_attach's
                // `idle_entries_expire_in_the_program_and_leave_the_listing`.
                Counter::ConnExpired,
                // No new-flow guard, no eviction: `syn_floods_match_the_model`'s.
                Counter::NewFlowUnrecorded,
                Counter::DropNewFlowLimit,
                Counter::ConnEvictedHalfOpen,
            ];
            if !rare.contains(c) {
                assert!(want > 10, "counter {} barely exercised: {want}", c.as_str());
            }
        }
        assert_eq!(pass, seen[0]);
        assert!(
            not_ours.iter().all(|&c| c > 100) && not_ours_flows > 200,
            "not ours: {not_ours:?} by destination, {not_ours_flows} flows to the VIP"
        );
        assert!(
            flipped > 600 && flipped_acted > 120,
            "{flipped} frames with flipped bits, {flipped_acted} of them not passed"
        );
        assert!(
            redirects.iter().all(|&c| c > 60),
            "redirects [NAT forwards, NAT replies]: {redirects:?}"
        );
        println!(
            "pass/drop/tx/nat/reply {seen:?}, not ours {not_ours:?} ({not_ours_flows} to the \
             VIP), tun {tun}, sh {sh}, rescheduled {rescheduled}, \
             drained {drained}, SYNs reused {syn_reused} (moved {syn_moved}), SYN+ACKs \
             following {syn_ack_followed}, MTU: ICMP {icmp:?} drops {too_big_drops:?} \
             fitting {fitting:?} followed {after_too_big}, TTL: ICMP {ttl_fwd}/{ttl_reply} \
             by TTL {ttl_by:?} followed {after_ttl}, NAT by TTL {nat_by:?}, ARP replies \
             {arp_replies} (owned requests on the inner interface {arp_inner}), flipped \
             {flipped} ({flipped_acted} not passed), redirects {redirects:?}, counters {got:?}"
        );
    }

    /// Two CPUs recording into the same sets at once keep the table whole: a table of 24
    /// entries (8 sets), two threads pinned to CPUs 0 and 1 each running 50 000 frames of the
    /// same 2048 flows (DR and NAT, one SYN in three) whose forward entries all fall into 2
    /// sets, through the program. With the services unchanged every flow's backend is its
    /// Maglev pick whether the table kept it or not, so every output must be the model's;
    /// afterwards no key may be held twice (two CPUs recording one new key at once, both
    /// missing it, would put it in two ways), every forward entry must hold its own tuple's
    /// backend (a way written by two CPUs at once could pair one flow's key with another's
    /// value) and the program's count must match the listing. Without the set claim this
    /// fails within a few runs (checked); with it, it must never.
    #[test]
    fn concurrent_records_keep_entries_whole() {
        if !in_child() {
            return in_netns("diff::concurrent_records_keep_entries_whole");
        }
        let (mut xdp, hops) = load_bounded(24);
        let mut model = Services::new();
        install(&mut xdp, &mut model, &services([100, 100, 100]), 0);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let program = xdp.program().unwrap();
        let tables: Vec<MemConnTable> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..2u8)
                .map(|t| {
                    let (model, hops) = (&model, &hops);
                    scope.spawn(move || {
                        pin_to_cpu(usize::from(t) % cpus);
                        let mut table = MemConnTable::new(1 << 16);
                        let mut rng = Rng(0x5eed_0000_c0c0_0000 + u64::from(t));
                        // Both threads send the same flows, whose forward entries fall into two
                        // of the 8 sets.
                        let tuples: Vec<(u8, u16, u16)> = (0..4u8)
                            .flat_map(|a| (40000..40256u16).map(move |p| (a, p)))
                            .flat_map(|(a, p)| [(a, p, 80u16), (a, p, 82)])
                            .filter(|&(a, p, d)| {
                                let k = key_bytes([192, 168, 1, a], VIP, p, d, TCP, 0);
                                set_of(&k, nexthops::CONN_SEED, 7) < 2
                            })
                            .collect();
                        for n in 0..50_000 {
                            let (a, sport, dport) = tuples[rng.below(tuples.len() as u64) as usize];
                            let flags = if rng.below(3) == 0 { SYN } else { ACK };
                            let shape = Shape::tcp([192, 168, 1, a], VIP, sport, dport, flags);
                            let input = frame(&shape);
                            let want = process(
                                &input,
                                Ingress::CLIENT,
                                model,
                                &mut table,
                                &DIRECTOR,
                                hops,
                            );
                            let run = test_run_timed(program, &input, 1).unwrap();
                            let got = TestRunOutput {
                                action: run.action,
                                frame: run.frame,
                            };
                            check(n, &input, &want, &got);
                        }
                        table
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let listed = xdp.conns(usize::MAX).unwrap();
        let keys: HashSet<_> = listed.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys.len(), listed.len(), "a key held twice");
        let held = forward_entries(&xdp);
        for (t, b) in &held {
            let want = tables.iter().find_map(|table| table.peek(t));
            assert_eq!(want, Some(*b), "entry {t:?}");
        }
        assert_eq!(xdp.conn_forward().unwrap(), held.len() as u64);
        let counter = |c: Counter| {
            let all = xdp.counters().unwrap();
            all.into_iter().find(|(k, _)| *k == c).map_or(0, |(_, v)| v)
        };
        assert!(counter(Counter::ConnEvicted) > 1000);
        println!(
            "{} entries held, {} evictions, {} claims given up (conn_busy), on {cpus} CPUs",
            held.len(),
            counter(Counter::ConnEvicted),
            counter(Counter::ConnBusy)
        );
    }

    /// The next-hop cache (`ebpf/lib/fib.h`) follows the kernel: a NAT forward to backend 1
    /// leaves with its neighbour MAC; after `ip neigh replace` gives the backend another MAC,
    /// forwards leave with the new one once the cache's 256 jiffies have passed (polled every
    /// 50 ms, on whichever CPU the test runs), and the model given the new table agrees byte
    /// for byte.
    #[test]
    fn nat_next_hop_follows_a_neighbour_change() {
        if !in_child() {
            return in_netns("diff::nat_next_hop_follows_a_neighbour_change");
        }
        let (mut xdp, mut hops) = load();
        let mut model = Services::new();
        // Backend 1 takes every new flow.
        install(&mut xdp, &mut model, &services([100, 0, 0]), 0);
        let mut conns = MemConnTable::new(1 << 10);
        let forward = |sport: u16| frame(&Shape::tcp([192, 168, 1, 1], VIP, sport, 82, ACK));
        let before = forward(40000);
        let want = process(
            &before,
            Ingress::CLIENT,
            &model,
            &mut conns,
            &DIRECTOR,
            &hops,
        );
        check(0, &before, &want, &xdp.test_run(&before).unwrap());
        let new_mac = [2, 0, 0, 0, 9, 1];
        let status = std::process::Command::new("ip")
            .args([
                "neigh",
                "replace",
                "10.0.1.1",
                "lladdr",
                "02:00:00:00:09:01",
            ])
            .args(["dev", "in0", "nud", "permanent"])
            .status()
            .unwrap();
        assert!(status.success());
        hops = nexthops::table();
        hops.neighbours.insert(
            (strait_lb::packet::nexthop::Egress::Nat, [10, 0, 1, 1]),
            new_mac,
        );
        let start = std::time::Instant::now();
        let mut n = 1;
        loop {
            let f = forward(40000 + n);
            let got = xdp.test_run(&f).unwrap();
            if got.frame.get(0..6) == Some(&new_mac[..]) {
                let want = process(&f, Ingress::CLIENT, &model, &mut conns, &DIRECTOR, &hops);
                check(usize::from(n), &f, &want, &got);
                break;
            }
            assert!(
                // 256 jiffies: 1.02 s at HZ=250, 2.56 s at HZ=100.
                start.elapsed() < std::time::Duration::from_millis(3000),
                "still the old MAC after {:?}",
                start.elapsed()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
            n += 1;
        }
        println!("new neighbour MAC used after {:?}", start.elapsed());
    }

    /// RFC 768: a UDP checksum that the NAT update turns into 0 is sent as 0xffff. Searches
    /// the payload word that makes the update land on 0, then compares both datapaths.
    #[test]
    fn nat_writes_a_zero_udp_checksum_as_ffff() {
        if !in_child() {
            return in_netns("diff::nat_writes_a_zero_udp_checksum_as_ffff");
        }
        let (mut xdp, hops) = load();
        let mut model = Services::new();
        install(&mut xdp, &mut model, &services([100, 100, 100]), 0);
        let mut conns = MemConnTable::new(16);
        let base = Shape {
            vlan: None,
            options: 0,
            proto: UDP,
            src: [192, 168, 1, 1],
            dst: VIP,
            sport: 40000,
            dport: 82,
            payload: 2,
            frag: 0x4000,
            padding: 0,
            udp_no_csum: false,
            tcp_flags: 0,
            ttl: 64,
        };
        let probe = frame(&base);
        let Action::Redirect(out) = process(
            &probe,
            Ingress::CLIENT,
            &model,
            &mut conns,
            &DIRECTOR,
            &hops,
        ) else {
            panic!("UDP to port 82 is NAT");
        };
        let (new_ip, new_port) = ([out[30], out[31], out[32], out[33]], [out[36], out[37]]);
        let zeroing = (0..=u16::MAX).find_map(|w| {
            let mut f = probe.clone();
            f[42..44].copy_from_slice(&w.to_be_bytes());
            let c = l4_checksum([192, 168, 1, 1], VIP, UDP, &f[34..44], 6);
            f[40..42].copy_from_slice(&c.to_be_bytes());
            let old = u16::from_be_bytes([f[36], f[37]]);
            let updated = update16(update32(c, VIP, new_ip), old, u16::from_be_bytes(new_port));
            (c != 0 && updated == 0).then_some(f)
        });
        let input = zeroing.unwrap();
        let want = process(
            &input,
            Ingress::CLIENT,
            &model,
            &mut conns,
            &DIRECTOR,
            &hops,
        );
        let Action::Redirect(ref bytes) = want else {
            panic!("{want:?}");
        };
        assert_eq!(bytes[40..42], [0xff, 0xff]);
        let got = xdp.test_run(&input).unwrap();
        check(0, &input, &want, &got);
    }
}
