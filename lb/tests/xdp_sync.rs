//! Root tests of the XDP datapath's side of the HA connection sync (`XdpDatapath`, attached
//! in generic mode to the next-hop fixture's `out0`/`in0`, frames run with
//! `BPF_PROG_TEST_RUN`): the new-flow stream and installing synced flows.
//!
//! Contract checked:
//! * `new_flows_of_dr_and_nat_services_come_out_of_the_stream`: flows recorded before the
//!   take are not queued; after it, every new flow of a DR and a NAT service comes out of
//!   the receiver in order, with its 5-tuple, service and the backend its entry holds; an
//!   established segment adds nothing.
//! * `a_full_channel_counts_sync_events_lost`: with nobody receiving, the channel holds
//!   `NEW_FLOW_QUEUE` flows and every later one is counted `sync_events_lost`, none lost by
//!   the ring (its reader kept pace), the packets all forwarded.
//! * `synced_flows_go_to_their_backend_and_are_refreshed_here`: flows of DR, TUN and NAT
//!   services installed on a backend of weight 0 (never Maglev's pick) are listed synced
//!   (half-open as their state says, their idle time) and counted; their ACKs go to that
//!   backend (DR: its MAC; TUN: the outer destination; NAT: rewritten to it), the NAT
//!   backend's answer is translated back to the VIP, as established flows; afterwards the
//!   entries are this director's own (not synced, established).
//! * `a_flow_seen_here_later_than_the_record_is_kept`: a record older than this director's
//!   last packet of the flow is kept out (`kept`), a newer one replaces it (`replaced`).
//! * `a_closing_record_expires_after_tcp_fin_timeout`: closing records are listed closing,
//!   stay closing once a packet refreshed them, and leave the listing after `tcp_fin_timeout`
//!   while an open one stays; the next packet of an expired one is a new flow.
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
fn xdp_sync_needs_the_bpf_object() {
    netns::skip_without_bpf("xdp_sync");
}

#[cfg(not(strait_no_bpf))]
mod sync {
    use super::diffkit::{in_netns, XDP_REDIRECT, XDP_TX};
    use super::frames::{frame, Shape, ACK, SYN};
    use super::netns::{in_child, nexthops};
    use super::services::{backend, client_flow, services_alive, VIP};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    use strait_lb::datapath::{
        ConnEntry, ConnTimeouts, Datapath, DatapathOptions, Installed, NewFlow, SyncedFlow,
        XdpMode, NEW_FLOW_QUEUE,
    };
    use strait_lb::iface::Interface;
    use strait_lb::packet::parse::FiveTuple;
    use strait_lb::packet::ratelimit::IcmpLimit;
    use strait_lb::packet::service::ServiceKey;
    use strait_lb::sync::FlowState;
    use strait_lb::xdp::XdpDatapath;

    /// The director's `out0`/`in0`, generic XDP, a table of 4096 entries.
    fn open(conn_timeouts: ConnTimeouts) -> XdpDatapath {
        let dp = XdpDatapath::open(&DatapathOptions {
            interface: Interface::by_name("out0").unwrap(),
            inner_interface: Some(Interface::by_name("in0").unwrap()),
            xdp_mode: XdpMode::Generic,
            max_conns: 4096,
            icmp: IcmpLimit::NONE,
            conn_timeouts,
            new_flow: IcmpLimit::NONE,
        });
        dp.unwrap()
    }

    /// [`open`] with every service of the fixture, backend 3 at weight 0.
    fn open_with_services(conn_timeouts: ConnTimeouts) -> XdpDatapath {
        let mut dp = open(conn_timeouts);
        dp.apply(&services_alive([100, 100, 0], [true; 3])).unwrap();
        dp
    }

    fn key(dport: u16) -> ServiceKey {
        ServiceKey {
            vip: VIP,
            port: dport,
            proto: 6,
        }
    }

    /// A segment of `t` with `flags`, addressed to `out0`.
    fn segment(t: &FiveTuple, flags: u8) -> Vec<u8> {
        let mut f = frame(&Shape::tcp(t.src, t.dst, t.sport, t.dport, flags));
        f[0..6].copy_from_slice(&nexthops::OUT_MAC);
        f
    }

