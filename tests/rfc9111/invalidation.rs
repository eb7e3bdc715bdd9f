//! Invalidation by unsafe methods (RFC 9111 §4.4): after a 2xx/3xx answer to POST, PUT,
//! DELETE or PATCH the target URI, and the same-origin URIs named by `Location` and
//! `Content-Location`, are no longer served from the store; an error answer invalidates nothing,
//! and other origins are never touched.

use crate::support::{get, object_bytes, request, Node};
use crate::{fill, q, start};
use strait_topology::origin::variant_key;

/// GET `path` twice and check the second one is a hit.
fn store(node: &Node, path: &str, host: &str) {
    let first = fill(node, path, &[("Host", host)]);
    assert_eq!(first.cache_status(), "a; fwd=miss; stored", "{path}");
    let hit = get(node.addr, path, &[("Host", host)]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="), "{path}");
}

#[test]
fn unsafe_methods_invalidate_the_target() {
    let (origin, node) = start("");
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let path = format!("/obj/inv-{method}");
        store(&node, &path, "test.example");
        let r = request(node.addr, method, &path, &[], b"");
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.text(), format!("method {method} path {path} body 0\n"));
        assert_eq!(r.cache_status(), "a; fwd=method", "{method}");
        let again = get(node.addr, &path, &[]);
        assert_eq!(again.cache_status(), "a; fwd=miss; stored", "{method}");
        assert_eq!(again.body, object_bytes(&format!("inv-{method}"), 1024));
        // GET, the unsafe request, GET again.
        assert_eq!(origin.count(&path), 3, "{method}");
    }
    assert_eq!(node.counter("invalidated"), 4);
}

#[test]
fn unsafe_method_invalidates_every_vary_variant() {
    let (origin, node) = start("");
    let path = "/obj/inv-vary?vary=Accept-Encoding";
    for ae in ["gzip", "br"] {
        let r = fill(&node, path, &[("Accept-Encoding", ae)]);
        assert!(
            r.cache_status().ends_with("; stored"),
            "{ae}: {}",
            r.cache_status()
        );
    }
    let r = request(node.addr, "POST", path, &[], b"");
    assert_eq!(r.status, 200);
    for ae in ["gzip", "br"] {
        let r = get(node.addr, path, &[("Accept-Encoding", ae)]);
        assert!(
            r.cache_status().starts_with("a; fwd="),
            "{ae}: {}",
            r.cache_status()
        );
        let body = object_bytes(&variant_key("inv-vary", &[ae]), 1024);
        assert_eq!(r.body, body, "{ae}");
    }
    // Two GETs, the POST, two GETs.
    assert_eq!(origin.count("/obj/inv-vary"), 5);
}

#[test]
fn location_and_content_location_of_the_same_origin_are_invalidated() {
    let (origin, node) = start("");
    store(&node, "/obj/loc-b", "test.example");
    store(&node, "/obj/loc-c", "test.example");
    let path = format!(
        "/obj/loc-a?hdr={}&hdr={}",
        q("Location:/obj/loc-b"),
        q("Content-Location:http://test.example/obj/loc-c")
    );
    let r = request(node.addr, "POST", &path, &[], b"xyz");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "method POST path /obj/loc-a body 3\n");
    for name in ["loc-b", "loc-c"] {
        let p = format!("/obj/{name}");
        let again = get(node.addr, &p, &[]);
        assert_eq!(again.cache_status(), "a; fwd=miss; stored", "{name}");
        assert_eq!(origin.count(&p), 2, "{name}");
    }
}

#[test]
fn location_of_another_origin_is_not_invalidated() {
    let (origin, node) = start("");
    // The node keys by Host, so the same origin server holds objects of two hosts.
    store(&node, "/obj/loc-x", "other.example");
    let path = format!(
        "/obj/loc-y?hdr={}",
        q("Location:http://other.example/obj/loc-x")
    );
    let r = request(node.addr, "POST", &path, &[], b"");
    assert_eq!(r.status, 200);
    let hit = get(node.addr, "/obj/loc-x", &[("Host", "other.example")]);
    assert!(
        hit.cache_status().starts_with("a; hit; ttl="),
        "{}",
        hit.cache_status()
    );
    assert_eq!(origin.count("/obj/loc-x"), 1);
}

#[test]
fn error_answer_to_an_unsafe_method_invalidates_nothing() {
    let (origin, node) = start("");
    store(&node, "/obj/err-loc", "test.example");
    // The same URI for the stored GET and the POST: a 500 that carries max-age is storable.
    let path = format!("/obj/err?status=500&hdr={}", q("Location:/obj/err-loc"));
    store(&node, &path, "test.example");
    let r = request(node.addr, "POST", &path, &[], b"");
    assert_eq!(r.status, 500);
    assert_eq!(r.cache_status(), "a; fwd=method");
    let target = get(node.addr, &path, &[]);
    assert!(
        target.cache_status().starts_with("a; hit; ttl="),
        "{}",
        target.cache_status()
    );
    assert_eq!(target.status, 500);
    let located = get(node.addr, "/obj/err-loc", &[]);
    assert!(
        located.cache_status().starts_with("a; hit; ttl="),
        "{}",
        located.cache_status()
    );
    assert_eq!(origin.count("/obj/err"), 2);
    assert_eq!(origin.count("/obj/err-loc"), 1);
    assert_eq!(node.counter("invalidated"), 0);
}
