//! Keys whose answer could not be stored skip coalescing for `cache.hit_for_miss`, end to end:
//! a real `strait node` in front of a recording origin on loopback (see `tests/support`).
//!
//! Contract under test (`cache/src/store/uncacheable.rs`, `cache/src/http/fill/`):
//! * an answer the origin made unstorable (`no-store` here) marks its key: the next misses for
//!   it are fetched alone at once (`hit_for_miss` counts them), never waiting on another fill;
//! * a marked key whose answer has become storable is stored (and the mark lifted: the next
//!   request is a hit);
//! * an answer unstorable because of the request (`Authorization`) marks nothing;
//! * `hit_for_miss = "0s"` disables marking.

mod support;

use support::{get, Node, RecordingOrigin};

const NO_STORE: &[u8] =
    b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno";
const STORABLE: &[u8] =
    b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

#[test]
fn an_unstorable_answer_marks_its_key_until_it_becomes_storable() {
    let origin = RecordingOrigin::start(NO_STORE);
    let node = Node::start(&[origin.addr], "");
    let r = get(node.addr, "/api", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "no"));
    assert_eq!(node.counter("uncacheable"), 1);
    assert_eq!(
        node.counter("hit_for_miss"),
        0,
        "the first miss finds no mark"
    );
    for n in 1..=3 {
        let r = get(node.addr, "/api", &[]);
        assert_eq!((r.status, r.text().as_str()), (200, "no"));
        assert_eq!(
            node.counter("hit_for_miss"),
            n,
            "request {n} is fetched alone"
        );
    }
    assert_eq!(origin.heads().len(), 4, "every request reached the origin");
    // The origin now answers with something storable: stored, and the mark is gone.
    origin.set_reply(STORABLE);
    let r = get(node.addr, "/api", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert!(r.cache_status().contains("stored"), "{}", r.cache_status());
    assert_eq!(node.counter("hit_for_miss"), 4);
    let r = get(node.addr, "/api", &[]);
    assert!(r.cache_status().contains("hit"), "{}", r.cache_status());
    assert_eq!(origin.heads().len(), 5, "the hit did not reach the origin");
    // Another key is not marked by this one.
    origin.set_reply(NO_STORE);
    let _ = get(node.addr, "/other", &[]);
    assert_eq!(node.counter("hit_for_miss"), 4);
}

#[test]
fn a_request_made_unstorable_by_the_request_marks_nothing_and_zero_disables() {
    let origin = RecordingOrigin::start(STORABLE);
    let node = Node::start(&[origin.addr], "");
    // `Authorization` without `public`: not stored, because of the request.
    let r = get(node.addr, "/private", &[("Authorization", "Basic eDp5")]);
    assert_eq!(r.status, 200);
    assert_eq!(node.counter("uncacheable"), 1);
    let r = get(node.addr, "/private", &[]);
    assert!(r.cache_status().contains("stored"), "{}", r.cache_status());
    assert_eq!(
        node.counter("hit_for_miss"),
        0,
        "no mark from the request's own reason"
    );

    let origin = RecordingOrigin::start(NO_STORE);
    let node = Node::start(&[origin.addr], "[cache]\nhit_for_miss = \"0s\"\n");
    for _ in 0..3 {
        assert_eq!(get(node.addr, "/api", &[]).status, 200);
    }
    assert_eq!(node.counter("uncacheable"), 3);
    assert_eq!(node.counter("hit_for_miss"), 0, "disabled");
}
