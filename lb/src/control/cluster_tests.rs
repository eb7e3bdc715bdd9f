//! Tests of members -> backends, the observer's section and the change log.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::config::parse;
use crate::membership::{Member, MemberState};

fn member(id: &str, ip: &str, weight: u32, state: MemberState) -> Member {
    Member {
        id: id.into(),
        peer_addr: format!("{ip}:7070").parse().unwrap(),
        gossip_addr: format!("{ip}:7946").parse().unwrap(),
        weight,
        state,
        started_ms: 1,
    }
}

fn b(ip: &str, port: u16, weight: u32) -> BackendConfig {
    BackendConfig {
        ip: ip.parse().unwrap(),
        port,
        weight,
    }
}

#[test]
fn live_members_are_backends_with_their_weights_dead_ones_drain_observers_never() {
    let members = [
        member("b1", "10.0.0.11", 100, MemberState::Alive),
        member("b2", "10.0.0.12", 250, MemberState::Suspect),
        member("b3", "10.0.0.13", 100, MemberState::Dead),
        member("dir", "10.0.0.3", 0, MemberState::Alive),
        member("dir-dead", "10.0.0.4", 0, MemberState::Dead),
    ];
    assert_eq!(
        backends(&members, 80),
        [
            b("10.0.0.11", 80, 100),
            b("10.0.0.12", 80, 250),
            b("10.0.0.13", 80, 0)
        ]
    );
    assert!(backends(&members[3..], 80).is_empty());
    assert!(backends(&[], 80).is_empty());
}

#[test]
fn one_backend_per_ip_the_live_member_wins_and_ipv6_is_skipped() {
    let mut v6 = member("b9", "10.0.0.19", 100, MemberState::Alive);
    v6.peer_addr = "[fd00::9]:7070".parse::<SocketAddr>().unwrap();
    let members = [
        member("a-old", "10.0.0.11", 100, MemberState::Dead),
        member("b-new", "10.0.0.11", 300, MemberState::Alive),
        v6,
    ];
    assert_eq!(backends(&members, 443), [b("10.0.0.11", 443, 300)]);
}

#[test]
fn fill_sets_only_cluster_services_at_their_vip_port() {
    let text = "[director]\nid = \"d\"\ninterface = \"eth0\"\n\
                [cluster]\ngossip_listen = \"10.0.0.3:7946\"\ninsecure = true\n\
                [[service]]\nvip = \"10.0.0.100:80\"\nmode = \"dr\"\nbackends = \"cluster\"\n\
                [[service]]\nvip = \"10.0.0.100:81\"\nmode = \"dr\"\n\
                backends = [{ addr = \"10.0.0.50\" }]\n";
    let c = parse(text).unwrap();
    assert!(c.services[0].cluster && c.services[0].backends.is_empty());
    let members = [member("b1", "10.0.0.11", 100, MemberState::Alive)];
    let f = fill(&c, &members);
    assert_eq!(f.services[0].backends, [b("10.0.0.11", 80, 100)]);
    assert_eq!(f.services[1], c.services[1]);
    // Filling an already filled config with the same members changes nothing.
    assert!(service_changes(&f, &fill(&f, &members)).is_empty());
    let changed = service_changes(&c, &f);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].1.added, [("10.0.0.11".parse().unwrap(), 100)]);
}

#[test]
fn changes_name_added_drained_reweighted_and_removed_backends() {
    let old = [
        b("10.0.0.11", 80, 100),
        b("10.0.0.12", 80, 100),
        b("10.0.0.13", 80, 0),
    ];
    let new = [
        b("10.0.0.11", 80, 100),
        b("10.0.0.12", 80, 0),
        b("10.0.0.14", 80, 100),
    ];
    let c = changes(&old, &new);
    assert_eq!(c.added, [("10.0.0.14".parse().unwrap(), 100)]);
    assert_eq!(c.drained, ["10.0.0.12".parse::<Ipv4Addr>().unwrap()]);
    assert_eq!(c.removed, ["10.0.0.13".parse::<Ipv4Addr>().unwrap()]);
    assert!(c.reweighted.is_empty());
    let back = changes(&new, &[b("10.0.0.12", 80, 100)]);
    assert_eq!(back.reweighted, [("10.0.0.12".parse().unwrap(), 100)]);
    assert!(changes(&old, &old).is_empty());
}

#[test]
fn the_observer_joins_with_weight_zero_on_its_gossip_address() {
    let c = ClusterConfig {
        gossip_listen: "10.0.0.3:7946".parse().unwrap(),
        seeds: vec!["10.0.0.11:7946".parse().unwrap()],
        secret: None,
        probe_interval: Duration::from_millis(200),
        suspect_timeout: Duration::from_secs(1),
    };
    let s = section(&c);
    assert_eq!(*s.weight.get_ref(), 0);
    assert_eq!(*s.peer_listen.get_ref(), c.gossip_listen);
    assert_eq!(*s.gossip_listen.get_ref(), c.gossip_listen);
    assert_eq!(s.seeds.get_ref().len(), 1);
    assert_eq!(
        (s.probe_interval, s.suspect_timeout, s.handover_window),
        (
            Duration::from_millis(200),
            Duration::from_secs(1),
            Duration::ZERO
        )
    );
}
