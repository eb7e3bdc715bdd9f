//! Namespace tests of the userspace datapath (`UserspaceDatapath`), DR and NAT.
//!
//! Contract checked, per mode: through a director running the datapath (opened from a thread
//! inside the director's namespace), 3000 TCP connections from a client namespace to the VIP
//! are all answered by one of three backends (each answers with its name); each backend gets
//! 33% ± 3%; the connection table lists exactly the client's connections with the backend
//! that answered each; the backend counters agree; while it runs the nftables table holds
//! the drop rules; a service removed is refused by the director's kernel again; after
//! shutdown (twice: idempotent) no table is left. DR also checks that opening sweeps a table
//! left by a dead process (and keeps a live one's), and that a second datapath in the same
//! namespace is refused.
//!
//! Topology (prefix `st-tus-<mode><pid>-`, all removed by a guard, nothing in the root
//! namespace): a namespace holding the bridge(s), and client, director and three backend
//! namespaces, each with a veth into a bridge (`tx off`: full checksums, as a real NIC).
//! DR: one LAN; the director and the backends hold the VIP (backends on `lo`, with
//! `arp_ignore=1`/`arp_announce=2`). NAT: the client and the director's `eth0` on one LAN,
//! the director's `eth1` and the backends on another; the backends route via the director,
//! which forwards IP (so a missing nftables rule would leak un-NATed replies) and the client
//! routes via the director too (so such a reply would reset its connection).
//!
//! Root only: otherwise prints `SKIP` and passes; with `CI=true` it fails instead.

mod userspace_support;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};

use strait_lb::datapath::{Datapath, DatapathOptions, XdpMode};
use strait_lb::maglev::DEFAULT_TABLE_SIZE;
use strait_lb::packet::service::{Backend, Mode, Service, ServiceKey};
use strait_lb::userspace::{table_name, UserspaceDatapath};
use userspace_support::{
    connect_many, connect_once, in_netns, interface, require_root, run, Namespaces, Servers,
};

/// Connections per test.
const CONNECTIONS: usize = 3000;
/// Allowed distance of each backend's share from a third: ±3% of 3000 connections is about
/// 3.5 standard deviations of a fair split (±6% of 300 would be only 2.2).
const SPREAD: f64 = 0.03;
/// The client's source ports, one per connection (see `connect_many`).
const CLIENT_PORTS: std::ops::Range<u16> = 20_000..20_000 + CONNECTIONS as u16;

fn mac(host: u8, lan: u8) -> [u8; 6] {
    [2, 0, 0, 0, lan, host]
}

fn nft_tables(ns: &str) -> String {
    run(&["ip", "netns", "exec", ns, "nft", "list", "tables"])
}

