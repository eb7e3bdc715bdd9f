//! Tests of [`MemConnTable::install`]: flows synced from the peer director in the model's
//! table, and what the packets that follow do with them (`packet::process`).

use super::*;
use crate::packet::conntable::{synced_seen, Placed, Was};
use crate::packet::testutil::{backend, hops, services, Spec, CLIENT, DIRECTOR, VIP};
use crate::packet::{process, Action, Ingress};

fn flow(sport: u16, dport: u16) -> FiveTuple {
    FiveTuple {
        src: CLIENT,
        dst: VIP,
        sport,
        dport,
        proto: super::super::parse::PROTO_TCP,
    }
}

/// A backend index other than the one the service's table picks for `f`.
fn not_the_pick(services: &Services, f: &FiveTuple) -> u32 {
    let service = services.get(&ServiceKey::of(f));
    let table = service.and_then(|s| s.table.as_ref()).unwrap();
    (table.lookup(FlowHash::FiveTuple.of(f)).unwrap() + 1) % 3
}

/// The fixture's services and an empty table whose clock is `now`.
fn table_at(now: u32) -> (Services, MemConnTable) {
    let mut t = MemConnTable::new(1024);
    t.set_now(now);
    (services(), t)
}

fn run(t: &mut MemConnTable, services: &Services, spec: &Spec) -> Action {
    process(
        &spec.build(),
        Ingress::CLIENT,
        services,
        t,
        &DIRECTOR,
        &hops(),
    )
}

#[test]
fn a_synced_entry_is_followed_then_recorded_here() {
    let (svcs, mut t) = table_at(1000);
    let f = flow(5000, 80);
    let b = not_the_pick(&svcs, &f);
    let seen = synced_seen(1000, 10, false);
    let (placed, reply) = t.install(&f, b, None, seen, true);
    assert!(
        matches!(
            placed,
            Placed::Written {
                was: Was::Empty,
                ..
            }
        ),
        "{placed:?}"
    );
    assert_eq!((reply, t.len()), (None, 1));
    let live = t.live_forward_entries(1000);
    assert_eq!(live.len(), 1);
    let e = live[0];
    assert_eq!((e.flow, e.backend, e.idle), (f, b, 10));
    assert!(e.synced && e.half_open && !e.closing, "{e:?}");
    // Its next segment (no SYN) goes to the synced backend, not the table's pick, and the
    // entry is this table's own from then on, established.
    let Action::Tx(out) = run(&mut t, &svcs, &Spec::tcp(5000, 80)) else {
        panic!("forwarded");
    };
    assert_eq!(out[0..6], backend(b as u8 + 1, 0).mac);
    let e = t.live_forward_entries(1000)[0];
    assert!(!e.synced && !e.half_open, "{e:?}");
    assert_eq!(e.backend, b);
}

#[test]
fn a_later_packet_here_wins_over_the_record() {
    let (svcs, mut t) = table_at(2000);
    let f = flow(5001, 80);
    assert!(matches!(
        run(&mut t, &svcs, &Spec::syn(5001, 80)),
        Action::Tx(_)
    ));
    let here = t.peek(&f).unwrap();
    let other = (here + 1) % 3;
    // Seen at 2000 here; the peer's last packet 2 ticks before: kept.
    let (placed, _) = t.install(&f, other, None, synced_seen(2000, 2, false), false);
    assert!(matches!(placed, Placed::Kept(_)), "{placed:?}");
    assert_eq!(t.peek(&f), Some(here));
    // The peer saw it later (this table's clock moved on): replaced, closing.
    t.set_now(2100);
    let (placed, _) = t.install(&f, other, None, synced_seen(2100, 4, true), false);
    assert!(
        matches!(placed, Placed::Written { was: Was::Held, .. }),
        "{placed:?}"
    );
    assert_eq!((t.peek(&f), t.len()), (Some(other), 1));
    let e = t.live_forward_entries(2100)[0];
    assert!(e.synced && e.closing && !e.half_open, "{e:?}");
}

#[test]
fn a_nat_flow_gets_its_reply_entry() {
    let (svcs, mut t) = table_at(0);
    let f = flow(5002, 82);
    let b = not_the_pick(&svcs, &f);
    let target = backend(b as u8 + 1, 0);
    let reply = nat_reply(&f, &target);
    let (placed, r) = t.install(&f, b, Some(reply), 0, false);
    assert!(matches!(placed, Placed::Written { .. }));
    assert!(matches!(r, Some(Placed::Written { .. })), "{r:?}");
    assert_eq!(t.len(), 1, "one forward entry");
    let Action::Redirect(out) = run(&mut t, &svcs, &Spec::tcp(5002, 82)) else {
        panic!("forwarded");
    };
    assert_eq!(out[30..34], target.ip);
    assert_eq!(u16::from_be_bytes([out[36], out[37]]), target.port);
    // The backend's answer goes back from the VIP.
    let answer = Spec {
        src: target.ip,
        dst: CLIENT,
        sport: target.port,
        dport: 5002,
        ..Spec::tcp(0, 0)
    };
    let Action::Redirect(out) = run(&mut t, &svcs, &answer) else {
        panic!("translated back");
    };
    assert_eq!(
        (out[26..30].to_vec(), out[34..36].to_vec()),
        (VIP.to_vec(), vec![0, 82])
    );
}
