//! Tests of the control plane's state: stable indices, reload, effective weights.

use std::time::{Duration, SystemTime};

use super::*;
use crate::config::parse;

fn config(backends: &str) -> DirectorConfig {
    let text = format!(
        "[director]\nid = \"d\"\ninterface = \"lo\"\ntable_size = 251\n\
         [[service]]\nvip = \"10.0.0.100:80\"\nmode = \"dr\"\nbackends = [{backends}]\n\
         health = {{ rise = 2, fall = 2, interval = \"100ms\", timeout = \"50ms\" }}\n"
    );
    parse(&text).unwrap_or_else(|d| panic!("{d:?}"))
}

fn zero_mac(_: Mode) -> Option<[u8; 6]> {
    Some([0; 6])
}

fn weights(s: &State) -> Vec<(String, u32)> {
    s.services[0]
        .backends
        .iter()
        .map(|b| (b.addr().to_string(), b.effective_weight()))
        .collect()
}

fn outcome(ok: bool) -> CheckOutcome {
    CheckOutcome {
        ok,
        detail: if ok { "connected" } else { "connect: refused" }.into(),
        latency: Duration::from_millis(1),
    }
}

const A: &str = "{ addr = \"10.0.0.11\" }";
const B: &str = "{ addr = \"10.0.0.12\", weight = 50 }";
const C: &str = "{ addr = \"10.0.0.13\" }";

#[test]
fn reload_keeps_indices_drains_removed_and_reuses_old_slots() {
    let now = SystemTime::now();
    let mut s = State::new(&config(&format!("{A}, {B}")), now, zero_mac);
    assert_eq!(
        weights(&s),
        [("10.0.0.11:80".into(), 100), ("10.0.0.12:80".into(), 50)]
    );
    // B removed, C added: B stays at index 1 with weight 0, C is appended.
    s.reconcile(&config(&format!("{C}, {A}")), now, zero_mac);
    assert_eq!(
        weights(&s),
        [
            ("10.0.0.11:80".into(), 100),
            ("10.0.0.12:80".into(), 0),
            ("10.0.0.13:80".into(), 100)
        ]
    );
    assert_eq!(s.services[0].backends[1].status().0, "draining");
    // B back with a new weight: its old index.
    s.reconcile(&config(&format!("{B}, {C}, {A}")), now, zero_mac);
    assert_eq!(
        weights(&s),
        [
            ("10.0.0.11:80".into(), 100),
            ("10.0.0.12:80".into(), 50),
            ("10.0.0.13:80".into(), 100)
        ]
    );
    let built = s.build().unwrap();
    assert_eq!(built.len(), 1);
    let service = &built[0].1;
    assert_eq!(service.backends.len(), 3);
    assert_eq!(service.table.as_ref().unwrap().size(), 251);
    assert_eq!(
        service.table.as_ref().unwrap().backend_id(1),
        Some("10.0.0.12:80")
    );
}

#[test]
fn down_and_unresolved_backends_weigh_nothing() {
    let now = SystemTime::now();
    let mut s = State::new(&config(&format!("{A}, {B}")), now, |_| None);
    assert_eq!(
        weights(&s),
        [("10.0.0.11:80".into(), 0), ("10.0.0.12:80".into(), 0)]
    );
    assert_eq!(
        s.services[0].backends[0].status(),
        ("down", "no ARP reply".into())
    );
    let id = s.services[0].id();
    assert!(s.set_mac(id, 0, Some([2, 0, 0, 0, 0, 11])));
    assert!(!s.set_mac(id, 0, Some([2, 0, 0, 0, 0, 11])));
    assert!(s.set_mac(id, 1, Some([2, 0, 0, 0, 0, 12])));
    assert_eq!(weights(&s)[0].1, 100);
    assert_eq!(s.build().unwrap()[0].1.backends[0].mac, [2, 0, 0, 0, 0, 11]);
    // fall = 2: the second failure takes it down, rise = 2 brings it back.
    assert_eq!(s.on_check(id, 0, outcome(false), now), None);
    assert_eq!(
        s.on_check(id, 0, outcome(false), now),
        Some(ServerState::Down)
    );
    assert_eq!(weights(&s)[0].1, 0);
    assert_eq!(
        s.services[0].backends[0].status(),
        ("down", "connect: refused".into())
    );
    let table = s.build().unwrap()[0].1.table.clone().unwrap();
    assert_eq!(table.shares()[0], 0);
    assert_eq!(s.on_check(id, 0, outcome(true), now), None);
    assert_eq!(s.on_check(id, 0, outcome(true), now), Some(ServerState::Up));
    assert_eq!(weights(&s)[0].1, 100);
    // Unknown service or index: nothing happens.
    assert_eq!(s.on_check(id, 9, outcome(false), now), None);
}

