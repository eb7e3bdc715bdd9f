//! Forwarding: every method with its body (RFC 9110 §9), streamed bodies both ways, hop-by-hop
//! fields dropped in both directions and `Via` added (RFC 9110 §7.6.1, §7.6.3), `Cache-Status`
//! (RFC 9211) on every proxied response.

use crate::support::*;
use crate::{head_has, head_value};

#[test]
fn methods_with_bodies_are_forwarded_with_the_whole_body() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let body = vec![b'x'; 100 * 1024];
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        let r = request(node.addr, m, "/echo/m?k=1", &[], &body);
        assert_eq!(r.status, 200, "{m}");
        assert_eq!(r.text(), format!("method {m} path /echo/m body 102400\n"));
        assert_eq!(r.cache_status(), "a; fwd=method");
    }
    assert_eq!(origin.count("/echo/m"), 4);
    assert_eq!(node.counter("passed"), 4);
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn extension_method_is_forwarded() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = request(node.addr, "M-SEARCH", "/ssdp", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "method M-SEARCH path /ssdp body 0\n");
    assert_eq!(r.cache_status(), "a; fwd=method");
    assert_eq!(origin.count("/ssdp"), 1);
}

#[test]
fn large_uncacheable_response_is_streamed_intact() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = get(node.addr, "/obj/big?size=5000000&cc=no-store", &[]);
    assert_eq!(r.status, 200);
    assert!(!r.truncated);
    assert_eq!(r.body.len(), 5_000_000);
    assert!(r.body == object_bytes("big", 5_000_000), "body differs");
    assert_eq!(r.cache_status(), "a; fwd=miss");
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn chunked_request_body_is_forwarded_intact() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let mut raw = b"POST /up HTTP/1.1\r\nHost: test.example\r\nTransfer-Encoding: chunked\r\n\
                    Connection: close\r\n\r\n"
        .to_vec();
    for size in [10_000usize, 5_000, 1] {
        raw.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        raw.extend(std::iter::repeat_n(b'c', size));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = raw_request(node.addr, &raw, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "method POST path /up body 15001\n");
    assert_eq!(origin.count("/up"), 1);
}

// ---- hop-by-hop fields, Via, Cache-Status ----

#[test]
fn connection_named_request_fields_are_not_forwarded() {
    let origin = RecordingOrigin::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\
          Connection: close\r\n\r\nok",
    );
    let node = Node::start(&[origin.addr], "");
    let headers = [
        ("Connection", "X-Foo"),
        ("X-Foo", "1"),
        ("Keep-Alive", "timeout=5"),
        ("X-Bar", "2"),
        ("Via", "1.0 fred"),
    ];
    let r = get(node.addr, "/hop", &headers);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
    let heads = origin.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = &heads[0];
    assert!(head.starts_with("GET /hop HTTP/1.1\r\n"), "{head}");
    assert!(!head_has(head, "x-foo"), "X-Foo forwarded: {head}");
    assert!(
        !head_has(head, "keep-alive"),
        "Keep-Alive forwarded: {head}"
    );
    assert_eq!(head_value(head, "x-bar"), Some("2"), "{head}");
    assert_eq!(head_value(head, "host"), Some("test.example"), "{head}");
    assert_eq!(
        head_value(head, "via"),
        Some("1.0 fred, 1.1 a (strait)"),
        "{head}"
    );
}

#[test]
fn connection_named_response_fields_are_not_passed_to_the_client() {
    let origin = RecordingOrigin::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\n\
          Connection: X-Secret, close\r\nX-Secret: 1\r\nKeep-Alive: timeout=9\r\n\
          X-Kept: 2\r\n\r\nok",
    );
    let node = Node::start(&[origin.addr], "");
    let miss = get(node.addr, "/hop", &[]);
    let hit = get(node.addr, "/hop", &[]);
    assert_eq!(miss.cache_status(), "a; fwd=miss; stored");
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    for r in [&miss, &hit] {
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "ok");
        assert_eq!(r.header("x-secret"), None, "{:?}", r.headers);
        assert_eq!(r.header("keep-alive"), None, "{:?}", r.headers);
        assert_eq!(r.header("x-kept"), Some("2"));
        assert_eq!(r.header("via"), Some("1.1 a (strait)"));
    }
    assert_eq!(origin.heads().len(), 1);
}

#[test]
fn via_and_cache_status_on_every_proxied_response() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let miss = get(node.addr, "/obj/v", &[]);
    let hit = get(node.addr, "/obj/v", &[]);
    let head = request(node.addr, "HEAD", "/obj/h", &[], b"");
    let post = request(node.addr, "POST", "/obj/p", &[], b"abc");
    let absent = get(node.addr, "/nowhere", &[]);
    let no_cache = get(node.addr, "/obj/nc", &[("Cache-Control", "no-cache")]);
    for (r, status) in [
        (&miss, "a; fwd=miss; stored"),
        (&head, "a; fwd=miss"),
        (&post, "a; fwd=method"),
        (&absent, "a; fwd=miss"),
        (&no_cache, "a; fwd=request; stored"),
    ] {
        assert_eq!(r.cache_status(), status);
        assert_eq!(r.header("via"), Some("1.1 a (strait)"), "{status}");
    }
    assert_eq!(absent.status, 404);
    assert_eq!(hit.header("via"), Some("1.1 a (strait)"));
    let ttl: i64 = hit
        .cache_status()
        .strip_prefix("a; hit; ttl=")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("hit status {:?}", hit.cache_status()));
    assert!((3598..=3600).contains(&ttl), "ttl {ttl}");
    assert!(hit.body == object_bytes("v", 1024));
    assert_eq!(origin.count("/obj/v"), 1);
}
