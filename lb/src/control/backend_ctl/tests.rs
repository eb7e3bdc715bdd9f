//! Tests of runtime control on the director's state: naming a backend, drain versus maint in
//! the built services, the reload rule, the config view.

use std::time::SystemTime;

use super::*;
use crate::packet::service::Mode;

fn config(backends: &str) -> DirectorConfig {
    let text = format!(
        "[director]\nid = \"d\"\ninterface = \"lo\"\ntable_size = 251\n\
         [[service]]\nvip = \"10.0.0.100:80\"\nmode = \"dr\"\nbackends = [{backends}]\n"
    );
    parse(&text).unwrap_or_else(|d| panic!("{d:?}"))
}

fn zero_mac(_: Mode) -> Option<[u8; 6]> {
    Some([0; 6])
}

const TWO: &str = "{ addr = \"10.0.0.11\" }, { addr = \"10.0.0.12\", weight = 50 }";

fn vip() -> SocketAddrV4 {
    "10.0.0.100:80".parse().unwrap()
}

/// (weight, alive) of every backend of the built service.
fn built(s: &State) -> Vec<(u32, bool)> {
    s.build().unwrap()[0]
        .1
        .backends
        .iter()
        .map(|b| (b.weight, b.alive))
        .collect()
}

#[test]
fn drain_keeps_flows_maint_moves_them_ready_restores() {
    let mut s = State::new(&config(TWO), SystemTime::now(), zero_mac);
    let drain = Command::State(AdminState::Drain);
    let c = s.control(vip(), None, "10.0.0.11:80", drain).unwrap();
    assert_eq!(
        (c.before.state, c.after.state),
        (AdminState::Ready, AdminState::Drain)
    );
    assert_eq!(c.file_weight, 100);
    // Drained: out of the table, still alive (established flows keep it).
    assert_eq!(built(&s), [(0, true), (50, true)]);
    assert_eq!(s.services[0].backends[0].status().0, "draining");
    s.control(vip(), None, "10.0.0.11", Command::State(AdminState::Maint))
        .unwrap();
    // Maint: out of the table and not alive (its flows move on their next packet).
    assert_eq!(built(&s), [(0, false), (50, true)]);
    assert_eq!(s.services[0].backends[0].status().0, "maint");
    s.control(
        vip(),
        Some(Proto::Tcp),
        "10.0.0.11",
        Command::State(AdminState::Ready),
    )
    .unwrap();
    assert_eq!(built(&s), [(100, true), (50, true)]);
    let table = s.build().unwrap()[0].1.table.clone().unwrap();
    assert!(
        table.shares().iter().all(|&n| n > 0),
        "both in the table again"
    );
}

#[test]
fn a_weight_override_survives_a_reload_that_keeps_the_files_weight() {
    let now = SystemTime::now();
    let mut s = State::new(&config(TWO), now, zero_mac);
    s.control(vip(), None, "10.0.0.12", Command::Weight(7))
        .unwrap();
    s.control(vip(), None, "10.0.0.11", Command::State(AdminState::Drain))
        .unwrap();
    assert_eq!(built(&s), [(0, true), (7, true)]);
    // Same weights in the file: both overrides stay.
    s.reconcile(&config(TWO), now, zero_mac);
    assert_eq!(built(&s), [(0, true), (7, true)]);
    // 10.0.0.12's weight changed in the file: its override is cleared; 10.0.0.11's stays.
    s.reconcile(
        &config("{ addr = \"10.0.0.11\" }, { addr = \"10.0.0.12\", weight = 60 }"),
        now,
        zero_mac,
    );
    assert_eq!(built(&s), [(0, true), (60, true)]);
    assert!(!s.services[0].backends[1].admin.is_set());
}

#[test]
fn unknown_or_ambiguous_names_are_refused_with_their_reason() {
    let mut s = State::new(&config(TWO), SystemTime::now(), zero_mac);
    let cmd = Command::State(AdminState::Drain);
    let other: SocketAddrV4 = "10.0.0.100:81".parse().unwrap();
    assert_eq!(
        s.control(other, None, "10.0.0.11", cmd),
        Err(Refused::Unknown("no service 10.0.0.100:81".into()))
    );
    assert_eq!(
        s.control(vip(), None, "10.0.0.13", cmd),
        Err(Refused::Unknown(
            "service 10.0.0.100:80 has no backend 10.0.0.13".into()
        ))
    );
    assert!(matches!(
        s.control(vip(), None, "host-a", cmd),
        Err(Refused::Bad(_))
    ));
    assert!(matches!(
        s.control(vip(), Some(Proto::Udp), "10.0.0.11", cmd),
        Err(Refused::Unknown(_))
    ));
    assert!(s.overridden().is_empty(), "nothing changed");
}

#[test]
fn the_config_view_is_the_file_then_the_overrides_as_comments() {
    let text = "[director]\nid = \"d\"\n";
    let mut admin = Override::default();
    admin.apply(Command::State(AdminState::Maint));
    let o = [(
        vip(),
        Proto::Tcp,
        "10.0.0.11:80".parse().unwrap(),
        admin,
        100,
    )];
    let view = render_config("d", "/etc/d.toml", text, &o);
    assert!(view.starts_with("# strait director d: the configuration in effect\n"));
    assert!(view.contains("\n[director]\nid = \"d\"\n"), "{view}");
    assert!(
        view.ends_with(
            "# runtime override: service 10.0.0.100:80 tcp backend 10.0.0.11:80: state maint\n"
        ),
        "{view}"
    );
    let parsed: toml::Table = view.parse().unwrap();
    assert_eq!(parsed["director"]["id"].as_str(), Some("d"));
}
