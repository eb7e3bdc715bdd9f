//! Root tests of `XdpDirector::install_synced` (flows synced from the peer director written
//! into the program's connection table through its mapping) against the model's
//! `MemConnTable::install_synced`, under `BPF_PROG_TEST_RUN`.
//!
//! Contract checked:
//! * `installs_and_packets_share_a_small_table_as_in_the_model`: a table of 24 entries (8
//!   sets) under the fixture's seed, 3000 steps mixing batches of synced flows (DR and NAT,
//!   every state, some to a backend index outside the list or to no service) and the TCP
//!   segments of those flows and others (SYN, ACK, NAT replies): the same `Installed` counts
//!   for every batch, the same verdict and bytes for every frame, the same forward entries
//!   every 20 steps and the program's gauge (`conn_forward`, userspace writes included) equal
//!   to the model's count; many evictions by installs.
//! * `a_half_open_record_is_evicted_before_established_ones`: a full set of seven open
//!   records and one half-open one (not the least recently used) loses the half-open one to
//!   the next record.
//! * `a_held_set_refuses_the_flow_whole`: a flow whose forward set, or (NAT) whose reply set,
//!   stays claimed is refused and nothing of it written; released, it installs; an unknown
//!   service or a backend index past the list is refused too.
//!
//! Each test re-runs itself inside a private namespace (`netns::nexthops`); not root: `SKIP`
//! (CI=true: fail).

#[cfg(not(strait_no_bpf))]
mod diffkit;
mod frames;
mod netns;
mod services;

#[cfg(strait_no_bpf)]
#[test]
fn xdp_install_needs_the_bpf_object() {
    netns::skip_without_bpf("xdp_install");
}

#[cfg(not(strait_no_bpf))]
mod install {
    use super::diffkit::{check, forward_entries, in_netns, install, load_bounded, DIRECTOR};
    use super::frames::{frame, Rng, Shape, ACK, SYN};
    use super::netns::{in_child, nexthops};
    use super::services::{client_flow, services_alive};
    use std::collections::HashSet;
    use std::time::Duration;
    use strait_lb::abi;
    use strait_lb::datapath::{Installed, SyncedFlow};
    use strait_lb::packet::conntable::{key_bytes, set_of};
    use strait_lb::packet::nexthop::StaticNextHops;
    use strait_lb::packet::parse::FiveTuple;
    use strait_lb::packet::service::{MemConnTable, ServiceKey, Services};
    use strait_lb::packet::{process, Action, Ingress};
    use strait_lb::sync::FlowState;
    use strait_lb::xdp::XdpDirector;

    /// The tick rate the idle times are converted at (all zero here: any rate).
    const HZ: u32 = 250;

    /// The program with a table of `max_conns` entries and the fixture's services (backend
    /// weights `weights`), the model's services and next hops.
    fn loaded(max_conns: u32, weights: [u32; 3]) -> (XdpDirector, Services, StaticNextHops) {
        let (mut xdp, hops) = load_bounded(max_conns);
        let mut services = Services::new();
        let list = services_alive(weights, [true; 3]);
        install(&mut xdp, &mut services, &list, 0);
        (xdp, services, hops)
    }

    fn synced(t: FiveTuple, backend: u32, state: FlowState) -> SyncedFlow {
        SyncedFlow {
            tuple: t,
            service: ServiceKey::of(&t),
            backend,
            state,
            idle: Duration::ZERO,
        }
    }

    #[test]
    fn installs_and_packets_share_a_small_table_as_in_the_model() {
        if !in_child() {
            return in_netns("install::installs_and_packets_share_a_small_table_as_in_the_model");
        }
        let (mut xdp, services, hops) = loaded(24, [100, 100, 0]);
        let mut model = MemConnTable::with_seed(24, nexthops::CONN_SEED);
        let mut rng = Rng(0x5eed_0000_5a5c_0001);
        let states = [FlowState::HalfOpen, FlowState::Open, FlowState::Closing];
        let mut total = Installed::default();
        let (mut frames, mut replies) = (0, 0);
        for step in 0..3000 {
            // Clients routed through the fixture's gateway; DR (80) and NAT (82).
            let pick = |rng: &mut Rng| {
                let port = [80, 82][rng.below(2) as usize];
                client_flow(rng.below(4) as u8, 40_000 + rng.below(48) as u16, port)
            };
            if rng.below(3) == 0 {
                let flows: Vec<SyncedFlow> = (0..1 + rng.below(3))
                    .map(|_| {
                        let mut f = synced(
                            pick(&mut rng),
                            rng.below(4) as u32, // 3: outside the list
                            states[rng.below(3) as usize],
                        );
                        if rng.below(20) == 0 {
                            f.service.port = 443; // no such service
                        }
                        f
                    })
                    .collect();
                let got = xdp.install_synced(&flows, HZ).unwrap();
                let want = model.install_synced(&flows, &services, HZ);
                assert_eq!(got, want, "step {step}: {flows:?}");
                total.installed += got.installed;
                total.evicted += got.evicted;
                total.refused += got.refused;
                total.replaced += got.replaced;
            } else {
                let t = pick(&mut rng);
                let flags = if rng.below(5) == 0 { SYN } else { ACK };
                let mut input = frame(&Shape::tcp(t.src, t.dst, t.sport, t.dport, flags));
                // One in three NAT frames: a backend's answer to the client instead.
                if t.dport == 82 && rng.below(3) == 0 {
                    // Mostly from the flow's backend, if it has one.
                    let any = 1 + rng.below(3) as u8;
                    let b = model.peek(&t).map_or(any, |i| i as u8 + 1);
                    let (ip, port) = ([10, 0, 1, b], 8000 + u16::from(b));
                    input = frame(&Shape::tcp(ip, t.src, port, t.sport, ACK));
                }
                let want = process(
                    &input,
                    Ingress::CLIENT,
                    &services,
                    &mut model,
                    &DIRECTOR,
                    &hops,
                );
                let got = xdp.test_run(&input).unwrap();
                check(step, &input, &want, &got);
                frames += 1;
                if matches!(want, Action::Redirect(_)) && input[30..34] == t.src {
                    replies += 1;
                }
            }
            if step % 20 == 19 {
                let held: HashSet<(FiveTuple, u32)> = model.forward_entries().into_iter().collect();
                assert_eq!(forward_entries(&xdp), held, "step {step}");
                assert_eq!(
                    xdp.conn_forward().unwrap(),
                    model.len() as u64,
                    "step {step}"
                );
            }
        }
        assert!(total.evicted > 200, "{total:?}");
        assert!(total.replaced > 50 && total.refused > 50, "{total:?}");
        assert!(replies > 20, "{replies} NAT replies of {frames} frames");
        println!("{total:?}; {frames} frames, {replies} NAT replies translated");
    }