    fn run(dp: &mut XdpDatapath, f: &[u8]) -> (u32, Vec<u8>) {
        let r = dp.director_mut().test_run(f).unwrap();
        (r.action, r.frame)
    }

    fn synced(t: FiveTuple, backend: u32, state: FlowState, idle: Duration) -> SyncedFlow {
        SyncedFlow {
            tuple: t,
            service: key(t.dport),
            backend,
            state,
            idle,
        }
    }

    fn counter(dp: &XdpDatapath, name: &str) -> u64 {
        let all: HashMap<&str, u64> = dp.counters().unwrap().into_iter().collect();
        all[name]
    }

    /// The listed entry of `t`.
    fn entry(dp: &XdpDatapath, t: &FiveTuple) -> Option<ConnEntry> {
        let all = dp.conns(usize::MAX).unwrap();
        all.into_iter()
            .find(|c| c.client == (t.src.into(), t.sport) && c.vip.1 == t.dport)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn new_flows_of_dr_and_nat_services_come_out_of_the_stream() {
        if !in_child() {
            return in_netns("sync::new_flows_of_dr_and_nat_services_come_out_of_the_stream");
        }
        let rt = runtime();
        let _enter = rt.enter();
        let mut dp = open_with_services(ConnTimeouts::default());
        // Recorded before the take: not queued.
        for sport in [1, 2] {
            assert_eq!(
                run(&mut dp, &segment(&client_flow(1, sport, 80), SYN)).0,
                XDP_TX
            );
        }
        let mut rx = dp.take_new_flows().expect("the stream");
        assert!(dp.take_new_flows().is_none(), "taken once");
        let mut sent = Vec::new();
        for i in 0..20u16 {
            let t = client_flow((i % 4) as u8, 41_000 + i, if i % 2 == 0 { 80 } else { 82 });
            let want = if t.dport == 80 { XDP_TX } else { XDP_REDIRECT };
            assert_eq!(run(&mut dp, &segment(&t, SYN)).0, want, "{t:?}");
            // An established segment: no new flow.
            assert_eq!(run(&mut dp, &segment(&t, ACK)).0, want, "{t:?}");
            sent.push(t);
        }
        let got: Vec<NewFlow> = rt.block_on(async {
            let mut got = Vec::new();
            for _ in 0..sent.len() {
                let next = tokio::time::timeout(Duration::from_secs(5), rx.recv());
                got.push(next.await.expect("a flow in time").expect("open channel"));
            }
            got
        });
        for (t, flow) in sent.iter().zip(&got) {
            assert_eq!(flow.tuple, *t);
            assert_eq!(flow.service, key(t.dport));
            let listed = entry(&dp, t).expect("recorded");
            assert_eq!(flow.backend, listed.backend, "{t:?}");
            assert!(flow.backend < 2, "backend 3 has weight 0");
        }
        std::thread::sleep(strait_lb::xdp::EVENT_POLL_INTERVAL * 3);
        assert!(
            rx.try_recv().is_err(),
            "one flow each, none from before the take"
        );
        assert_eq!(counter(&dp, "sync_events_lost"), 0);
        assert_eq!(counter(&dp, "flow_events_read"), 22);
        dp.shutdown().unwrap();
    }

    #[test]
    fn a_full_channel_counts_sync_events_lost() {
        if !in_child() {
            return in_netns("sync::a_full_channel_counts_sync_events_lost");
        }
        const OVER: usize = 500;
        let rt = runtime();
        let _enter = rt.enter();
        let mut dp = open_with_services(ConnTimeouts::default());
        let mut rx = dp.take_new_flows().unwrap();
        let total = NEW_FLOW_QUEUE + OVER;
        // Waits until the ring's reader has read `n` events.
        let caught_up = |dp: &XdpDatapath, n: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while counter(dp, "flow_events_read") < n as u64 {
                assert!(Instant::now() < deadline, "the reader stalled before {n}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        for i in 0..total {
            // Distinct clients (no route needed: DR transmits back).
            let src = [172, 16 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
            let t = FiveTuple {
                src,
                ..client_flow(0, 1000, 80)
            };
            assert_eq!(run(&mut dp, &segment(&t, SYN)).0, XDP_TX);
            // Far below the ring's 6500 events: nothing lost there.
            if i % 2000 == 1999 {
                caught_up(&dp, i + 1);
            }
        }
        caught_up(&dp, total);
        assert_eq!(counter(&dp, "event_lost"), 0);
        assert_eq!(counter(&dp, "sync_events_lost"), OVER as u64);
        assert_eq!(counter(&dp, "tx_new"), total as u64);
        let first = rx.try_recv().unwrap();
        assert_eq!(first.tuple.src, [172, 16, 0, 0]);
        let mut queued = 1;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, NEW_FLOW_QUEUE);
        dp.shutdown().unwrap();
    }

    #[test]
    fn synced_flows_go_to_their_backend_and_are_refreshed_here() {
        if !in_child() {
            return in_netns("sync::synced_flows_go_to_their_backend_and_are_refreshed_here");
        }
        let mut dp = open_with_services(ConnTimeouts::default());
        let third = backend(3, 0);
        let (dr, tun, nat) = (
            client_flow(1, 50_001, 80),
            client_flow(1, 50_002, 81),
            client_flow(1, 50_003, 82),
        );
        let second = Duration::from_secs(1);
        let flows = [
            synced(dr, 2, FlowState::Open, second),
            synced(tun, 2, FlowState::HalfOpen, second),
            synced(nat, 2, FlowState::Open, second),
        ];
        let done = dp.install_synced(&flows).unwrap();
        let want = Installed {
            installed: 3,
            ..Installed::default()
        };
        assert_eq!(done, want);
        assert_eq!(dp.conn_count().unwrap(), 3);
        for t in [dr, tun, nat] {
            let e = entry(&dp, &t).expect("listed");
            assert!(e.synced && e.backend == 2 && !e.closing, "{e:?}");
            assert_eq!(e.half_open, t == tun, "{e:?}");
            let idle = e.idle.expect("jiffies readable");
            assert!(idle >= Duration::from_millis(900), "{e:?}");
        }
        // The ACKs: to the synced backend, established.
        let (action, out) = run(&mut dp, &segment(&dr, ACK));
        assert_eq!((action, out[0..6].to_vec()), (XDP_TX, third.mac.to_vec()));
        let (action, out) = run(&mut dp, &segment(&tun, ACK));
        assert_eq!((action, out[30..34].to_vec()), (XDP_TX, third.ip.to_vec()));
        let (action, out) = run(&mut dp, &segment(&nat, ACK));
        assert_eq!(action, XDP_REDIRECT);
        assert_eq!(out[30..34], third.ip);
        assert_eq!(u16::from_be_bytes([out[36], out[37]]), third.port);
        // The backend's answer, arriving on in0: from the VIP again.
        let mut answer = frame(&Shape::tcp(third.ip, nat.src, third.port, nat.sport, ACK));
        answer[0..6].copy_from_slice(&nexthops::IN_MAC);
        let in0 = Interface::by_name("in0").unwrap().ifindex;
        let r = dp.director_mut().test_run_on(&answer, in0).unwrap();
        assert_eq!(r.action, XDP_REDIRECT);
        assert_eq!(
            (r.frame[26..30].to_vec(), r.frame[34..36].to_vec()),
            (VIP.to_vec(), vec![0, 82])
        );
        assert_eq!(
            (counter(&dp, "tx_new"), counter(&dp, "tx_established")),
            (0, 3)
        );
        assert_eq!(counter(&dp, "nat_reply"), 1);
        // Refreshed under the installed version: this director's own entries now.
        for t in [dr, tun, nat] {
            let e = entry(&dp, &t).expect("listed");
            assert!(!e.synced && !e.half_open && e.backend == 2, "{e:?}");
        }
        assert_eq!(dp.conn_count().unwrap(), 3);
        assert_eq!(dp.conns(usize::MAX).unwrap().len(), 3);
        dp.shutdown().unwrap();
    }

    #[test]
    fn a_flow_seen_here_later_than_the_record_is_kept() {
        if !in_child() {
            return in_netns("sync::a_flow_seen_here_later_than_the_record_is_kept");
        }
        let mut dp = open_with_services(ConnTimeouts::default());
        let t = client_flow(2, 50_010, 80);
        assert_eq!(run(&mut dp, &segment(&t, SYN)).0, XDP_TX);
        let here = entry(&dp, &t).unwrap().backend;
        assert!(here < 2);
        // The peer's last packet 5 s ago: this director's SYN came after.
        let old = [synced(t, 2, FlowState::Open, Duration::from_secs(5))];
        let done = dp.install_synced(&old).unwrap();
        let kept = Installed {
            kept: 1,
            ..Installed::default()
        };
        assert_eq!(done, kept);
        let e = entry(&dp, &t).unwrap();
        assert!(e.backend == here && !e.synced && e.half_open, "{e:?}");
        // The peer saw a packet just now: its record replaces the entry.
        std::thread::sleep(Duration::from_millis(30));
        let new = [synced(t, 2, FlowState::Open, Duration::ZERO)];
        let done = dp.install_synced(&new).unwrap();
        let replaced = Installed {
            installed: 1,
            replaced: 1,
            ..Installed::default()
        };
        assert_eq!(done, replaced);
        let e = entry(&dp, &t).unwrap();
        assert!(e.backend == 2 && e.synced && !e.half_open, "{e:?}");
        assert_eq!(dp.conn_count().unwrap(), 1);
        dp.shutdown().unwrap();
    }

    #[test]
    fn a_closing_record_expires_after_tcp_fin_timeout() {
        if !in_child() {
            return in_netns("sync::a_closing_record_expires_after_tcp_fin_timeout");
        }
        let mut dp = open_with_services(ConnTimeouts {
            tcp: Duration::from_secs(30),
            tcp_fin: Duration::from_millis(300),
            udp: Duration::ZERO,
        });
        let (a, b, c) = (
            client_flow(3, 50_020, 80),
            client_flow(3, 50_021, 80),
            client_flow(3, 50_022, 80),
        );
        let flows = [
            synced(a, 1, FlowState::Closing, Duration::ZERO),
            synced(b, 1, FlowState::Closing, Duration::ZERO),
            synced(c, 1, FlowState::Open, Duration::ZERO),
        ];
        assert_eq!(dp.install_synced(&flows).unwrap().installed, 3);
        for (t, closing) in [(a, true), (b, true), (c, false)] {
            let e = entry(&dp, &t).unwrap();
            assert_eq!((e.closing, e.synced), (closing, true), "{e:?}");
        }
        // A packet refreshes b: its own entry now, still closing.
        assert_eq!(run(&mut dp, &segment(&b, ACK)).0, XDP_TX);
        let e = entry(&dp, &b).unwrap();
        assert!(e.closing && !e.synced, "{e:?}");
        std::thread::sleep(Duration::from_millis(450));
        let left: Vec<u16> = dp
            .conns(usize::MAX)
            .unwrap()
            .iter()
            .map(|e| e.client.1)
            .collect();
        assert_eq!(left, [c.sport], "the closing ones expired");
        let expired = counter(&dp, "conn_expired");
        assert_eq!(run(&mut dp, &segment(&a, ACK)).0, XDP_TX);
        assert_eq!(counter(&dp, "conn_expired"), expired + 1);
        assert_eq!(counter(&dp, "tx_new"), 1, "a's next packet is a new flow");
        // Records already idle past their timeout here are refused, not installed to expire.
        let d = client_flow(3, 50_023, 80);
        let e = client_flow(3, 50_024, 80);
        let late = [
            synced(d, 1, FlowState::Closing, Duration::from_millis(400)),
            synced(e, 1, FlowState::Open, Duration::from_secs(31)),
        ];
        let done = dp.install_synced(&late).unwrap();
        assert_eq!((done.installed, done.refused), (0, 2), "{done:?}");
        assert!(entry(&dp, &d).is_none() && entry(&dp, &e).is_none());
        dp.shutdown().unwrap();
    }
}
