//! Open (`bytes=N-`) and suffix (`bytes=-N`) ranges with nothing held: the origin is asked
//! from the slice boundary at or below N to the end (`bytes=S-`), or for the last N bytes
//! rounded up to whole slices (`bytes=-M`); what it sends is kept as a part (or, when it is
//! the whole representation, as the complete object); a rest larger than `max_object_size`
//! is streamed to the client and not kept. Loopback 127.0.33.0/24.

use super::origin::{content, RangeOrigin};
use super::support::get;
use super::{assert_part, node, partial_node, range, PATH};

fn open(node: &super::Node, from: usize) -> super::Resp {
    get(node.addr, PATH, &[("Range", &format!("bytes={from}-"))])
}

fn suffix(node: &super::Node, n: usize) -> super::Resp {
    get(node.addr, PATH, &[("Range", &format!("bytes=-{n}"))])
}

#[test]
fn an_open_range_miss_asks_from_its_slice_boundary_to_the_end_once() {
    let origin = RangeOrigin::start("127.0.33.1", 4000, "\"v1\"");
    let node = partial_node("127.0.33.1", &origin);
    let r = open(&node, 1500);
    assert_part(&r, 1, 4000, 1500, 3999);
    assert!(
        r.cache_status().contains("fwd=miss; stored"),
        "{}",
        r.cache_status()
    );
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=1024-"));
    assert_eq!((seen[0].status, seen[0].sent), (206, 4000 - 1024));
    // Everything from 1024 on is held: these are hits.
    for (a, b) in [(2000, 2999), (1024, 3999), (3999, 3999)] {
        let r = range(&node, a, b);
        assert_part(&r, 1, 4000, a, b);
        assert!(
            r.cache_status().starts_with("a; hit"),
            "{a}-{b}: {}",
            r.cache_status()
        );
    }
    let r = open(&node, 1100);
    assert_part(&r, 1, 4000, 1100, 3999);
    assert!(
        r.cache_status().starts_with("a; hit"),
        "{}",
        r.cache_status()
    );
    assert_eq!(origin.seen().len(), 1);
    // An open range from before what is held asks for the gap only; every byte is then held:
    // the complete object, a 200 hit for a full GET.
    let r = open(&node, 100);
    assert_part(&r, 1, 4000, 100, 3999);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=0-1023"));
    assert_eq!(seen[1].if_range.as_deref(), Some("\"v1\""));
    let full = get(node.addr, PATH, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, content(1, 4000));
    assert!(
        full.cache_status().starts_with("a; hit"),
        "{}",
        full.cache_status()
    );
    assert_eq!(origin.seen().len(), 2);
}

#[test]
fn a_suffix_range_miss_asks_for_whole_slices_from_the_end_once() {
    let origin = RangeOrigin::start("127.0.33.2", 4000, "\"v1\"");
    let node = partial_node("127.0.33.2", &origin);
    let r = suffix(&node, 100);
    assert_part(&r, 1, 4000, 3900, 3999);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=-1024"));
    assert_eq!((seen[0].status, seen[0].sent), (206, 1024));
    // The last 1024 bytes (2976..=3999) are held.
    let r = suffix(&node, 1024);
    assert_part(&r, 1, 4000, 2976, 3999);
    assert!(
        r.cache_status().starts_with("a; hit"),
        "{}",
        r.cache_status()
    );
    let r = range(&node, 3000, 3500);
    assert_part(&r, 1, 4000, 3000, 3500);
    assert!(
        r.cache_status().starts_with("a; hit"),
        "{}",
        r.cache_status()
    );
    assert_eq!(origin.seen().len(), 1);
    // A range past the known end is a 416 from the store.
    let r = range(&node, 4000, 4100);
    assert_eq!(r.status, 416);
    assert_eq!(origin.seen().len(), 1);
}

#[test]
fn a_suffix_longer_than_the_object_keeps_it_whole() {
    let origin = RangeOrigin::start("127.0.33.3", 600, "\"v1\"");
    let node = partial_node("127.0.33.3", &origin);
    // RFC 9110 §14.1.2: a suffix longer than the representation selects all of it.
    let r = suffix(&node, 700);
    assert_part(&r, 1, 600, 0, 599);
    assert_eq!(origin.seen()[0].range.as_deref(), Some("bytes=-1024"));
    let full = get(node.addr, PATH, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, content(1, 600));
    assert!(
        full.cache_status().starts_with("a; hit"),
        "{}",
        full.cache_status()
    );
    assert_eq!(origin.seen().len(), 1);
}

#[test]
fn an_open_range_whose_rest_is_larger_than_max_object_size_is_streamed_not_kept() {
    let size = 20_000;
    let origin = RangeOrigin::start("127.0.33.4", size, "\"v1\"");
    let node = node(
        "127.0.33.4",
        &origin,
        "partial = \"on\"\npartial_slice = \"1KiB\"\n\n[storage]\nmax_object_size = \"8KiB\"",
    );
    let r = open(&node, 5000);
    assert_part(&r, 1, size, 5000, size - 1);
    assert!(!r.cache_status().contains("stored"), "{}", r.cache_status());
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=4096-"));
    assert_eq!(node.counter("stored_objects"), 0);
    // A suffix longer than max_object_size could not be kept: it goes the usual way, the
    // whole object asked for and relayed as the origin sent it (too large to store).
    let r = suffix(&node, 9000);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content(1, size));
    assert_eq!(origin.seen()[1].range, None);
}
