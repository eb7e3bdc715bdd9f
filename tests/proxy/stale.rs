//! Serving stale responses (RFC 5861): stale-while-revalidate answers at once and refreshes once
//! in the background; stale-if-error answers when the origin is down or answers 5xx; without
//! it the error is passed on.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::{head_value, SOON};

/// Time for a `max-age=1` response to become stale (Date has a one-second resolution).
const STALE_AFTER: Duration = Duration::from_millis(2100);

#[test]
fn stale_while_revalidate_serves_at_once_and_refreshes_in_background() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/swr?delay=2000&cc=max-age%3D1%2C+stale-while-revalidate%3D30";
    assert_eq!(
        get(node.addr, path, &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    thread::sleep(STALE_AFTER);
    let start = Instant::now();
    let r = get(node.addr, path, &[]);
    // The origin takes 2 s; a stale answer served at once does not wait for it. The bound is
    // half that: far above a served-at-once answer on a busy machine, far below one that waited.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.status, 200);
    assert!(r.body == object_bytes("swr", 1024));
    assert!(
        r.cache_status().starts_with("a; hit; fwd=stale; ttl=-"),
        "{}",
        r.cache_status()
    );
    assert!(wait_until(SOON, || origin.count("/obj/swr") == 2));
    assert!(wait_until(SOON, || node.counter("fills_in_flight") == 0));
    assert_eq!(origin.count("/obj/swr"), 2);
    assert_eq!(node.counter("revalidated"), 1);
    assert_eq!(node.counter("stale_served"), 1);
}

#[test]
fn many_stale_requests_trigger_one_background_refresh() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/swr1?delay=800&cc=max-age%3D1%2C+stale-while-revalidate%3D30";
    assert_eq!(get(node.addr, path, &[]).status, 200);
    thread::sleep(STALE_AFTER);
    for _ in 0..5 {
        let r = get(node.addr, path, &[]);
        assert!(
            r.cache_status().contains("fwd=stale"),
            "{}",
            r.cache_status()
        );
        assert!(r.body == object_bytes("swr1", 1024));
    }
    assert!(wait_until(SOON, || node.counter("fills_in_flight") == 0));
    assert_eq!(origin.count("/obj/swr1"), 2);
    assert_eq!(node.counter("stale_served"), 5);
}

#[test]
fn stale_if_error_serves_the_stale_object_when_the_origin_is_down() {
    let mut origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/sie?cc=max-age%3D1%2C+stale-if-error%3D60";
    assert_eq!(
        get(node.addr, path, &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    origin.proc.child.kill().expect("kill origin");
    origin.proc.child.wait().expect("reap origin");
    thread::sleep(STALE_AFTER);
    let r = get(node.addr, path, &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == object_bytes("sie", 1024));
    let cs = r.cache_status();
    assert!(
        cs.starts_with("a; hit; fwd=stale; fwd-status=502; ttl=-"),
        "{cs}"
    );
    assert!(cs.ends_with("; detail=stale-if-error"), "{cs}");
    assert_eq!(node.counter("stale_served"), 1);
}

#[test]
fn stale_if_error_serves_the_stale_object_when_the_origin_answers_503() {
    let origin = RecordingOrigin::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"v1\"\r\n\
          Cache-Control: max-age=1, stale-if-error=60\r\nConnection: close\r\n\r\nhello",
    );
    let node = Node::start(&[origin.addr], "");
    assert_eq!(
        get(node.addr, "/sie", &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    origin.set_reply(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\
          \r\nerror",
    );
    thread::sleep(STALE_AFTER);
    let r = get(node.addr, "/sie", &[]);
    assert_eq!((r.status, r.text()), (200, "hello".to_string()));
    let cs = r.cache_status();
    assert!(
        cs.starts_with("a; hit; fwd=stale; fwd-status=503; ttl=-"),
        "{cs}"
    );
    assert!(cs.ends_with("; detail=stale-if-error"), "{cs}");
    let heads = origin.heads();
    assert_eq!(heads.len(), 2);
    assert_eq!(head_value(&heads[1], "if-none-match"), Some("\"v1\""));
}

#[test]
fn without_stale_if_error_a_stale_object_is_not_served_when_the_origin_is_down() {
    let mut origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/nosie?cc=max-age%3D1";
    assert_eq!(
        get(node.addr, path, &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    origin.proc.child.kill().expect("kill origin");
    origin.proc.child.wait().expect("reap origin");
    thread::sleep(STALE_AFTER);
    let r = get(node.addr, path, &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.body != object_bytes("nosie", 1024));
    assert!(
        r.cache_status().starts_with("a; fwd="),
        "{}",
        r.cache_status()
    );
    assert!(r.cache_status().ends_with("; detail=origin-unreachable"));
    assert_eq!(node.counter("stale_served"), 0);
}

#[test]

fn a_failed_revalidation_reports_fwd_stale() {
    let mut origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/revfail?cc=max-age%3D1";
    assert_eq!(get(node.addr, path, &[]).status, 200);
    origin.proc.child.kill().expect("kill origin");
    origin.proc.child.wait().expect("reap origin");
    thread::sleep(STALE_AFTER);
    let r = get(node.addr, path, &[]);
    assert_eq!(r.status, 502);
    // RFC 9211 §2.2: a stored response was found but was stale.
    assert_eq!(r.cache_status(), "a; fwd=stale; detail=origin-unreachable");
}
