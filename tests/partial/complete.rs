//! A full GET for a key whose parts are held: only the missing byte runs are asked for (with
//! `If-Range`), the 200 is streamed from the held runs and the fetched ones in order, and the
//! complete object is stored; a changed representation is taken whole from the origin's 200
//! to that request. Loopback 127.0.33.0/24.

use super::origin::{content, RangeOrigin};
use super::support::{get, Resp};
use super::{assert_part, node, partial_node, range, PATH};

/// FNV-1a of a body, to name it in messages.
fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

fn assert_whole(r: &Resp, version: u8, size: usize) {
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.header("content-length"), Some(size.to_string().as_str()));
    let want = content(version, size);
    assert_eq!(
        checksum(&r.body),
        checksum(&want),
        "body of {} bytes, want {size}",
        r.body.len()
    );
    assert!(r.body == want);
}

#[test]
fn a_full_get_fetches_only_the_bytes_the_parts_lack() {
    const MIB: usize = 1 << 20;
    let size = 3 * MIB;
    let origin = RangeOrigin::start("127.0.33.11", size, "\"v1\"");
    let node = node(
        "127.0.33.11",
        &origin,
        "partial = \"on\"\npartial_slice = \"1MiB\"",
    );
    assert_part(&range(&node, 0, 100), 1, size, 0, 100);
    assert_eq!(origin.seen()[0].range.as_deref(), Some("bytes=0-1048575"));
    let full = get(node.addr, PATH, &[]);
    assert_whole(&full, 1, size);
    assert_eq!(full.cache_status(), "a; fwd=partial; stored");
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=1048576-3145727"));
    assert_eq!(seen[1].if_range.as_deref(), Some("\"v1\""));
    assert_eq!((seen[1].status, seen[1].sent), (206, 2 * MIB));
    // Stored whole, the partial object gone: a plain hit, and ranges from it.
    let again = get(node.addr, PATH, &[]);
    assert_whole(&again, 1, size);
    assert!(
        again.cache_status().starts_with("a; hit"),
        "{}",
        again.cache_status()
    );
    let r = range(&node, 2 * MIB, 2 * MIB + 99);
    assert_part(&r, 1, size, 2 * MIB, 2 * MIB + 99);
    assert_eq!(origin.seen().len(), 2);
    assert_eq!(node.counter("stored_objects"), 1);
}

#[test]
fn a_full_get_splices_held_runs_between_the_fetched_gaps() {
    let origin = RangeOrigin::start("127.0.33.12", 4000, "\"v1\"");
    let node = partial_node("127.0.33.12", &origin);
    assert_part(&range(&node, 1500, 1600), 1, 4000, 1500, 1600);
    let full = get(node.addr, PATH, &[]);
    assert_whole(&full, 1, 4000);
    let asked: Vec<_> = origin.seen().iter().map(|s| s.range.clone()).collect();
    assert_eq!(
        asked,
        [
            Some("bytes=1024-2047".to_string()),
            Some("bytes=0-1023".to_string()),
            Some("bytes=2048-3999".to_string()),
        ]
    );
    assert!(origin.seen()[1..]
        .iter()
        .all(|s| s.if_range.as_deref() == Some("\"v1\"")));
    let again = get(node.addr, PATH, &[]);
    assert_whole(&again, 1, 4000);
    assert!(
        again.cache_status().starts_with("a; hit"),
        "{}",
        again.cache_status()
    );
    assert_eq!(origin.seen().len(), 3);
}

#[test]
fn a_full_get_after_the_representation_changed_takes_the_new_one_whole() {
    let origin = RangeOrigin::start("127.0.33.13", 4000, "\"v1\"");
    let node = partial_node("127.0.33.13", &origin);
    assert_part(&range(&node, 0, 99), 1, 4000, 0, 99);
    origin.change(2, "\"v2\"");
    // The gap is asked for with If-Range "v1": the origin's 200 is the whole new version,
    // served and stored; nothing of v1 is mixed in.
    let full = get(node.addr, PATH, &[]);
    assert_whole(&full, 2, 4000);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=1024-3999"));
    assert_eq!(seen[1].if_range.as_deref(), Some("\"v1\""));
    assert_eq!((seen[1].status, seen[1].sent), (200, 4000));
    let again = get(node.addr, PATH, &[]);
    assert_whole(&again, 2, 4000);
    assert!(
        again.cache_status().starts_with("a; hit"),
        "{}",
        again.cache_status()
    );
    let r = range(&node, 0, 99);
    assert_part(&r, 2, 4000, 0, 99);
    assert_eq!(origin.seen().len(), 2);
    assert_eq!(node.counter("stored_objects"), 1, "the v1 part is gone");
}
