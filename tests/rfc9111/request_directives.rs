//! Request Cache-Control directives (RFC 9111 §5.2.1): `no-cache`, `no-store`, `max-age`,
//! `max-stale`, `min-fresh` and `only-if-cached`.

use crate::support::{get, object_bytes};
use crate::{fill, start, ttl_of, wait_stale};

/// The Cache-Status of an answer forwarded to revalidate a stored object that the origin
/// confirmed with a 304.
fn assert_revalidated(r: &crate::support::Resp, name: &str) {
    assert_eq!(r.status, 200);
    assert_eq!(r.body, object_bytes(name, 1024));
    assert!(
        r.cache_status()
            .starts_with("a; fwd=stale; fwd-status=304; ttl="),
        "{}",
        r.cache_status()
    );
}

#[test]
fn request_no_cache_revalidates_a_fresh_object() {
    let (origin, node) = start("");
    fill(&node, "/obj/rnc", &[]);
    let r = get(node.addr, "/obj/rnc", &[("Cache-Control", "no-cache")]);
    assert_revalidated(&r, "rnc");
    assert_eq!(origin.count("/obj/rnc"), 2);
    assert_eq!(node.counter("revalidated"), 1);
}

#[test]
fn request_no_store_response_is_not_stored() {
    let (origin, node) = start("");
    let r = get(node.addr, "/obj/rns", &[("Cache-Control", "no-store")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, object_bytes("rns", 1024));
    assert_eq!(r.cache_status(), "a; fwd=miss");
    let plain = fill(&node, "/obj/rns", &[]);
    assert_eq!(plain.cache_status(), "a; fwd=miss; stored");
    assert_eq!(origin.count("/obj/rns"), 2);
    let hit = get(node.addr, "/obj/rns", &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert_eq!(origin.count("/obj/rns"), 2);
}

#[test]
fn request_max_age_zero_revalidates() {
    let (origin, node) = start("");
    fill(&node, "/obj/rma", &[]);
    let r = get(node.addr, "/obj/rma", &[("Cache-Control", "max-age=0")]);
    assert_revalidated(&r, "rma");
    assert_eq!(origin.count("/obj/rma"), 2);
}

#[test]
fn request_max_stale_serves_a_stale_object_without_the_origin() {
    let (origin, node) = start("");
    let path = "/obj/rms?ttl=1";
    fill(&node, path, &[]);
    wait_stale(&node, path);
    let r = get(node.addr, path, &[("Cache-Control", "max-stale=60")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, object_bytes("rms", 1024));
    assert!(
        r.cache_status().starts_with("a; hit; "),
        "{}",
        r.cache_status()
    );
    assert!(ttl_of(&r) <= 0, "{}", r.cache_status());
    assert_eq!(origin.count("/obj/rms"), 1);
}

#[test]

fn request_max_stale_hit_just_past_expiry_is_marked_stale() {
    let (origin, node) = start("");
    let path = "/obj/rmsj?ttl=1";
    fill(&node, path, &[]);
    // Returns within ~20 ms of the object going stale.
    wait_stale(&node, path);
    let before = node.counter("stale_served");
    let r = get(node.addr, path, &[("Cache-Control", "max-stale=60")]);
    assert_eq!(r.status, 200);
    assert!(
        r.cache_status().starts_with("a; hit; fwd=stale; ttl=-"),
        "{}",
        r.cache_status()
    );
    assert_eq!(node.counter("stale_served"), before + 1);
    assert_eq!(origin.count("/obj/rmsj"), 1);
}

#[test]
fn request_min_fresh_beyond_the_ttl_goes_to_the_origin() {
    let (origin, node) = start("");
    let path = "/obj/rmf?ttl=60";
    fill(&node, path, &[]);
    let enough = get(node.addr, path, &[("Cache-Control", "min-fresh=10")]);
    assert!(enough.cache_status().starts_with("a; hit; ttl="));
    assert_eq!(origin.count("/obj/rmf"), 1);
    let r = get(node.addr, path, &[("Cache-Control", "min-fresh=100000")]);
    assert_revalidated(&r, "rmf");
    assert_eq!(origin.count("/obj/rmf"), 2);
}

#[test]
fn only_if_cached_is_504_on_a_miss_and_200_on_a_fresh_hit() {
    let (origin, node) = start("");
    let only = [("Cache-Control", "only-if-cached")];
    let miss = get(node.addr, "/obj/oic", &only);
    assert_eq!(miss.status, 504);
    assert_eq!(miss.cache_status(), "a; fwd=miss; detail=only-if-cached");
    assert_eq!(origin.count("/obj/oic"), 0);
    fill(&node, "/obj/oic", &[]);
    let hit = get(node.addr, "/obj/oic", &only);
    assert_eq!(hit.status, 200);
    assert_eq!(hit.body, object_bytes("oic", 1024));
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert_eq!(origin.count("/obj/oic"), 1);
}
