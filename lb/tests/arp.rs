//! Namespace tests of the ARP responder (`Datapath::set_owned`), for the XDP and the
//! userspace datapath alike: the VIPs are no kernel address anywhere, so only the datapath can
//! make them reachable.
//!
//! Contract checked, per datapath (`*_answers_arp_for_the_owned_vips_only`): a client asking
//! with a broadcast ARP request gets no answer for a VIP before `set_owned`; after
//! `set_owned([VIP, VIP2])` it gets, for each, exactly the reply `packet::arp::answer` builds
//! (the director interface's MAC); a gratuitous ARP for an owned VIP and a request for
//! another address are not answered by the datapath (the director's own address is still
//! answered, by its kernel); replacing the set with `[VIP2]` stops the answers for VIP only,
//! `[]` stops them all; a set over `MAX_OWNED` is refused and the previous one stays;
//! `arp_reply` counts the answers.
//! End to end (`*_forwards_dr_through_an_owned_vip`): two DR backends holding the VIP on
//! `lo` (`arp_ignore=1`, `arp_announce=2`) behind a director that does not hold it; nobody
//! answers ARP for the VIP until `set_owned([VIP])`, then 40 TCP connections from the client
//! to the VIP are all answered by the backends (both of them), and the client's neighbour
//! entry for the VIP is the director's MAC.
//!
//! Topology (prefix `st-tus-<tag><pid>-`, removed by a guard; nothing in the root
//! namespace): a namespace holding the bridge, and client, director and backend namespaces
//! with a veth into it. Root only: otherwise prints `SKIP` and passes; with `CI=true` it fails
//! instead.

mod userspace_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use strait_lb::maglev::DEFAULT_TABLE_SIZE;
use strait_lb::packet::arp::{self, OwnedVips, MAX_OWNED};
use strait_lb::packet::service::{Backend, Mode, Service, ServiceKey};
use userspace_support::{
    client_director_lan, connect_many, counter, in_netns, may_run, open_on_lan, packet_socket, run,
    Kind, Servers,
};

/// How long a client waits for an ARP reply before taking silence for an answer.
const ARP_WAIT: Duration = Duration::from_millis(500);

fn mac(host: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0x0a, host]
}

