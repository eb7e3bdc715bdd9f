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

use support::{get, request, Node, RecordingOrigin};

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
        assert_eq!(
            node.counter("pass_lane"),
            n,
            "request {n} took the pass lane"
        );
    }
    assert_eq!(origin.heads().len(), 4, "every request reached the origin");
    // The origin now answers with something storable: stored, and the mark is gone.
    origin.set_reply(STORABLE);
    let r = get(node.addr, "/api", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert!(r.cache_status().contains("stored"), "{}", r.cache_status());
    assert_eq!(node.counter("hit_for_miss"), 4);
    assert_eq!(
        node.counter("pass_lane"),
        3,
        "a storable answer goes to the general stages (stored, one origin request)"
    );
    let r = get(node.addr, "/api", &[]);
    assert!(r.cache_status().contains("hit"), "{}", r.cache_status());
    assert_eq!(origin.heads().len(), 5, "the hit did not reach the origin");
    // Another key is not marked by this one.
    origin.set_reply(NO_STORE);
    let _ = get(node.addr, "/other", &[]);
    assert_eq!(node.counter("hit_for_miss"), 4);
}

/// A request head as the origin saw it: the request line, then its fields with lowercase
/// names, sorted (the general stages send lowercase names, the pass lane the client's).
fn fields(head: &str) -> (String, Vec<String>) {
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default().to_string();
    let mut rest: Vec<String> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("a field line");
            format!("{}: {}", n.to_ascii_lowercase(), v.trim())
        })
        .collect();
    rest.sort();
    (first, rest)
}

#[test]
fn the_pass_lane_sends_and_answers_what_the_general_stages_do() {
    let origin = RecordingOrigin::start(NO_STORE);
    let node = Node::start(&[origin.addr], "");
    let ask = |extra: &[(&str, &str)]| {
        let mut h = vec![("User-Agent", "lane-test/1"), ("Accept", "*/*")];
        h.extend_from_slice(extra);
        get(node.addr, "/lane/a?b=c", &h)
    };
    let general = ask(&[]);
    let lane = ask(&[]);
    assert_eq!(node.counter("pass_lane"), 1, "the second request is marked");
    assert_eq!((lane.status, lane.text().as_str()), (200, "no"));
    for name in ["cache-status", "via", "cache-control", "content-length"] {
        assert_eq!(lane.header(name), general.header(name), "{name}");
    }
    assert!(lane.header("date").is_some());
    assert_eq!(
        lane.header("connection"),
        Some("close"),
        "the client asked to close"
    );
    let heads = origin.heads();
    assert_eq!(heads.len(), 2);
    let (g, l) = (fields(&heads[0]), fields(&heads[1]));
    assert_eq!(l, g, "the origin sees the same request");
    assert!(
        l.1.iter()
            .any(|f| f.starts_with("x-forwarded-for: 127.0.0.1")),
        "{l:?}"
    );
    assert!(l.1.iter().any(|f| f.starts_with("via: 1.1 ")), "{l:?}");
    // Requests the lane leaves to the general stages: HEAD, and fields it would have to merge
    // into or that make storability depend on the request.
    let _ = request(node.addr, "HEAD", "/lane/a?b=c", &[], b"");
    for extra in [
        ("Via", "1.1 other"),
        ("X-Forwarded-For", "192.0.2.1"),
        ("Forwarded", "for=192.0.2.1"),
        ("Authorization", "Basic eDp5"),
    ] {
        let r = ask(&[extra]);
        assert_eq!((r.status, r.text().as_str()), (200, "no"), "{extra:?}");
    }
    assert_eq!(node.counter("pass_lane"), 1);
    // The lane's one, then the four GETs (HEAD misses are passes, not fetched as fills).
    assert_eq!(node.counter("hit_for_miss"), 5, "all of them fetched alone");
    let heads = origin.heads();
    assert!(
        heads[3].contains("Via: 1.1 other, 1.1 ") || heads[3].contains("via: 1.1 other, 1.1 "),
        "the general stages merge Via: {}",
        heads[3]
    );
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
