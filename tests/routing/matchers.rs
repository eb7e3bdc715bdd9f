//! Route selection: each matcher on its own (`host` exact and `*.suffix`, `path_prefix`,
//! `path_regex`, `method`, `header`), all conditions of one `match` together, the first
//! matching route winning, and the default route taking the rest. Which pool answered is read
//! from each origin's request counters.

use crate::support::*;
use crate::{counts, routed_config};

/// Two origins, pool "hit" (first route, `matcher`) and pool "rest" (the default route).
fn two_way(matcher: &str) -> (Origin, Origin, Node) {
    let hit = Origin::start();
    let rest = Origin::start();
    let routes =
        format!("[[route]]\nmatch = {matcher}\npool = \"hit\"\n\n[[route]]\npool = \"rest\"\n");
    let node = Node::start_config(&routed_config(
        &[("hit", hit.addr), ("rest", rest.addr)],
        &routes,
    ));
    (hit, rest, node)
}

/// GET `/obj/<name>?size=16` with `Host: host`; asserts the status and the body.
fn fetch(node: &Node, host: &str, name: &str) {
    let r = get(
        node.addr,
        &format!("/obj/{name}?size=16"),
        &[("Host", host)],
    );
    assert_eq!(r.status, 200, "{host} /obj/{name}: {}", r.text());
    assert_eq!(r.body, object_bytes(name, 16), "{host} /obj/{name}");
}