/// Sends `frame` from `eth0` of namespace `ns` and returns the first ARP reply for `target`
/// addressed to `me` within [`ARP_WAIT`].
fn ask(ns: &str, frame: Vec<u8>, me: [u8; 6], target: [u8; 4]) -> Option<Vec<u8>> {
    in_netns(ns, move || {
        let socket = packet_socket("eth0", arp::ETH_P_ARP);
        // SAFETY: frame is valid for reads of its length.
        let sent = unsafe { libc::send(socket.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            sent,
            frame.len() as isize,
            "{}",
            std::io::Error::last_os_error()
        );
        let deadline = Instant::now() + ARP_WAIT;
        let mut buf = [0u8; 1514];
        while Instant::now() < deadline {
            // SAFETY: buf is valid for writes of its length.
            let n =
                unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else {
                continue; // the receive timeout
            };
            let f = &buf[..n];
            if n >= arp::ARP_FRAME_LEN
                && f[20..22] == arp::OP_REPLY.to_be_bytes()
                && f[28..32] == target
                && f[32..38] == me
            {
                return Some(f.to_vec());
            }
        }
        None
    })
    .join()
    .expect("client thread")
}

fn answers_arp_for_the_owned_vips_only(kind: Kind, tag: &str, net: u8) {
    let (_ns, _br, cli, dir) = client_director_lan(tag, net, (mac(2), mac(3)));
    let (client_ip, director_ip) = ([10, net, 0, 2], [10, net, 0, 3]);
    let (vip, vip2, other) = ([10, net, 0, 100], [10, net, 0, 101], [10, net, 0, 102]);
    let mut dp = open_on_lan(kind, &dir, net, mac(3));
    let request = |target| arp::request(mac(2), client_ip, target);
    let replied = |target| ask(&cli, request(target), mac(2), target);

    assert_eq!(replied(vip), None, "owned by nobody yet");
    let kernel = replied(director_ip).expect("the director's kernel answers for its address");
    assert_eq!(kernel[22..28], mac(3));

    let both = [Ipv4Addr::from(vip), Ipv4Addr::from(vip2)];
    dp.set_owned(&both).unwrap();
    let owned = OwnedVips::new(&both).unwrap();
    for target in [vip, vip2] {
        let got = replied(target).expect("an owned VIP is answered");
        assert_eq!(
            Some(got.clone()),
            arp::answer(&request(target), &owned, mac(3))
        );
        assert_eq!(
            (got[0..6].to_vec(), got[22..28].to_vec()),
            (mac(2).to_vec(), mac(3).to_vec())
        );
    }
    let gratuitous = arp::request(mac(2), vip, vip);
    assert_eq!(ask(&cli, gratuitous, mac(2), vip), None, "gratuitous");
    assert_eq!(replied(other), None, "not owned");
    assert!(replied(director_ip).is_some(), "still the kernel's");
    assert_eq!(counter(dp.as_ref(), "arp_reply"), 2);

    dp.set_owned(&[Ipv4Addr::from(vip2)]).unwrap();
    assert_eq!(replied(vip), None, "released");
    assert!(replied(vip2).is_some(), "kept");
    let too_many: Vec<Ipv4Addr> = (0..=MAX_OWNED as u32)
        .map(|i| Ipv4Addr::from(0x0a64_0000 + i))
        .collect();
    let e = dp.set_owned(&too_many).unwrap_err();
    assert!(e.to_string().contains("at most 256"), "{e}");
    assert!(replied(vip2).is_some(), "the previous set stays");

    dp.set_owned(&[]).unwrap();
    assert_eq!(replied(vip2), None, "none owned");
    assert_eq!(counter(dp.as_ref(), "arp_reply"), 4);
    dp.shutdown().unwrap();
}

fn forwards_dr_through_an_owned_vip(kind: Kind, tag: &str, net: u8) {
    let (mut ns, br, cli, dir) = client_director_lan(tag, net, (mac(2), mac(3)));
    let vip = Ipv4Addr::new(10, net, 0, 100);
    let names = ["b1", "b2"];
    let mut servers = Servers::default();
    let mut backends = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let host = 11 + i as u8;
        let ip = [10, net, 0, host];
        let cidr = format!("{}/24", Ipv4Addr::from(ip));
        let b = ns.host(&br, "br0", name, "eth0", mac(host), &cidr);
        run(&[
            "ip",
            "netns",
            "exec",
            &b,
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ]);
        run(&[
            "ip",
            "-n",
            &b,
            "addr",
            "add",
            &format!("{vip}/32"),
            "dev",
            "lo",
        ]);
        servers.start(&b, SocketAddr::from((vip, 80)), name);
        backends.push(Backend {
            ip,
            mac: mac(host),
            port: 80,
            weight: 100,
            alive: true,
        });
    }
    let mut dp = open_on_lan(kind, &dir, net, mac(3));
    let key = ServiceKey {
        vip: vip.octets(),
        port: 80,
        proto: 6,
    };
    let service = Service::new(Mode::Dr, backends, DEFAULT_TABLE_SIZE).unwrap();
    dp.apply(&[(key, service)]).unwrap();
    let request = arp::request(mac(2), [10, net, 0, 2], vip.octets());
    assert_eq!(
        ask(&cli, request.clone(), mac(2), vip.octets()),
        None,
        "nobody holds the VIP"
    );

    dp.set_owned(&[vip]).unwrap();
    let answers = connect_many(&cli, SocketAddr::from((vip, 80)), 30_000..30_040);
    for name in names {
        let n = answers.iter().filter(|(_, a)| a == name).count();
        assert!(n > 0, "{name} answered none of {answers:?}");
    }
    assert!(
        answers.iter().all(|(_, a)| names.contains(&a.as_str())),
        "{answers:?}"
    );
    let neigh = run(&["ip", "-n", &cli, "neigh", "show", &vip.to_string()]);
    assert!(
        neigh.contains(&strait_lb::iface::format_mac(mac(3))),
        "{neigh}"
    );
    assert!(counter(dp.as_ref(), "arp_reply") >= 1);
    assert_eq!(counter(dp.as_ref(), "tx_new"), 40);
    dp.shutdown().unwrap();
}

#[test]
fn xdp_answers_arp_for_the_owned_vips_only() {
    if may_run(Kind::Xdp, "xdp_answers_arp_for_the_owned_vips_only") {
        answers_arp_for_the_owned_vips_only(Kind::Xdp, "ax", 82);
    }
}

#[test]
fn userspace_answers_arp_for_the_owned_vips_only() {
    if may_run(
        Kind::Userspace,
        "userspace_answers_arp_for_the_owned_vips_only",
    ) {
        answers_arp_for_the_owned_vips_only(Kind::Userspace, "au", 83);
    }
}

#[test]
fn xdp_forwards_dr_through_an_owned_vip() {
    if may_run(Kind::Xdp, "xdp_forwards_dr_through_an_owned_vip") {
        forwards_dr_through_an_owned_vip(Kind::Xdp, "dx", 84);
    }
}

#[test]
fn userspace_forwards_dr_through_an_owned_vip() {
    if may_run(
        Kind::Userspace,
        "userspace_forwards_dr_through_an_owned_vip",
    ) {
        forwards_dr_through_an_owned_vip(Kind::Userspace, "du", 85);
    }
}