    /// `n` flows to the DR service whose forward keys fall in one set of a table of 8 sets.
    fn same_set(n: usize) -> Vec<FiveTuple> {
        (1..u16::MAX)
            .map(|p| client_flow(1, p, 80))
            .filter(|t| {
                let k = key_bytes(t.src, t.dst, t.sport, t.dport, t.proto, abi::DIR_FORWARD);
                set_of(&k, nexthops::CONN_SEED, 7) == 0
            })
            .take(n)
            .collect()
    }

    #[test]
    fn a_half_open_record_is_evicted_before_established_ones() {
        if !in_child() {
            return in_netns("install::a_half_open_record_is_evicted_before_established_ones");
        }
        let (mut xdp, _, _) = loaded(24, [100, 100, 100]);
        let t = same_set(9);
        // Ways 0..2 open, way 3 half-open, ways 4..7 open: way 0 is the least recently used.
        for (i, f) in t[..8].iter().enumerate() {
            let state = if i == 3 {
                FlowState::HalfOpen
            } else {
                FlowState::Open
            };
            let done = xdp.install_synced(&[synced(*f, 0, state)], HZ).unwrap();
            assert_eq!(done.installed, 1);
        }
        let done = xdp
            .install_synced(&[synced(t[8], 1, FlowState::Open)], HZ)
            .unwrap();
        let want = Installed {
            installed: 1,
            evicted: 1,
            ..Installed::default()
        };
        assert_eq!(done, want);
        let held = forward_entries(&xdp);
        assert!(!held.contains(&(t[3], 0)), "the half-open record went");
        assert!(held.contains(&(t[0], 0)), "the least recently used stayed");
        assert!(held.contains(&(t[8], 1)));
        assert_eq!((held.len(), xdp.conn_forward().unwrap()), (8, 8));
    }

    #[test]
    fn a_held_set_refuses_the_flow_whole() {
        if !in_child() {
            return in_netns("install::a_held_set_refuses_the_flow_whole");
        }
        let (mut xdp, _, _) = loaded(1 << 12, [100, 100, 100]);
        let refused = Installed {
            refused: 1,
            ..Installed::default()
        };
        let installed = Installed {
            installed: 1,
            ..Installed::default()
        };
        // DR: its forward set held.
        let dr = synced(client_flow(1, 7000, 80), 1, FlowState::Open);
        xdp.hold_set_of(&dr.tuple, abi::DIR_FORWARD, true);
        assert_eq!(xdp.install_synced(&[dr], HZ).unwrap(), refused);
        xdp.hold_set_of(&dr.tuple, abi::DIR_FORWARD, false);
        assert_eq!(xdp.install_synced(&[dr], HZ).unwrap(), installed);
        // NAT: its reply set held (backend 2 is 10.0.1.2:8002).
        let nat = synced(client_flow(1, 7001, 82), 1, FlowState::Open);
        let reply = FiveTuple {
            src: [10, 0, 1, 2],
            dst: nat.tuple.src,
            sport: 8002,
            dport: nat.tuple.sport,
            proto: 6,
        };
        xdp.hold_set_of(&reply, abi::DIR_REPLY, true);
        assert_eq!(xdp.install_synced(&[nat], HZ).unwrap(), refused);
        assert_eq!(
            forward_entries(&xdp).len(),
            1,
            "nothing of the NAT flow written"
        );
        xdp.hold_set_of(&reply, abi::DIR_REPLY, false);
        assert_eq!(xdp.install_synced(&[nat], HZ).unwrap(), installed);
        assert_eq!(xdp.conn_forward().unwrap(), 2);
        // No such service; a backend index past the list.
        let mut other = synced(client_flow(1, 7002, 80), 0, FlowState::Open);
        other.service.port = 443;
        let past = synced(client_flow(1, 7003, 80), 3, FlowState::Open);
        let done = xdp.install_synced(&[other, past], HZ).unwrap();
        assert_eq!(done.refused, 2);
        assert_eq!(forward_entries(&xdp).len(), 2);
    }
}
