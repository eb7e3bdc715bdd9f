//! Validation: a stale object is revalidated with a conditional request and refreshed by the
//! origin's 304 (RFC 9111 §4.3), and client conditionals are answered from the store
//! (RFC 9110 §13.1, §13.2): `If-Modified-Since` against `Last-Modified`, else `Date`, else the
//! time the response was received (RFC 9111 §4.3.2).

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use crate::support::{get, object_bytes, read_response, Node, RecordingOrigin, IO_TIMEOUT};
use crate::{fill, http_date, settle, start, wait_stale};

#[test]
fn stale_object_is_revalidated_with_a_304_and_refreshed() {
    let (origin, node) = start("");
    let path = "/obj/rv?ttl=2";
    let first = fill(&node, path, &[]);
    assert_eq!(first.cache_status(), "a; fwd=miss; stored");
    let etag = first.header("etag").expect("ETag").to_string();
    wait_stale(&node, path);
    assert_eq!(node.counter("revalidated"), 0);

    let revalidated = get(node.addr, path, &[]);
    assert_eq!(revalidated.status, 200);
    assert_eq!(revalidated.body, object_bytes("rv", 1024));
    assert_eq!(revalidated.header("content-length"), Some("1024"));
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    assert!(
        revalidated
            .cache_status()
            .starts_with("a; fwd=stale; fwd-status=304; ttl="),
        "{}",
        revalidated.cache_status()
    );
    assert_eq!(origin.count("/obj/rv"), 2);
    assert_eq!(node.counter("revalidated"), 1);

    // The 304 refreshed the stored headers: fresh again, served without the origin.
    settle(&node);
    let hit = get(node.addr, path, &[]);
    assert!(
        hit.cache_status().starts_with("a; hit; ttl="),
        "{}",
        hit.cache_status()
    );
    assert_eq!(hit.body, object_bytes("rv", 1024));
    assert_eq!(origin.count("/obj/rv"), 2);
}

#[test]
fn if_none_match_with_the_stored_etag_is_answered_304_from_the_store() {
    let (origin, node) = start("");
    let first = fill(&node, "/obj/inm", &[]);
    let etag = first.header("etag").expect("ETag").to_string();
    assert_eq!(etag, strait_topology::origin::etag("inm", 1024));
    let r = get(node.addr, "/obj/inm", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(
        r.cache_status().starts_with("a; hit; ttl="),
        "{}",
        r.cache_status()
    );
    assert_eq!(origin.count("/obj/inm"), 1);
    assert_eq!(node.counter("not_modified"), 1);
}

#[test]
fn if_modified_since_after_last_modified_is_answered_304_from_the_store() {
    let (origin, node) = start("");
    let first = fill(&node, "/obj/ims", &[]);
    assert_eq!(
        first.header("last-modified"),
        Some("Thu, 01 Jan 2026 00:00:00 GMT")
    );
    let later = [("If-Modified-Since", "Fri, 02 Jan 2026 00:00:00 GMT")];
    let r = get(node.addr, "/obj/ims", &later);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert!(
        r.cache_status().starts_with("a; hit; ttl="),
        "{}",
        r.cache_status()
    );
    assert_eq!(origin.count("/obj/ims"), 1);
    assert_eq!(node.counter("not_modified"), 1);
}

#[test]
fn non_matching_conditionals_get_the_full_stored_response() {
    let (origin, node) = start("");
    fill(&node, "/obj/cond", &[]);
    let other_tag = get(node.addr, "/obj/cond", &[("If-None-Match", "\"nope\"")]);
    assert_eq!(other_tag.status, 200);
    assert_eq!(other_tag.body, object_bytes("cond", 1024));
    let earlier = [("If-Modified-Since", "Wed, 31 Dec 2025 00:00:00 GMT")];
    let modified = get(node.addr, "/obj/cond", &earlier);
    assert_eq!(modified.status, 200);
    assert_eq!(modified.body, object_bytes("cond", 1024));
    assert!(modified.cache_status().starts_with("a; hit; ttl="));
    assert_eq!(origin.count("/obj/cond"), 1);
    assert_eq!(node.counter("not_modified"), 0);
}

#[test]

fn no_cache_object_is_revalidated_for_a_pipelined_request() {
    let (origin, node) = start("");
    let path = "/obj/ncp?cc=no-cache";
    fill(&node, path, &[]);
    // Two pipelined requests: the node reads the second only after answering the first.
    let one = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\n\r\n");
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.write_all(format!("{one}{one}").as_bytes())
        .expect("write");
    let mut r = BufReader::new(s);
    for n in 2..=3 {
        let resp = read_response(&mut r, false).expect("a response");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, object_bytes("ncp", 1024));
        assert!(
            resp.cache_status()
                .starts_with("a; fwd=stale; fwd-status=304; ttl="),
            "request {n}: {}",
            resp.cache_status()
        );
    }
    assert_eq!(origin.count("/obj/ncp"), 3);
}

#[test]
fn if_modified_since_is_compared_with_date_when_there_is_no_last_modified() {
    let (origin, node) = start("");
    let path = "/obj/imsd?lm=0";
    let first = fill(&node, path, &[]);
    assert!(!first.has("last-modified"));
    let date = first.header("date").expect("Date").to_string();
    let r = get(node.addr, path, &[("If-Modified-Since", &date)]);
    assert_eq!(r.status, 304, "{:?}", r.headers);
    let earlier = [("If-Modified-Since", "Wed, 31 Dec 2025 00:00:00 GMT")];
    assert_eq!(get(node.addr, path, &earlier).status, 200);
    assert_eq!(origin.count("/obj/imsd"), 1);
}

/// RFC 9111 §4.3.2: with neither Last-Modified nor Date from the origin, the time the response
/// was received (the node stores the `Date` it adds then; `client_not_modified` also falls back
/// to that time itself).
#[test]
fn if_modified_since_is_compared_with_the_time_received_without_any_date() {
    let origin = RecordingOrigin::start(
        b"HTTP/1.1 200 OK\r\ncache-control: max-age=600\r\ncontent-length: 2\r\n\r\nok",
    );
    let node = Node::start(&[origin.addr], "");
    let before = SystemTime::now() - Duration::from_secs(2);
    fill(&node, "/nodate", &[]);
    let later = http_date(SystemTime::now() + Duration::from_secs(2));
    let r = get(node.addr, "/nodate", &[("If-Modified-Since", &later)]);
    assert_eq!(r.status, 304, "{:?}", r.headers);
    let earlier = http_date(before - Duration::from_secs(60));
    let r = get(node.addr, "/nodate", &[("If-Modified-Since", &earlier)]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(origin.heads().len(), 1);
}
