//! Tests of the forwarding decision: passes, new and established flows, draining, dead
//! backends (rescheduled), no backend, NAT replies, the new-flow guard.

use super::*;
use crate::maglev::{flow_hash, DEFAULT_TABLE_SIZE};
use crate::packet::parse::{parse, PROTO_TCP};
use crate::packet::service::{Backend, FlowHash, MemConnTable, Service};
use crate::packet::testutil::{backend, services, Spec, CLIENT, VIP};

fn run(spec: &Spec, s: &Services, c: &mut MemConnTable) -> Verdict {
    decide(&parse(&spec.build()), s, c)
}

#[test]
fn non_service_traffic_passes() {
    let s = services();
    let mut c = MemConnTable::new(16);
    assert_eq!(run(&Spec::tcp(1, 443), &s, &mut c), Verdict::Pass);
    let mut other_ip = Spec::tcp(1, 80);
    other_ip.dst = [10, 0, 0, 101];
    assert_eq!(run(&other_ip, &s, &mut c), Verdict::Pass);
    let mut later = Spec::tcp(1, 80);
    later.frag = 100;
    assert_eq!(run(&later, &s, &mut c), Verdict::Pass);
    assert_eq!(decide(&Parsed::NotIpv4, &s, &mut c), Verdict::Pass);
    assert_eq!(decide(&parse(&[0u8; 10]), &s, &mut c), Verdict::Pass);
    assert!(c.is_empty());
}

#[test]
fn new_flow_follows_maglev_and_is_recorded() {
    let s = services();
    let mut c = MemConnTable::new(16);
    let spec = Spec::tcp(40000, 80);
    let t = parse(&spec.build()).flow().unwrap().tuple;
    let want = s
        .get(&ServiceKey {
            vip: VIP,
            port: 80,
            proto: PROTO_TCP,
        })
        .unwrap()
        .table
        .as_ref()
        .unwrap()
        .lookup(flow_hash(CLIENT, VIP, 40000, 80, PROTO_TCP))
        .unwrap();
    assert_eq!(
        run(&spec, &s, &mut c),
        Verdict::Forward {
            backend: want,
            new_flow: true
        }
    );
    assert_eq!(c.get(&t), Some(want));
    assert_eq!(
        run(&spec, &s, &mut c),
        Verdict::Forward {
            backend: want,
            new_flow: false
        }
    );
    // First fragments are balanced like whole datagrams of the same flow.
    let mut first = spec.clone();
    first.frag = 0x2000;
    assert_eq!(
        run(&first, &s, &mut c),
        Verdict::Forward {
            backend: want,
            new_flow: false
        }
    );
}

#[test]
fn established_flows_survive_table_changes_and_draining() {
    let mut s = services();
    let mut c = MemConnTable::new(1024);
    let key = ServiceKey {
        vip: VIP,
        port: 80,
        proto: PROTO_TCP,
    };
    let mut chosen = Vec::new();
    for port in 1000..1300 {
        match run(&Spec::tcp(port, 80), &s, &mut c) {
            Verdict::Forward { backend, new_flow } => {
                assert!(new_flow);
                chosen.push(backend);
            }
            v => panic!("{v:?}"),
        }
    }
    assert!((0..3).all(|b| chosen.contains(&b)));
    // Drain backend 0, add a fourth: old flows stay, new ones avoid backend 0.
    let bs = vec![
        backend(1, 0),
        backend(2, 100),
        backend(3, 100),
        backend(4, 100),
    ];
    s.insert(key, Service::new(Mode::Dr, bs, DEFAULT_TABLE_SIZE).unwrap());
    for (i, port) in (1000..1300).enumerate() {
        let v = run(&Spec::tcp(port, 80), &s, &mut c);
        assert_eq!(
            v,
            Verdict::Forward {
                backend: chosen[i],
                new_flow: false
            }
        );
    }
    let mut fresh = Vec::new();
    for port in 2000..2300 {
        match run(&Spec::tcp(port, 80), &s, &mut c) {
            Verdict::Forward {
                backend,
                new_flow: true,
            } => fresh.push(backend),
            v => panic!("{v:?}"),
        }
    }
    assert!(!fresh.contains(&0));
    assert!((1..4).all(|b| fresh.contains(&b)));
}