/// One balanced setup ready to be driven.
struct Setup {
    client_ns: String,
    dir_ns: String,
    vip: SocketAddr,
    key: ServiceKey,
    service: Service,
    names: [&'static str; 3],
}

/// Drives `CONNECTIONS` connections through `dp` and checks everything the module doc says.
fn drive_and_check(setup: &Setup, mut dp: UserspaceDatapath) {
    dp.apply(&[(setup.key, setup.service.clone())])
        .expect("apply");
    let table = nft_tables(&setup.dir_ns);
    assert!(table.contains(&table_name()), "{table}");
    let rules = run(&[
        "ip",
        "netns",
        "exec",
        &setup.dir_ns,
        "nft",
        "list",
        "table",
        "ip",
        &table_name(),
    ]);
    assert!(
        rules.contains(&format!("tcp dport {} drop", setup.vip.port())),
        "{rules}"
    );

    let started = std::time::Instant::now();
    let answers = connect_many(&setup.client_ns, setup.vip, CLIENT_PORTS);
    let rate = CONNECTIONS as f64 / started.elapsed().as_secs_f64();
    let by_port: HashMap<u16, &str> = answers.iter().map(|(p, a)| (*p, a.as_str())).collect();
    let spread: Vec<usize> = setup
        .names
        .iter()
        .map(|name| answers.iter().filter(|(_, a)| a == name).count())
        .collect();
    println!(
        "{}: connections per backend {spread:?}, {rate:.0} connections/s (one at a time)",
        setup.service.mode.as_str()
    );
    for (i, name) in setup.names.iter().enumerate() {
        let n = spread[i];
        let share = n as f64 / CONNECTIONS as f64;
        assert!(
            (1.0 / 3.0 - SPREAD..=1.0 / 3.0 + SPREAD).contains(&share),
            "backend {i} ({name}) got {n} of {CONNECTIONS}"
        );
    }
    assert!(
        answers
            .iter()
            .all(|(_, a)| setup.names.contains(&a.as_str())),
        "{answers:?}"
    );

    // The table lists exactly the client's connections, each with the backend that
    // answered it.
    let conns = dp.conns(10 * CONNECTIONS).unwrap();
    assert_eq!(conns.len() as u64, dp.conn_count().unwrap());
    let ports: HashSet<u16> = conns.iter().map(|c| c.client.1).collect();
    assert_eq!(ports, by_port.keys().copied().collect::<HashSet<_>>());
    assert_eq!(conns.len(), by_port.len());
    let vip = match setup.vip {
        SocketAddr::V4(v) => (*v.ip(), v.port()),
        SocketAddr::V6(_) => unreachable!(),
    };
    for c in &conns {
        assert_eq!((c.vip, c.proto), (vip, 6), "{c:?}");
        assert_eq!(
            by_port[&c.client.1], setup.names[c.backend as usize],
            "{c:?}"
        );
    }

    let stats = dp.backend_stats(&setup.key).unwrap();
    assert_eq!(stats.len(), 3);
    for (i, s) in stats.iter().enumerate() {
        let flows = by_port.values().filter(|a| **a == setup.names[i]).count() as u64;
        assert_eq!(s.flows, flows, "backend {i}: {s:?}");
        // At least SYN, ACK and FIN of each of its connections.
        assert!(
            s.packets >= 3 * flows && s.bytes >= 54 * s.packets,
            "backend {i}: {s:?}"
        );
    }
    let counters: HashMap<&str, u64> = dp.counters().unwrap().into_iter().collect();
    println!("{}: counters {counters:?}", setup.service.mode.as_str());
    assert_eq!(counters["tx_new"], by_port.len() as u64, "{counters:?}");
    assert!(
        counters["tx_established"] >= 2 * by_port.len() as u64,
        "{counters:?}"
    );
    if setup.service.mode == Mode::Nat {
        assert!(
            counters["nat_reply"] >= 3 * by_port.len() as u64,
            "{counters:?}"
        );
    }

    assert_eq!(
        (counters["tx_error"], counters["rx_error"]),
        (0, 0),
        "{counters:?}"
    );

    // A service removed is removed from the kernel's rules too: the director's kernel, which
    // holds the VIP and has no listener, now refuses the connection itself.
    dp.apply(&[]).expect("apply nothing");
    let rules = run(&[
        "ip",
        "netns",
        "exec",
        &setup.dir_ns,
        "nft",
        "list",
        "table",
        "ip",
        &table_name(),
    ]);
    assert!(!rules.contains("dport"), "{rules}");
    let refused = connect_once(&setup.client_ns, setup.vip, CLIENT_PORTS.end);
    assert_eq!(
        refused.as_ref().map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    assert!(dp.backend_stats(&setup.key).is_err());

    dp.shutdown().expect("shutdown");
    dp.shutdown().expect("second shutdown");
    let tables = nft_tables(&setup.dir_ns);
    assert!(!tables.contains("strait_us_"), "left behind: {tables}");
    assert!(dp.apply(&[]).is_err(), "apply after shutdown");
}

fn backends(ips: [[u8; 4]; 3], lan: u8, port: u16) -> Vec<Backend> {
    ips.iter()
        .enumerate()
        .map(|(i, ip)| Backend {
            ip: *ip,
            mac: mac(11 + i as u8, lan),
            port,
            weight: 100,
            alive: true,
        })
        .collect()
}

#[test]
fn dr_spreads_connections_over_three_backends() {
    if !require_root("dr_spreads_connections_over_three_backends") {
        return;
    }
    let mut ns = Namespaces::new("d");
    let br = ns.add("br");
    ns.bridge(&br, "br0");
    let vip = Ipv4Addr::new(10, 77, 0, 100);
    let client_ns = ns.host(&br, "br0", "cli", "eth0", mac(2, 0), "10.77.0.2/24");
    let dir_ns = ns.host(&br, "br0", "dir", "eth0", mac(3, 0), "10.77.0.3/24");
    run(&[
        "ip",
        "-n",
        &dir_ns,
        "addr",
        "add",
        "10.77.0.100/32",
        "dev",
        "eth0",
    ]);
    let names = ["b1", "b2", "b3"];
    let ips = [[10, 77, 0, 11], [10, 77, 0, 12], [10, 77, 0, 13]];
    let mut servers = Servers::default();
    for (i, name) in names.iter().enumerate() {
        let [a, b, c, d] = ips[i];
        let b_ns = ns.host(
            &br,
            "br0",
            name,
            "eth0",
            mac(11 + i as u8, 0),
            &format!("{a}.{b}.{c}.{d}/24"),
        );
        run(&[
            "ip",
            "netns",
            "exec",
            &b_ns,
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ]);
        run(&[
            "ip",
            "-n",
            &b_ns,
            "addr",
            "add",
            "10.77.0.100/32",
            "dev",
            "lo",
        ]);
        servers.start(&b_ns, SocketAddr::from((vip, 80)), name);
    }
    // A table left by a killed datapath (no such pid) is swept; one of a live process stays.
    let (dead, live) = (format!("strait_us_{}", u32::MAX), "strait_us_1");
    for t in [dead.as_str(), live] {
        run(&[
            "ip", "netns", "exec", &dir_ns, "nft", "add", "table", "ip", t,
        ]);
    }
    let dp = in_netns(&dir_ns, || {
        let opts = DatapathOptions {
            interface: interface("eth0", mac(3, 0), Ipv4Addr::new(10, 77, 0, 3)),
            inner_interface: None,
            xdp_mode: XdpMode::Auto,
            max_conns: 8 * CONNECTIONS as u32,
            icmp: strait_lb::packet::ratelimit::IcmpLimit::new(1000, 50),
            conn_timeouts: strait_lb::datapath::ConnTimeouts::default(),
            new_flow: strait_lb::packet::ratelimit::IcmpLimit::NONE,
        };
        let dp = UserspaceDatapath::open(&opts).expect("open");
        // A second datapath in the same namespace would forward every frame twice.
        let e = UserspaceDatapath::open(&opts).expect_err("second open");
        assert!(e.to_string().contains(&table_name()), "{e}");
        dp
    })
    .join()
    .expect("director thread");
    let tables = nft_tables(&dir_ns);
    assert!(!tables.contains(&dead) && tables.contains(live), "{tables}");
    run(&[
        "ip", "netns", "exec", &dir_ns, "nft", "delete", "table", "ip", live,
    ]);
    let key = ServiceKey {
        vip: vip.octets(),
        port: 80,
        proto: 6,
    };
    let service = Service::new(Mode::Dr, backends(ips, 0, 80), DEFAULT_TABLE_SIZE).unwrap();
    let setup = Setup {
        client_ns,
        dir_ns,
        vip: SocketAddr::from((vip, 80)),
        key,
        service,
        names,
    };
    drive_and_check(&setup, dp);
}

#[test]
fn nat_spreads_connections_and_rewrites_replies() {
    if !require_root("nat_spreads_connections_and_rewrites_replies") {
        return;
    }
    let mut ns = Namespaces::new("n");
    let br = ns.add("br");
    ns.bridge(&br, "br0");
    ns.bridge(&br, "br1");
    let vip = Ipv4Addr::new(10, 78, 0, 100);
    let client_ns = ns.host(&br, "br0", "cli", "eth0", mac(2, 0), "10.78.0.2/24");
    run(&[
        "ip",
        "-n",
        &client_ns,
        "route",
        "add",
        "default",
        "via",
        "10.78.0.3",
    ]);
    let dir_ns = ns.host(&br, "br0", "dir", "eth0", mac(3, 0), "10.78.0.3/24");
    ns.host(&br, "br1", "dir", "eth1", mac(1, 1), "10.78.1.1/24");
    run(&[
        "ip",
        "-n",
        &dir_ns,
        "addr",
        "add",
        "10.78.0.100/32",
        "dev",
        "eth0",
    ]);
    run(&[
        "ip",
        "netns",
        "exec",
        &dir_ns,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    let names = ["n1", "n2", "n3"];
    let ips = [[10, 78, 1, 11], [10, 78, 1, 12], [10, 78, 1, 13]];
    let mut servers = Servers::default();
    for (i, name) in names.iter().enumerate() {
        let [a, b, c, d] = ips[i];
        let b_ns = ns.host(
            &br,
            "br1",
            name,
            "eth0",
            mac(11 + i as u8, 1),
            &format!("{a}.{b}.{c}.{d}/24"),
        );
        run(&[
            "ip",
            "-n",
            &b_ns,
            "route",
            "add",
            "default",
            "via",
            "10.78.1.1",
        ]);
        servers.start(&b_ns, SocketAddr::from((ips[i], 8080)), name);
    }
    let dp = in_netns(&dir_ns, || {
        let opts = DatapathOptions {
            interface: interface("eth0", mac(3, 0), Ipv4Addr::new(10, 78, 0, 3)),
            inner_interface: Some(interface("eth1", mac(1, 1), Ipv4Addr::new(10, 78, 1, 1))),
            xdp_mode: XdpMode::Auto,
            max_conns: 8 * CONNECTIONS as u32,
            icmp: strait_lb::packet::ratelimit::IcmpLimit::new(1000, 50),
            conn_timeouts: strait_lb::datapath::ConnTimeouts::default(),
            new_flow: strait_lb::packet::ratelimit::IcmpLimit::NONE,
        };
        UserspaceDatapath::open(&opts).expect("open")
    })
    .join()
    .expect("director thread");
    let key = ServiceKey {
        vip: vip.octets(),
        port: 80,
        proto: 6,
    };
    let service = Service::new(Mode::Nat, backends(ips, 1, 8080), DEFAULT_TABLE_SIZE).unwrap();
    let setup = Setup {
        client_ns,
        dir_ns,
        vip: SocketAddr::from((vip, 80)),
        key,
        service,
        names,
    };
    drive_and_check(&setup, dp);
}
