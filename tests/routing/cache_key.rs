//! `cache_key = { headers = [...] }`: the named request fields become part of the cache key on
//! that route, so each value is its own object; purge of the URL and bans by prefix still reach
//! every one of them (the primary key stays the key's prefix), and so does an unsafe request
//! to the URL (RFC 9111 §4.4).

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use crate::{hit_ttl, routed_config};

/// One origin; `/obj/k...` keyed by Accept-Language, everything else plain.
fn keyed() -> (Origin, Node) {
    let origin = Origin::start();
    let routes = "[[route]]\nmatch = { path_prefix = \"/obj/k\" }\npool = \"o\"\n\
                  cache_key = { headers = [\"Accept-Language\"] }\n\n[[route]]\npool = \"o\"\n";
    let node = Node::start_config(&routed_config(&[("o", origin.addr)], routes));
    (origin, node)
}

/// GET `/obj/<name>?size=8` with `Accept-Language: lang` (none when empty); the Cache-Status.
fn get_lang(node: &Node, name: &str, lang: &str) -> String {
    let headers: &[(&str, &str)] = if lang.is_empty() {
        &[]
    } else {
        &[("Accept-Language", lang)]
    };
    let r = get(node.addr, &format!("/obj/{name}?size=8"), headers);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, object_bytes(name, 8), "{name} {lang}");
    r.cache_status().to_string()
}

/// Store the `en` and `fr` objects of `/obj/<name>` and check both are hits.
fn store_en_fr(origin: &Origin, node: &Node, name: &str) {
    assert_eq!(get_lang(node, name, "en"), "a; fwd=miss; stored");
    assert_eq!(get_lang(node, name, "fr"), "a; fwd=miss; stored");
    assert!((3599..=3600).contains(&hit_ttl(&get_lang(node, name, "en"))));
    assert!((3599..=3600).contains(&hit_ttl(&get_lang(node, name, "fr"))));
    assert_eq!(origin.count(&format!("/obj/{name}")), 2);
}

fn admin_post(node: &Node, path: &str) -> Resp {
    admin_request(node.admin, "POST", path, &[])
}

#[test]
fn each_cache_key_field_value_is_its_own_object() {
    let (origin, node) = keyed();
    store_en_fr(&origin, &node, "k1");
    assert_eq!(node.counter("stored_objects"), 2);
    // No field at all is a third key (`accept-language=`), also stored.
    assert_eq!(get_lang(&node, "k1", ""), "a; fwd=miss; stored");
    assert!(get_lang(&node, "k1", "").starts_with("a; hit; ttl="));
    assert_eq!(origin.count("/obj/k1"), 3);
    // A route without cache_key ignores the field: one object for both.
    assert_eq!(get_lang(&node, "p1", "en"), "a; fwd=miss; stored");
    assert!(get_lang(&node, "p1", "fr").starts_with("a; hit; ttl="));
    assert_eq!(origin.count("/obj/p1"), 1);
    assert_eq!(node.counter("stored_objects"), 4);
}

#[test]

fn purge_of_the_url_removes_every_cache_key_object() {
    let (origin, node) = keyed();
    store_en_fr(&origin, &node, "k2");
    let r = admin_post(
        &node,
        "/purge?url=http%3A%2F%2Ftest.example%2Fobj%2Fk2%3Fsize%3D8",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "{\"key\":\"http://test.example/obj/k2?size=8\",\"removed\":2}"
    );
    assert_eq!(node.counter("stored_objects"), 0);
    assert_eq!(get_lang(&node, "k2", "en"), "a; fwd=miss; stored");
    assert_eq!(get_lang(&node, "k2", "fr"), "a; fwd=miss; stored");
    assert_eq!(origin.count("/obj/k2"), 4);
}

#[test]
fn ban_of_the_url_prefix_removes_every_cache_key_object() {
    let (origin, node) = keyed();
    store_en_fr(&origin, &node, "k3");
    let r = admin_post(&node, "/ban?prefix=http%3A%2F%2Ftest.example%2Fobj%2Fk3");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "{\"prefix\":\"http://test.example/obj/k3\",\"removed\":2}"
    );
    assert_eq!(node.counter("stored_objects"), 0);
    assert_eq!(get_lang(&node, "k3", "en"), "a; fwd=miss; stored");
    assert_eq!(get_lang(&node, "k3", "fr"), "a; fwd=miss; stored");
    assert_eq!(origin.count("/obj/k3"), 4);
}

#[test]

fn an_unsafe_request_invalidates_every_cache_key_object_of_its_url() {
    let (origin, node) = keyed();
    store_en_fr(&origin, &node, "k4");
    // RFC 9111 §4.4: a successful POST invalidates the stored responses for its target URI.
    let r = request(
        node.addr,
        "POST",
        "/obj/k4?size=8",
        &[("Accept-Language", "en")],
        b"x",
    );
    assert_eq!(r.text(), "method POST path /obj/k4 body 1\n");
    assert_eq!(get_lang(&node, "k4", "en"), "a; fwd=miss; stored");
    assert_eq!(get_lang(&node, "k4", "fr"), "a; fwd=miss; stored");
    assert_eq!(origin.count("/obj/k4"), 5);
}

/// GET `target` with `Accept-Language: lang` from its own thread; the response.
fn spawn_get(
    addr: SocketAddr,
    target: &'static str,
    lang: &'static str,
) -> std::thread::JoinHandle<Resp> {
    std::thread::spawn(move || get(addr, target, &[("Accept-Language", lang)]))
}

#[test]
fn concurrent_misses_are_coalesced_per_cache_key_object() {
    let (origin, node) = keyed();
    let target = "/obj/k5?size=8&delay=400";
    let en = spawn_get(node.addr, target, "en");
    assert!(wait_until(Duration::from_secs(3), || origin
        .count("/obj/k5")
        == 1));
    // Another field value is another object: it goes forward at once, not coalesced.
    let fr = spawn_get(node.addr, target, "fr");
    assert!(wait_until(Duration::from_secs(3), || origin
        .count("/obj/k5")
        == 2));
    // The same value joins the fill under way.
    let en2 = spawn_get(node.addr, target, "en");
    assert!(wait_until(Duration::from_secs(3), || node
        .counter("coalesced")
        == 1));
    let (en, fr, en2) = (
        en.join().expect("en"),
        fr.join().expect("fr"),
        en2.join().expect("en2"),
    );
    assert_eq!(en.cache_status(), "a; fwd=miss; stored");
    assert_eq!(fr.cache_status(), "a; fwd=miss; stored");
    assert_eq!(en2.cache_status(), "a; fwd=miss; stored; collapsed");
    for r in [&en, &fr, &en2] {
        assert_eq!(r.body, object_bytes("k5", 8));
    }
    assert_eq!(origin.count("/obj/k5"), 2);
    assert_eq!(node.counter("stored_objects"), 2);
}
