//! Per-route cache policy: `cache = false` (pass, `fwd=bypass`), `ttl` for responses without
//! freshness information, and `store_set_cookie` (a `Set-Cookie` answer is not stored unless
//! the route allows it).

use std::time::Duration;

use crate::support::*;
use crate::{hit_ttl, routed_config};

/// One origin behind pool "o"; `routes` is every `[[route]]` table (all on pool "o").
fn one_pool(routes: &str) -> (Origin, Node) {
    let origin = Origin::start();
    let node = Node::start_config(&routed_config(&[("o", origin.addr)], routes));
    (origin, node)
}

#[test]
fn a_route_with_cache_false_passes_every_request_with_fwd_bypass() {
    let (origin, node) = one_pool(
        "[[route]]\nmatch = { header = { name = \"x-bypass\", regex = \"^1$\" } }\n\
         pool = \"o\"\ncache = false\n\n[[route]]\npool = \"o\"\n",
    );
    let bypass = [("x-bypass", "1")];
    for n in 1..=2 {
        let r = get(node.addr, "/obj/p?size=32", &bypass);
        assert_eq!(r.status, 200);
        assert_eq!(r.cache_status(), "a; fwd=bypass", "request {n}");
        assert_eq!(r.body, object_bytes("p", 32));
        assert_eq!(origin.count("/obj/p"), n);
    }
    assert_eq!(node.counter("stored_objects"), 0);
    assert_eq!(node.counter("passed"), 2);
    // HEAD on the bypass route is passed as well.
    let r = request(node.addr, "HEAD", "/obj/p?size=32", &bypass, b"");
    assert_eq!(r.cache_status(), "a; fwd=bypass");
    assert_eq!(origin.count("/obj/p"), 3);
    // The same URL on the caching route: stored, then a hit.
    let r = get(node.addr, "/obj/p?size=32", &[]);
    assert_eq!(r.cache_status(), "a; fwd=miss; stored");
    let r = get(node.addr, "/obj/p?size=32", &[]);
    assert!((3599..=3600).contains(&hit_ttl(r.cache_status())));
    assert_eq!(r.body, object_bytes("p", 32));
    assert_eq!(origin.count("/obj/p"), 4);
    // A stored object does not turn the bypass route into a caching one.
    let r = get(node.addr, "/obj/p?size=32", &bypass);
    assert_eq!(r.cache_status(), "a; fwd=bypass");
    assert_eq!(origin.count("/obj/p"), 5);
    assert_eq!(node.counter("stored_objects"), 1);
}

#[test]
fn a_route_ttl_stores_responses_without_freshness_information() {
    let (origin, node) = one_pool(
        "[[route]]\nmatch = { path_prefix = \"/obj/t\" }\npool = \"o\"\nttl = \"30s\"\n\n\
         [[route]]\npool = \"o\"\n",
    );
    // No Cache-Control, no Expires, no validator: nothing but the route ttl makes it storable.
    let q = "?size=8&cc=&etag=0&lm=0";
    let r = get(node.addr, &format!("/obj/t1{q}"), &[]);
    assert!(!r.has("cache-control") && !r.has("etag") && !r.has("last-modified"));
    assert_eq!(r.cache_status(), "a; fwd=miss; stored");
    let r = get(node.addr, &format!("/obj/t1{q}"), &[]);
    assert!(
        (29..=30).contains(&hit_ttl(r.cache_status())),
        "{}",
        r.cache_status()
    );
    assert_eq!(r.body, object_bytes("t1", 8));
    assert_eq!(origin.count("/obj/t1"), 1);
    // The same response on the default route is not stored.
    for n in 1..=2 {
        let r = get(node.addr, &format!("/obj/u1{q}"), &[]);
        assert_eq!(r.cache_status(), "a; fwd=miss", "request {n}");
        assert_eq!(r.body, object_bytes("u1", 8));
    }
    assert_eq!(origin.count("/obj/u1"), 2);
    assert_eq!(node.counter("stored_objects"), 1);
}

