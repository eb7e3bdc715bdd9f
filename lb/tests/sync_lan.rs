//! Namespace tests of the datapaths' side of the HA connection sync, for the userspace and
//! the XDP datapath alike, with frames sent by a client on a LAN: the new-flow stream
//! (`Datapath::take_new_flows`) and installing synced flows (`Datapath::install_synced`).
//!
//! Contract checked, per datapath (`*_streams_new_flows_and_follows_synced_ones`): a DR
//! service of three backends, the third at weight 0 (never picked), each backend's MAC
//! unknown to the bridge (so the director's forwards are flooded back to the client, which
//! reads their destination). Segments sent before the take are not streamed; after it, each
//! new flow recorded comes out of the receiver with its 5-tuple, service and the backend it
//! was forwarded to, an established segment adds nothing. A flow installed as synced on the
//! third backend is listed synced; its next segment is forwarded to that backend, as
//! established, and the entry is the director's own from then on.
//! `userspace_streams_only_the_flows_its_guard_recorded`: with a new-flow guard of a burst
//! of two (no refill), the third and fourth new flows are forwarded unrecorded
//! (`new_flow_unrecorded`) and not streamed.
//!
//! Topology: `userspace_support::client_director_lan`. Root only: otherwise `SKIP`; with
//! `CI=true` it fails instead.

mod frames;
mod userspace_support;

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use frames::{frame, Shape, ACK, SYN};
use strait_lb::datapath::{
    ConnTimeouts, Datapath, DatapathOptions, Installed, NewFlow, SyncedFlow, XdpMode,
};
use strait_lb::maglev::DEFAULT_TABLE_SIZE;
use strait_lb::packet::parse::FiveTuple;
use strait_lb::packet::ratelimit::IcmpLimit;
use strait_lb::packet::service::{Backend, Mode, Service, ServiceKey};
use strait_lb::sync::FlowState;
use userspace_support::{
    client_director_lan, counter, in_netns, interface, may_run, open_datapath, packet_socket, Kind,
};

/// How long the client waits for a forward, and the test for a streamed flow.
const WAIT: Duration = Duration::from_secs(2);
/// The IPv4 EtherType.
const ETH_P_IP: u16 = 0x0800;

fn mac(host: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0x0c, host]
}

/// Backend `i` (0-based): `10.<net>.0.<10 + i>`, a MAC no host has.
fn backend(net: u8, i: u8, weight: u32) -> Backend {
    Backend {
        ip: [10, net, 0, 10 + i],
        mac: mac(10 + i),
        port: 80,
        weight,
        alive: true,
    }
}

fn flow(net: u8, sport: u16) -> FiveTuple {
    FiveTuple {
        src: [10, net, 0, 2],
        dst: [10, net, 0, 100],
        sport,
        dport: 80,
        proto: 6,
    }
}

