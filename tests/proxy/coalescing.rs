//! Request coalescing: concurrent misses of one key share one origin request; a request joining
//! a fill midway still gets the whole body; an uncacheable answer releases the waiters at once;
//! the wait is bounded by `cache.coalesce_timeout`.

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::SOON;

/// Run `n` GETs of `path` at once (released together by a barrier); responses in thread order.
fn concurrent_gets(addr: SocketAddr, path: &str, n: usize) -> Vec<Resp> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, path) = (Arc::clone(&barrier), path.to_string());
            thread::spawn(move || {
                barrier.wait();
                get(addr, &path, &[])
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect()
}

#[test]
fn concurrent_misses_of_one_key_make_one_origin_request() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let resps = concurrent_gets(node.addr, "/obj/co?delay=300", 20);
    assert_eq!(origin.count("/obj/co"), 1);
    let want = object_bytes("co", 1024);
    let (mut leaders, mut collapsed, mut hits) = (0, 0, 0);
    for r in &resps {
        assert_eq!(r.status, 200);
        assert!(r.body == want && !r.truncated, "body differs");
        match r.cache_status() {
            "a; fwd=miss; stored" => leaders += 1,
            "a; fwd=miss; stored; collapsed" => collapsed += 1,
            s if s.starts_with("a; hit; ttl=") => hits += 1,
            s => panic!("unexpected Cache-Status {s:?}"),
        }
    }
    assert_eq!((leaders, collapsed + hits), (1, 19));
    assert!(collapsed >= 1);
    assert_eq!(node.counter("coalesced"), collapsed);
}

/// Send a GET on a new connection, read its head and wait for the first body bytes; returns
/// a reader that yields the whole response again (head included) for `read_response`.
fn get_until_first_body_bytes(addr: SocketAddr, path: &str) -> impl BufRead {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let mut head = Vec::new();
    loop {
        let n = r.read_until(b'\n', &mut head).expect("head");
        assert!(n > 0, "closed before the head");
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    assert!(!r.fill_buf().expect("first body bytes").is_empty());
    BufReader::new(Cursor::new(head).chain(r))
}

#[test]
fn a_request_joining_a_fill_midway_gets_the_whole_body() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/rw?chunked=1&chunk_delay=100&size=65536";
    let mut first = get_until_first_body_bytes(node.addr, path);
    let second = get(node.addr, path, &[]);
    let first = read_response(&mut first, false).expect("first response");
    let want = object_bytes("rw", 65536);
    for r in [&first, &second] {
        assert_eq!(r.status, 200);
        assert!(
            !r.truncated && r.body == want,
            "body differs: {} bytes",
            r.body.len()
        );
    }
    assert_eq!(first.cache_status(), "a; fwd=miss; stored");
    assert_eq!(second.cache_status(), "a; fwd=miss; stored; collapsed");
    assert_eq!(origin.count("/obj/rw"), 1);
}

#[test]
fn a_fill_goes_on_when_its_first_client_leaves() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/gone?chunked=1&chunk_delay=50&size=65536";
    drop(get_until_first_body_bytes(node.addr, path));
    assert!(wait_until(SOON, || node.counter("fills_in_flight") == 0));
    let r = get(node.addr, path, &[]);
    assert!(
        r.cache_status().starts_with("a; hit; ttl="),
        "{}",
        r.cache_status()
    );
    assert!(r.body == object_bytes("gone", 65536), "body differs");
    assert_eq!(origin.count("/obj/gone"), 1);
}

#[test]
fn an_uncacheable_response_releases_the_waiters_at_once() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let start = Instant::now();
    let resps = concurrent_gets(node.addr, "/obj/ns?cc=no-store&delay=300", 20);
    let took = start.elapsed();
    let want = object_bytes("ns", 1024);
    for r in &resps {
        assert_eq!(r.status, 200);
        assert!(r.body == want && !r.truncated, "body differs");
        assert_eq!(r.cache_status(), "a; fwd=miss");
    }
    assert_eq!(origin.count("/obj/ns"), 20);
    // Serialised it would take 20 x 300 ms; released at once it takes about 2 x 300 ms.
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn a_coalesced_request_stops_waiting_after_coalesce_timeout() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "[cache]\ncoalesce_timeout = \"200ms\"\n");
    let path = "/obj/slow?delay=1500";
    let addr = node.addr;
    let leader = thread::spawn(move || get(addr, path, &[]));
    assert!(wait_until(SOON, || origin.count("/obj/slow") == 1));
    let started = Instant::now();
    let follower = thread::spawn(move || get(addr, path, &[]));
    // The follower goes forward itself after 200 ms, long before the leader's 1.5 s answer.
    assert!(wait_until(SOON, || origin.count("/obj/slow") == 2));
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    let want = object_bytes("slow", 1024);
    for (r, cs) in [
        (leader.join().expect("leader"), "a; fwd=miss; stored"),
        (follower.join().expect("follower"), "a; fwd=miss; stored"),
    ] {
        assert_eq!(r.status, 200);
        assert!(r.body == want, "body differs");
        assert_eq!(r.cache_status(), cs);
    }
    assert_eq!(origin.count("/obj/slow"), 2);
    assert_eq!(node.counter("coalesced"), 1);
}
