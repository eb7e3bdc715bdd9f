//! Connection floods: `limits.max_connections` bounds the node's client connections (at the
//! limit it stops accepting until one closes; the kernel's queue holds the next client), and an
//! accept that fails with `EMFILE` backs off — low CPU, one log line per run of failures,
//! counted in `accept_errors` — on the client, admin and peer listeners alike, and the node
//! serves again once descriptors are free.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::strict;
use crate::support::*;
use crate::{connect, cpu_ticks, node, node_with_nofile, origin};

const GET_CLOSE: &[u8] =
    b"GET /obj/limit HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n";

#[test]
fn at_max_connections_the_node_stops_accepting_until_one_closes() {
    let origin = origin();
    let node = node(&[origin.addr], "[limits]\nmax_connections = 4\n");
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(node.addr).expect("connect"))
        .collect();
    assert!(wait_until(SOON, || node.stats()["connections_open"] == 4));
    // The fifth is queued by the kernel, not served.
    let mut fifth = connect(node.addr, Duration::from_millis(800));
    fifth.get_mut().write_all(GET_CLOSE).expect("write");
    let early = strict::read(&mut fifth, false);
    assert!(
        early
            .as_ref()
            .is_err_and(|e| e.contains("os error 11") || e.contains("timed out")),
        "served past max_connections: {early:?}"
    );
    assert_eq!(node.stats()["connections_open"], 4);
    assert!(node.counter("connection_limit_waits") >= 1);
    // One closes: the fifth is accepted and answered.
    drop(idle);
    fifth
        .get_ref()
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("timeout");
    let resp = strict::read_final(&mut fifth, false).expect("answered once below the limit");
    assert_eq!(resp.status, 200);
    strict::expect_closed(&mut fifth).expect("closed");
}

const SOON: Duration = Duration::from_secs(5);

#[test]
fn emfile_on_accept_backs_off_and_the_node_recovers() {
    let origin = origin();
    let node = node_with_nofile(&[origin.addr], "", 64);
    let pid = node.proc.child.id();
    // More connections than the node has descriptors: accepts fail with EMFILE.
    let flood: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(node.addr).expect("connect"))
        .collect();
    // A client of the admin listener waits in its queue too.
    let admin = TcpStream::connect(node.admin).expect("connect admin");
    thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    let start = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(pid) - before;
    let ticks_per_sec = 100; // USER_HZ on Linux
    let share = used as f64 / (start.elapsed().as_secs_f64() * ticks_per_sec as f64);
    assert!(
        share < 0.2,
        "the node used {:.0}% of a core while out of descriptors",
        share * 100.0
    );
    // One warning per listener's run of failures, not one per attempt.
    let warnings = node
        .proc
        .lines
        .try_iter()
        .filter(|l| l.contains("accept failed"))
        .count();
    assert!((1..=4).contains(&warnings), "{warnings} accept warnings");
    drop(flood);
    drop(admin);
    let mut served = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served && Instant::now() < deadline {
        let mut r = connect(node.addr, Duration::from_secs(2));
        if r.get_mut().write_all(GET_CLOSE).is_ok() {
            served = strict::read_final(&mut r, false).is_ok_and(|resp| resp.status == 200);
        }
        if !served {
            thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        served,
        "the node did not serve again once descriptors were free"
    );
    assert!(node.counter("accept_errors") >= 1);
}

/// Descriptors the flooded nodes may open, and the clients that flood them: more than it has.
const NOFILE: u32 = 64;
const FLOOD: usize = 100;
/// The share of a core a node out of descriptors may use: it idles near 0 while it backs
/// off; retrying at once measured 25-65% here (two shared cores).
const MAX_SHARE: f64 = 0.1;

/// Flood `target` with connections that send nothing, so that the node runs out of
/// descriptors; its share of a core over 1.5 s meanwhile, and its `accept failed` warnings
/// for `listener`. The flood is returned: it lasts until dropped.
fn flood(node: &Node, target: SocketAddr, listener: &str) -> (Vec<TcpStream>, f64, usize) {
    let pid = node.proc.child.id();
    let flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| TcpStream::connect(target).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    let start = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(pid) - before;
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let share = used as f64 / (start.elapsed().as_secs_f64() * ticks_per_sec);
    let warnings = node
        .proc
        .lines
        .try_iter()
        .filter(|l| l.contains("accept failed") && l.contains(listener))
        .count();
    (flood, share, warnings)
}

/// The admin listener answers `/stats.json` again (within 10 s).
fn admin_serves(admin: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut r = connect(admin, Duration::from_secs(2));
        let ask = b"GET /stats.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if r.get_mut().write_all(ask).is_ok()
            && strict::read_final(&mut r, false).is_ok_and(|resp| resp.status == 200)
        {
            return true;
        }
        thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn emfile_on_the_admin_listener_backs_off_is_counted_and_it_serves_again() {
    let origin = origin();
    let node = node_with_nofile(&[origin.addr], "", NOFILE);
    // Accepted admin connections stay open (the admin has no idle timeout): the rest of the
    // flood finds the process out of descriptors.
    let (flood, share, warnings) = flood(&node, node.admin, "admin");
    assert!(
        share < MAX_SHARE,
        "the node used {:.0}% of a core while its admin listener was out of descriptors",
        share * 100.0
    );
    // One warning per run of failures, not one per attempt (hundreds in 1.5 s otherwise).
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} admin accept warnings"
    );
    drop(flood);
    assert!(
        admin_serves(node.admin),
        "the admin listener did not serve again"
    );
    assert!(
        node.counter("accept_errors") >= 1,
        "admin accept failures not counted"
    );
}

/// The peer listener of the test below: fixed, as `peer_listen` must be (it is advertised),
/// on an address of its own.
const PEER: &str = "127.0.30.3:27651";

#[test]
fn emfile_on_the_peer_listener_backs_off_is_counted_and_it_serves_again() {
    let origin = origin();
    let cluster = format!(
        "[cluster]\npeer_listen = \"{PEER}\"\ngossip_listen = \"127.0.30.3:27652\"\nseeds = []\n"
    );
    let node = node_with_nofile(&[origin.addr], &cluster, NOFILE);
    let peer: SocketAddr = PEER.parse().expect("peer addr");
    let (flood, share, warnings) = flood(&node, peer, "peer");
    assert!(
        share < MAX_SHARE,
        "the node used {:.0}% of a core while its peer listener was out of descriptors",
        share * 100.0
    );
    // One per run of failures: a run ends when a silent peer's handshake times out (2 s) and
    // frees a descriptor, so a few runs at most in the time measured.
    assert!(
        (1..=4).contains(&warnings),
        "{warnings} peer accept warnings"
    );
    drop(flood);
    // Serving again: a silent peer connection is accepted and, its handshake never coming,
    // closed by the node (which it can only do once it has accepted it).
    let mut silent = connect(peer, Duration::from_secs(10));
    strict::expect_closed(&mut silent).expect("the peer listener accepts again");
    assert!(
        node.counter("accept_errors") >= 1,
        "peer accept failures not counted"
    );
}
