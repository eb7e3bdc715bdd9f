//! Partial content (RFC 9111 §3.3-3.4) under `cache.partial = "on"`, end to end: a node in
//! front of a scripted origin (`partial/origin.rs`) that honours `Range` and `If-Range` and
//! records every request with the body bytes it sent. Loopback addresses 127.0.32.0/24 and
//! 127.0.33.0/24; the cluster tests (`partial/cluster.rs`) 127.0.50.0/24.
//!
//! With a 1 KiB slice, a range miss asks the origin for its slice-aligned window only; a later
//! range inside what is held is a hit; a range partly outside asks for the gap with `If-Range`;
//! a covered object serves a full GET as a 200 hit; a changed or weak validator is never
//! combined; purge removes a partial object. Open and suffix ranges with nothing held
//! (`partial/open.rs`), full GETs completed from the parts (`partial/complete.rs`), and the
//! parts of a key a peer owns (`partial/cluster.rs`).

mod support;

#[path = "partial/cluster.rs"]
mod cluster;
#[path = "partial/complete.rs"]
mod complete;
#[path = "partial/open.rs"]
mod open;
#[path = "partial/origin.rs"]
mod origin;

use origin::{content, RangeOrigin};
use support::{admin_request, get, Node, Resp};

const PATH: &str = "/v.bin";
const SLICE: usize = 1024;

/// A node on `ip` with `cache` as its `[cache]` table, in front of `origin`.
fn node(ip: &str, origin: &RangeOrigin, cache: &str) -> Node {
    Node::start_config(&format!(
        "[node]\nid = \"a\"\nlisten = [\"{ip}:0\"]\nadmin = \"{ip}:0\"\n\n[cache]\n{cache}\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{}\" }}]\n\n[[route]]\n\
         pool = \"origin\"\n",
        origin.addr
    ))
}

fn partial_node(ip: &str, origin: &RangeOrigin) -> Node {
    node(ip, origin, "partial = \"on\"\npartial_slice = \"1KiB\"")
}

fn range(node: &Node, a: usize, b: usize) -> Resp {
    get(node.addr, PATH, &[("Range", &format!("bytes={a}-{b}"))])
}

/// A 206 carrying bytes `a..=b` of `version` of a `size`-byte object.
fn assert_part(r: &Resp, version: u8, size: usize, a: usize, b: usize) {
    assert_eq!(r.status, 206, "{:?} {}", r.headers, r.text());
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {a}-{b}/{size}").as_str())
    );
    assert_eq!(r.body, content(version, size)[a..=b], "bytes {a}-{b}");
}

#[test]
fn a_range_miss_fetches_only_its_slice_and_a_range_inside_is_a_hit() {
    let origin = RangeOrigin::start("127.0.32.1", 4000, "\"v1\"");
    let node = partial_node("127.0.32.1", &origin);
    let r = range(&node, 100, 199);
    assert_part(&r, 1, 4000, 100, 199);
    assert!(
        r.cache_status().contains("fwd=miss; stored"),
        "{}",
        r.cache_status()
    );
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].range.as_deref(), Some("bytes=0-1023"));
    assert_eq!((seen[0].status, seen[0].sent), (206, SLICE));

    let r = range(&node, 500, 899);
    assert_part(&r, 1, 4000, 500, 899);
    assert!(
        r.cache_status().starts_with("a; hit"),
        "{}",
        r.cache_status()
    );
    assert!(r.has("age"));
    assert_eq!(
        origin.seen().len(),
        1,
        "a range inside the held slice is a hit"
    );
    // A range past the end, known from the stored Content-Range: 416 from the store.
    let r = range(&node, 5000, 5100);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */4000"));
    assert_eq!(origin.seen().len(), 1);
}

#[test]
fn an_adjacent_range_fetches_only_the_gap_with_if_range() {
    let origin = RangeOrigin::start("127.0.32.2", 4000, "\"v1\"");
    let node = partial_node("127.0.32.2", &origin);
    assert_part(&range(&node, 0, 99), 1, 4000, 0, 99);
    let r = range(&node, 1000, 1100);
    assert_part(&r, 1, 4000, 1000, 1100);
    assert!(
        r.cache_status().contains("fwd=partial; stored"),
        "{}",
        r.cache_status()
    );
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=1024-2047"));
    assert_eq!(seen[1].if_range.as_deref(), Some("\"v1\""));
    assert_eq!(seen[1].sent, SLICE, "only the gap is sent");
    // Both slices are held now, joined: a range across their boundary is a hit.
    let r = range(&node, 900, 1500);
    assert_part(&r, 1, 4000, 900, 1500);
    assert!(
        r.cache_status().starts_with("a; hit"),
        "{}",
        r.cache_status()
    );
    assert_eq!(origin.seen().len(), 2);
}