/// Sends each segment (flow, TCP flags) from the client's `eth0` to the director's MAC and
/// returns, for each, the destination MAC of the director's forward of it.
fn send(cli: &str, segments: Vec<(FiveTuple, u8)>) -> Vec<[u8; 6]> {
    in_netns(cli, move || {
        let socket = packet_socket("eth0", ETH_P_IP);
        segments
            .iter()
            .map(|(t, flags)| {
                let mut f = frame(&Shape::tcp(t.src, t.dst, t.sport, t.dport, *flags));
                f[0..6].copy_from_slice(&mac(3));
                f[6..12].copy_from_slice(&mac(2));
                // SAFETY: f is valid for reads of its length.
                let sent = unsafe { libc::send(socket.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
                assert_eq!(
                    sent,
                    f.len() as isize,
                    "{}",
                    std::io::Error::last_os_error()
                );
                let deadline = Instant::now() + WAIT;
                let mut buf = [0u8; 1514];
                while Instant::now() < deadline {
                    // SAFETY: buf is valid for writes of its length.
                    let n = unsafe {
                        libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    let Ok(n) = usize::try_from(n) else { continue };
                    if n == f.len() && buf[6..12] == mac(3) && buf[12..n] == f[12..] {
                        return buf[0..6].try_into().unwrap();
                    }
                }
                panic!("no forward of {t:?}");
            })
            .collect()
    })
    .join()
    .expect("client thread")
}

/// The director on `eth0` of the LAN, generic XDP, with the new-flow guard `new_flow`.
fn open(kind: Kind, dir: &str, net: u8, new_flow: IcmpLimit) -> Box<dyn Datapath> {
    let opts = in_netns(dir, move || DatapathOptions {
        interface: interface("eth0", mac(3), Ipv4Addr::new(10, net, 0, 3)),
        inner_interface: None,
        xdp_mode: XdpMode::Generic,
        max_conns: 1024,
        icmp: IcmpLimit::NONE,
        conn_timeouts: ConnTimeouts::default(),
        new_flow,
    })
    .join()
    .expect("director thread");
    open_datapath(kind, dir, opts)
}

fn service(net: u8) -> (ServiceKey, Service) {
    let key = ServiceKey {
        vip: [10, net, 0, 100],
        port: 80,
        proto: 6,
    };
    let backends = vec![
        backend(net, 0, 100),
        backend(net, 1, 100),
        backend(net, 2, 0),
    ];
    (
        key,
        Service::new(Mode::Dr, backends, DEFAULT_TABLE_SIZE).unwrap(),
    )
}

/// The next `n` streamed flows, then nothing more for a while.
fn streamed(
    rt: &tokio::runtime::Runtime,
    rx: &mut tokio::sync::mpsc::Receiver<NewFlow>,
    n: usize,
) -> Vec<NewFlow> {
    let got = rt.block_on(async {
        let mut got = Vec::new();
        for _ in 0..n {
            let next = tokio::time::timeout(WAIT, rx.recv()).await;
            got.push(next.expect("a flow in time").expect("open channel"));
        }
        got
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(rx.try_recv().is_err(), "only {n} flows");
    got
}

fn streams_new_flows_and_follows_synced_ones(kind: Kind, tag: &str, net: u8) {
    let (_ns, _br, cli, dir) = client_director_lan(tag, net, (mac(2), mac(3)));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let mut dp = open(kind, &dir, net, IcmpLimit::NONE);
    let (key, svc) = service(net);
    dp.apply(&[(key, svc)]).unwrap();
    send(&cli, vec![(flow(net, 42_000), SYN)]);
    let mut rx = dp.take_new_flows().expect("the stream");
    assert!(dp.take_new_flows().is_none(), "taken once");
    let sent: Vec<FiveTuple> = (1..=4).map(|i| flow(net, 42_000 + i)).collect();
    let mut segments: Vec<(FiveTuple, u8)> = sent.iter().map(|t| (*t, SYN)).collect();
    segments.push((sent[0], ACK));
    let to = send(&cli, segments);
    for ((t, got), to) in sent.iter().zip(streamed(&rt, &mut rx, 4)).zip(&to) {
        assert_eq!((got.tuple, got.service), (*t, key));
        assert_eq!(mac(10 + got.backend as u8), *to, "{got:?}");
        assert!(got.backend < 2, "{got:?}");
    }
    assert_eq!(counter(dp.as_ref(), "sync_events_lost"), 0);

    // A synced flow on the third backend.
    let t = flow(net, 42_100);
    let synced = SyncedFlow {
        tuple: t,
        service: key,
        backend: 2,
        state: FlowState::Open,
        idle: Duration::from_millis(100),
    };
    let done = dp.install_synced(&[synced]).unwrap();
    let installed = Installed {
        installed: 1,
        ..Installed::default()
    };
    assert_eq!(done, installed);
    let listed = |dp: &dyn Datapath| {
        let all = dp.conns(usize::MAX).unwrap();
        all.into_iter()
            .find(|c| c.client.1 == t.sport)
            .expect("listed")
    };
    let e = listed(dp.as_ref());
    assert!(e.synced && !e.half_open && e.backend == 2, "{e:?}");
    let established = counter(dp.as_ref(), "tx_established");
    assert_eq!(
        send(&cli, vec![(t, ACK)]),
        [mac(12)],
        "to the synced backend"
    );
    assert_eq!(counter(dp.as_ref(), "tx_established"), established + 1);
    let e = listed(dp.as_ref());
    assert!(!e.synced && e.backend == 2, "{e:?}");
    assert_eq!(dp.conn_count().unwrap(), 6);
    drop(rx);
    dp.shutdown().unwrap();
}

#[test]
fn xdp_streams_new_flows_and_follows_synced_ones() {
    if may_run(Kind::Xdp, "xdp_streams_new_flows_and_follows_synced_ones") {
        streams_new_flows_and_follows_synced_ones(Kind::Xdp, "sx", 88);
    }
}

#[test]
fn userspace_streams_new_flows_and_follows_synced_ones() {
    if may_run(
        Kind::Userspace,
        "userspace_streams_new_flows_and_follows_synced_ones",
    ) {
        streams_new_flows_and_follows_synced_ones(Kind::Userspace, "su", 89);
    }
}

#[test]
fn userspace_streams_only_the_flows_its_guard_recorded() {
    if !may_run(
        Kind::Userspace,
        "userspace_streams_only_the_flows_its_guard_recorded",
    ) {
        return;
    }
    let net = 90;
    let (_ns, _br, cli, dir) = client_director_lan("sg", net, (mac(2), mac(3)));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A burst of two, one more a day.
    let day = 86_400 * 1_000_000_000u64;
    let guard = IcmpLimit {
        cost_ns: day,
        cap_ns: 2 * day,
    };
    let mut dp = open(Kind::Userspace, &dir, net, guard);
    let (key, svc) = service(net);
    dp.apply(&[(key, svc)]).unwrap();
    let mut rx = dp.take_new_flows().unwrap();
    let sent: Vec<FiveTuple> = (0..4).map(|i| flow(net, 43_000 + i)).collect();
    send(&cli, sent.iter().map(|t| (*t, SYN)).collect());
    let got = streamed(&rt, &mut rx, 2);
    assert_eq!((got[0].tuple, got[1].tuple), (sent[0], sent[1]));
    assert_eq!(counter(dp.as_ref(), "new_flow_unrecorded"), 2);
    assert_eq!(counter(dp.as_ref(), "tx_new"), 4);
    dp.shutdown().unwrap();
}