#[test]
fn no_backend_drops_new_flows_only() {
    let mut s = services();
    let mut c = MemConnTable::new(16);
    let key = ServiceKey {
        vip: VIP,
        port: 80,
        proto: PROTO_TCP,
    };
    let old = run(&Spec::tcp(1, 80), &s, &mut c);
    let bs = vec![backend(1, 0), backend(2, 0), backend(3, 0)];
    s.insert(key, Service::new(Mode::Dr, bs, DEFAULT_TABLE_SIZE).unwrap());
    assert_eq!(
        run(&Spec::tcp(2, 80), &s, &mut c),
        Verdict::Drop(DropReason::NoBackend)
    );
    let Verdict::Forward { backend, .. } = old else {
        panic!("{old:?}");
    };
    assert_eq!(
        run(&Spec::tcp(1, 80), &s, &mut c),
        Verdict::Forward {
            backend,
            new_flow: false
        }
    );
    // A stale index (backend list shrank) is rebalanced, here into "no backend".
    s.insert(
        key,
        Service::new(Mode::Dr, Vec::new(), DEFAULT_TABLE_SIZE).unwrap(),
    );
    assert_eq!(
        run(&Spec::tcp(1, 80), &s, &mut c),
        Verdict::Drop(DropReason::NoBackend)
    );
    assert_eq!(DropReason::NoBackend.as_str(), "no_backend");
}

/// DR on TCP port 80 and NAT on UDP port 82 of the fixture VIP, with these backends.
fn with_backends(s: &mut Services, weights: [u32; 3], alive: [bool; 3]) {
    for (port, proto, mode) in [(80, PROTO_TCP, Mode::Dr), (82, 17, Mode::Nat)] {
        let bs = (0..3)
            .map(|i| Backend {
                alive: alive[i],
                ..backend(i as u8 + 1, weights[i])
            })
            .collect();
        let svc = Service::new(mode, bs, DEFAULT_TABLE_SIZE).unwrap();
        s.insert(
            ServiceKey {
                vip: VIP,
                port,
                proto,
            },
            svc,
        );
    }
}

/// Forwards of `spec` on ports `ports`: (backend, new_flow) each.
fn forwards(s: &Services, c: &mut MemConnTable, spec: fn(u16) -> Spec) -> Vec<(u32, bool)> {
    (1000..1200)
        .map(|p| match run(&spec(p), s, c) {
            Verdict::Forward { backend, new_flow } => (backend, new_flow),
            v => panic!("port {p}: {v:?}"),
        })
        .collect()
}

#[test]
fn flows_of_a_dead_backend_are_rescheduled_drained_ones_stay() {
    let dr = |p| Spec::tcp(p, 80);
    let nat = |p| Spec::udp(p, 82);
    for spec in [dr as fn(u16) -> Spec, nat] {
        let mut s = services();
        let mut c = MemConnTable::new(4096);
        let first = forwards(&s, &mut c, spec);
        assert!(first.iter().all(|&(_, new)| new));
        assert!((0..3).all(|b| first.iter().any(|&(x, _)| x == b)));
        // Alive, weight > 0: established.
        with_backends(&mut s, [100; 3], [true; 3]);
        let same: Vec<_> = first.iter().map(|&(b, _)| (b, false)).collect();
        assert_eq!(forwards(&s, &mut c, spec), same);
        // Alive, weight 0 (drained): established flows keep backend 0.
        with_backends(&mut s, [0, 100, 100], [true; 3]);
        assert_eq!(forwards(&s, &mut c, spec), same);
        // Dead, weight > 0: backend 0's flows are new again, picked by the table (which
        // still holds backend 0); the others stay.
        with_backends(&mut s, [100; 3], [false, true, true]);
        let table = s.get(&service_key(parse(&spec(1000).build()).flow().unwrap()));
        let table = table.unwrap().table.as_ref().unwrap();
        for (p, (got, want)) in (1000..).zip(forwards(&s, &mut c, spec).iter().zip(&first)) {
            let t = parse(&spec(p).build()).flow().unwrap().tuple;
            if want.0 == 0 {
                assert_eq!(
                    *got,
                    (table.lookup(FlowHash::FiveTuple.of(&t)).unwrap(), true)
                );
            } else {
                assert_eq!(*got, (want.0, false));
            }
        }
        // Dead, weight 0 (the control plane's down backend): moved to 1 or 2, recorded
        // there (established on the next packet), the reply entry too for NAT.
        with_backends(&mut s, [0, 100, 100], [false, true, true]);
        let moved = forwards(&s, &mut c, spec);
        for (got, want) in moved.iter().zip(&first) {
            assert_ne!(got.0, 0);
            assert_eq!(got.1, want.0 == 0, "{got:?} was {want:?}");
        }
        let settled: Vec<_> = moved.iter().map(|&(b, _)| (b, false)).collect();
        assert_eq!(forwards(&s, &mut c, spec), settled);
        if spec(1).proto == 17 {
            let (p, &(b, _)) = (1000..).zip(&moved).find(|(_, m)| m.1).unwrap();
            let be = backend(b as u8 + 1, 0);
            let mut reply = Spec::udp(be.port, p);
            reply.src = be.ip;
            reply.dst = CLIENT;
            assert_eq!(
                run(&reply, &s, &mut c),
                Verdict::NatReply(NatOrigin { vip: VIP, port: 82 })
            );
        }
        // Every backend dead: no table, established flows drop as new ones would.
        with_backends(&mut s, [0; 3], [false; 3]);
        assert_eq!(
            run(&spec(1000), &s, &mut c),
            Verdict::Drop(DropReason::NoBackend)
        );
    }
}

