//! The L4 director end to end, in the example topologies (topology/examples/topologies/
//! {dr,tun,nat}.toml: a client, the director, three backends each running `strait node` in front
//! of `strait sim origin`), with the XDP datapath. For each mode: 3000 short connections all
//! answered, each by the backend the Maglev model predicts for its 5-tuple (so 33% ± 3% each);
//! a 200 000-byte upload through the VIP completes (TUN: full-sized segments get the
//! director's ICMP "fragmentation needed", counted, and path-MTU discovery does the rest);
//! a weight change moves exactly the flows the new table says; a long-lived connection stays
//! on its backend when a backend is added; a killed backend is out within
//! `fall × interval + timeout` and new connections all succeed, as do connections reusing
//! 5-tuples recorded on it (rescheduled: LVS `expire_nodest_conn`); NAT answers a TTL 1 SYN
//! with ICMP time exceeded; SIGTERM leaves no XDP
//! program. TUN runs with `threaded_napi = true`: `eth0` is threaded while the director runs
//! and back as it was after.
//! Needs root; outside CI it says SKIP.

mod support;

#[path = "netns_director/harness.rs"]
mod harness;
#[path = "netns_director/scenario.rs"]
mod scenario;

use std::net::Ipv4Addr;

use scenario::ModeSpec;

fn spec(mode: &'static str, test_name: &'static str, net: u8, back: u8, vip_net: u8) -> ModeSpec {
    ModeSpec {
        mode,
        topology: match mode {
            "dr" => "topology/examples/topologies/dr.toml",
            "tun" => "topology/examples/topologies/tun.toml",
            _ => "topology/examples/topologies/nat.toml",
        },
        test_name,
        client_host: "client",
        director_host: "director",
        backend_hosts: ["b1", "b2", "b3"],
        node_ids: ["b1", "b2", "b3"],
        client_ip: Ipv4Addr::new(10, net, vip_net, 2),
        vip: Ipv4Addr::new(10, net, vip_net, 100),
        backend_ips: [11, 12, 13].map(|h| Ipv4Addr::new(10, net, back, h)),
        inner_interface: (mode == "nat").then_some("eth1"),
        datapath: "xdp",
        threaded_napi: false,
    }
}

fn run(test: &str, m: ModeSpec) {
    if !support::require_root(test, &["ip", "ethtool"]) {
        return;
    }
    scenario::run(&m);
}

#[test]
fn dr_mode_balances_by_maglev_and_survives_changes() {
    run("dr_mode", spec("dr", "xd", 71, 0, 0));
}

#[test]
fn tun_mode_balances_by_maglev_and_survives_changes() {
    let mut m = spec("tun", "xtu", 73, 0, 0);
    m.threaded_napi = true;
    run("tun_mode", m);
}

#[test]
fn nat_mode_balances_by_maglev_and_survives_changes() {
    run("nat_mode", spec("nat", "xna", 72, 1, 0));
}

#[test]
fn userspace_datapath_dr_mode() {
    let mut m = spec("dr", "ud", 71, 0, 0);
    m.datapath = "userspace";
    run("userspace_dr_mode", m);
}
