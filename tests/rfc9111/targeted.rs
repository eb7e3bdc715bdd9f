//! RFC 9213 targeted cache-control fields: `CDN-Cache-Control`, and an operator-named field
//! (`[cache] target_header`) that beats it, both replace Cache-Control for this cache. The
//! operator's field is for this cache alone and never reaches clients; `CDN-Cache-Control` is
//! forwarded like any other field (a CDN tier below may obey it), from a miss and from a hit,
//! fast path included.

use crate::support::{get, object_bytes, Resp};
use crate::{fill, q, start, ttl_of};

const STRAIT_TARGET: &str = "[cache]\ntarget_header = \"Strait-Cache-Control\"\n";

/// The operator's field is gone; `CDN-Cache-Control` is forwarded as the origin sent it.
fn assert_targeted_fields(r: &Resp, cdn: &str) {
    assert_eq!(r.header("cdn-cache-control"), Some(cdn), "{:?}", r.headers);
    assert_eq!(r.header("strait-cache-control"), None, "{:?}", r.headers);
}

#[test]
fn cdn_cache_control_beats_cache_control_and_is_forwarded() {
    let (origin, node) = start("");
    let path = format!(
        "/obj/cdn?cc=no-store&hdr={}",
        q("CDN-Cache-Control:max-age=60")
    );
    let miss = fill(&node, &path, &[]);
    assert_eq!(miss.cache_status(), "a; fwd=miss; stored");
    assert_targeted_fields(&miss, "max-age=60");
    assert_eq!(miss.header("cache-control"), Some("no-store"));
    let hit = get(node.addr, &path, &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert!((58..=60).contains(&ttl_of(&hit)), "{}", hit.cache_status());
    assert_targeted_fields(&hit, "max-age=60");
    assert_eq!(hit.body, object_bytes("cdn", 1024));
    assert_eq!(origin.count("/obj/cdn"), 1);
}

#[test]
fn configured_target_header_beats_cdn_cache_control_and_is_not_forwarded_itself() {
    let (origin, node) = start(STRAIT_TARGET);
    let path = format!(
        "/obj/tgt?hdr={}&hdr={}",
        q("Strait-Cache-Control:no-store"),
        q("CDN-Cache-Control:max-age=60")
    );
    for n in 1..=2 {
        let r = get(node.addr, &path, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.cache_status(), "a; fwd=miss");
        assert_targeted_fields(&r, "max-age=60");
        assert_eq!(r.body, object_bytes("tgt", 1024));
        assert_eq!(origin.count("/obj/tgt"), n);
    }
}

#[test]
fn configured_target_header_can_allow_storing() {
    let (origin, node) = start(STRAIT_TARGET);
    let path = format!(
        "/obj/tgt2?cc=no-store&hdr={}&hdr={}",
        q("Strait-Cache-Control:max-age=30"),
        q("CDN-Cache-Control:no-store")
    );
    let miss = fill(&node, &path, &[]);
    assert_eq!(miss.cache_status(), "a; fwd=miss; stored");
    assert_targeted_fields(&miss, "no-store");
    let hit = get(node.addr, &path, &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert!((28..=30).contains(&ttl_of(&hit)), "{}", hit.cache_status());
    assert_targeted_fields(&hit, "no-store");
    assert_eq!(origin.count("/obj/tgt2"), 1);
}