#[test]
fn nat_flows_record_their_reply_direction() {
    let s = services();
    let mut c = MemConnTable::new(16);
    let v = run(&Spec::udp(5000, 82), &s, &mut c);
    let Verdict::Forward { backend: b, .. } = v else {
        panic!("{v:?}");
    };
    let be = backend(b as u8 + 1, 100);
    let mut reply = Spec::udp(be.port, 5000);
    reply.src = be.ip;
    reply.dst = CLIENT;
    assert_eq!(
        run(&reply, &s, &mut c),
        Verdict::NatReply(NatOrigin { vip: VIP, port: 82 })
    );
    // DR flows have no reply entry.
    run(&Spec::udp(5001, 80), &s, &mut c);
    reply.dport = 5001;
    assert_eq!(run(&reply, &s, &mut c), Verdict::Pass);
}

/// `spec` with TCP flags `flags`.
fn flagged(mut spec: Spec, flags: u8) -> Spec {
    spec.tcp_flags = flags;
    spec
}

#[test]
fn an_opening_syn_is_always_scheduled_anew() {
    for (port, mode) in [(80, Mode::Dr), (82, Mode::Nat)] {
        let mut s = services();
        let mut c = MemConnTable::new(4096);
        let key = ServiceKey {
            vip: VIP,
            port,
            proto: PROTO_TCP,
        };
        // Flows on every backend (established by ACK segments: no SYN seen).
        let first: Vec<(u16, u32)> = (1000..1100)
            .map(|p| match run(&Spec::tcp(p, port), &s, &mut c) {
                Verdict::Forward { backend, .. } => (p, backend),
                v => panic!("{v:?}"),
            })
            .collect();
        // A SYN on a recorded tuple, same table: new flow (counted, recorded), same pick.
        let (p0, b0) = first[0];
        assert_eq!(
            run(&Spec::syn(p0, port), &s, &mut c),
            Verdict::Forward {
                backend: b0,
                new_flow: true
            }
        );
        // Backend 0 drained (alive, weight 0): SYNs of its reused tuples go to a backend
        // with weight; SYN+ACK, ACK, FIN, RST on its other tuples stay on it.
        let bs = vec![backend(1, 0), backend(2, 100), backend(3, 100)];
        s.insert(key, Service::new(mode, bs, DEFAULT_TABLE_SIZE).unwrap());
        let on_drained: Vec<u16> = first
            .iter()
            .filter(|&&(_, b)| b == 0)
            .map(|&(p, _)| p)
            .collect();
        assert!(on_drained.len() > 10, "{on_drained:?}");
        let (reused, kept) = on_drained.split_at(on_drained.len() / 2);
        for &p in reused {
            let v = run(&Spec::syn(p, port), &s, &mut c);
            let Verdict::Forward {
                backend,
                new_flow: true,
            } = v
            else {
                panic!("SYN on port {p}: {v:?}");
            };
            assert_ne!(backend, 0, "port {p}");
            let t = parse(&Spec::syn(p, port).build()).flow().unwrap().tuple;
            assert_eq!(c.get(&t), Some(backend), "recorded, overwriting");
            // The connection's next segments follow the new entry.
            assert_eq!(
                run(&Spec::tcp(p, port), &s, &mut c),
                Verdict::Forward {
                    backend,
                    new_flow: false
                }
            );
            if mode == Mode::Nat {
                // The reply direction is recorded for the new backend.
                let be = backend_of(backend);
                let mut reply = Spec::tcp(be.port, p);
                reply.src = be.ip;
                reply.dst = CLIENT;
                assert_eq!(
                    run(&reply, &s, &mut c),
                    Verdict::NatReply(NatOrigin { vip: VIP, port })
                );
            }
        }
        for &p in kept {
            for flags in [0x12, 0x10, 0x18, 0x11, 0x04] {
                assert_eq!(
                    run(&flagged(Spec::tcp(p, port), flags), &s, &mut c),
                    Verdict::Forward {
                        backend: 0,
                        new_flow: false
                    },
                    "port {p} flags {flags:#x}"
                );
            }
        }
    }
}