#[test]
fn a_service_without_live_backends_has_no_table_and_gone_services_are_dropped() {
    let now = SystemTime::now();
    let mut s = State::new(
        &config("{ addr = \"10.0.0.11\", weight = 0 }"),
        now,
        zero_mac,
    );
    assert_eq!(s.services[0].backends[0].status().0, "draining");
    assert!(s.build().unwrap()[0].1.table.is_none());
    let other = config(A).services[0].clone();
    let mut moved = config(A);
    moved.services[0].vip = "10.0.0.101:80".parse().unwrap();
    s.reconcile(&moved, now, zero_mac);
    assert_eq!(s.services.len(), 1);
    assert_ne!(s.services[0].config.vip, other.vip);
    assert_eq!(s.services[0].backends.len(), 1);
}

/// (weight, alive) of every built backend of the first service.
fn built(s: &State) -> Vec<(u32, bool)> {
    let services = s.build().unwrap();
    services[0]
        .1
        .backends
        .iter()
        .map(|b| (b.weight, b.alive))
        .collect()
}

#[test]
fn down_or_unresolved_backends_are_dead_drained_ones_stay_alive() {
    let now = SystemTime::now();
    let zero_b = "{ addr = \"10.0.0.12\", weight = 0 }";
    let mut s = State::new(&config(&format!("{A}, {zero_b}, {C}")), now, zero_mac);
    assert_eq!(built(&s), [(100, true), (0, true), (100, true)]);
    let id = s.services[0].id();
    // A down by its health checks: weight 0 and dead.
    s.on_check(id, 0, outcome(false), now);
    assert_eq!(built(&s)[0], (100, true), "one failure of fall = 2");
    assert_eq!(
        s.on_check(id, 0, outcome(false), now),
        Some(ServerState::Down)
    );
    assert_eq!(built(&s), [(0, false), (0, true), (100, true)]);
    // C loses its MAC (no ARP reply): dead too.
    assert!(s.set_mac(id, 2, None));
    assert_eq!(built(&s), [(0, false), (0, true), (0, false)]);
    // Removed from the config (draining until restart) with a MAC and up: alive.
    assert!(s.set_mac(id, 2, Some([2, 0, 0, 0, 0, 13])));
    s.reconcile(&config(&format!("{A}, {zero_b}")), now, zero_mac);
    assert_eq!(s.services[0].backends[2].status().0, "draining");
    assert_eq!(built(&s), [(0, false), (0, true), (0, true)]);
    // A back up: alive again with its weight.
    s.on_check(id, 0, outcome(true), now);
    s.on_check(id, 0, outcome(true), now);
    assert_eq!(built(&s), [(100, true), (0, true), (0, true)]);
}

#[test]
fn a_node_that_joins_the_cluster_takes_flows_only_after_rise_checks() {
    let now = SystemTime::now();
    let cluster = |backends: &str| {
        let mut c = config(backends);
        c.services[0].cluster = true;
        c
    };
    let mut s = State::new(&cluster(A), now, zero_mac);
    assert_eq!(weights(&s), [("10.0.0.11:80".into(), 100)], "at start: up");
    // C joins (the observer's reconcile): down, no weight, until 2 checks pass.
    s.reconcile_joining(&cluster(&format!("{A}, {C}")), now, zero_mac);
    assert_eq!(
        weights(&s),
        [("10.0.0.11:80".into(), 100), ("10.0.0.13:80".into(), 0)]
    );
    assert_eq!(
        s.services[0].backends[1].status(),
        ("down", "joined: not checked yet".into())
    );
    let id = s.services[0].id();
    assert_eq!(s.on_check(id, 1, outcome(true), now), None);
    assert_eq!(s.on_check(id, 1, outcome(true), now), Some(ServerState::Up));
    assert_eq!(
        weights(&s),
        [("10.0.0.11:80".into(), 100), ("10.0.0.13:80".into(), 100)]
    );
    // While it joins it is alive (a peer's synced flows on it are kept), with no weight;
    // failing `fall` (2) checks in a row makes it dead.
    let mut j = State::new(&cluster(A), now, zero_mac);
    j.reconcile_joining(&cluster(&format!("{A}, {C}")), now, zero_mac);
    assert_eq!(built(&j), [(100, true), (0, true)]);
    assert_eq!(j.on_check(id, 1, outcome(false), now), None);
    assert_eq!(built(&j), [(100, true), (0, true)]);
    assert_eq!(
        j.on_check(id, 1, outcome(false), now),
        Some(ServerState::Down)
    );
    assert_eq!(built(&j), [(100, true), (0, false)]);
    // Without checks (`kind = "none"`) nothing would ever raise it: up at once.
    let unchecked = |backends: &str| {
        let mut c = cluster(backends);
        c.services[0].health.kind = crate::config::CheckKind::None;
        c
    };
    let mut n = State::new(&unchecked(A), now, zero_mac);
    n.reconcile_joining(&unchecked(&format!("{A}, {C}")), now, zero_mac);
    assert_eq!(
        weights(&n),
        [("10.0.0.11:80".into(), 100), ("10.0.0.13:80".into(), 100)]
    );
    // A backend a reload adds to a listed service starts up, as at start (HAProxy's way).
    let mut listed = State::new(&config(A), now, zero_mac);
    listed.reconcile_joining(&config(&format!("{A}, {C}")), now, zero_mac);
    assert_eq!(
        weights(&listed),
        [("10.0.0.11:80".into(), 100), ("10.0.0.13:80".into(), 100)]
    );
}