#[test]
fn covering_every_byte_makes_the_complete_object_a_200_hit() {
    let size = 2500;
    let origin = RangeOrigin::start("127.0.32.3", size, "\"v1\"");
    let node = partial_node("127.0.32.3", &origin);
    assert_part(&range(&node, 0, 10), 1, size, 0, 10);
    assert_part(&range(&node, 2400, 2499), 1, size, 2400, 2499);
    assert_part(&range(&node, 1500, 1600), 1, size, 1500, 1600);
    let sent: Vec<_> = origin.seen().iter().map(|s| s.range.clone()).collect();
    assert_eq!(
        sent,
        [
            Some("bytes=0-1023".to_string()),
            Some("bytes=2048-2499".to_string()),
            Some("bytes=1024-2047".to_string()),
        ]
    );
    let full = get(node.addr, PATH, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, content(1, size));
    assert_eq!(full.header("content-length"), Some("2500"));
    assert!(
        full.cache_status().starts_with("a; hit"),
        "{}",
        full.cache_status()
    );
    assert_eq!(origin.seen().len(), 3, "the full GET went nowhere");
}

#[test]
fn a_changed_etag_replaces_the_partial_object_instead_of_combining() {
    let origin = RangeOrigin::start("127.0.32.4", 4000, "\"v1\"");
    let node = partial_node("127.0.32.4", &origin);
    assert_part(&range(&node, 0, 99), 1, 4000, 0, 99);
    origin.change(2, "\"v2\"");
    // The gap is asked for with If-Range "v1": the origin answers the whole new version.
    let r = range(&node, 1024, 1100);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content(2, 4000));
    assert_eq!(origin.seen()[1].if_range.as_deref(), Some("\"v1\""));
    // The old slice is gone: never served with the new version's bytes, nor alone.
    let r = range(&node, 0, 99);
    assert_part(&r, 2, 4000, 0, 99);
    assert!(
        r.cache_status().contains("fwd=miss"),
        "{}",
        r.cache_status()
    );
    assert_eq!(origin.seen().len(), 3);
}

#[test]
fn a_206_with_another_etag_is_not_combined_with_what_is_held() {
    let origin = RangeOrigin::start("127.0.32.5", 4000, "\"v1\"");
    let node = partial_node("127.0.32.5", &origin);
    assert_part(&range(&node, 0, 99), 1, 4000, 0, 99);
    // A broken origin: a 206 of the new version despite If-Range naming the old one.
    origin.ignore_if_range();
    origin.change(2, "\"v2\"");
    let r = range(&node, 1000, 1100);
    assert_part(&r, 2, 4000, 1000, 1100);
    let seen = origin.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=1024-2047"));
    // The held v1 slice was dropped and asked for again, under v2.
    assert_eq!(seen[2].range.as_deref(), Some("bytes=0-1023"));
    assert_eq!(seen[2].if_range.as_deref(), Some("\"v2\""));
    let r = range(&node, 0, 2047);
    assert_part(&r, 2, 4000, 0, 2047);
    assert!(
        r.cache_status().starts_with("a; hit"),
        "{}",
        r.cache_status()
    );
}

#[test]
fn a_weak_etag_part_is_served_but_never_kept() {
    let origin = RangeOrigin::start("127.0.32.6", 4000, "W/\"w1\"");
    let node = partial_node("127.0.32.6", &origin);
    let r = range(&node, 100, 199);
    assert_part(&r, 1, 4000, 100, 199);
    assert!(!r.cache_status().contains("stored"), "{}", r.cache_status());
    let r = range(&node, 100, 199);
    assert_part(&r, 1, 4000, 100, 199);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "nothing held: asked again");
    assert!(seen
        .iter()
        .all(|s| s.range.as_deref() == Some("bytes=0-1023")));
    assert!(seen.iter().all(|s| s.if_range.is_none()), "{seen:?}");
}

#[test]
fn purge_removes_a_partial_object() {
    let origin = RangeOrigin::start("127.0.32.7", 4000, "\"v1\"");
    let node = partial_node("127.0.32.7", &origin);
    assert_part(&range(&node, 0, 99), 1, 4000, 0, 99);
    assert_eq!(node.counter("stored_objects"), 1);
    let url = format!("/purge?url=http://test.example{PATH}");
    let r = admin_request(node.admin, "POST", &url, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node.counter("stored_objects"), 0);
    let r = range(&node, 0, 99);
    assert!(
        r.cache_status().contains("fwd=miss"),
        "{}",
        r.cache_status()
    );
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=0-1023"));
}

