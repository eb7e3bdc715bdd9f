//! The next-hop fixture of the differential test: interfaces, routes and permanent
//! neighbour entries in a private namespace, and the same table for the model.
//!
//! Contract: [`setup`] builds, inside the namespace, `out0` (client side, MAC
//! 02:00:00:00:00:e0, 10.0.0.2/24) and `in0` (backend side, 02:00:00:00:00:e1,
//! 10.0.1.254/24), each a veth with its peer up, with IPv4 forwarding on (`bpf_fib_lookup`
//! answers "forwarding disabled" on an egress interface without it). Clients 192.168.1.0/30 are routed via the
//! gateway 10.0.0.1 (neighbour known), 192.168.1.4/30 are on-link with neighbours for .4 and
//! .5 only, 192.168.1.8 and above have no route. Backends 10.0.1.1 and .2 have neighbour
//! entries (MAC 02:00:00:00:02:0i, unlike their configured 02:00:00:00:01:0i), 10.0.1.3 has
//! none, 10.0.2.0/24 has no route through `in0`. [`table`] is that state as a
//! `StaticNextHops`; [`director`] the program's settings with the namespace's ifindexes.
#![allow(dead_code)]

use strait_lb::abi;
use strait_lb::iface::Interface;
use strait_lb::packet::nexthop::{Egress, Route, StaticNextHops};

use super::Netns;

/// MAC of `out0`.
pub const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xe0];
/// MAC of `in0`.
pub const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xe1];
/// IPv4 address of `in0`.
pub const IN_IP: [u8; 4] = [10, 0, 1, 254];
const GATEWAY: [u8; 4] = [10, 0, 0, 1];
const GATEWAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];

fn client(i: u8) -> [u8; 4] {
    [192, 168, 1, i]
}

fn client_mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, 0x10 + i]
}

/// The neighbour MAC of backend `i` (not its configured MAC).
fn backend_neighbour_mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 2, i]
}

fn mac(m: [u8; 6]) -> String {
    strait_lb::iface::format_mac(m)
}

fn ip(a: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

/// Builds the namespace's interfaces, routes and neighbours (see the module doc).
pub fn setup(ns: &Netns) {
    ns.exec(&format!(
        "ip link add out0 address {} type veth peer name out1 && \
         ip link add in0 address {} type veth peer name in1 && \
         for l in out0 out1 in0 in1; do ip link set $l up; done && \
         ip addr add 10.0.0.2/24 dev out0 && ip addr add 10.0.1.254/24 dev in0 && \
         sysctl -qw net.ipv4.ip_forward=1 && \
         ip route add 192.168.1.0/30 via 10.0.0.1 dev out0 && \
         ip route add 192.168.1.4/30 dev out0 && \
         ip neigh add {} lladdr {} dev out0 nud permanent",
        mac(OUT_MAC),
        mac(IN_MAC),
        ip(GATEWAY),
        mac(GATEWAY_MAC)
    ));
    for i in [4, 5] {
        ns.exec(&format!(
            "ip neigh add {} lladdr {} dev out0 nud permanent",
            ip(client(i)),
            mac(client_mac(i))
        ));
    }
    for i in [1, 2] {
        ns.exec(&format!(
            "ip neigh add 10.0.1.{i} lladdr {} dev in0 nud permanent",
            mac(backend_neighbour_mac(i))
        ));
    }
}

/// The same state for the model (see the module doc).
pub fn table() -> StaticNextHops {
    let mut t = StaticNextHops::default();
    t.macs.insert(Egress::Client, OUT_MAC);
    t.macs.insert(Egress::Nat, IN_MAC);
    let route = |prefix, len, egress, via| Route {
        prefix,
        len,
        egress,
        via,
    };
    t.routes
        .push(route([10, 0, 0, 0], 24, Egress::Client, None));
    t.routes
        .push(route(client(0), 30, Egress::Client, Some(GATEWAY)));
    t.routes.push(route(client(4), 30, Egress::Client, None));
    t.routes.push(route([10, 0, 1, 0], 24, Egress::Nat, None));
    t.neighbours.insert((Egress::Client, GATEWAY), GATEWAY_MAC);
    for i in [4, 5] {
        t.neighbours
            .insert((Egress::Client, client(i)), client_mac(i));
    }
    for i in [1, 2] {
        t.neighbours
            .insert((Egress::Nat, [10, 0, 1, i]), backend_neighbour_mac(i));
    }
    t
}

/// The program's settings: `mac`/`ip` as given, NAT egress `in0`, client egress `out0`, no
/// MTU check (`mtu` 0: callers that want one set it), the connection table's set hash keyed
/// by [`CONN_SEED`] (a model table `MemConnTable::with_seed(n, CONN_SEED)` of the same bound
/// then holds the same keys in the same sets).
pub fn director(mac: [u8; 6], ip: [u8; 4]) -> abi::Director {
    let out0 = Interface::by_name("out0").unwrap();
    let in0 = Interface::by_name("in0").unwrap();
    assert_eq!((out0.mac, in0.mac), (OUT_MAC, IN_MAC));
    assert_eq!(in0.ip.octets(), IN_IP);
    abi::Director {
        mac,
        pad: [0; 2],
        ip,
        nat_ifindex: in0.ifindex,
        client_ifindex: out0.ifindex,
        nat_mac: in0.mac,
        pad2: [0; 2],
        mtu: 0,
        nat_ip: in0.ip.octets(),
        conn_mask: 0,
        conn_seed: CONN_SEED,
        conn_cache_mask: 0,
        nat_mtu: 0,
        icmp_cost: 0,
        icmp_cap: 0,
        tcp_idle: 0,
        udp_idle: 0,
        tcp_fin_idle: 0,
        pad4: 0,
        new_flow_cost: 0,
        new_flow_cap: 0,
    }
}

/// The set hash seed of [`director`].
pub const CONN_SEED: u64 = 0x5eed_0f5e_7a55_0c1a;
