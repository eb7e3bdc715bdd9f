//! Root tests of `strait_lb::xdp::XdpDatapath` in private network namespaces (a veth pair
//! `a0`/`a1`, and `lo`): attach in generic and native mode (the program shows in
//! `ip -d link show`), apply services and read them back (stats, connections, counters,
//! a region move keeping statistics, removal; a frame addressed to another host's MAC passed
//! unchanged and counted `pass_not_ours`), shut down (no XDP left on the links), and
//! `Auto` falling back to generic on `lo`, which has no native XDP, and the new-flow events
//! (one per new flow, with its tuple and backend, read through tokio's `AsyncFd` and the
//! reader's timer: the program does not wake it), the interface's MTU reaching the program
//! (TUN: ICMP "fragmentation needed" or drop over it, forward under it, the same bytes as the
//! model's). Each test re-runs itself
//! inside its namespace (`netns::Netns::run_test`); not root: `SKIP` (CI=true: fail).

mod netns;

#[cfg(strait_no_bpf)]
#[test]
fn xdp_attach_needs_the_bpf_object() {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "built without clang in CI"
    );
    eprintln!("SKIP xdp_attach: built without clang");
}

#[cfg(not(strait_no_bpf))]
mod attach {
    use super::netns::{in_child, require_root, sh, Netns};
    use std::net::Ipv4Addr;
    use std::time::Duration;
    use strait_lb::datapath::{ConnTimeouts, Datapath, DatapathOptions, XdpMode};
    use strait_lb::iface::Interface;
    use strait_lb::maglev::DEFAULT_TABLE_SIZE;
    use strait_lb::packet::csum::{ipv4_header_checksum, l4_checksum};
    use strait_lb::packet::icmp;
    use strait_lb::packet::parse::parse;
    use strait_lb::packet::service::{Backend, Mode, Service, ServiceKey};
    use strait_lb::xdp::XdpDatapath;

    const VIP: [u8; 4] = [10, 9, 0, 100];
    const XDP_DROP: u32 = 1;
    const XDP_PASS: u32 = 2;
    const XDP_TX: u32 = 3;
    const XDP_REDIRECT: u32 = 4;

    /// Prepares a namespace with the veth pair and re-runs `test` inside it.
    fn in_netns(test: &str) {
        if !require_root(test) {
            return;
        }
        let ns = Netns::new("st-txa-");
        ns.exec(
            "ip link add a0 type veth peer name a1 && ip addr add 10.9.0.1/24 dev a0 && \
             ip addr add 10.9.1.1/24 dev a1 && ip link set a0 up && ip link set a1 up",
        );
        ns.run_test(test);
    }

    fn options(iface: &str, inner: Option<&str>, mode: XdpMode) -> DatapathOptions {
        DatapathOptions {
            interface: Interface::by_name(iface).unwrap(),
            inner_interface: inner.map(|n| Interface::by_name(n).unwrap()),
            xdp_mode: mode,
            max_conns: 1024,
            icmp: strait_lb::packet::ratelimit::IcmpLimit::new(1000, 50),
            conn_timeouts: strait_lb::datapath::ConnTimeouts::default(),
            new_flow: strait_lb::packet::ratelimit::IcmpLimit::NONE,
        }
    }

    fn link(iface: &str) -> String {
        sh(&format!("ip -d link show {iface}"))
    }

    fn backend(i: u8) -> Backend {
        Backend {
            ip: [10, 9, 1, 10 + i],
            mac: [2, 0, 0, 0, 1, i],
            port: 8080,
            weight: 100,
            alive: true,
        }
    }

    fn service(n: u8) -> (ServiceKey, Service) {
        let key = ServiceKey {
            vip: VIP,
            port: 80,
            proto: 6,
        };
        let backends = (0..n).map(backend).collect();
        (
            key,
            Service::new(Mode::Dr, backends, DEFAULT_TABLE_SIZE).unwrap(),
        )
    }

    /// A TCP frame client:sport -> VIP:80 with valid checksums, to the director's MAC.
    fn frame(sport: u16) -> Vec<u8> {
        build_frame(sport, 0, true, 0x10)
    }