#[test]
fn a_route_ttl_does_not_override_explicit_freshness() {
    let (origin, node) = one_pool(
        "[[route]]\nmatch = { path_prefix = \"/obj/t\" }\npool = \"o\"\nttl = \"30s\"\n\n\
         [[route]]\npool = \"o\"\n",
    );
    let r = get(node.addr, "/obj/t2?size=8&ttl=100", &[]);
    assert_eq!(r.cache_status(), "a; fwd=miss; stored");
    let r = get(node.addr, "/obj/t2?size=8&ttl=100", &[]);
    assert!(
        (99..=100).contains(&hit_ttl(r.cache_status())),
        "{}",
        r.cache_status()
    );
    // `no-store` from the origin still wins over the route ttl.
    for _ in 0..2 {
        let r = get(node.addr, "/obj/t3?size=8&cc=no-store", &[]);
        assert_eq!(r.cache_status(), "a; fwd=miss");
    }
    assert_eq!(origin.count("/obj/t2"), 1);
    assert_eq!(origin.count("/obj/t3"), 2);
}

#[test]
fn an_object_stored_for_a_route_ttl_expires_after_it() {
    let (origin, node) = one_pool("[[route]]\npool = \"o\"\nttl = \"1s\"\n");
    let path = "/obj/e?size=8&cc=&etag=0&lm=0";
    assert_eq!(
        get(node.addr, path, &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    assert!((0..=1).contains(&hit_ttl(get(node.addr, path, &[]).cache_status())));
    assert_eq!(origin.count("/obj/e"), 1);
    // Once the second has passed the object is stale with no validator: fetched again.
    let mut last = String::new();
    let refetched = wait_until(Duration::from_secs(4), || {
        last = get(node.addr, path, &[]).cache_status().to_string();
        !last.starts_with("a; hit")
    });
    assert!(refetched, "still a hit: {last}");
    assert_eq!(last, "a; fwd=stale; fwd-status=200; stored");
    assert_eq!(origin.count("/obj/e"), 2);
}

#[test]
fn a_set_cookie_response_is_not_stored_on_a_default_route() {
    let (origin, node) = one_pool("[[route]]\npool = \"o\"\n");
    for n in 1..=2 {
        let r = get(node.addr, "/obj/c?size=8&ttl=60&hdr=Set-Cookie:a%3D1", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.cache_status(), "a; fwd=miss", "request {n}");
        assert_eq!(r.header("set-cookie"), Some("a=1"));
        assert_eq!(r.body, object_bytes("c", 8));
    }
    assert_eq!(origin.count("/obj/c"), 2);
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn a_route_with_store_set_cookie_stores_the_response() {
    let (origin, node) = one_pool(
        "[[route]]\nmatch = { path_prefix = \"/obj/sc\" }\npool = \"o\"\n\
         store_set_cookie = true\n\n[[route]]\npool = \"o\"\n",
    );
    let path = "/obj/sc?size=8&ttl=60&hdr=Set-Cookie:a%3D1";
    let r = get(node.addr, path, &[]);
    assert_eq!(r.cache_status(), "a; fwd=miss; stored");
    assert_eq!(r.header("set-cookie"), Some("a=1"));
    let r = get(node.addr, path, &[]);
    assert!(
        (59..=60).contains(&hit_ttl(r.cache_status())),
        "{}",
        r.cache_status()
    );
    assert_eq!(r.header("set-cookie"), Some("a=1"));
    assert_eq!(r.body, object_bytes("sc", 8));
    assert_eq!(origin.count("/obj/sc"), 1);
    // The same answer on the default route is still not stored.
    let other = "/obj/xc?size=8&ttl=60&hdr=Set-Cookie:a%3D1";
    assert_eq!(get(node.addr, other, &[]).cache_status(), "a; fwd=miss");
    assert_eq!(get(node.addr, other, &[]).cache_status(), "a; fwd=miss");
    assert_eq!(origin.count("/obj/xc"), 2);
}
