//! Origin failures: unreachable (502), silent past `first_byte_timeout` (504), garbage (502),
//! a body cut short (the client sees it cut, nothing is stored, followers too), and request
//! targets the origin client cannot send.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::SOON;

#[test]

fn options_asterisk_is_not_a_bad_gateway() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = raw_request(
        node.addr,
        b"OPTIONS * HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n",
        false,
    );
    // Forwarded as `OPTIONS *` (RFC 9112 §3.2.4) or answered by the node itself: not a 502.
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    if origin.count("*") == 1 {
        assert_eq!(r.text(), "method OPTIONS path * body 0\n");
    }
    assert_eq!(node.counter("origin_errors"), 0);
}

#[test]
fn an_origin_with_nothing_listening_gives_502() {
    let node = Node::start(&[closed_addr()], "");
    let r = get(node.addr, "/obj/down", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.cache_status(), "a; fwd=miss; detail=origin-unreachable");
    assert_eq!(node.counter("stored_objects"), 0);
    assert_eq!(node.counter("origin_errors"), 1);
}

#[test]
fn an_origin_that_never_answers_gives_504_after_first_byte_timeout() {
    let origin = RecordingOrigin::start(b"");
    let config = node_config(&[origin.addr], "").replacen(
        "[[route]]",
        "first_byte_timeout = \"300ms\"\n\n[[route]]",
        1,
    );
    let node = Node::start_config(&config);
    let start = Instant::now();
    let r = get(node.addr, "/obj/hang", &[]);
    let took = start.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.cache_status(), "a; fwd=miss; detail=origin-timeout");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(origin.heads().len(), 1);
}

#[test]
fn an_origin_answering_garbage_gives_502_and_nothing_is_stored() {
    let origin = RecordingOrigin::start(b"HTTP/1.1 abc\r\n\r\n");
    let node = Node::start(&[origin.addr], "");
    for n in 1..=2 {
        let r = get(node.addr, "/obj/garbage", &[]);
        assert_eq!(r.status, 502, "{}", r.text());
        assert_eq!(r.cache_status(), "a; fwd=miss; detail=origin-broken");
        assert_eq!(origin.heads().len(), n);
    }
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn a_body_cut_short_reaches_the_client_cut_and_is_not_stored() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    for (name, query) in [("cut", ""), ("cutk", "&chunked=1")] {
        let want = object_bytes(name, 20_000);
        for n in 1..=2 {
            let r = get(
                node.addr,
                &format!("/obj/{name}?cut=5000&size=20000{query}"),
                &[],
            );
            assert_eq!(r.status, 200);
            assert!(
                r.truncated,
                "{name}: complete body of {} bytes",
                r.body.len()
            );
            assert!(r.body.len() < 20_000 && want.starts_with(&r.body), "{name}");
            assert!(wait_until(SOON, || node.counter("fills_in_flight") == 0));
            assert_eq!(origin.count(&format!("/obj/{name}")), n);
        }
    }
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn a_coalesced_follower_of_a_cut_body_does_not_get_a_complete_body() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/cutc?cut=500&size=2000&delay=300";
    let addr = node.addr;
    let leader = thread::spawn(move || get(addr, path, &[]));
    assert!(wait_until(SOON, || origin.count("/obj/cutc") == 1));
    let follower = get(addr, path, &[]);
    let leader = leader.join().expect("leader");
    let want = object_bytes("cutc", 2000);
    for r in [&leader, &follower] {
        assert_eq!(r.status, 200);
        assert!(r.truncated, "complete body of {} bytes", r.body.len());
        assert!(r.body.len() < 2000 && want.starts_with(&r.body));
    }
    assert_eq!(follower.cache_status(), "a; fwd=miss; stored; collapsed");
    assert_eq!(origin.count("/obj/cutc"), 1);
    assert!(wait_until(SOON, || node.counter("fills_in_flight") == 0));
    assert_eq!(node.counter("stored_objects"), 0);
}
