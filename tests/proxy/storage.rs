//! The RAM tier's bounds: `storage.ram` is never exceeded (evicting), and objects larger than
//! `storage.max_object_size` are served whole but not stored, with or without Content-Length.

use crate::support::*;
use crate::SOON;

const SMALL_RAM: &str = "[storage]\nram = \"2MiB\"\nmax_object_size = \"256KiB\"\n";

#[test]
fn the_ram_tier_stays_within_its_bound_and_evicts() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], SMALL_RAM);
    assert_eq!(node.counter("capacity_bytes"), 2 * 1024 * 1024);
    for i in 0..100 {
        let name = format!("e{i}");
        let r = get(node.addr, &format!("/obj/{name}?size=65536"), &[]);
        assert!(r.body == object_bytes(&name, 65536), "{name} differs");
        let stored = node.counter("stored_bytes");
        assert!(
            stored <= 2 * 1024 * 1024,
            "stored_bytes {stored} after {name}"
        );
    }
    assert!(wait_until(SOON, || node.counter("fills_in_flight") == 0));
    let stats = node.stats();
    assert!(stats["evictions"].as_u64() > Some(0), "{stats}");
    assert!(
        stats["stored_bytes"].as_u64() <= Some(2 * 1024 * 1024),
        "{stats}"
    );
    // At most 32 bodies of 64 KiB fit in 2 MiB.
    let objects = stats["stored_objects"].as_u64().unwrap_or(0);
    assert!((1..=32).contains(&objects), "{stats}");
}

#[test]
fn an_object_larger_than_max_object_size_is_served_but_not_stored() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], SMALL_RAM);
    let want = object_bytes("huge", 400_000);
    for n in 1..=2 {
        let r = get(node.addr, "/obj/huge?size=400000", &[]);
        assert_eq!(r.status, 200);
        assert!(!r.truncated && r.body == want, "body differs");
        assert_eq!(r.cache_status(), "a; fwd=miss");
        assert_eq!(origin.count("/obj/huge"), n);
    }
    assert_eq!(node.counter("stored_objects"), 0);
    // An object of exactly max_object_size is kept.
    let path = "/obj/max?size=262144";
    assert_eq!(
        get(node.addr, path, &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    assert!(wait_until(SOON, || node.counter("stored_objects") == 1));
    let r = get(node.addr, path, &[]);
    assert!(
        r.cache_status().starts_with("a; hit; ttl="),
        "{}",
        r.cache_status()
    );
    assert!(r.body == object_bytes("max", 262_144));
}

#[test]
fn a_chunked_object_larger_than_max_object_size_is_served_but_not_stored() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], SMALL_RAM);
    let want = object_bytes("hugec", 400_000);
    for n in 1..=2 {
        let r = get(node.addr, "/obj/hugec?size=400000&chunked=1", &[]);
        assert_eq!(r.status, 200);
        assert!(!r.truncated && r.body == want, "body differs");
        assert!(
            r.cache_status().starts_with("a; fwd=miss"),
            "{}",
            r.cache_status()
        );
        assert_eq!(origin.count("/obj/hugec"), n);
        assert!(wait_until(SOON, || node.counter("fills_in_flight") == 0));
    }
    assert_eq!(node.counter("stored_objects"), 0);
}
