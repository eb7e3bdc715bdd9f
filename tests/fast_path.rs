//! The HTTP/1.1 fast path for fresh hits: the same answer as the general path, pipelining, the
//! hand-over of a connection to the general path mid-stream, and draining.

mod support;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{get, object_bytes, read_response, wait_until, Node, Origin, Resp};

fn fill(node: &Node, path: &str) {
    let r = get(node.addr, path, &[]);
    assert_eq!(r.status, 200);
    assert!(wait_until(Duration::from_secs(5), || node
        .counter("stored_objects")
        >= 1));
}

fn without_age(r: &Resp) -> Vec<(String, String)> {
    let mut h: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("age") && !n.eq_ignore_ascii_case("cache-status"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    h.sort();
    h
}

#[test]
fn fast_and_general_paths_give_the_same_hit() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    fill(&node, "/obj/same?size=2000");
    // A plain request takes the fast path; `Pragma: x` (not no-cache) sends the same request
    // through the general path, which must decide the same.
    let fast = get(node.addr, "/obj/same?size=2000", &[]);
    let general = get(node.addr, "/obj/same?size=2000", &[("Pragma", "x")]);
    assert_eq!(fast.status, 200);
    assert_eq!(general.status, 200);
    assert_eq!(fast.body, object_bytes("same", 2000));
    assert_eq!(fast.body, general.body);
    assert_eq!(without_age(&fast), without_age(&general));
    assert!(
        fast.cache_status().starts_with("a; hit; ttl="),
        "{}",
        fast.cache_status()
    );
    assert!(general.cache_status().starts_with("a; hit; ttl="));
    assert!(fast.has("age"));
    assert_eq!(fast.header("connection"), Some("close"));
    assert_eq!(origin.count("/obj/same"), 1);
}

#[test]
fn head_on_the_fast_path_has_the_length_and_no_body() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    fill(&node, "/obj/h?size=777");
    let r = support::request(node.addr, "HEAD", "/obj/h?size=777", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("777"));
    assert!(r.body.is_empty());
    assert!(r.cache_status().starts_with("a; hit"));
}

#[test]
fn pipelined_hits_then_a_miss_are_answered_in_order_on_one_connection() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    fill(&node, "/obj/p1?size=100");
    fill(&node, "/obj/p2?size=40000");
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let reqs = "GET /obj/p1?size=100 HTTP/1.1\r\nHost: test.example\r\n\r\n\
                GET /obj/p2?size=40000 HTTP/1.1\r\nHost: test.example\r\n\r\n\
                GET /obj/p3?size=300 HTTP/1.1\r\nHost: test.example\r\n\r\n\
                GET /obj/p1?size=100 HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n";
    s.write_all(reqs.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let expect = [
        ("p1", 100, "hit"),
        ("p2", 40000, "hit"),
        ("p3", 300, "fwd=miss"),
        ("p1", 100, "hit"),
    ];
    for (name, size, status) in expect {
        let resp = read_response(&mut r, false).expect("a response");
        assert_eq!(resp.status, 200, "{name}");
        assert_eq!(resp.body, object_bytes(name, size), "{name}");
        assert!(
            resp.cache_status().contains(status),
            "{name}: {}",
            resp.cache_status()
        );
    }
    assert!(
        read_response(&mut r, false).is_none(),
        "connection closed after `close`"
    );
    assert_eq!(origin.count("/obj/p1"), 1);
    assert_eq!(origin.count("/obj/p3"), 1);
}

#[test]
fn misses_are_answered_on_the_connection_loop_with_their_framing_and_a_cut_body_ends_it() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // A chunked miss (length unknown until the end), an uncacheable one, then one whose body
    // the origin cuts short: all on one keep-alive connection.
    let reqs = "GET /obj/m1?size=5000&chunked=1 HTTP/1.1\r\nHost: test.example\r\n\r\n\
                GET /obj/m2?size=300&cc=no-store HTTP/1.1\r\nHost: test.example\r\n\r\n\
                GET /obj/m3?size=10000&cut=100 HTTP/1.1\r\nHost: test.example\r\n\r\n\
                GET /obj/m2?size=300 HTTP/1.1\r\nHost: test.example\r\n\r\n";
    s.write_all(reqs.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    for (name, size) in [("m1", 5000), ("m2", 300)] {
        let resp = read_response(&mut r, false).expect("a response");
        assert_eq!(resp.status, 200, "{name}");
        assert_eq!(resp.body, object_bytes(name, size), "{name}");
        assert!(
            resp.cache_status().contains("fwd=miss"),
            "{name}: {}",
            resp.cache_status()
        );
    }
    // The cut body is never complete-looking: the connection ends before its length, and the
    // request pipelined after it is not answered on this connection.
    match read_response(&mut r, false) {
        None => {}
        Some(cut) => assert!(cut.body.len() < 10000, "a cut body read as whole"),
    }
    assert!(
        read_response(&mut r, false).is_none(),
        "the connection ended"
    );
    assert_eq!(node.counter("requests"), 3);
}

#[test]
fn a_request_split_across_packets_is_still_answered() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    fill(&node, "/obj/split?size=10");
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /obj/split?size=10 HTTP/1.1\r\nHo")
        .expect("write");
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"st: test.example\r\nConnection: close\r\n\r\n")
        .expect("write");
    let resp = read_response(&mut BufReader::new(s), false).expect("a response");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, object_bytes("split", 10));
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_and_exits() {
    let origin = Origin::start();
    let mut node = Node::start(&[origin.addr], "");
    fill(&node, "/obj/d?size=10");
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.write_all(b"GET /obj/d?size=10 HTTP/1.1\r\nHost: test.example\r\n\r\n")
        .expect("write");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    assert_eq!(read_response(&mut r, false).expect("response").status, 200);
    let t0 = Instant::now();
    node.proc.signal("TERM");
    let exited = wait_until(Duration::from_secs(5), || {
        matches!(node.proc.child.try_wait(), Ok(Some(_)))
    });
    assert!(
        exited,
        "node did not exit on SIGTERM with an idle keep-alive connection"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        read_response(&mut r, false).is_none(),
        "idle connection closed"
    );
}
