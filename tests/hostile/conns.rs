//! Connection floods: `limits.max_connections` bounds the node's client connections (at the
//! limit it stops accepting until one closes; the kernel's queue holds the next client), and an
//! accept that fails with `EMFILE` backs off — low CPU, one log line — and the node serves
//! again once descriptors are free.

use std::io::Write;
use std::net::TcpStream;
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