#[test]
fn without_partial_a_range_miss_fetches_the_whole_object() {
    let origin = RangeOrigin::start("127.0.32.8", 4000, "\"v1\"");
    let node = node("127.0.32.8", &origin, "");
    let r = range(&node, 100, 199);
    assert_part(&r, 1, 4000, 100, 199);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].range.as_deref(), seen[0].sent), (None, 4000));
}

#[test]
fn parts_with_a_strong_last_modified_are_combined() {
    // No ETag; the node adds Date (now), long after this Last-Modified: a strong validator.
    let lm = "Tue, 14 Nov 2023 22:13:20 GMT";
    let origin = RangeOrigin::start("127.0.32.9", 4000, &format!("lm:{lm}"));
    let node = partial_node("127.0.32.9", &origin);
    assert_part(&range(&node, 0, 99), 1, 4000, 0, 99);
    let r = range(&node, 1000, 1100);
    assert_part(&r, 1, 4000, 1000, 1100);
    let seen = origin.seen();
    assert_eq!(seen[1].range.as_deref(), Some("bytes=1024-2047"));
    assert_eq!(seen[1].if_range.as_deref(), Some(lm));
    let r = range(&node, 0, 2047);
    assert!(
        r.cache_status().starts_with("a; hit"),
        "{}",
        r.cache_status()
    );
    assert_eq!(origin.seen().len(), 2);
}

#[test]
fn a_stale_partial_object_is_not_served() {
    let origin = RangeOrigin::start("127.0.32.11", 4000, "\"v1\"");
    origin.cache_control("max-age=0");
    let node = partial_node("127.0.32.11", &origin);
    assert_part(&range(&node, 0, 99), 1, 4000, 0, 99);
    let r = range(&node, 0, 99);
    assert_part(&r, 1, 4000, 0, 99);
    assert!(!r.cache_status().contains("hit"), "{}", r.cache_status());
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=0-1023"));
    assert_eq!(
        seen[1].if_range, None,
        "a stale part is replaced, not combined"
    );
}

#[test]
fn partial_objects_are_weighed_against_ram_and_evicted_and_banned() {
    let origin = RangeOrigin::start("127.0.32.12", 1 << 20, "\"v1\"");
    let node = node(
        "127.0.32.12",
        &origin,
        "partial = \"on\"\npartial_slice = \"64KiB\"\n\n[storage]\nram = \"1MiB\"",
    );
    assert_part(&range(&node, 0, 9), 1, 1 << 20, 0, 9);
    let one = node.counter("stored_bytes");
    assert!(one > 64 * 1024 && one < 70 * 1024, "one slice weighs {one}");
    for i in 0..24 {
        let r = get(node.addr, &format!("/v{i}.bin"), &[("Range", "bytes=0-9")]);
        assert_eq!(r.status, 206);
    }
    let stats = node.stats();
    let (bytes, capacity) = (
        stats["stored_bytes"].as_u64(),
        stats["capacity_bytes"].as_u64(),
    );
    assert!(bytes <= capacity, "{bytes:?} <= {capacity:?}");
    assert!(node.counter("evictions") > 0);
    let r = admin_request(node.admin, "POST", "/ban?prefix=http://test.example/", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node.counter("stored_objects"), 0);
    assert_eq!(node.counter("stored_bytes"), 0);
}

#[test]
fn concurrent_misses_of_one_window_make_one_origin_request() {
    let origin = RangeOrigin::start("127.0.32.13", 4000, "\"v1\"");
    origin.delay(std::time::Duration::from_millis(300));
    let node = partial_node("127.0.32.13", &origin);
    let addr = node.addr;
    let clients: Vec<_> = [(0, 99), (200, 299), (900, 1023)]
        .into_iter()
        .map(|(a, b)| {
            std::thread::spawn(move || {
                (
                    a,
                    b,
                    get(addr, PATH, &[("Range", &format!("bytes={a}-{b}"))]),
                )
            })
        })
        .collect();
    for c in clients {
        let (a, b, r) = c.join().expect("client");
        assert_part(&r, 1, 4000, a, b);
    }
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=0-1023"));
    assert!(node.counter("coalesced") >= 1);
}