/// Backend at index `i` of the fixture (weights do not matter for addresses).
fn backend_of(i: u32) -> Backend {
    backend(i as u8 + 1, 0)
}

#[test]
fn udp_is_unaffected_by_syn_scheduling() {
    let mut s = services();
    let mut c = MemConnTable::new(4096);
    let key = ServiceKey {
        vip: VIP,
        port: 80,
        proto: 17,
    };
    // UDP datagrams whose payload starts like a TCP SYN at the flags offset.
    let udp = |p: u16| {
        let mut spec = Spec::udp(p, 80);
        spec.payload = vec![0x02; 20];
        spec
    };
    let first: Vec<(u16, u32)> = (1000..1100)
        .map(|p| match run(&udp(p), &s, &mut c) {
            Verdict::Forward {
                backend,
                new_flow: true,
            } => (p, backend),
            v => panic!("{v:?}"),
        })
        .collect();
    let bs = vec![backend(1, 0), backend(2, 100), backend(3, 100)];
    s.insert(key, Service::new(Mode::Dr, bs, DEFAULT_TABLE_SIZE).unwrap());
    for (p, b) in first {
        assert_eq!(
            run(&udp(p), &s, &mut c),
            Verdict::Forward {
                backend: b,
                new_flow: false
            },
            "port {p}"
        );
    }
}

#[test]
fn a_syn_to_a_service_without_backends_drops_even_when_recorded() {
    let mut s = services();
    let mut c = MemConnTable::new(16);
    let key = ServiceKey {
        vip: VIP,
        port: 80,
        proto: PROTO_TCP,
    };
    let Verdict::Forward { backend: b, .. } = run(&Spec::tcp(1, 80), &s, &mut c) else {
        panic!("forward");
    };
    let bs = vec![backend(1, 0), backend(2, 0), backend(3, 0)];
    s.insert(key, Service::new(Mode::Dr, bs, DEFAULT_TABLE_SIZE).unwrap());
    // The established flow keeps its drained backend; a SYN on its tuple is a new flow,
    // and there is no backend for new flows.
    assert_eq!(
        run(&Spec::tcp(1, 80), &s, &mut c),
        Verdict::Forward {
            backend: b,
            new_flow: false
        }
    );
    assert_eq!(
        run(&Spec::syn(1, 80), &s, &mut c),
        Verdict::Drop(DropReason::NoBackend)
    );
    // The entry is left as it was (nothing recorded for a dropped SYN).
    assert_eq!(
        run(&Spec::tcp(1, 80), &s, &mut c),
        Verdict::Forward {
            backend: b,
            new_flow: false
        }
    );
}

#[test]
fn over_the_new_flow_guard_dr_goes_unrecorded_and_nat_is_dropped() {
    use crate::packet::ratelimit::IcmpLimit;
    let s = services();
    // Two new flows, then none (no refill at a constant clock).
    let mut c = MemConnTable::new(64).with_new_flow_guard(IcmpLimit::new(1, 2));
    for sport in [1, 2] {
        let v = run(&Spec::syn(sport, 80), &s, &mut c);
        assert!(
            matches!(v, Verdict::Forward { new_flow: true, .. }),
            "{v:?}"
        );
    }
    // Established flows are not charged: the ACK of flow 1 follows its entry.
    let v = run(&Spec::tcp(1, 80), &s, &mut c);
    assert!(
        matches!(
            v,
            Verdict::Forward {
                new_flow: false,
                ..
            }
        ),
        "{v:?}"
    );
    // Over the budget: DR (a SYN, a segment without an entry) forwarded to the pick, new,
    // not recorded; its next segment is new again, the same pick.
    let first = run(&Spec::syn(3, 80), &s, &mut c);
    assert!(
        matches!(first, Verdict::Forward { new_flow: true, .. }),
        "{first:?}"
    );
    assert_eq!(run(&Spec::tcp(3, 80), &s, &mut c), first);
    assert_eq!(c.len(), 2);
    // NAT: dropped, neither direction recorded.
    assert_eq!(
        run(&Spec::syn(4, 82), &s, &mut c),
        Verdict::Drop(DropReason::NewFlowLimit)
    );
    assert_eq!((c.len(), c.unadmitted()), (2, 3));
}