    /// [`frame`] with TCP flags `tcp_flags`.
    fn frame_flags(sport: u16, tcp_flags: u8) -> Vec<u8> {
        build_frame(sport, 0, true, tcp_flags)
    }

    /// As [`frame`], with `payload` bytes after the TCP header, DF set or clear.
    fn sized_frame(sport: u16, payload: usize, df: bool) -> Vec<u8> {
        build_frame(sport, payload, df, 0x10)
    }

    /// Addressed to `a0`'s MAC, the director's (the program passes frames for another MAC).
    fn build_frame(sport: u16, payload: usize, df: bool, tcp_flags: u8) -> Vec<u8> {
        let client = [192, 168, 7, 1];
        let mut f = Interface::by_name("a0").unwrap().mac.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 0xc1, 8, 0]);
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&80u16.to_be_bytes());
        l4.extend_from_slice(&[
            0, 0, 0, 1, 0, 0, 0, 0, 0x50, tcp_flags, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        l4.extend((0..payload).map(|i| i as u8));
        let c = l4_checksum(client, VIP, 6, &l4, 16);
        l4[16..18].copy_from_slice(&c.to_be_bytes());
        let [hi, lo] = ((20 + l4.len()) as u16).to_be_bytes();
        let flags = if df { 0x40 } else { 0 };
        f.extend_from_slice(&[0x45, 0, hi, lo, 0, 1, flags, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&client);
        f.extend_from_slice(&VIP);
        let c = ipv4_header_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&l4);
        f
    }

    fn open_apply_shutdown(mode: XdpMode, shown: &str, name: &str) {
        let mut dp = XdpDatapath::open(&options("a0", None, mode)).unwrap();
        assert_eq!(dp.name(), name);
        let shown_before = link("a0");
        assert!(
            shown_before.contains(shown),
            "{shown} missing:\n{shown_before}"
        );
        assert!(!link("a1").contains("prog/xdp"), "{}", link("a1"));

        let (key, svc) = service(3);
        dp.apply(&[(key, svc)]).unwrap();
        let run = dp.director_mut().test_run(&frame(1000)).unwrap();
        assert_eq!(run.action, XDP_TX);
        dp.director_mut().test_run(&frame(1000)).unwrap();
        // The same segment addressed to another host (a1's MAC): passed as it is, counted.
        let mut elsewhere = frame(1000);
        elsewhere[0..6].copy_from_slice(&Interface::by_name("a1").unwrap().mac);
        let run = dp.director_mut().test_run(&elsewhere).unwrap();
        assert_eq!((run.action, run.frame), (XDP_PASS, elsewhere));
        let stats = dp.backend_stats(&key).unwrap();
        assert_eq!(stats.len(), 3);
        assert_eq!(stats.iter().map(|s| s.packets).sum::<u64>(), 2);
        assert_eq!(stats.iter().map(|s| s.flows).sum::<u64>(), 1);
        assert_eq!(stats.iter().map(|s| s.bytes).sum::<u64>(), 2 * 54);
        let conns = dp.conns(10).unwrap();
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].client, (Ipv4Addr::new(192, 168, 7, 1), 1000));
        assert_eq!(conns[0].vip, (Ipv4Addr::from(VIP), 80));
        assert_eq!(dp.conn_count().unwrap(), 1);
        let counters = dp.counters().unwrap();
        assert!(counters.contains(&("tx_new", 1)), "{counters:?}");
        assert!(counters.contains(&("tx_established", 1)), "{counters:?}");
        // At least the frame above: the attached link may also receive the kernel's own
        // multicast (IPv6 router solicitations, MLD reports) meanwhile, passed as not ours.
        let not_ours = counters.iter().find(|(n, _)| *n == "pass_not_ours");
        assert!(not_ours.is_some_and(|(_, v)| *v >= 1), "{counters:?}");

        // Growing to 5 backends moves the region; statistics and the flow stay.
        let (_, grown) = service(5);
        dp.apply(&[(key, grown)]).unwrap();
        let b = conns[0].backend as usize;
        assert_eq!(
            dp.director_mut().test_run(&frame(1000)).unwrap().action,
            XDP_TX
        );
        let stats = dp.backend_stats(&key).unwrap();
        assert_eq!(stats.len(), 5);
        assert_eq!(stats[b].packets, 3);
        assert_eq!(stats.iter().map(|s| s.flows).sum::<u64>(), 1);

        // A set that cannot be installed is refused before anything changes.
        let twice = [service(5), service(5)];
        let err = dp.apply(&twice).unwrap_err();
        assert!(err.detail.contains("twice"), "{err}");
        let too_many: Vec<_> = (0..40u16)
            .map(|p| {
                let (mut k, s) = service(1);
                k.port = 1000 + p;
                (k, s)
            })
            .collect();
        assert!(dp.apply(&too_many).is_err());
        assert_eq!(dp.backend_stats(&key).unwrap()[b].packets, 3);

        // Removing it: no service, the frame passes.
        dp.apply(&[]).unwrap();
        assert!(dp.backend_stats(&key).is_err());
        assert_eq!(
            dp.director_mut().test_run(&frame(1000)).unwrap().action,
            XDP_PASS
        );

        dp.shutdown().unwrap();
        dp.shutdown().unwrap();
        assert_eq!(dp.name(), "xdp/detached");
        let after = link("a0");
        assert!(!after.contains("xdp"), "still attached:\n{after}");
    }

    #[test]
    fn generic_attach_shows_applies_and_detaches() {
        if !in_child() {
            return in_netns("attach::generic_attach_shows_applies_and_detaches");
        }
        open_apply_shutdown(XdpMode::Generic, "xdpgeneric", "xdp/generic");
    }

    #[test]
    fn native_attach_shows_applies_and_detaches() {
        if !in_child() {
            return in_netns("attach::native_attach_shows_applies_and_detaches");
        }
        open_apply_shutdown(XdpMode::Native, "prog/xdp", "xdp/native");
    }

    #[test]
    fn auto_falls_back_to_generic_where_native_fails() {
        if !in_child() {
            return in_netns("attach::auto_falls_back_to_generic_where_native_fails");
        }
        // lo has no native XDP: Native fails, Auto falls back.
        let err = XdpDatapath::open(&options("lo", None, XdpMode::Native)).unwrap_err();
        assert!(err.what.contains("attach XDP to lo"), "{err}");
        assert!(!link("lo").contains("xdp"), "{}", link("lo"));
        let mut dp = XdpDatapath::open(&options("lo", None, XdpMode::Auto)).unwrap();
        assert_eq!(dp.name(), "xdp/generic");
        assert!(link("lo").contains("xdpgeneric"), "{}", link("lo"));
        // Native on a0 plus generic on lo as the inner interface: both reported.
        drop(dp);
        assert!(
            !link("lo").contains("xdp"),
            "drop detaches:\n{}",
            link("lo")
        );
        dp = XdpDatapath::open(&options("a0", Some("lo"), XdpMode::Auto)).unwrap();
        assert_eq!(dp.name(), "xdp/native+generic");
        assert!(link("a0").contains("prog/xdp"));
        assert!(link("lo").contains("xdpgeneric"));
        dp.shutdown().unwrap();
        assert!(!link("a0").contains("xdp") && !link("lo").contains("xdp"));
    }

    #[test]
    fn tun_frames_over_the_interface_mtu_get_icmp_or_drop() {
        if !in_child() {
            return in_netns("attach::tun_frames_over_the_interface_mtu_get_icmp_or_drop");
        }
        const MTU: u32 = 1000;
        sh(&format!("ip link set a0 mtu {MTU}"));
        let opts = options("a0", None, XdpMode::Generic);
        assert_eq!(opts.interface.mtu, MTU, "read from /sys at load");
        let mut dp = XdpDatapath::open(&opts).unwrap();
        let (key, svc) = service(3);
        let svc = Service::new(Mode::Tun, svc.backends, DEFAULT_TABLE_SIZE).unwrap();
        dp.apply(&[(key, svc.clone())]).unwrap();
        // Inner total length 981: 1001 bytes once encapsulated, one over the MTU.
        let big = sized_frame(2000, 981 - 40, true);
        let run = dp.director_mut().test_run(&big).unwrap();
        assert_eq!(run.action, XDP_TX);
        let flow = *parse(&big).flow().unwrap();
        let director = opts.interface.mac;
        assert_eq!(run.frame, icmp::frag_needed(&big, &flow, director, MTU));
        assert_eq!(
            run.frame[34..36],
            [3, 4],
            "destination unreachable, frag. needed"
        );
        assert_eq!(run.frame[40..42], (MTU as u16 - 20).to_be_bytes());
        // Recorded, not forwarded: no backend packet.
        let conns = dp.conns(10).unwrap();
        assert_eq!(conns.len(), 1);
        let stats = dp.backend_stats(&key).unwrap();
        assert_eq!(stats.iter().map(|s| s.packets).sum::<u64>(), 0);
        // One byte less fits: forwarded, established, to the recorded backend.
        let fits = sized_frame(2000, 980 - 40, true);
        let run = dp.director_mut().test_run(&fits).unwrap();
        assert_eq!(run.action, XDP_TX);
        assert_eq!(run.frame.len(), fits.len() + 20);
        let b = &svc.backends[conns[0].backend as usize];
        assert_eq!(run.frame[30..34], b.ip);
        // DF clear: dropped.
        let run = dp
            .director_mut()
            .test_run(&sized_frame(2001, 981 - 40, false));
        assert_eq!(run.unwrap().action, XDP_DROP);
        let counters = dp.counters().unwrap();
        for (name, n) in [
            ("icmp_too_big", 1),
            ("drop_too_big", 1),
            ("tx_established", 1),
            ("tx_new", 0),
        ] {
            assert!(counters.contains(&(name, n)), "{name}: {counters:?}");
        }
        dp.shutdown().unwrap();
    }

    /// The inner interface's MTU reaches the program: a NAT forward one byte over it gets
    /// the router's "fragmentation needed" (next-hop MTU = the inner MTU) with DF set, a drop
    /// without; one that fits is redirected.
    #[test]
    fn nat_frames_over_the_inner_mtu_get_icmp_or_drop() {
        if !in_child() {
            return in_netns("attach::nat_frames_over_the_inner_mtu_get_icmp_or_drop");
        }
        // bpf_fib_lookup answers only with forwarding on (as NAT needs: docs/director.md).
        sh("ip link set a1 mtu 800 && sysctl -qw net.ipv4.ip_forward=1");
        let opts = options("a0", Some("a1"), XdpMode::Generic);
        assert_eq!(opts.inner_interface.as_ref().unwrap().mtu, 800);
        let mut dp = XdpDatapath::open(&opts).unwrap();
        let (key, svc) = service(3);
        let svc = Service::new(Mode::Nat, svc.backends, DEFAULT_TABLE_SIZE).unwrap();
        dp.apply(&[(key, svc)]).unwrap();
        let big = sized_frame(2100, 801 - 40, true);
        let run = dp.director_mut().test_run(&big).unwrap();
        assert_eq!(run.action, XDP_TX);
        let flow = *parse(&big).flow().unwrap();
        let a0 = &opts.interface;
        let want = icmp::frag_needed_routed(&big, &flow, a0.mac, a0.ip.octets(), 800);
        assert_eq!(run.frame, want);
        assert_eq!(run.frame[40..42], 800u16.to_be_bytes());
        let run = dp
            .director_mut()
            .test_run(&sized_frame(2101, 801 - 40, false));
        assert_eq!(run.unwrap().action, XDP_DROP);
        let fits = sized_frame(2100, 800 - 40, true);
        let action = dp.director_mut().test_run(&fits).unwrap().action;
        assert_eq!(action, XDP_REDIRECT, "{:?}", dp.counters().unwrap());
        let counters = dp.counters().unwrap();
        for (name, n) in [
            ("icmp_too_big", 1),
            ("drop_too_big", 1),
            ("tx_established", 1),
        ] {
            assert!(counters.contains(&(name, n)), "{name}: {counters:?}");
        }
        dp.shutdown().unwrap();
    }

    /// Idle timeouts: with `tcp_timeout` 400 ms and `tcp_fin_timeout` 200 ms, a flow whose
    /// packets come 100 ms apart stays established and listed with its idle time; a flow that
    /// sent a FIN is listed closing and leaves the listing after 300 ms of silence, when the
    /// first is still there; after 700 ms the first is gone too (still held: the count is the
    /// table's), and the next packet of each is a new flow (`conn_expired`); `udp_timeout` 0
    /// never expires a UDP flow.
    #[test]
    fn idle_entries_expire_in_the_program_and_leave_the_listing() {
        if !in_child() {
            return in_netns("attach::idle_entries_expire_in_the_program_and_leave_the_listing");
        }
        let mut opts = options("a0", None, XdpMode::Generic);
        opts.conn_timeouts = ConnTimeouts {
            tcp: Duration::from_millis(400),
            tcp_fin: Duration::from_millis(200),
            udp: Duration::ZERO,
        };
        let mut dp = XdpDatapath::open(&opts).unwrap();
        let (key, svc) = service(3);
        let udp_key = ServiceKey { proto: 17, ..key };
        dp.apply(&[(key, svc.clone()), (udp_key, svc)]).unwrap();
        let mut udp = frame(3000);
        udp[23] = 17; // IPv4 protocol (its checksums are not checked on this path)
        let mut send = |f: &[u8]| dp.director_mut().test_run(f).unwrap().action;
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(send(&frame(3000)), XDP_TX);
            assert_eq!(send(&udp), XDP_TX);
        }
        assert_eq!(send(&frame(3001)), XDP_TX);
        assert_eq!(send(&frame_flags(3001, 0x11)), XDP_TX, "FIN+ACK");
        let listed = dp.conns(10).unwrap();
        assert_eq!(listed.len(), 3, "{listed:?}");
        for c in &listed {
            let idle = c.idle.expect("jiffies readable as root");
            assert!(idle < Duration::from_millis(150), "{c:?}");
            assert_eq!(c.closing, c.client.1 == 3001, "{c:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut left: Vec<(u8, u16)> = dp
            .conns(10)
            .unwrap()
            .iter()
            .map(|c| (c.proto, c.client.1))
            .collect();
        left.sort_unstable();
        assert_eq!(left, [(6, 3000), (17, 3000)], "the closing flow left first");
        std::thread::sleep(Duration::from_millis(400));
        let listed = dp.conns(10).unwrap();
        assert_eq!(listed.len(), 1, "only the UDP flow: {listed:?}");
        assert_eq!(listed[0].proto, 17);
        assert!(listed[0].idle.unwrap() >= Duration::from_millis(600));
        assert_eq!(dp.conn_count().unwrap(), 3, "held until reused");
        let mut send = |f: &[u8]| dp.director_mut().test_run(f).unwrap().action;
        assert_eq!(send(&frame(3000)), XDP_TX);
        assert_eq!(send(&frame(3001)), XDP_TX);
        assert_eq!(send(&udp), XDP_TX);
        let counters = dp.counters().unwrap();
        for (name, n) in [("conn_expired", 2), ("tx_new", 5), ("tx_established", 8)] {
            assert!(counters.contains(&(name, n)), "{name}: {counters:?}");
        }
        assert_eq!(dp.conns(10).unwrap().len(), 3);
        dp.shutdown().unwrap();
    }

    #[test]
    fn every_new_flow_yields_one_event() {
        if !in_child() {
            return in_netns("attach::every_new_flow_yields_one_event");
        }
        const FLOWS: u16 = 200;
        let mut dp = XdpDatapath::open(&options("a0", None, XdpMode::Generic)).unwrap();
        let (key, svc) = service(3);
        dp.apply(&[(key, svc)]).unwrap();
        let mut events = dp.flow_events().unwrap();
        assert!(dp.flow_events().is_none(), "taken once");
        assert_eq!(events.try_next(), None);
        for sport in 0..FLOWS {
            // Each flow twice: the second packet is established, no event.
            for _ in 0..2 {
                let r = dp.director_mut().test_run(&frame(10_000 + sport)).unwrap();
                assert_eq!(r.action, XDP_TX);
            }
        }
        let conns = dp.conns(usize::MAX).unwrap();
        assert_eq!(conns.len(), usize::from(FLOWS));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let mut got = Vec::new();
            for _ in 0..FLOWS {
                let wait = tokio::time::timeout(std::time::Duration::from_secs(5), events.next());
                got.push(wait.await.expect("an event per flow").unwrap());
            }
            got
        });
        assert_eq!(events.try_next(), None, "exactly one event per flow");
        for (i, e) in got.iter().enumerate() {
            let sport = 10_000 + i as u16;
            assert_eq!(e.client, (Ipv4Addr::new(192, 168, 7, 1), sport));
            assert_eq!(e.service, key);
            assert_eq!(e.mode, Some(Mode::Dr));
            let c = conns.iter().find(|c| c.client.1 == sport).unwrap();
            assert_eq!(e.backend, c.backend);
        }
        let counters = dp.counters().unwrap();
        assert!(counters.contains(&("event_lost", 0)), "{counters:?}");
    }

    #[test]
    fn a_waiting_reader_gets_events_queued_without_a_wakeup() {
        if !in_child() {
            return in_netns("attach::a_waiting_reader_gets_events_queued_without_a_wakeup");
        }
        let mut dp = XdpDatapath::open(&options("a0", None, XdpMode::Generic)).unwrap();
        let (key, svc) = service(3);
        dp.apply(&[(key, svc)]).unwrap();
        let mut events = dp.flow_events().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The reader waits first; the program queues without waking it (the ring stays far
        // below half full), so only the reader's timer finds the events. An opening SYN is a
        // new flow every time, its 5-tuple recorded or not; the ACK that follows is not.
        let producer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let sent = std::time::Instant::now();
            for flags in [0x02, 0x02, 0x10] {
                let r = dp
                    .director_mut()
                    .test_run(&frame_flags(7000, flags))
                    .unwrap();
                assert_eq!(r.action, XDP_TX);
            }
            (dp, sent)
        });
        let got = rt.block_on(async {
            let mut got = Vec::new();
            for _ in 0..2 {
                let wait = tokio::time::timeout(std::time::Duration::from_secs(5), events.next());
                got.push((
                    wait.await.expect("an event").unwrap(),
                    std::time::Instant::now(),
                ));
            }
            got
        });
        let (dp, sent) = producer.join().unwrap();
        for (e, at) in &got {
            assert_eq!(e.client, (Ipv4Addr::new(192, 168, 7, 1), 7000));
            let late = at.duration_since(sent);
            assert!(
                late < strait_lb::xdp::EVENT_POLL_INTERVAL * 10,
                "read {late:?} after it was queued"
            );
        }
        std::thread::sleep(strait_lb::xdp::EVENT_POLL_INTERVAL * 2);
        assert_eq!(events.try_next(), None, "the ACK is no new flow");
        let counters = dp.counters().unwrap();
        assert!(counters.contains(&("tx_new", 2)), "{counters:?}");
        assert!(counters.contains(&("tx_established", 1)), "{counters:?}");
        assert_eq!(dp.conns(usize::MAX).unwrap().len(), 1);
    }

    #[test]
    fn a_full_ring_loses_events_not_packets() {
        if !in_child() {
            return in_netns("attach::a_full_ring_loses_events_not_packets");
        }
        // 2^18 bytes hold about 6500 events of 32 bytes (+ 8 of header each).
        const FLOWS: u16 = 8000;
        let mut dp = XdpDatapath::open(&options("a0", None, XdpMode::Generic)).unwrap();
        dp.apply(&[service(3)]).unwrap();
        let mut events = dp.flow_events().unwrap();
        for sport in 0..FLOWS {
            let r = dp.director_mut().test_run(&frame(1 + sport)).unwrap();
            assert_eq!(r.action, XDP_TX, "the packet is forwarded");
        }
        let mut read = 0u64;
        while events.try_next().is_some() {
            read += 1;
        }
        let counters = dp.counters().unwrap();
        let lost = counters.iter().find(|c| c.0 == "event_lost").unwrap().1;
        assert!(lost > 0 && read > 6000, "read {read}, lost {lost}");
        assert_eq!(read + lost, u64::from(FLOWS));
        assert!(
            counters.contains(&("tx_new", u64::from(FLOWS))),
            "{counters:?}"
        );
    }
}
