//! Serving stored objects: `HEAD` from a stored `GET` (RFC 9110 §9.3.2), single byte ranges
//! (RFC 9110 §14) from the store and on a miss, and `Vary` variants (RFC 9111 §4.1).

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;

use crate::support::{get, object_bytes, read_response, request, IO_TIMEOUT};
use crate::{fill, start};
use strait_topology::origin::variant_key;

#[test]
fn head_is_answered_from_a_stored_get_without_a_body() {
    let (origin, node) = start("");
    fill(&node, "/obj/hd", &[]);
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.write_all(b"HEAD /obj/hd HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut r = BufReader::new(s);
    let head = read_response(&mut r, true).expect("a response");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1024"));
    let etag = strait_topology::origin::etag("hd", 1024);
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert!(
        head.cache_status().starts_with("a; hit; ttl="),
        "{}",
        head.cache_status()
    );
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "{} bytes after a HEAD response",
        rest.len()
    );
    assert_eq!(origin.count("/obj/hd"), 1);
}

/// GET `path` with `Range: range`.
fn ranged(node: &crate::support::Node, path: &str, range: &str) -> crate::support::Resp {
    get(node.addr, path, &[("Range", range)])
}

#[test]
fn byte_ranges_of_a_stored_object_are_served_206() {
    let (origin, node) = start("");
    let all = object_bytes("rg", 1024);
    fill(&node, "/obj/rg", &[]);
    let cases = [
        ("bytes=0-99", "bytes 0-99/1024", 0..100),
        ("bytes=100-", "bytes 100-1023/1024", 100..1024),
        ("bytes=-50", "bytes 974-1023/1024", 974..1024),
    ];
    for (range, content_range, slice) in cases {
        let r = ranged(&node, "/obj/rg", range);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        let len = slice.len().to_string();
        assert_eq!(r.header("content-length"), Some(len.as_str()), "{range}");
        assert_eq!(r.body, all[slice].to_vec(), "{range}");
        assert!(r.cache_status().starts_with("a; hit; ttl="), "{range}");
    }
    assert_eq!(origin.count("/obj/rg"), 1);
}

#[test]
fn range_past_the_end_is_416_with_the_length() {
    let (origin, node) = start("");
    fill(&node, "/obj/r416", &[]);
    let r = ranged(&node, "/obj/r416", "bytes=5000-");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1024"));
    assert!(r.body.is_empty());
    assert_eq!(origin.count("/obj/r416"), 1);
}

#[test]
fn range_on_a_miss_gets_the_right_bytes_and_stores_the_whole_object() {
    let (origin, node) = start("");
    let all = object_bytes("rmiss", 1024);
    let r = fill(&node, "/obj/rmiss", &[("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1024"));
    assert_eq!(r.body, all[100..200].to_vec());
    assert_eq!(r.cache_status(), "a; fwd=miss; stored");
    let full = get(node.addr, "/obj/rmiss", &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, all);
    assert!(
        full.cache_status().starts_with("a; hit; ttl="),
        "{}",
        full.cache_status()
    );
    assert_eq!(origin.count("/obj/rmiss"), 1);
}

#[test]
fn range_past_the_end_on_a_miss_is_416_and_the_object_is_stored() {
    let (origin, node) = start("");
    let r = fill(&node, "/obj/r416m", &[("Range", "bytes=5000-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1024"));
    assert!(r.body.is_empty());
    let full = get(node.addr, "/obj/r416m", &[]);
    assert_eq!(full.body, object_bytes("r416m", 1024));
    assert!(
        full.cache_status().starts_with("a; hit; ttl="),
        "{}",
        full.cache_status()
    );
    assert_eq!(origin.count("/obj/r416m"), 1);
}

#[test]

fn head_with_a_range_is_answered_as_a_plain_head() {
    let (origin, node) = start("");
    fill(&node, "/obj/hdr", &[]);
    let r = request(
        node.addr,
        "HEAD",
        "/obj/hdr",
        &[("Range", "bytes=0-9")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1024"));
    assert_eq!(r.header("content-range"), None);
    assert_eq!(origin.count("/obj/hdr"), 1);
}

#[test]
fn vary_keeps_one_variant_per_selecting_header_value() {
    let (origin, node) = start("");
    let path = "/obj/vy?vary=Accept-Encoding";
    let gzip = [("Accept-Encoding", "gzip")];
    let br = [("Accept-Encoding", "br")];
    let gzip_body = object_bytes(&variant_key("vy", &["gzip"]), 1024);
    let br_body = object_bytes(&variant_key("vy", &["br"]), 1024);
    assert_ne!(gzip_body, br_body);

    let a = fill(&node, path, &gzip);
    assert_eq!(a.cache_status(), "a; fwd=miss; stored");
    assert_eq!(a.body, gzip_body);
    let b = fill(&node, path, &br);
    assert_eq!(b.cache_status(), "a; fwd=vary-miss; stored");
    assert_eq!(b.body, br_body);
    assert_eq!(origin.count("/obj/vy"), 2);

    for _ in 0..2 {
        let a = get(node.addr, path, &gzip);
        assert!(
            a.cache_status().starts_with("a; hit; ttl="),
            "{}",
            a.cache_status()
        );
        assert_eq!(a.body, gzip_body);
        assert_eq!(a.header("vary"), Some("accept-encoding"));
        let b = get(node.addr, path, &br);
        assert!(
            b.cache_status().starts_with("a; hit; ttl="),
            "{}",
            b.cache_status()
        );
        assert_eq!(b.body, br_body);
    }
    assert_eq!(origin.count("/obj/vy"), 2);
}

#[test]
fn vary_star_never_hits() {
    let (origin, node) = start("");
    let path = "/obj/vstar?hdr=Vary:*";
    for n in 1..=2 {
        let r = get(node.addr, path, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.cache_status(), "a; fwd=miss");
        assert_eq!(r.header("vary"), Some("*"));
        assert_eq!(origin.count("/obj/vstar"), n);
    }
}