#[test]
fn exact_host_routes_case_insensitively_and_ignores_the_port() {
    let (hit, rest, node) = two_way(r#"{ host = "img.example" }"#);
    fetch(&node, "img.example", "h1");
    fetch(&node, "IMG.Example:8080", "h2");
    fetch(&node, "www.example", "h3");
    fetch(&node, "sub.img.example", "h4");
    fetch(&node, "img.example.org", "h5");
    assert_eq!(counts(&[&hit, &rest], "/obj/h1"), [1, 0]);
    assert_eq!(counts(&[&hit, &rest], "/obj/h2"), [1, 0]);
    assert_eq!(counts(&[&hit, &rest], "/obj/h3"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/h4"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/h5"), [0, 1]);
}

#[test]
fn absolute_form_target_routes_by_its_authority_not_the_host_field() {
    let (hit, rest, node) = two_way(r#"{ host = "img.example" }"#);
    let raw = b"GET http://img.example/obj/abs?size=16 HTTP/1.1\r\nHost: www.example\r\n\
                Connection: close\r\n\r\n";
    let r = raw_request(node.addr, raw, false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, object_bytes("abs", 16));
    assert_eq!(counts(&[&hit, &rest], "/obj/abs"), [1, 0]);
}

#[test]
fn suffix_host_matches_any_subdomain_but_not_the_bare_domain() {
    let (hit, rest, node) = two_way(r#"{ host = "*.cdn.example" }"#);
    fetch(&node, "a.cdn.example", "s1");
    fetch(&node, "x.Y.CDN.example:81", "s2");
    fetch(&node, "cdn.example", "s3");
    fetch(&node, "evilcdn.example", "s4");
    fetch(&node, "a.cdn.example.org", "s5");
    assert_eq!(counts(&[&hit, &rest], "/obj/s1"), [1, 0]);
    assert_eq!(counts(&[&hit, &rest], "/obj/s2"), [1, 0]);
    assert_eq!(counts(&[&hit, &rest], "/obj/s3"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/s4"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/s5"), [0, 1]);
}

#[test]
fn path_prefix_routes_paths_that_start_with_it() {
    let (hit, rest, node) = two_way(r#"{ path_prefix = "/obj/st" }"#);
    fetch(&node, "test.example", "st-a");
    fetch(&node, "test.example", "sx");
    fetch(&node, "test.example", "Sta");
    assert_eq!(counts(&[&hit, &rest], "/obj/st-a"), [1, 0]);
    assert_eq!(counts(&[&hit, &rest], "/obj/sx"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/Sta"), [0, 1]);
}

#[test]
fn path_regex_matches_the_path_without_its_query() {
    let (hit, rest, node) = two_way(r#"{ path_regex = '\.css$' }"#);
    fetch(&node, "test.example", "a.css");
    fetch(&node, "test.example", "a.cssx");
    // The query is not part of what the regex sees: `?size=16&f=.css` ends in ".css".
    let r = get(node.addr, "/obj/b.js?size=16&f=.css", &[]);
    assert_eq!(r.body, object_bytes("b.js", 16));
    assert_eq!(counts(&[&hit, &rest], "/obj/a.css"), [1, 0]);
    assert_eq!(counts(&[&hit, &rest], "/obj/a.cssx"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/b.js"), [0, 1]);
}

#[test]
fn method_routes_writes_to_the_write_pool() {
    let (writes, reads, node) = two_way(r#"{ method = ["POST", "PUT"] }"#);
    let r = request(node.addr, "POST", "/obj/m", &[], b"abc");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "method POST path /obj/m body 3\n");
    assert_eq!(r.cache_status(), "a; fwd=method");
    let r = request(node.addr, "PUT", "/obj/m", &[], b"");
    assert_eq!(r.text(), "method PUT path /obj/m body 0\n");
    assert_eq!(counts(&[&writes, &reads], "/obj/m"), [2, 0]);
    let r = request(node.addr, "DELETE", "/obj/m", &[], b"");
    assert_eq!(r.text(), "method DELETE path /obj/m body 0\n");
    assert_eq!(counts(&[&writes, &reads], "/obj/m"), [2, 1]);
    fetch(&node, "test.example", "m");
    assert_eq!(counts(&[&writes, &reads], "/obj/m"), [2, 2]);
}

#[test]
fn header_regex_routes_on_a_matching_request_field() {
    let (gold, rest, node) = two_way(r#"{ header = { name = "X-Tier", regex = "^gold$" } }"#);
    let r = get(node.addr, "/obj/g1?size=16", &[("x-tier", "gold")]);
    assert_eq!(r.body, object_bytes("g1", 16));
    let r = get(node.addr, "/obj/g2?size=16", &[("X-TIER", "golden")]);
    assert_eq!(r.body, object_bytes("g2", 16));
    let r = get(node.addr, "/obj/g3?size=16", &[]);
    assert_eq!(r.body, object_bytes("g3", 16));
    // Any one of several field lines may match.
    let r = get(
        node.addr,
        "/obj/g4?size=16",
        &[("x-tier", "silver"), ("x-tier", "gold")],
    );
    assert_eq!(r.body, object_bytes("g4", 16));
    assert_eq!(counts(&[&gold, &rest], "/obj/g1"), [1, 0]);
    assert_eq!(counts(&[&gold, &rest], "/obj/g2"), [0, 1]);
    assert_eq!(counts(&[&gold, &rest], "/obj/g3"), [0, 1]);
    assert_eq!(counts(&[&gold, &rest], "/obj/g4"), [1, 0]);
}

#[test]
fn the_first_matching_route_wins_over_a_later_one() {
    let first = Origin::start();
    let second = Origin::start();
    let rest = Origin::start();
    let routes = "[[route]]\nmatch = { path_prefix = \"/obj/f\" }\npool = \"first\"\n\n\
                  [[route]]\nmatch = { host = \"img.example\" }\npool = \"second\"\n\n\
                  [[route]]\npool = \"rest\"\n";
    let node = Node::start_config(&routed_config(
        &[
            ("first", first.addr),
            ("second", second.addr),
            ("rest", rest.addr),
        ],
        routes,
    ));
    // Both matches hold: the earlier route takes it.
    fetch(&node, "img.example", "f1");
    // Only the second holds.
    fetch(&node, "img.example", "x1");
    // Neither: the default route.
    fetch(&node, "www.example", "x2");
    let all = [&first, &second, &rest];
    assert_eq!(counts(&all, "/obj/f1"), [1, 0, 0]);
    assert_eq!(counts(&all, "/obj/x1"), [0, 1, 0]);
    assert_eq!(counts(&all, "/obj/x2"), [0, 0, 1]);
}

#[test]
fn every_condition_of_a_match_must_hold_else_the_default_route_takes_it() {
    let (hit, rest, node) =
        two_way(r#"{ host = "img.example", path_prefix = "/obj/c", method = "GET" }"#);
    fetch(&node, "img.example", "c1");
    fetch(&node, "www.example", "c2");
    fetch(&node, "img.example", "d3");
    let r = request(
        node.addr,
        "POST",
        "/obj/c4",
        &[("Host", "img.example")],
        b"",
    );
    assert_eq!(r.text(), "method POST path /obj/c4 body 0\n");
    assert_eq!(counts(&[&hit, &rest], "/obj/c1"), [1, 0]);
    assert_eq!(counts(&[&hit, &rest], "/obj/c2"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/d3"), [0, 1]);
    assert_eq!(counts(&[&hit, &rest], "/obj/c4"), [0, 1]);
}

#[test]
fn cache_hits_are_served_without_going_to_any_pool() {
    let (hit, rest, node) = two_way(r#"{ host = "img.example" }"#);
    let first = get(node.addr, "/obj/r?size=16", &[("Host", "img.example")]);
    assert_eq!(first.cache_status(), "a; fwd=miss; stored");
    let again = get(node.addr, "/obj/r?size=16", &[("Host", "img.example")]);
    assert!(
        again.cache_status().starts_with("a; hit; ttl="),
        "{}",
        again.cache_status()
    );
    assert_eq!(again.body, object_bytes("r", 16));
    // A different host is a different key: a miss on the default pool.
    let other = get(node.addr, "/obj/r?size=16", &[("Host", "www.example")]);
    assert_eq!(other.cache_status(), "a; fwd=miss; stored");
    assert_eq!(counts(&[&hit, &rest], "/obj/r"), [1, 1]);
}
